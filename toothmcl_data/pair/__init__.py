"""Pair CBCT and IOS at the tooth level: crops and points per FDI tooth, consistency checks, label transfer.

``pair_case(case, registrations, config) -> PairResult`` is the entry point.
"""

from toothmcl_data.pair.case import PairResult, pair_case
from toothmcl_data.pair.config import PairConfig

__all__ = ["PairConfig", "PairResult", "pair_case"]
