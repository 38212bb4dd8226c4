"""Teeth in FDI notation and the registry of label schemes that convert other numberings to and from FDI.

Inside the library a tooth is always its FDI code (0 = gingiva/background, -1 = unknown); other schemes
(Universal, ToothFairy2, Teeth3DS, per-jaw classes, label colours) exist only at the edges and are defined
by the YAML files in ``catalogs/labelmaps/``.
"""

from toothmcl_data.fdi.catalog import labelmaps_dir, scheme_names
from toothmcl_data.fdi.colors import ColorTable, load_color_table
from toothmcl_data.fdi.schemes import LabelScheme, from_fdi, load_scheme, to_fdi
from toothmcl_data.fdi.teeth import (
    ALL_TEETH,
    DECIDUOUS_FDI,
    GINGIVA,
    LOWER_FDI,
    PERMANENT_FDI,
    UNKNOWN,
    UPPER_FDI,
    LabelReport,
    Tooth,
    check_labels,
    mirror_labels,
    opposing_labels,
    tooth,
)

__all__ = [
    "ALL_TEETH",
    "DECIDUOUS_FDI",
    "GINGIVA",
    "LOWER_FDI",
    "PERMANENT_FDI",
    "UNKNOWN",
    "UPPER_FDI",
    "ColorTable",
    "LabelReport",
    "LabelScheme",
    "Tooth",
    "check_labels",
    "from_fdi",
    "labelmaps_dir",
    "load_color_table",
    "load_scheme",
    "mirror_labels",
    "opposing_labels",
    "scheme_names",
    "to_fdi",
    "tooth",
]
