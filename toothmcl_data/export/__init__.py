"""Export a published version to the formats other tools read (nnU-Net v2, MONAI, DICOM-SEG, NIfTI, 3D Slicer)."""
