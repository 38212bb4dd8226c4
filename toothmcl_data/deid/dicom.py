"""Apply the PS3.15 Basic Application Level Confidentiality Profile to a pydicom dataset, recursively.

Every attribute's action comes from :func:`toothmcl_data.deid.table.load_table` (Table E.1-1) adjusted by
the selected :class:`~toothmcl_data.deid.table.DeidOptions`; the walker descends into every sequence item
(so a Patient's Name inside a Referenced Patient Sequence item, or a UID in Referenced Image Sequence, is
treated like a top-level one). Attributes the table does not list are kept; private attributes are removed
unless Retain Safe Private is selected and (creator, element) is safelisted.

Beyond the table, a sweep cuts this dataset's own identifying values (:func:`identity_values`: names, IDs,
birth date, accession, institution …) out of any text the profile keeps, e.g. a Code Meaning or a free-text
attribute Table E.1-1 does not list; it never removes an attribute, it only edits text.

Elements the profile keeps are never decoded (pydicom's raw elements are written back as read), which keeps
the cost close to a plain read + write (``bench/deid.py``).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
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
_BIRTH = frozenset({0x00100030, 0x00100032})
"""Patient's Birth Date / Time: removed as the profile says even with modified dates (they identify)."""
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
    options: DeidOptions = field(default_factory=DeidOptions)


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
    if opts.retain_longitudinal_modified_dates and action in ("X", "Z", "D") and tag not in _BIRTH:
        if vr in ("DA", "DT"):
            return "shift"
        if vr == "TM":
            return "K"
    if opts.clean_descriptors and action in ("X", "Z", "D") and is_descriptor(tag):
        return "C"
    return action


def _strings(ds: Dataset, tag: int) -> list[str]:
    """The values of a text element without decoding the element (raw bytes split at backslashes)."""
    raw = ds.get_item(tag)
    value = raw.value if raw is not None else None
    if value is None:
        return []
    if isinstance(value, bytes):
        text = value.decode("latin-1").strip("\x00 ")
        return [v.strip("\x00 ") for v in text.split("\\")] if text else []
    if isinstance(value, list | tuple | MultiValue):
        return [str(v) for v in value]
    return [str(value)] if str(value) else []


def _set(ds: Dataset, tag: int, vr: str, values: list[str] | str | int | None) -> None:
    """Replace an element by a new one (no decoding of the old value)."""
    if isinstance(values, list):
        values = values[0] if len(values) == 1 else (values or None)
    ds[tag] = DataElement(tag, vr, values)


def _dummy(ds: Dataset, tag: int, vr: str, ctx: DeidContext) -> None:
    if tag in (PATIENT_ID_TAG, PATIENT_NAME_TAG):
        _set(ds, tag, vr, ctx.pseudonym)
    elif vr == "UI":
        _set(ds, tag, vr, [remap_uid(ctx.key, v) for v in _strings(ds, tag)])
    elif vr in _DUMMY:
        _set(ds, tag, vr, _DUMMY[vr])
    elif vr in _NUMERIC:
        _set(ds, tag, vr, 0)
    elif vr in _TEXT:
        _set(ds, tag, vr, "ANONYMIZED")
    else:
        _set(ds, tag, vr, None)


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


_IDENTITY_TAGS = (
    0x00100010,  # Patient's Name
    0x00100020,  # Patient ID
    0x00101000,  # Other Patient IDs
    0x00101001,  # Other Patient Names
    0x00101005,  # Patient's Birth Name
    0x00101060,  # Patient's Mother's Birth Name
    0x00100030,  # Patient's Birth Date
    0x00101040,  # Patient's Address
    0x00102154,  # Patient's Telephone Numbers
    0x00080050,  # Accession Number
    0x00200010,  # Study ID
    0x00080080,  # Institution Name
    0x00080081,  # Institution Address
    0x00080090,  # Referring Physician's Name
    0x00081050,  # Performing Physician's Name
    0x00081060,  # Name of Physician(s) Reading Study
    0x00081070,  # Operators' Name
    0x00081010,  # Station Name
    0x00181000,  # Device Serial Number
)
"""Attributes whose values are searched for, and cut out of, any text the profile keeps (see identity_values)."""
_SWEEP_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN", "CS"})


def identity_values(ds: Dataset, options: DeidOptions = DeidOptions()) -> tuple[str, ...]:
    """This dataset's identifying strings (≥ 3 characters; person names also split at ``^``), longest first.

    Attributes an option retains (device identity) are not counted as identifying.
    """
    found: set[str] = set()
    for tag in _IDENTITY_TAGS:
        if options.retain_device_identity and tag in DEVICE_IDENTITY:
            continue
        if tag not in ds:
            continue
        is_name = _vr(ds, tag) == "PN"
        for text in _strings(ds, tag):
            pieces = [text, *re.split(r"[\^=]", text)] if is_name else [text]
            found.update(p.strip() for p in pieces if len(p.strip()) >= 3)
    return tuple(sorted(found, key=len, reverse=True))


def _matches(value: object, pattern: re.Pattern[bytes] | None) -> bool:
    if pattern is None or value is None:
        return False
    data = value if isinstance(value, bytes) else str(value).encode("utf-8", "replace")
    return bool(data) and pattern.search(data) is not None


@functools.cache
def _decide(tag: int, vr: str, opts: DeidOptions) -> Action | str | None:
    return _resolve(tag, vr, load_table().action(tag), opts)


def _walk(ds: Dataset, ctx: DeidContext, phi: tuple[str, ...], pattern: re.Pattern[bytes] | None) -> None:
    """Apply the profile to every element of ``ds`` and its sequence items; elements kept are swept."""
    opts = ctx.options
    for elem in list(ds.elements()):
        tag = elem.tag
        t = int(tag)
        if tag.is_private:
            if not _private_keep(ds, t, opts):
                del ds[t]
            elif _matches(elem.value, pattern) and elem.VR in _SWEEP_VRS:
                _clean(ds[t], phi)
            continue
        vr = str(elem.VR) if elem.VR else _vr(ds, t)
        action = _decide(t, vr, opts)
        if action == "X":
            del ds[t]
        elif action == "Z":
            _set(ds, t, vr, [] if vr == "SQ" else None)
        elif vr == "SQ":  # kept, D, U or C on a sequence: keep the items, apply the profile inside them
            for item in ds[t].value:
                _walk(item, ctx, phi, pattern)
        elif action is None or action == "K":
            if vr in _SWEEP_VRS and _matches(elem.value, pattern):
                _clean(ds[t], phi)  # identifying text the table does not list (beyond the profile)
        elif action == "shift":
            _set(ds, t, vr, [shift_date(v, ctx.day_shift) for v in _strings(ds, t)])
        elif action == "U":
            _set(ds, t, vr, [remap_uid(ctx.key, v) for v in _strings(ds, t)] if vr == "UI" else None)
        elif action == "C":
            _clean(ds[t], phi)
        else:
            _dummy(ds, t, vr, ctx)


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
    phi = identity_values(ds, opts)
    pattern = None
    if phi:
        forms = {v.encode(enc, "replace") for v in phi for enc in ("utf-8", "latin-1")}
        pattern = re.compile(b"|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.IGNORECASE)
    _walk(ds, ctx, phi, pattern)
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
