"""Segmentation metrics on label arrays: IOS (3DTeethSeg22 challenge rules + mIoU) and CBCT (Dice, HD95,
identification, tooth groups); ``inputs`` reads files to score, ``tables`` runs whole folders.

Pure functions on arrays, so training code (``toothmcl_models``) reuses them without the file layer.
"""

from toothmcl_data.metrics.cbct import CBCTScores, ToothScore, hd95, score_label_maps
from toothmcl_data.metrics.ios import IOSScores, score_scan

__all__ = ["CBCTScores", "IOSScores", "ToothScore", "hd95", "score_label_maps", "score_scan"]
