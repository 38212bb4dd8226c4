"""Apply the PS3.15 Basic Application Level Confidentiality Profile to a pydicom dataset, recursively.

Every attribute's action comes from :func:`toothmcl_data.deid.table.load_table` (Table E.1-1) adjusted by
the selected :class:`~toothmcl_data.deid.table.DeidOptions`; the walker descends into every sequence item
(so a Patient's Name inside a Referenced Patient Sequence item, or a UID in Referenced Image Sequence, is
treated like a top-level one). Attributes the table does not list are kept; private attributes are removed
unless Retain Safe Private is selected and (creator, element) is safelisted.

Elements the profile keeps are never decoded (pydicom's raw elements are written back as read), which keeps
the cost close to a plain read + write (``bench/deid.py``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pydicom.dataelem import DataElement
from pydicom.datadict import dictionary_VR
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from toothmcl_data.deid.pseudonym import remap_uid, shift_date
from toothmcl_data.deid.table import (
    DEVICE_IDENTITY,
    EDITION_SHORT,
    PATIENT_CHARACTERISTICS,
    PATIENT_ID_TAG,
    PATIENT_NAME_TAG,
    Action,
    DeidOptions,
    is_descriptor,
    load_table,
)

log = logging.getLogger(__name__)

_DUMMY = {
    "DA": "19000101",
    "TM": "000000",
    "DT": "19000101000000",
    "PN": "ANONYMIZED",
    "AS": "000Y",
    "IS": "0",
    "DS": "0",
}
_NUMERIC = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})
_TEXT = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "CS", "AE", "UR"})
_META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
"""File meta attributes that can name a sender: Source/Sending/Receiving AE titles, private information."""


@dataclass(frozen=True)
class DeidContext:
    """What the walker needs for one patient: key, pseudonym, day offset, options.

    phi_values: identifying strings removed from descriptors by Clean Descriptors (filled per dataset).
    """

    key: bytes
    pseudonym: str
    day_shift: int
    options: DeidOptions = DeidOptions()


def _vr(ds: Dataset, tag: int) -> str:
    raw = ds.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr:
        return str(vr)
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _resolve(tag: int, vr: str, action: Action | None, opts: DeidOptions) -> Action | str | None:
    """The action after options: may also be ``"shift"`` (modified dates)."""
    if action is None:
        return None
    if opts.retain_patient_characteristics and tag in PATIENT_CHARACTERISTICS:
        return "K"
    if opts.retain_device_identity and tag in DEVICE_IDENTITY:
        return "K"
    if opts.retain_longitudinal_modified_dates and action in ("X", "Z", "D"):
        if vr in ("DA", "DT"):
            return "shift"
        if vr == "TM":
            return "K"
    if opts.clean_descriptors and action in ("X", "Z", "D") and is_descriptor(tag):
        return "C"
    return action


def _dummy(elem: DataElement, ctx: DeidContext) -> None:
    tag = int(elem.tag)
    if tag in (PATIENT_ID_TAG, PATIENT_NAME_TAG):
        elem.value = ctx.pseudonym
    elif elem.VR == "UI":
        _remap(elem, ctx)
    elif elem.VR in _DUMMY:
        elem.value = _DUMMY[elem.VR]
    elif elem.VR in _NUMERIC:
        elem.value = 0
    elif elem.VR in _TEXT:
        elem.value = "ANONYMIZED"
    else:
        elem.value = None


def _remap(elem: DataElement, ctx: DeidContext) -> None:
    value = elem.value
    if value is None or value == "":
        return
    if isinstance(value, str):
        elem.value = remap_uid(ctx.key, value)
    else:
        elem.value = [remap_uid(ctx.key, str(v)) for v in value]


def _shift(elem: DataElement, ctx: DeidContext) -> None:
    value = elem.value
    if value is None or value == "":
        return
    if isinstance(value, str):
        elem.value = shift_date(value, ctx.day_shift)
    else:
        elem.value = [shift_date(str(v), ctx.day_shift) for v in value]


def _clean(elem: DataElement, phi: tuple[str, ...]) -> None:
    text = "" if elem.value is None else str(elem.value)
    for value in phi:
        text = re.sub(re.escape(value), "", text, flags=re.IGNORECASE)
    elem.value = " ".join(text.split())


def _private_keep(ds: Dataset, tag: int, opts: DeidOptions) -> bool:
    if not opts.retain_safe_private or not opts.safe_private:
        return False
    group, element = tag >> 16, tag & 0xFFFF
    if element < 0x1000:
        return any(c == str(ds[tag].value) for c, _ in opts.safe_private) if 0x10 <= element <= 0xFF else False
    creator_tag = (group << 16) | (element >> 8)
    if creator_tag not in ds:
        return False
    creator = str(ds[creator_tag].value)
    return (creator, element & 0xFF) in set(opts.safe_private)


def _phi_values(ds: Dataset) -> tuple[str, ...]:
    """Identifying strings of this dataset (names, IDs, dates …) that Clean Descriptors scrubs from text."""
    table = load_table()
    found: set[str] = set()
    for tag in list(ds.keys()):
        t = int(tag)
        if table.action(t) in ("D", "Z", "X") and _vr(ds, t) in ("PN", "LO", "SH", "DA", "CS", "LT", "ST"):
            value = ds[t].value
            for part in value if isinstance(value, list | tuple) else [value]:
                text = str(part)
                found.update(p for p in re.split(r"[\^=]", text) + [text] if len(p.strip()) >= 3)
    return tuple(sorted(found, key=len, reverse=True))


def _walk(ds: Dataset, ctx: DeidContext, phi: tuple[str, ...]) -> None:
    table = load_table()
    opts = ctx.options
    for tag in list(ds.keys()):
        t = int(tag)
        if tag.is_private:
            if not _private_keep(ds, t, opts):
                del ds[t]
            continue
        vr = _vr(ds, t)
        action = _resolve(t, vr, table.action(t), opts)
        if action is None or action == "K":
            if vr == "SQ":
                for item in ds[t].value:
                    _walk(item, ctx, phi)
            continue
        if action == "X":
            del ds[t]
            continue
        elem = ds[t]
        if action == "Z":
            elem.value = Sequence() if vr == "SQ" else None
        elif vr == "SQ":  # D, U or C on a sequence: keep the items, apply the profile inside them
            for item in elem.value:
                _walk(item, ctx, phi)
        elif action == "shift":
            _shift(elem, ctx)
        elif action == "U":
            if vr == "UI":
                _remap(elem, ctx)
            else:
                elem.value = None
        elif action == "C":
            _clean(elem, phi)
        else:
            _dummy(elem, ctx)


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def deidentify_dataset(ds: Dataset, ctx: DeidContext) -> Dataset:
    """De-identify ``ds`` in place (and its file meta) and return it.

    Records PatientIdentityRemoved = YES, DeidentificationMethod (profile, options, table edition) and
    DeidentificationMethodCodeSequence (CID 7050); Patient's Name and ID become the pseudonym; with modified
    dates, LongitudinalTemporalInformationModified = MODIFIED.
    """
    opts = ctx.options
    phi = _phi_values(ds) if opts.clean_descriptors else ()
    _walk(ds, ctx, phi)
    ds.PatientName = ctx.pseudonym
    ds.PatientID = ctx.pseudonym
    ds.PatientIdentityRemoved = "YES"
    codes = "+".join(v for v, _ in opts.codes())
    ds.DeidentificationMethod = f"toothmcl {EDITION_SHORT} {codes}"
    ds.DeidentificationMethodCodeSequence = Sequence([_code_item(v, m) for v, m in opts.codes()])
    if opts.retain_longitudinal_modified_dates:
        ds.LongitudinalTemporalInformationModified = "MODIFIED"
    meta = getattr(ds, "file_meta", None)
    if isinstance(meta, FileMetaDataset):
        for tag in _META_REMOVE:
            if tag in meta:
                del meta[tag]
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds
