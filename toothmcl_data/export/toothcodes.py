"""SNOMED CT codes of FDI teeth, as DICOM lists them (PS3.16 CID 4018 permanent, CID 4019 deciduous teeth).

The concepts come from pydicom's copy of the DICOM content groups, matched to FDI by their meaning
(``"Permanent maxillary right first molar tooth"`` → 16); nothing is typed in by hand. CID 4018 names the
lower left lateral incisor ``"Mandibular left lateral tooth"`` (423331005): read as position 2.
"""

from __future__ import annotations

import functools

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from toothmcl_data.fdi.teeth import Tooth

TOOTH_CIDS = (4018, 4019)
"""DICOM context groups of tooth concepts: permanent, deciduous dentition."""
ANATOMICAL_STRUCTURE = Code("91723000", "SCT", "Anatomical Structure")
"""Segmented property category of every tooth segment (CID 7150)."""
TOOTH = Code("38199008", "SCT", "Tooth")
"""Property type for a code with no tooth concept of its own."""

_QUADRANT = {("maxillary", "right"): 1, ("maxillary", "left"): 2, ("mandibular", "left"): 3, ("mandibular", "right"): 4}
_PERMANENT: tuple[str, ...] = ("central incisor", "lateral incisor", "canine", "first premolar", "second premolar")
_PERMANENT += ("first molar", "second molar", "third molar")
_DECIDUOUS = ("central incisor", "lateral incisor", "canine", "first molar", "second molar")


def _fdi_from_meaning(meaning: str) -> int | None:
    words = meaning.lower().replace("(body structure)", "").split()
    deciduous = words[0] == "deciduous"
    words = [w for w in words if w not in ("permanent", "deciduous", "tooth")]
    if len(words) < 3 or (words[0], words[1]) not in _QUADRANT:
        return None
    kind = " ".join(words[2:])
    kind = "lateral incisor" if kind == "lateral" else kind
    positions = _DECIDUOUS if deciduous else _PERMANENT
    if kind not in positions:
        return None
    return (_QUADRANT[words[0], words[1]] + (4 if deciduous else 0)) * 10 + positions.index(kind) + 1


@functools.cache
def tooth_codes() -> dict[int, Code]:
    """FDI code → SNOMED CT concept of that tooth (the 32 permanent and 20 deciduous teeth)."""
    from pydicom.sr._cid_dict import cid_concepts

    out: dict[int, Code] = {}
    for cid in TOOTH_CIDS:
        for keyword in cid_concepts[cid]["SCT"]:
            code = getattr(codes.SCT, keyword)
            fdi = _fdi_from_meaning(code.meaning)
            if fdi is not None:
                out[fdi] = Code(code.value, "SCT", code.meaning)
    return out


def tooth_code(fdi: int) -> Code:
    """The SNOMED CT concept of FDI tooth ``fdi`` (validated); :data:`TOOTH` when DICOM lists none."""
    return tooth_codes().get(Tooth(int(fdi)).fdi, TOOTH)
