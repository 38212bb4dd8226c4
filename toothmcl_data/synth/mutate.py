"""Hostile variants of valid input files, for the fuzzer (``bench/fuzz.py``): one mutation per call.

Each mutator takes the file's bytes and a generator and returns the mutated bytes; :func:`mutate` picks one
for a target kind and names it. Generic mutations (any kind): truncation, byte flips, inserted/deleted/
duplicated spans, zeroed or 0xFF spans. Structured ones, per kind:

- **DICOM** (explicit VR little endian seeds; :mod:`toothmcl_data.synth.mutate_dicom`): huge
  Rows/Columns/NumberOfFrames/BitsAllocated, wrong VR bytes, wrong value lengths (odd, huge, undefined),
  another transfer syntax (compressed, big endian, deflated, unknown), broken sequences (lengths, delimiters),
  non-ASCII values under a mixed or unknown character set, numbers that are NaN/inf/text in PixelSpacing,
  ImagePositionPatient, ImageOrientationPatient, Rescale.
- **NIfTI**: header fields ``dim`` (rank, huge or negative sizes), ``datatype``/``bitpix``, ``pixdim``,
  ``vox_offset``, ``scl_slope``, qform/sform codes and rows set to NaN/inf/0/huge; a bogus extension.
- **meshes** (STL/PLY/OBJ/VTP): NaN/inf coordinates, huge or wrong element counts, indices out of range,
  wrong property types, broken XML attributes, huge compressed-block sizes.
- **label JSON**: wrong types, lengths and codes, missing keys, bad jaw, deep nesting, invalid UTF-8.
"""

from __future__ import annotations

import gzip
import json
import re
import struct

import numpy as np

from toothmcl_data.synth.mutate_dicom import DICOM, NUMBERS, Mutator, pick

# --- generic ----------------------------------------------------------------------------------------------


def truncate(data: bytes, rng: np.random.Generator) -> bytes:
    return data[: int(rng.integers(0, max(1, len(data))))]


def flip(data: bytes, rng: np.random.Generator) -> bytes:
    out = bytearray(data)
    for _ in range(int(rng.integers(1, 9))):
        i = int(rng.integers(len(out)))
        out[i] ^= 1 << int(rng.integers(8))
    return bytes(out)


def insert(data: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(len(data) + 1))
    return data[:i] + rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes() + data[i:]


def delete(data: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(len(data)))
    return data[:i] + data[i + int(rng.integers(1, 256)) :]


def duplicate(data: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(len(data)))
    j = min(len(data), i + int(rng.integers(1, 512)))
    return data[:j] + data[i:j] * int(rng.integers(1, 4)) + data[j:]


def overwrite(data: bytes, rng: np.random.Generator) -> bytes:
    i = int(rng.integers(len(data)))
    n = int(rng.integers(1, 32))
    fill = b"\xff" if rng.random() < 0.5 else b"\x00"
    return data[:i] + fill * n + data[i + n :]


GENERIC: dict[str, Mutator] = {
    "truncate": truncate,
    "flip": flip,
    "insert": insert,
    "delete": delete,
    "duplicate": duplicate,
    "overwrite": overwrite,
}


# --- NIfTI-1 (little endian, 348-byte header) -----------------------------------------------------------------


def _gz_aware(fn: Mutator) -> Mutator:
    def wrapped(data: bytes, rng: np.random.Generator) -> bytes:
        if data[:2] == b"\x1f\x8b":
            return gzip.compress(fn(gzip.decompress(data), rng), mtime=0)
        return fn(data, rng)

    return wrapped


def _pack_at(data: bytes, offset: int, fmt: str, *values: float) -> bytes:
    raw = struct.pack("<" + fmt, *values)
    return data[:offset] + raw + data[offset + len(raw) :]


def nifti_dims(data: bytes, rng: np.random.Generator) -> bytes:
    dims = list(struct.unpack_from("<8h", data, 40))
    what = int(rng.integers(4))
    if what == 0:
        dims[0] = int(rng.choice([0, -1, 8, 9, 2, 5]))
    elif what == 1:
        dims[1 + int(rng.integers(3))] = int(rng.choice([32767, 0, -5, 30000]))
    elif what == 2:
        dims[1:4] = [32767, 32767, 32767]
    else:
        dims[0], dims[4], dims[5] = 5, 32767, 32767
    return _pack_at(data, 40, "8h", *dims)


def nifti_datatype(data: bytes, rng: np.random.Generator) -> bytes:
    code = int(rng.choice([0, 1, 3, 255, 1536, 2304, 32767, -1, 128, 2048]))
    bitpix = int(rng.choice([0, 8, 16, 128, -16, 999]))
    return _pack_at(_pack_at(data, 70, "h", code), 72, "h", bitpix)


def nifti_floats(data: bytes, rng: np.random.Generator) -> bytes:
    """NaN/inf/0/huge in pixdim, vox_offset, scl_slope/inter, quaternions or srow."""
    value = float(rng.choice([np.nan, np.inf, -np.inf, 0.0, 1e38, -1.0, 3.4e38]))
    offset = int(rng.choice([80, 84, 88, 108, 108, 112, 116, 256, 260, 268, 280, 284, 296, 312, 316]))
    return _pack_at(data, offset, "f", value)


def nifti_codes(data: bytes, rng: np.random.Generator) -> bytes:
    q, s = int(rng.choice([0, 1, 2, 5, -3, 32767])), int(rng.choice([0, 1, 4, -1, 999]))
    return _pack_at(data, 252, "hh", q, s)


def nifti_extension(data: bytes, rng: np.random.Generator) -> bytes:
    esize = int(rng.choice([8, 16, 2**31 - 8, 7, 0, 1 << 20]))
    ext = b"\x01\x00\x00\x00" + struct.pack("<ii", esize, 6) + rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    return data[:348] + ext + data[352 + 8 :]


def nifti_magic(data: bytes, rng: np.random.Generator) -> bytes:
    if rng.random() < 0.5:
        return _pack_at(data, 0, "i", int(rng.choice([540, 0, 347, 349])))
    return data[:344] + pick(rng, (b"ni1\x00", b"n+2\x00", b"n+1\x01")) + data[348:]


NIFTI: dict[str, Mutator] = {
    "dims": _gz_aware(nifti_dims),
    "datatype": _gz_aware(nifti_datatype),
    "floats": _gz_aware(nifti_floats),
    "codes": _gz_aware(nifti_codes),
    "extension": _gz_aware(nifti_extension),
    "magic": _gz_aware(nifti_magic),
}


# --- meshes -----------------------------------------------------------------------------------------------


def _number_tokens(data: bytes) -> list[re.Match[bytes]]:
    return list(re.finditer(rb"-?\d+\.\d+(?:e[-+]?\d+)?", data))


def text_numbers(data: bytes, rng: np.random.Generator) -> bytes:
    """Text meshes: a coordinate becomes NaN, inf, huge or not a number."""
    tokens = _number_tokens(data)
    if not tokens:
        return flip(data, rng)
    m = tokens[int(rng.integers(len(tokens)))]
    return data[: m.start()] + pick(rng, NUMBERS[:7]) + data[m.end() :]


def text_counts(data: bytes, rng: np.random.Generator) -> bytes:
    """A count or an index becomes huge, negative or off by one (PLY elements, OBJ faces, VTP attributes)."""
    patterns = (
        rb"(element \w+ )(\d+)",
        rb"(Number\w+=\")(\d+)",
        rb"(\nf )(\d+)",
        rb"(offset=\")(\d+)",
        rb"(NumberOfComponents=\")(\d+)",
    )
    found = [m for p in patterns for m in re.finditer(p, data)]
    if not found:
        return flip(data, rng)
    m = found[int(rng.integers(len(found)))]
    value = pick(rng, (b"4294967296", b"999999999999", b"-1", b"0", b"31", b"2147483647", b"x"))
    return data[: m.start(2)] + value + data[m.end(2) :]


def text_types(data: bytes, rng: np.random.Generator) -> bytes:
    """A property or array type becomes unknown or another width."""
    found = list(re.finditer(rb"(property (?:list )?)(\w+)|(type=\")(\w+)", data))
    if not found:
        return flip(data, rng)
    m = found[int(rng.integers(len(found)))]
    group = 2 if m.group(2) is not None else 4
    value = pick(rng, (b"float128", b"uchar", b"double", b"Int8", b"Float16", b"UInt64", b"String"))
    return data[: m.start(group)] + value + data[m.end(group) :]


def stl_binary(data: bytes, rng: np.random.Generator) -> bytes:
    """Binary STL: the triangle count (huge / off by one) or a coordinate set to NaN/inf."""
    if len(data) < 84 or rng.random() < 0.5:
        count = int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 1, 0, 41, 39]))
        return data[:80] + struct.pack("<I", count) + data[84:]
    n = (len(data) - 84) // 50
    i = 84 + 50 * int(rng.integers(max(1, n))) + 12 + 4 * int(rng.integers(9))
    return data[:i] + struct.pack("<f", float(rng.choice([np.nan, np.inf, -np.inf, 3.4e38]))) + data[i + 4 :]


def binary_ply(data: bytes, rng: np.random.Generator) -> bytes:
    """Binary PLY: a face's corner count byte becomes 0/255/4, or an index out of range."""
    end = data.find(b"end_header\n") + len(b"end_header\n")
    if end < len(b"end_header\n") or end >= len(data):
        return flip(data, rng)
    body = bytearray(data[end:])
    i = int(rng.integers(len(body)))
    body[i] = int(rng.choice([0, 255, 4, 128]))
    return data[:end] + bytes(body)


def vtp_blocks(data: bytes, rng: np.random.Generator) -> bytes:
    """VTP appended/binary: a block header (nblocks, sizes) becomes huge."""
    marker = data.find(b"_", data.find(b"<AppendedData"))
    if marker < 0 or data.find(b"<AppendedData") < 0:
        return text_counts(data, rng)
    i = marker + 1 + 4 * int(rng.integers(4))
    return data[:i] + struct.pack("<I", int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 1 << 30, 0]))) + data[i + 4 :]


MESH: dict[str, Mutator] = {
    "numbers": text_numbers,
    "counts": text_counts,
    "types": text_types,
    "stl_binary": stl_binary,
    "ply_binary": binary_ply,
    "vtp_blocks": vtp_blocks,
}
MESH_FOR: dict[str, tuple[str, ...]] = {
    "stl": ("stl_binary",),
    "ply": ("counts", "types", "ply_binary"),
    "ply_ascii": ("numbers", "counts", "types"),
    "obj": ("numbers", "counts"),
    "vtp_ascii": ("numbers", "counts", "types"),
    "vtp_binary": ("counts", "types"),
    "vtp_appended": ("counts", "types", "vtp_blocks"),
}


# --- label JSON ---------------------------------------------------------------------------------------------


def json_fields(data: bytes, rng: np.random.Generator) -> bytes:
    doc = json.loads(data)
    key = str(rng.choice(["labels", "instances", "jaw", "id_patient"]))
    bad: list[object] = [
        "11",
        None,
        3.5,
        True,
        {"a": 1},
        [1.5] * len(doc["labels"]),
        [True] * len(doc["labels"]),
        [[11]] * len(doc["labels"]),
        ["11"] * len(doc["labels"]),
        doc["labels"][:-1],
        doc["labels"] + [0] * 5,
        [],
        [2**70] * len(doc["labels"]),
        [99] * len(doc["labels"]),
        [-7] * len(doc["labels"]),
        [19, 55, 85, 91, 48, 38] * (len(doc["labels"]) // 6 + 1),
        "left",
        "x" * 100000,
        [0] * 10**5,
    ]
    doc[key] = bad[int(rng.integers(len(bad)))]
    return json.dumps(doc).encode("utf-8")


def json_structure(data: bytes, rng: np.random.Generator) -> bytes:
    what = int(rng.integers(6))
    doc = json.loads(data)
    if what == 0:
        del doc[str(rng.choice(list(doc)))]
        return json.dumps(doc).encode()
    if what == 1:
        return b"[" * 100000 + b"]" * 100000
    if what == 2:
        return b"\xef\xbb\xbf" + data  # UTF-8 byte order mark
    if what == 3:
        return data.replace(b'"jaw"', b'"jaw": "lower", "jaw"', 1)  # duplicate key
    if what == 4:
        return data.replace(b"11", b"NaN", 1)
    return data[:10] + b"\xff\xfe\xc3\x28" + data[10:]


JSON: dict[str, Mutator] = {"fields": json_fields, "structure": json_structure}

STRUCTURED: dict[str, dict[str, Mutator]] = {"dicom": DICOM, "nifti": NIFTI, "mesh": MESH, "json": JSON}


def mutate(kind: str, fmt: str, data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    """(mutation name, mutated bytes) for a file of ``kind`` (``dicom``, ``nifti``, ``mesh``, ``json``).

    fmt: the seed format within a kind (a key of :data:`toothmcl_data.synth.seeds.MESH_FORMATS` for meshes);
    one mutation in three is generic, the rest structured for the kind.
    """
    if rng.random() < 1 / 3:
        name = str(rng.choice(sorted(GENERIC)))
        return name, GENERIC[name](data, rng)
    table = STRUCTURED[kind]
    names = MESH_FOR[fmt] if kind == "mesh" else tuple(sorted(table))
    name = str(rng.choice(names))
    return name, table[name](data, rng)
