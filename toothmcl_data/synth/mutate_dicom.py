"""DICOM mutators for the fuzzer (see :mod:`toothmcl_data.synth.mutate`): edits of an explicit VR little endian
Part 10 file's element stream — huge sizes, wrong VR bytes and lengths, another transfer syntax, broken
sequences, non-ASCII values under mixed or unknown character sets, non-finite or non-numeric numbers.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

Mutator = Callable[[bytes, np.random.Generator], bytes]
NUMBERS = (b"nan", b"NaN", b"inf", b"-inf", b"1e400", b"-1e309", b"abc", b"", b"1\\2\\3\\4\\5", b"0")
"""Values written where a number belongs."""


def pick(rng: np.random.Generator, items: tuple[bytes, ...] | list[bytes]) -> bytes:
    """One of ``items``, drawn from ``rng``."""
    return items[int(rng.integers(len(items)))]


_LONG_VRS = (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV")


def _elements(data: bytes) -> list[tuple[int, int, bytes, int, int]]:
    """(offset, tag, VR, value offset, value length) of the top-level data set after the preamble."""
    out = []
    pos = 132
    while pos + 8 <= len(data):
        group, elem = struct.unpack_from("<HH", data, pos)
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            length = struct.unpack_from("<I", data, pos + 8)[0] if pos + 12 <= len(data) else 0
            start = pos + 12
        else:
            length = struct.unpack_from("<H", data, pos + 6)[0]
            start = pos + 8
        out.append((pos, (group << 16) | elem, vr, start, length))
        if length == 0xFFFFFFFF or start + length > len(data):
            break
        pos = start + length
    return out


def _find(data: bytes, tag: int) -> tuple[int, int, bytes, int, int] | None:
    return next((e for e in _elements(data) if e[1] == tag), None)


def _set_value(data: bytes, tag: int, value: bytes) -> bytes:
    """``data`` with element ``tag``'s value replaced (length field updated; short VRs cut at 65534 bytes)."""
    found = _find(data, tag)
    if found is None:
        return data
    pos, _, vr, start, length = found
    if vr in _LONG_VRS:
        head = data[pos : pos + 8] + struct.pack("<I", len(value))
    else:
        value = value[:65534]
        head = data[pos : pos + 6] + struct.pack("<H", len(value))
    return data[:pos] + head + value + data[start + length :]


def dicom_huge_size(data: bytes, rng: np.random.Generator) -> bytes:
    tag = pick(rng, [b"rows", b"cols", b"both", b"frames", b"bits"])
    if tag == b"frames":
        return _set_value(data, 0x00280008, pick(rng, (b"99999999", b"-4 ", b"4294967296", b"nan ")))
    if tag == b"bits":
        return _set_value(data, 0x00280100, struct.pack("<H", int(rng.choice([0, 1, 3, 12, 64, 65535]))))
    big = struct.pack("<H", int(rng.choice([0, 1, 65535, 40000])))
    if tag in (b"rows", b"both"):
        data = _set_value(data, 0x00280010, big)
    if tag in (b"cols", b"both"):
        data = _set_value(data, 0x00280011, big)
    return data


def dicom_wrong_vr(data: bytes, rng: np.random.Generator) -> bytes:
    elements = _elements(data)
    pos = elements[int(rng.integers(len(elements)))][0]
    vr = pick(rng, (b"SQ", b"UN", b"OB", b"US", b"FD", b"XX", b"\x00\x00", b"PN", b"DS", b"AT"))
    return data[: pos + 4] + vr + data[pos + 6 :]


def dicom_wrong_length(data: bytes, rng: np.random.Generator) -> bytes:
    elements = _elements(data)
    pos, _, vr, _, length = elements[int(rng.integers(len(elements)))]
    if vr in _LONG_VRS:
        new = int(rng.choice([0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, length + 1, max(0, length - 1), 3]))
        return data[: pos + 8] + struct.pack("<I", new) + data[pos + 12 :]
    new = int(rng.choice([0xFFFF, 0xFFFE, length + 1, max(0, length - 1), 1, 0x8000]))
    return data[: pos + 6] + struct.pack("<H", new) + data[pos + 8 :]


def dicom_transfer_syntax(data: bytes, rng: np.random.Generator) -> bytes:
    uid = pick(
        rng,
        (
            b"1.2.840.10008.1.2.4.50\x00",  # JPEG baseline
            b"1.2.840.10008.1.2.4.90\x00",  # JPEG 2000
            b"1.2.840.10008.1.2.5\x00",  # RLE
            b"1.2.840.10008.1.2.2\x00",  # explicit big endian
            b"1.2.840.10008.1.2.1.99",  # deflated
            b"1.2.840.10008.1.2\x00",  # implicit little endian
            b"1.2.3.4.5.6\x00",
            b"",
            b"\xff\xfe garbage",
        ),
    )
    return _set_value(data, 0x00020010, uid)


def dicom_sequence(data: bytes, rng: np.random.Generator) -> bytes:
    """Damage a sequence: its length, an item tag, or a delimiter (or add a sequence of undefined length)."""
    seqs = [e for e in _elements(data) if e[2] == b"SQ"]
    choice = int(rng.integers(4))
    if not seqs or choice == 0:
        pos = _elements(data)[-2][0] if len(_elements(data)) > 2 else 132
        item = b"\xfe\xff\x00\xe0" + b"\xff\xff\xff\xff" + b"\x10\x00\x10\x00PN\x04\x00ABCD"
        bogus = b"\x09\x00\x10\x10SQ\x00\x00\xff\xff\xff\xff" + item * int(rng.integers(1, 4))
        return data[:pos] + bogus + data[pos:]  # an undefined-length private sequence that never ends properly
    pos, _, _, start, length = seqs[int(rng.integers(len(seqs)))]
    if choice == 1:
        return data[: pos + 8] + struct.pack("<I", int(rng.choice([0xFFFFFFFF, length + 7, 1, 0]))) + data[pos + 12 :]
    if choice == 2 and length >= 8:
        return data[:start] + b"\xfe\xff\xdd\xe0" + data[start + 4 :]  # sequence delimiter where an item starts
    return data[:start] + struct.pack("<I", 0x7FFF0001)[:4] + data[start + 4 :]


def dicom_charset(data: bytes, rng: np.random.Generator) -> bytes:
    charset = pick(rng, (b"ISO_IR 192", b"ISO 2022 IR 87\\ISO 2022 IR 100", b"GB18030 ", b"BOGUS_SET ", b"ISO_IR 13"))
    name = pick(
        rng,
        (
            "Müller^Jörg".encode("latin-1"),
            "山田^太郎".encode("shift_jis", "replace"),
            b"\xff\xfe\x00\xc3\x28\xa0\xa1^X",
            b"\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B",
            "Ωμέγα^Δ".encode(),
        ),
    )
    out = _set_value(data, 0x00080005, charset)
    if len(name) % 2:
        name += b" "
    return _set_value(out, 0x00100010, name)


def dicom_numbers(data: bytes, rng: np.random.Generator) -> bytes:
    tag = int(rng.choice([0x00280030, 0x00200032, 0x00200037, 0x00281053, 0x00281052, 0x00180050, 0x00180088]))
    value = pick(rng, NUMBERS)
    if len(value) % 2:
        value += b" "
    return _set_value(data, tag, value)


DICOM: dict[str, Mutator] = {
    "huge_size": dicom_huge_size,
    "wrong_vr": dicom_wrong_vr,
    "wrong_length": dicom_wrong_length,
    "transfer_syntax": dicom_transfer_syntax,
    "sequence": dicom_sequence,
    "charset": dicom_charset,
    "numbers": dicom_numbers,
}
