"""De-identify a DICOM Part 10 file at the byte level: parse the element stream, re-encode only what changes.

The decision for every element is :class:`toothmcl_data.deid.dicom.Policy`, the same object the pydicom walker
(:func:`~toothmcl_data.deid.dicom.deidentify_dataset`) asks; this module only reads and writes bytes:

- parse (:mod:`toothmcl_data.deid.part10parse`): each element's (tag, VR, header offset, value range, end),
  sequences recursively, encapsulated Pixel Data skipped fragment by fragment (copied, never decoded).
- emit: consecutive kept elements are copied as one byte range; a changed element is re-encoded (values
  joined by ``\\``, text in the dataset's character set, padded to even length with a space, ``\\0`` for UI);
  a sequence the profile descends into is written with undefined length and undefined-length items (as
  pydicom writes it); retired group lengths (gggg,0000) outside the file meta are dropped, as pydicom's writer
  does; the attributes of :func:`~toothmcl_data.deid.dicom.added_attributes` are inserted in tag order.
- file meta: rewritten in tag order with (0002,0000) recomputed, Media Storage SOP Instance UID = the new SOP
  Instance UID and the sender attributes (:data:`~toothmcl_data.deid.dicom.META_REMOVE`) removed; the
  128-byte preamble is written as zeros.

The result, read by pydicom, equals the pydicom path's output element for element (tests/deid/test_part10.py).
Anything this parser does not handle exactly as pydicom does (deflated or big-endian transfer syntax, a
missing or unusual file meta, code extensions in Specific Character Set, elements out of tag order, malformed
lengths, a UN element whose value must be rewritten …) raises
:class:`~toothmcl_data.deid.part10parse.UnsupportedError`, and the caller falls back to the pydicom path
(:func:`toothmcl_data.deid.files.deidentify_dicom_bytes`).
"""

from __future__ import annotations

import functools
import struct

from pydicom.charset import convert_encodings, default_encoding, encode_string
from pydicom.uid import UID

from toothmcl_data.deid.dicom import (
    CHARSET_VRS,
    DESCEND,
    DROP,
    IDENTITY_TAGS,
    KEEP,
    META_REMOVE,
    DeidContext,
    Edit,
    Policy,
    added_attributes,
    decode_values,
    identity_from,
)
from toothmcl_data.deid.part10parse import (
    LONG_VRS,
    PIXEL_DATA,
    UL,
    UNDEFINED,
    VRS,
    Element,
    UnsupportedError,
    parse_dataset,
    parse_meta,
    text_value,
)

__all__ = ["deidentify_part10"]  # raises part10parse.UnsupportedError

_IMPLICIT_LE = "1.2.840.10008.1.2"
_EXPLICIT_LE = "1.2.840.10008.1.2.1"
_NUMBER = {"US": "<H", "SS": "<h", "UL": "<L", "SL": "<l", "FL": "<f", "FD": "<d", "UV": "<Q", "SV": "<q"}
_ITEM_OPEN = struct.pack("<HHL", 0xFFFE, 0xE000, UNDEFINED)
_ITEM_CLOSE = struct.pack("<HHL", 0xFFFE, 0xE00D, 0)
_SEQ_CLOSE = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)


def _header(tag: int, vr: str, length: int, implicit: bool) -> bytes:
    if implicit:
        return struct.pack("<HHL", tag >> 16, tag & 0xFFFF, length)
    if vr in LONG_VRS:
        return struct.pack("<HH2sHL", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    if len(vr) != 2 or length > 0xFFFF:
        raise UnsupportedError(f"cannot write {vr} of {length} bytes with a 2-byte length")
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _encode(vr: str, value: Edit, encodings: list[str]) -> bytes:
    """A new value as pydicom writes it: values joined by backslashes, even length (UI padded with NUL)."""
    if value is None:
        return b""
    if isinstance(value, int):
        if vr not in _NUMBER:
            raise UnsupportedError(f"no number format for VR {vr}")
        return struct.pack(_NUMBER[vr], value)
    if not isinstance(value, list):
        raise UnsupportedError(f"unexpected edit {value!r}")
    text = "\\".join(value)
    data = encode_string(text, encodings) if vr in CHARSET_VRS else text.encode(default_encoding)
    if len(data) & 1:
        data += b"\0" if vr == "UI" else b" "
    return data


def _element(tag: int, vr: str, value: Edit, encodings: list[str], implicit: bool) -> bytes:
    data = _encode(vr, value, encodings)
    return _header(tag, vr, len(data), implicit) + data


def _values(buf: bytes, start: int, end: int, vr: str, encodings: list[str]) -> list[str]:
    if vr == "UN":
        raise UnsupportedError("a UN element's value must be rewritten (pydicom would decode it by its dictionary VR)")
    return decode_values(buf[start:end], vr, encodings)


@functools.lru_cache(maxsize=64)
def _added(ctx: DeidContext, implicit: bool, encodings: tuple[str, ...]) -> tuple[tuple[int, str, bytes], ...]:
    """:func:`added_attributes` encoded: (tag, VR, element bytes) in tag order."""
    enc = list(encodings)
    out = []
    for tag, vr, value in added_attributes(ctx):
        if isinstance(value, tuple):  # the code sequence: (code value, meaning) per item
            parts = [_header(tag, vr, UNDEFINED, implicit)]
            for code, meaning in value:
                parts += [
                    _ITEM_OPEN,
                    _element(0x00080100, "SH", [code], enc, implicit),
                    _element(0x00080102, "SH", ["DCM"], enc, implicit),
                    _element(0x00080104, "LO", [meaning], enc, implicit),
                    _ITEM_CLOSE,
                ]
            out.append((tag, vr, b"".join([*parts, _SEQ_CLOSE])))
        else:
            out.append((tag, vr, _element(tag, vr, [value], enc, implicit)))
    return tuple(out)


class _Writer:
    """Emits one dataset's output pieces into ``out``: kept runs of input bytes and re-encoded elements."""

    def __init__(self, buf: bytes, implicit: bool, policy: Policy, encodings: list[str]) -> None:
        self.buf = buf
        self.view = memoryview(buf)
        self.implicit = implicit
        self.policy = policy
        self.encodings = encodings
        self.out: list[bytes | memoryview] = []
        self.edits: dict[int, Edit] = {}

    def dataset(self, elements: list[Element], added: tuple[tuple[int, str, bytes], ...] | None = None) -> None:
        """Emit ``elements`` (one dataset level) with ``added`` elements replacing or inserted in tag order.

        added: given for the top level only (None for a sequence item); its edits are recorded in ``edits``.
        """
        buf, view, out, policy, encodings = self.buf, self.view, self.out, self.policy, self.encodings
        top = added is not None
        pending = list(added or ())
        run_start = run_end = -1

        def creator(tag: int) -> str | None:
            for t, vr, _, vstart, vend, _, _ in elements:
                if t == tag:
                    return "\\".join(decode_values(buf[vstart:vend], vr, encodings))
            return None

        for tag, vr, start, vstart, vend, end, items in elements:
            replaced = False
            while pending and pending[0][0] <= tag:
                new_tag, new_vr, data = pending.pop(0)
                if new_tag == tag:
                    if vr != new_vr and not self.implicit:
                        raise UnsupportedError(f"({tag >> 16:04X},{tag & 0xFFFF:04X}) is encoded as {vr}, not {new_vr}")
                    replaced = True
                if run_end > 0:
                    out.append(view[run_start:run_end])
                    run_start = run_end = -1
                out.append(data)
            if replaced or (tag & 0xFFFF == 0 and tag >> 16 > 6):  # retired group length: pydicom drops it
                continue
            if tag == 0x00080005 and not top:
                raise UnsupportedError("a sequence item sets its own Specific Character Set")
            action = policy.action(tag, vr, creator)
            edit = policy.edit(
                tag,
                vr,
                action,
                view[vstart:vend],
                lambda: _values(buf, vstart, vend, vr, encodings),  # noqa: B023 (called at once)
            )
            if top:
                self.edits[tag] = edit
            if edit == KEEP:
                if start != run_end:
                    if run_end > 0:
                        out.append(view[run_start:run_end])
                    run_start = start
                run_end = end
                continue
            if edit == DROP:
                continue
            if run_end > 0:
                out.append(view[run_start:run_end])
                run_start = run_end = -1
            if edit == DESCEND:
                out.append(_header(tag, "SQ", UNDEFINED, self.implicit))
                for item in items or ():
                    out.append(_ITEM_OPEN)
                    self.dataset(item)
                    out.append(_ITEM_CLOSE)
                out.append(_SEQ_CLOSE)
            else:
                out.append(_element(tag, vr, edit, encodings, self.implicit))
        if run_end > 0:
            out.append(view[run_start:run_end])
        out.extend(data for _, _, data in pending)


def deidentify_part10(data: bytes, ctx: DeidContext) -> tuple[str, bytes]:
    """De-identify one Part 10 file's bytes; returns (new SOPInstanceUID, output bytes) or raises UnsupportedError."""
    try:
        return _deidentify(data, ctx)
    except struct.error as err:
        raise UnsupportedError(f"truncated: {err}") from err


def _deidentify(buf: bytes, ctx: DeidContext) -> tuple[str, bytes]:
    meta, body = parse_meta(buf)
    ts = meta.get(0x00020010)
    syntax = UID(text_value(buf, ts[1], ts[2]) if ts else "")
    if syntax == _IMPLICIT_LE:
        implicit = True
        if buf[body + 4 : body + 6] in VRS:
            raise UnsupportedError("Implicit VR transfer syntax but the dataset looks explicit")
    elif syntax == _EXPLICIT_LE or (
        syntax.is_transfer_syntax and syntax.is_compressed and syntax.is_little_endian and not syntax.is_deflated
    ):
        implicit = False
    else:
        raise UnsupportedError(f"transfer syntax {syntax!r}")
    for tag in (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012):
        if tag not in meta or meta[tag][1] == meta[tag][2]:
            raise UnsupportedError(f"file meta lacks ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    if 0x00020013 not in meta:
        raise UnsupportedError("file meta lacks Implementation Version Name")

    elements, _ = parse_dataset(buf, body, len(buf), implicit, False)
    top = {e[0]: e for e in elements if e[0] in IDENTITY_TAGS or e[0] in (0x00080005, 0x00080016, 0x00080018)}
    if elements and elements[0][0] >> 16 in (0, 2):
        raise UnsupportedError("command or file meta elements inside the dataset")
    pixel = next((e for e in reversed(elements) if e[0] == PIXEL_DATA), None)
    undefined = pixel is not None and pixel[5] != pixel[4]  # an undefined length ends with a delimiter
    if pixel is not None and undefined != syntax.is_compressed:  # pydicom sets the length by the transfer syntax
        raise UnsupportedError("Pixel Data length does not match the transfer syntax (pydicom would rewrite it)")
    charset = top.get(0x00080005)
    names = decode_values(buf[charset[3] : charset[4]], "CS", []) if charset else []
    if len(names) > 1:
        raise UnsupportedError("Specific Character Set with code extensions")
    encodings = convert_encodings(names or default_encoding)

    def values(tag: int) -> tuple[str, list[str]] | None:
        e = top.get(tag)
        return None if e is None else (e[1], _values(buf, e[3], e[4], e[1], encodings))

    sop_class = top.get(0x00080016)
    class_uid = text_value(buf, sop_class[3], sop_class[4]) if sop_class else ""
    if class_uid and class_uid != text_value(buf, *meta[0x00020002][1:]):
        raise UnsupportedError("Media Storage SOP Class UID differs from SOP Class UID")

    writer = _Writer(buf, implicit, Policy(ctx, identity_from(values, ctx.options)), encodings)
    writer.dataset(elements, _added(ctx, implicit, tuple(encodings)))
    sop_edit, sop_element = writer.edits.get(0x00080018), top.get(0x00080018)
    if isinstance(sop_edit, list):
        sop = "\\".join(sop_edit)
    else:  # kept as it was, or emptied
        sop = text_value(buf, sop_element[3], sop_element[4]) if sop_edit == KEEP and sop_element else ""

    view = memoryview(buf)
    parts: list[bytes | memoryview] = []
    for tag in sorted(meta):
        if tag == 0x00020000 or tag in META_REMOVE:
            continue
        start, _, end = meta[tag]
        parts.append(_element(tag, "UI", [sop], [], False) if tag == 0x00020003 and sop else view[start:end])
    size = sum(map(len, parts))
    head = [bytes(128), b"DICM", _header(0x00020000, "UL", 4, False), UL.pack(size)]
    return sop, b"".join([*head, *parts, *writer.out])
