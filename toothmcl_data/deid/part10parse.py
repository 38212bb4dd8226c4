"""Parse a DICOM Part 10 file's element stream with ``struct`` over its bytes (nothing decoded, nothing copied).

Each element comes out as its (tag, VR, header offset, value range, end) for Explicit VR Little Endian, Implicit
VR Little Endian and the encapsulated (compressed) transfer syntaxes; sequences of defined or undefined length
and their items are parsed recursively; encapsulated Pixel Data is skipped fragment by fragment up to its
sequence delimiter. Anything not parsed exactly as pydicom would raises :class:`UnsupportedError`. The byte-level
de-identification that emits the new file from these offsets is :mod:`toothmcl_data.deid.part10`.
"""

from __future__ import annotations

import struct

from pydicom.valuerep import VR

from toothmcl_data.deid.dicom import element_vr

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
UNDEFINED = 0xFFFFFFFF
VRS = {v.value.encode(): str(v.value) for v in VR if len(v.value) == 2}
"""Explicit VR bytes → VR (the ambiguous dictionary VRs such as ``US or SS`` are never encoded)."""
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
"""Explicit VRs with a 2-byte reserved field and a 4-byte length."""
TAG = struct.Struct("<HH")
EXPLICIT = struct.Struct("<HH2sH")
UL = struct.Struct("<L")

Element = tuple[int, str, int, int, int, int, "list[list[Element]] | None"]
"""(tag, VR, header offset, value start, value end, element end, sequence items or None).

VR: as encoded (explicit VR) or the dictionary's (implicit VR; ``"UN"`` for private and unknown tags, ``"SQ"``
for a private undefined-length element made of items). Offsets index the file's bytes."""


class UnsupportedError(Exception):
    """The file needs the pydicom path; the message says why."""


def parse_dataset(buf: bytes, pos: int, end: int, implicit: bool, in_item: bool) -> tuple[list[Element], int]:
    """The elements from ``pos`` to ``end`` (or to the item delimiter when ``in_item``); returns the end offset."""
    out: list[Element] = []
    last = -1
    while pos < end:
        if pos + 8 > end:
            raise UnsupportedError(f"truncated element header at byte {pos}")
        group, number = TAG.unpack_from(buf, pos)
        tag = group << 16 | number
        if group == 0xFFFE:
            if in_item and tag == ITEM_END:
                return out, pos + 8
            raise UnsupportedError(f"unexpected delimiter ({group:04X},{number:04X}) at byte {pos}")
        if tag <= last:
            raise UnsupportedError(f"element ({group:04X},{number:04X}) out of tag order")
        last = tag
        if implicit:
            (length,) = UL.unpack_from(buf, pos + 4)
            vstart = pos + 8
            vr = element_vr(tag, None)
        else:
            vr_or_none = VRS.get(buf[pos + 4 : pos + 6])
            if vr_or_none is None:
                raise UnsupportedError(f"unknown VR {buf[pos + 4 : pos + 6]!r} at byte {pos}")
            vr = vr_or_none
            if vr in LONG_VRS:
                (length,) = UL.unpack_from(buf, pos + 8)
                vstart = pos + 12
            else:
                length = EXPLICIT.unpack_from(buf, pos)[3]
                vstart = pos + 8
        items = None
        if length == UNDEFINED:
            if implicit and vr == "UN" and buf[vstart : vstart + 4] == b"\xfe\xff\x00\xe0":
                vr = "SQ"  # a private sequence: pydicom recognises it by its first item
            if vr == "SQ":
                items, after = parse_sequence(buf, vstart, end, None, implicit)
            elif tag == PIXEL_DATA:
                after = skip_fragments(buf, vstart, end)
            else:
                raise UnsupportedError(f"undefined length on ({group:04X},{number:04X}) {vr}")
            vend = after - 8
        else:
            vend = after = vstart + length
            if after > end:
                raise UnsupportedError(f"({group:04X},{number:04X}) runs past the end of its dataset")
            if vr == "SQ":
                items, _ = parse_sequence(buf, vstart, vend, vend, implicit)
        out.append((tag, vr, pos, vstart, vend, after, items))
        pos = after
    if in_item:
        raise UnsupportedError("item without an item delimiter")
    return out, pos


def parse_sequence(buf: bytes, pos: int, end: int, stop: int | None, implicit: bool) -> tuple[list[list[Element]], int]:
    """The items of a sequence value: up to ``stop`` (defined length) or its sequence delimiter (``stop`` None)."""
    items: list[list[Element]] = []
    while stop is None or pos < stop:
        if pos + 8 > end:
            raise UnsupportedError(f"truncated sequence at byte {pos}")
        group, number = TAG.unpack_from(buf, pos)
        (length,) = UL.unpack_from(buf, pos + 4)
        tag = group << 16 | number
        if tag == SEQ_END and stop is None:
            return items, pos + 8
        if tag != ITEM:
            raise UnsupportedError(f"({group:04X},{number:04X}) where a sequence item was expected")
        if length == UNDEFINED:
            elements, pos = parse_dataset(buf, pos + 8, end, implicit, True)
        else:
            item_end = pos + 8 + length
            if item_end > end:
                raise UnsupportedError("sequence item runs past the end of its sequence")
            elements, _ = parse_dataset(buf, pos + 8, item_end, implicit, False)
            pos = item_end
        items.append(elements)
    if pos != stop:
        raise UnsupportedError("sequence items overrun the sequence length")
    return items, pos


def skip_fragments(buf: bytes, pos: int, end: int) -> int:
    """Skip encapsulated Pixel Data (basic offset table and fragments); returns the offset after its delimiter."""
    while True:
        if pos + 8 > end:
            raise UnsupportedError("encapsulated Pixel Data without a sequence delimiter")
        group, number = TAG.unpack_from(buf, pos)
        (length,) = UL.unpack_from(buf, pos + 4)
        tag = group << 16 | number
        if tag == SEQ_END:
            return pos + 8
        if tag != ITEM or length == UNDEFINED:
            raise UnsupportedError("malformed encapsulated Pixel Data")
        pos += 8 + length


def parse_meta(buf: bytes) -> tuple[dict[int, tuple[int, int, int]], int]:
    """File meta elements: tag → (header offset, value start, end); and the offset where the dataset starts."""
    if len(buf) < 132 or buf[128:132] != b"DICM":
        raise UnsupportedError("no DICM prefix")
    meta: dict[int, tuple[int, int, int]] = {}
    pos = 132
    while pos + 8 <= len(buf):
        group, number, vr_bytes, length = EXPLICIT.unpack_from(buf, pos)
        if group != 2:
            break
        vr = VRS.get(vr_bytes)
        if vr is None:
            raise UnsupportedError("file meta is not explicit VR")
        vstart = pos + 8
        if vr in LONG_VRS:
            (length,) = UL.unpack_from(buf, pos + 8)
            vstart = pos + 12
        end = vstart + length
        if length == UNDEFINED or end > len(buf):
            raise UnsupportedError("malformed file meta")
        meta[group << 16 | number] = (pos, vstart, end)
        pos = end
    return meta, pos


def text_value(buf: bytes, start: int, end: int) -> str:
    return buf[start:end].decode("latin-1").strip("\0 ")
