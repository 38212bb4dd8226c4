"""De-identification: PS3.15 Basic Profile for DICOM, keyed pseudonyms, clean outputs, leak scanner."""
