"""DICOM PS3.15 Annex E, Table E.1-1: the action for every attribute, and the profile options.

Source of the Basic Profile column: the machine-readable copy shipped by the maintained package
``dicom-anonymizer`` (KitwareMedical, PyPI ``dicom-anonymizer`` ≥ 2.1, module
``dicomanonymizer.dicom_anonymization_databases.dicomfields_2026c``), generated from PS3.15 **2026c**
Table E.1-1 (655 attribute rows, including the ``(50xx,xxxx)`` curve and ``(60xx,3000/4000)`` overlay
ranges). :data:`EDITION` names it; it is recorded in every de-identified file's DeidentificationMethod.

Actions: ``D`` replace with a dummy (the pseudonym for Patient's Name/ID), ``Z`` zero-length, ``X`` remove,
``K`` keep, ``C`` clean, ``U`` replace UID (keyed, consistent). Combined codes resolve to the least
information that keeps the object valid: ``X/Z`` and ``X/Z/D`` → ``Z``, ``Z/D`` → ``Z`` (``D`` for Patient
ID), ``X/D`` → ``X``, ``X/Z/U*`` → ``U`` (UIDs inside the sequence are remapped, the rest follows the table).

Options (PS3.15 E.3): the package carries only the Basic Profile column, so the option columns are applied
by the option's own definition in E.3 rather than per-row flags:

- Retain Longitudinal Temporal Information with Modified Dates (E.3.6): every DA/DT attribute that the
  profile would remove, empty or replace is shifted by the patient's keyed day offset; TM values are kept.
- Retain Patient Characteristics (E.3.4), Retain Device Identity (E.3.5): the attributes whose option column
  is ``K``/``C`` in 2026c are listed in :data:`PATIENT_CHARACTERISTICS` and :data:`DEVICE_IDENTITY`.
- Retain Safe Private (E.3.10): private attributes are removed unless (creator, element) is in the safelist.
- Clean Descriptors (E.3.5): free-text description/comment attributes (VR LO/ST/LT/UT/SH whose keyword
  contains Description, Comment(s), Label, Reason, History or Diagnos) are kept with every identifying value
  of the dataset removed from their text, instead of removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from pydicom.datadict import dictionary_VR, keyword_for_tag

from toothmcl_data.configdict import config_from_dict, config_to_dict
from toothmcl_data.errors import ConfigError

Action = Literal["D", "Z", "X", "K", "C", "U"]
EDITION = "PS3.15 2026c Table E.1-1 (dicom-anonymizer 2.1 dicomfields_2026c)"
EDITION_SHORT = "PS3.15-2026c E.1-1"
"""Edition as recorded in DeidentificationMethod (LO, at most 64 characters with the option codes)."""
_DATABASE = "dicomfields_2026c"

_RESOLVE: dict[str, Action] = {
    "D_TAGS": "D",
    "Z_TAGS": "Z",
    "X_TAGS": "X",
    "U_TAGS": "U",
    "Z_D_TAGS": "Z",
    "X_Z_TAGS": "Z",
    "X_D_TAGS": "X",
    "X_Z_D_TAGS": "Z",
    "X_Z_U_STAR_TAGS": "U",
}
PATIENT_ID_TAG = 0x00100020
PATIENT_NAME_TAG = 0x00100010

PATIENT_CHARACTERISTICS: frozenset[int] = frozenset(
    {
        0x00102110,  # Allergies
        0x00102160,  # Ethnic Group
        0x00101010,  # Patient's Age
        0x00100040,  # Patient's Sex
        0x00102203,  # Patient's Sex Neutered
        0x00101020,  # Patient's Size
        0x00101030,  # Patient's Weight
        0x001021C0,  # Pregnancy Status
        0x001021A0,  # Smoking Status
        0x00380050,  # Special Needs
        0x00380500,  # Patient State
        0x00102000,  # Medical Alerts
        0x00400012,  # Pre-Medication
    }
)
"""Attributes kept by Retain Patient Characteristics (E.1-1 2026c, column "Rtn. Pat. Chars. Opt.")."""

DEVICE_IDENTITY: frozenset[int] = frozenset(
    {
        0x00181007,  # Cassette ID
        0x0018700A,  # Detector ID
        0x00500020,  # Device Description
        0x3010002D,  # Device Label
        0x00181000,  # Device Serial Number
        0x00181002,  # Device UID
        0x00181008,  # Gantry ID
        0x00181005,  # Generator ID
        0x00181004,  # Plate ID
        0x30080105,  # Source Serial Number
        0x00081010,  # Station Name
        0x0018100A,  # UDI Sequence
        0x300A00B2,  # Treatment Machine Name
        0x00185011,  # Transducer Identification Sequence
    }
)
"""Attributes kept by Retain Device Identity (E.1-1 2026c, column "Rtn. Dev. Id. Opt.")."""

_DESCRIPTOR_WORDS = ("Description", "Comment", "Label", "Reason", "History", "Diagnos")
_TEXT_VRS = frozenset({"LO", "ST", "LT", "UT", "SH"})


@dataclass(frozen=True)
class DeidOptions:
    """Which PS3.15 E.3 options the de-identification applies, plus the safe-private list.

    safe_private: ``(private creator, element low byte)`` pairs kept under Retain Safe Private, e.g.
    ``("SIEMENS CT VA0  COAD", 0x12)``.
    """

    retain_longitudinal_modified_dates: bool = True
    retain_patient_characteristics: bool = False
    retain_device_identity: bool = False
    retain_safe_private: bool = False
    clean_descriptors: bool = False
    safe_private: tuple[tuple[str, int], ...] = field(default=())

    def __post_init__(self) -> None:
        for item in self.safe_private:
            if len(item) != 2 or not isinstance(item[0], str) or not 0 <= int(item[1]) <= 0xFF:
                raise ConfigError(
                    f"DeidOptions.safe_private entries must be (creator: str, element byte 0..255), got {item!r}"
                )
        object.__setattr__(self, "safe_private", tuple((str(c), int(e)) for c, e in self.safe_private))

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DeidOptions:
        return config_from_dict(cls, d)

    def codes(self) -> list[tuple[str, str]]:
        """The DICOM CID 7050 codes (value, meaning) of the profile and the selected options."""
        out = [("113100", "Basic Application Confidentiality Profile")]
        chosen = (
            (
                self.retain_longitudinal_modified_dates,
                "113107",
                "Retain Longitudinal Temporal Information Modified Dates Option",
            ),
            (self.retain_patient_characteristics, "113108", "Retain Patient Characteristics Option"),
            (self.retain_device_identity, "113109", "Retain Device Identity Option"),
            (self.retain_safe_private, "113111", "Retain Safe Private Option"),
            (self.clean_descriptors, "113105", "Clean Descriptors Option"),
        )
        out += [(code, meaning) for on, code, meaning in chosen if on]
        return out


@dataclass(frozen=True)
class ProfileTable:
    """Table E.1-1 resolved to one action per attribute.

    exact: tag (int) → action; masked: (group, element, group mask, element mask, action) for repeating
    groups such as ``(60xx,4000)``.
    """

    exact: Mapping[int, Action]
    masked: tuple[tuple[int, int, int, int, Action], ...]

    def action(self, tag: int) -> Action | None:
        """The Basic Profile action for ``tag``, or None when Table E.1-1 does not list it (keep)."""
        act = self.exact.get(tag)
        if act is not None:
            return act
        group, element = tag >> 16, tag & 0xFFFF
        for g, e, gm, em, a in self.masked:
            if group & gm == g and element & em == e:
                return a
        return None


@cache
def load_table() -> ProfileTable:
    """Load the Basic Profile column of Table E.1-1 (see the module docstring for the source and edition)."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector

    db = dicom_anonymization_database_selector(_DATABASE)
    exact: dict[int, Action] = {}
    masked: list[tuple[int, int, int, int, Action]] = []
    for category, action in _RESOLVE.items():
        for entry in db[category]:
            if len(entry) == 2:
                exact[(int(entry[0]) << 16) | int(entry[1])] = action
            else:
                g, e, gm, em = (int(v) for v in entry)
                masked.append((g, e, gm, em, action))
    exact[PATIENT_ID_TAG] = "D"
    return ProfileTable(exact=exact, masked=tuple(masked))


def is_descriptor(tag: int) -> bool:
    """Whether Clean Descriptors applies to ``tag`` (free text describing the study, see module docstring)."""
    try:
        vr = dictionary_VR(tag)
    except KeyError:  # handled: a tag the dictionary does not know is no descriptor (its profile action applies)
        return False
    keyword = keyword_for_tag(tag)
    return vr in _TEXT_VRS and any(word in keyword for word in _DESCRIPTOR_WORDS)
