"""The PS3.15 Basic Application Level Confidentiality Profile: the per-element decision, and its pydicom walker.

Every attribute's action comes from :func:`toothmcl_data.deid.table.load_table` (Table E.1-1) adjusted by
the selected :class:`~toothmcl_data.deid.table.DeidOptions`; the walker descends into every sequence item
(so a Patient's Name inside a Referenced Patient Sequence item, or a UID in Referenced Image Sequence, is
treated like a top-level one). Attributes the table does not list are kept; private attributes are removed
unless Retain Safe Private is selected and (creator, element) is safelisted.

Beyond the table, a sweep cuts this dataset's own identifying values (:func:`identity_values`: names, IDs,
birth date, accession, institution …) out of any text the profile keeps, e.g. a Code Meaning or a free-text
attribute Table E.1-1 does not list; it never removes an attribute, it only edits text (each value of a
multi-valued element separately).

The decision is written once, in :class:`Policy`: ``action`` (table + options, or the private-tag rule) and
``edit`` (keep, drop, descend into the items, or the new value: pseudonym, dummy, remapped UID, shifted date,
cleaned text, empty). Two encoders apply it: :func:`deidentify_dataset` on pydicom objects (used for datasets
built in memory and, through :func:`toothmcl_data.deid.files.deidentify_with_pydicom`, for files the byte
level does not handle) and :mod:`toothmcl_data.deid.part10`, which edits a file's encoded bytes directly
(``bench/deid.py``: a few times faster than a plain pydicom read + write). Both decode an element's values
with :func:`decode_values` and add :func:`added_attributes`, so their outputs read back element for element
equal (tests/deid/test_part10.py). Elements the profile keeps are never decoded.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.charset import TEXT_VR_DELIMS, decode_bytes, default_encoding
from pydicom.datadict import dictionary_has_tag, dictionary_VR, repeater_has_tag
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
CHARSET_VRS = frozenset({"LO", "LT", "PN", "SH", "ST", "UC", "UT"})
"""VRs whose text is encoded in the dataset's Specific Character Set (every other string VR is ASCII)."""
_SINGLE_VALUED = frozenset({"ST", "LT", "UT", "UR"})
META_REMOVE = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
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


@functools.cache
def _dictionary_vr(tag: int) -> str:
    try:
        return str(dictionary_VR(tag))
    except KeyError:  # handled: a tag unknown to the data dictionary has VR UN (PS3.5 6.2.2)
        return "UN"


def element_vr(tag: int, vr: str | None) -> str:
    """The element's VR: as encoded (explicit VR), else the dictionary's (implicit VR); ``"UN"`` if unknown."""
    return str(vr) if vr else _dictionary_vr(tag)


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


def decode_values(raw: bytes, vr: str, encodings: list[str]) -> list[str]:
    """The values of an encoded element (text VRs in the dataset's character set), padding stripped.

    ST/LT/UT/UR hold one value (a backslash is text there); every other VR splits at backslashes.
    """
    if vr in CHARSET_VRS:
        text = decode_bytes(raw, encodings or [default_encoding], TEXT_VR_DELIMS)
    else:
        text = raw.decode("latin-1")
    text = text.strip("\x00 ")
    if not text:
        return []
    return [text] if vr in _SINGLE_VALUED else [v.strip("\x00 ") for v in text.split("\\")]


def _strings(ds: Dataset, tag: int) -> list[str]:
    """The values of one element of ``ds``; a raw (undecoded) element is decoded by :func:`decode_values`."""
    raw = ds.get_item(tag)
    value = raw.value if raw is not None else None
    if value is None:
        return []
    if isinstance(value, bytes):
        charset = ds._character_set  # a codec name (inherited default) or a list of them
        return decode_values(value, element_vr(tag, raw.VR), [charset] if isinstance(charset, str) else charset)
    if isinstance(value, list | tuple | MultiValue):
        return [str(v) for v in value]
    return [str(value)] if str(value) else []


def _set(ds: Dataset, tag: int, vr: str, values: Edit) -> None:
    """Replace an element by a new one with ``values`` (an :data:`Edit` new value; no decoding of the old one)."""
    value = values
    if isinstance(values, list):
        value = values[0] if len(values) == 1 else (values or None)
    ds[tag] = DataElement(tag, vr, value)


def _private_keep(tag: int, creator: Callable[[int], str | None], opts: DeidOptions) -> bool:
    """Retain Safe Private: keep a private element whose (creator, element byte) is safelisted.

    creator: the value of a private creator element (gggg,00xx) of the same dataset, None when absent.
    """
    if not opts.retain_safe_private or not opts.safe_private:
        return False
    group, element = tag >> 16, tag & 0xFFFF
    if element < 0x1000:
        return any(c == creator(tag) for c, _ in opts.safe_private) if 0x10 <= element <= 0xFF else False
    name = creator((group << 16) | (element >> 8))
    return name is not None and (name, element & 0xFF) in set(opts.safe_private)


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
IDENTITY_TAGS = frozenset(_IDENTITY_TAGS)
_SWEEP_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "PN", "CS"})


def identity_from(values: Callable[[int], tuple[str, list[str]] | None], options: DeidOptions) -> tuple[str, ...]:
    """:func:`identity_values` over any encoding: ``values(tag)`` gives (VR, values) of a top-level element."""
    found: set[str] = set()
    for tag in _IDENTITY_TAGS:
        if options.retain_device_identity and tag in DEVICE_IDENTITY:
            continue
        got = values(tag)
        if got is None:
            continue
        vr, texts = got
        for text in texts:
            pieces = [text, *re.split(r"[\^=]", text)] if vr == "PN" else [text]
            found.update(p.strip() for p in pieces if len(p.strip()) >= 3)
    return tuple(sorted(found, key=len, reverse=True))


def identity_values(ds: Dataset, options: DeidOptions = DeidOptions()) -> tuple[str, ...]:
    """This dataset's identifying strings (≥ 3 characters; person names also split at ``^``), longest first.

    Attributes an option retains (device identity) are not counted as identifying.
    """

    def values(tag: int) -> tuple[str, list[str]] | None:
        if tag not in ds:
            return None
        return element_vr(tag, ds.get_item(tag).VR), _strings(ds, tag)

    return identity_from(values, options)


def _matches(value: object, pattern: re.Pattern[bytes] | None) -> bool:
    if pattern is None or value is None:
        return False
    data = value if isinstance(value, bytes | memoryview) else str(value).encode("utf-8", "replace")
    return bool(data) and pattern.search(data) is not None


@functools.lru_cache(maxsize=256)
def _phi_pattern(phi: tuple[str, ...]) -> re.Pattern[bytes] | None:
    """One case-insensitive regex over the UTF-8 and Latin-1 forms of every identifying string."""
    if not phi:
        return None
    forms = {v.encode(enc, "replace") for v in phi for enc in ("utf-8", "latin-1")}
    return re.compile(b"|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)), re.IGNORECASE)


@functools.cache
def _decisions(opts: DeidOptions) -> dict[tuple[int, str], Action | str | None]:
    return {}  # memo of (tag, VR) → action under these options, filled by Policy.action


KEEP = "keep"
DROP = "drop"
DESCEND = "descend"
Edit = str | list[str] | int | None
"""What :meth:`Policy.edit` says to do with an element: :data:`KEEP` it as encoded, :data:`DROP` it, :data:`DESCEND`
into its sequence items, or replace its value by a new one: the values (list of str), a number (0) or None (empty)."""


class Policy:
    """The per-element decision of the profile for one dataset, shared by both encoders.

    :func:`deidentify_dataset` (pydicom objects) and :mod:`toothmcl_data.deid.part10` (the encoded bytes) ask it
    the same two questions for every element, so the two can only differ in how they read and write values.
    phi: :func:`identity_values` of the dataset (its top level), cut out of kept text.
    """

    def __init__(self, ctx: DeidContext, phi: tuple[str, ...]) -> None:
        self.ctx = ctx
        self.phi = phi
        self.pattern = _phi_pattern(phi)
        self._memo = _decisions(ctx.options)
        self._table = load_table()

    def action(self, tag: int, vr: str, creator: Callable[[int], str | None]) -> Action | str | None:
        """The action for the element: Table E.1-1 after the options (``"shift"`` for modified dates), or for a
        private one ``"X"`` unless Retain Safe Private keeps it (None). creator: see :func:`_private_keep`."""
        if tag >> 16 & 1:
            return None if _private_keep(tag, creator, self.ctx.options) else "X"
        key = (tag, vr)
        if key in self._memo:
            return self._memo[key]
        listed = self._table.action(tag)
        if listed is None and tag & 0xFFFF and not (dictionary_has_tag(tag) or repeater_has_tag(tag)):
            listed = "X"  # a public tag no DICOM dictionary knows (a damaged or made-up tag): removed, as CTP does
        action = self._memo[key] = _resolve(tag, vr, listed, self.ctx.options)
        return action

    def edit(
        self, tag: int, vr: str, action: Action | str | None, raw: object, values: Callable[[], list[str]]
    ) -> Edit:
        """What to do with one element. raw: its encoded value (bytes) or value object, searched for identifying
        text; values: its decoded values, called only when the new value depends on them."""
        if action == "X":
            return DROP
        if action == "Z":
            return None
        if vr == "SQ":  # kept, D, U or C on a sequence: keep the items, apply the profile inside them
            return KEEP if tag >> 16 & 1 else DESCEND
        if action is None or action == "K":
            if vr in _SWEEP_VRS and _matches(raw, self.pattern):
                return self._clean(values())  # identifying text the table does not list (beyond the profile)
            return KEEP
        ctx = self.ctx
        if action == "shift":
            return [shift_date(v, ctx.day_shift) for v in values()]
        if action == "U":
            return [remap_uid(ctx.key, v) for v in values()] if vr == "UI" else None
        if action == "C":
            return self._clean(values())
        if tag in (PATIENT_ID_TAG, PATIENT_NAME_TAG):
            return [ctx.pseudonym]
        if vr == "UI":
            return [remap_uid(ctx.key, v) for v in values()]
        if vr in _DUMMY:
            return [_DUMMY[vr]]
        if vr in _NUMERIC:
            return 0
        if vr in _TEXT:
            return ["ANONYMIZED"]
        return None

    def _clean(self, values: list[str]) -> list[str]:
        out = []
        for text in values:
            for value in self.phi:
                text = re.sub(re.escape(value), "", text, flags=re.IGNORECASE)
            out.append(" ".join(text.split()))
        return out


def _walk(ds: Dataset, policy: Policy) -> None:
    """Apply the profile to every element of ``ds`` and its sequence items (pydicom objects)."""

    def creator(tag: int) -> str | None:
        return "\\".join(_strings(ds, tag)) if tag in ds else None

    for elem in list(ds.elements()):
        tag = int(elem.tag)
        vr = element_vr(tag, elem.VR)
        edit = policy.edit(tag, vr, policy.action(tag, vr, creator), elem.value, lambda: _strings(ds, tag))  # noqa: B023
        if edit == KEEP:
            continue
        if edit == DROP:
            del ds[tag]
        elif edit == DESCEND:
            for item in ds[tag].value:
                _walk(item, policy)
        else:
            _set(ds, tag, vr, edit)


def added_attributes(ctx: DeidContext) -> list[tuple[int, str, str | tuple[tuple[str, str], ...]]]:
    """The attributes every de-identified dataset gets, as (tag, VR, value) in tag order.

    Patient's Name and ID = the pseudonym, PatientIdentityRemoved = YES, DeidentificationMethod (profile,
    table edition, option codes), DeidentificationMethodCodeSequence (CID 7050; value: (code value, meaning)
    per item, scheme DCM) and, with modified dates, LongitudinalTemporalInformationModified = MODIFIED.
    """
    codes = tuple(ctx.options.codes())
    out: list[tuple[int, str, str | tuple[tuple[str, str], ...]]] = [
        (PATIENT_NAME_TAG, "PN", ctx.pseudonym),
        (PATIENT_ID_TAG, "LO", ctx.pseudonym),
        (0x00120062, "CS", "YES"),
        (0x00120063, "LO", f"toothmcl {EDITION_SHORT} {'+'.join(v for v, _ in codes)}"),
        (0x00120064, "SQ", codes),
    ]
    if ctx.options.retain_longitudinal_modified_dates:
        out.append((0x00280303, "CS", "MODIFIED"))
    return out


def _code_item(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def deidentify_dataset(ds: Dataset, ctx: DeidContext) -> Dataset:
    """De-identify ``ds`` in place (and its file meta) and return it.

    Every element goes through :class:`Policy`; then :func:`added_attributes` are set (an existing element
    keeps its VR and gets the new value); the file meta loses :data:`META_REMOVE` and gets
    MediaStorageSOPInstanceUID = the new SOPInstanceUID.
    """
    _walk(ds, Policy(ctx, identity_values(ds, ctx.options)))
    for tag, vr, value in added_attributes(ctx):
        new = Sequence([_code_item(v, m) for v, m in value]) if isinstance(value, tuple) else value
        if tag in ds:
            ds[tag].value = new
        else:
            ds[tag] = DataElement(tag, vr, new)
    meta = getattr(ds, "file_meta", None)
    if isinstance(meta, FileMetaDataset):
        for tag in META_REMOVE:
            if tag in meta:
                del meta[tag]
        if "SOPInstanceUID" in ds:
            meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds
