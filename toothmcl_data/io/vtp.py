"""A dependency-free reader for VTK XML PolyData (``.vtp``) triangle meshes.

Supported: ``format="ascii"``, ``format="binary"`` (base64, inline) and ``format="appended"`` with
``<AppendedData encoding="raw">`` or ``encoding="base64"``; ``header_type`` UInt32/UInt64 (UInt32 when absent,
as in version 0.1 files); ``byte_order`` LittleEndian/BigEndian; no compression, ``vtkZLibDataCompressor`` or
``vtkLZMADataCompressor`` (blocked header: number of blocks, block size, last block size, compressed sizes);
data types Int8…Int64, UInt8…UInt64, Float32, Float64.

Geometry: polygons from ``<Polys>`` (``connectivity`` + ``offsets``; offsets are the end position of each
cell, a leading 0 is accepted too). Triangles are kept in file order; a polygon with more than three corners
is split into a fan ``(p0, p1, p2), (p0, p2, p3) …`` and its cell data are repeated for each triangle.
Triangle strips are refused (convert them first, e.g. with ``vtkTriangleFilter``). Vertex and line cells
carry no surface; cell data belonging to them (VTK orders cell data verts, lines, polys, strips) are
dropped so that :attr:`VTPData.cell_data` is aligned with :attr:`VTPData.triangles`.

VTK files carry no coordinate frame: points are returned exactly as stored (see :mod:`toothmcl_data.io.mesh`).
"""

from __future__ import annotations

import base64
import binascii
import lzma
import re
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from toothmcl_data.errors import MeshError

_DTYPES = {
    "Int8": "i1", "Int16": "i2", "Int32": "i4", "Int64": "i8",
    "UInt8": "u1", "UInt16": "u2", "UInt32": "u4", "UInt64": "u8",
    "Float32": "f4", "Float64": "f8", "String": "u1",
}  # fmt: skip
"""VTK type name → numpy dtype code; ``String`` arrays are NUL-separated UTF-8 bytes."""


def _inflate_zlib(data: bytes, limit: int) -> bytes:
    return zlib.decompressobj().decompress(data, limit)


def _inflate_lzma(data: bytes, limit: int) -> bytes:
    return lzma.LZMADecompressor().decompress(data, max_length=limit)


_DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {
    "vtkZLibDataCompressor": _inflate_zlib,
    "vtkLZMADataCompressor": _inflate_lzma,
}
"""Compressor name → ``inflate(block, limit)``: at most ``limit`` bytes come out, whatever the block claims."""


@dataclass(frozen=True, eq=False)
class VTPData:
    """The surface content of one ``.vtp`` file.

    points: (n, 3) float64, the file's coordinates unchanged (units and frame as the producer wrote them).
    triangles: (m, 3) int64 point indices, in file order (fan-split polygons expanded in place).
    point_data: name → (n,) or (n, k) array in the file's dtype.
    cell_data: name → (m,) or (m, k) array aligned with ``triangles``.
    field_data: name → text of string-valued field data (e.g. producer notes), for de-identification.
    """

    points: NDArray[np.float64]
    triangles: NDArray[np.int64]
    point_data: dict[str, NDArray[np.generic]] = field(default_factory=dict)
    cell_data: dict[str, NDArray[np.generic]] = field(default_factory=dict)
    field_data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Layout:
    path: Path
    byte_order: str  # "<" or ">"
    header: np.dtype[np.unsignedinteger]
    decompress: Callable[[bytes, int], bytes] | None
    appended: bytes  # raw bytes or base64 text after the "_" marker
    appended_encoding: str
    offsets: tuple[int, ...]  # every appended DataArray's offset


def _fail(path: Path, what: str, fix: str = "re-export the mesh from its source software") -> MeshError:
    return MeshError(f"{path}: {what}; {fix}")


def _count(path: Path, elem: ET.Element, name: str, default: int, minimum: int = 0) -> int:
    """Integer attribute ``name`` of ``elem`` (``default`` when absent), at least ``minimum``."""
    text = elem.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError as err:
        raise _fail(path, f"<{elem.tag}> attribute {name}={text[:20]!r} is not an integer") from err
    if value < minimum:
        raise _fail(path, f"<{elem.tag}> attribute {name}={value}, expected at least {minimum}")
    return value


def _split_appended(raw: bytes, path: Path) -> tuple[bytes, bytes, str]:
    """Cut ``<AppendedData>`` out of the document (raw data are not XML) → (xml, payload, encoding)."""
    start = raw.find(b"<AppendedData")
    if start < 0:
        return raw, b"", ""
    tag_end = raw.find(b">", start)
    end = raw.rfind(b"</AppendedData>")
    marker = raw.find(b"_", tag_end)
    if tag_end < 0 or end < 0 or marker < 0 or marker > end:
        raise _fail(path, "<AppendedData> is truncated (expected '_' then data then </AppendedData>)")
    m = re.search(rb'encoding\s*=\s*"([^"]*)"', raw[start:tag_end])
    encoding = m.group(1).decode("ascii") if m else "raw"
    xml = raw[:start] + b"<AppendedData/>" + raw[end + len(b"</AppendedData>") :]
    return xml, raw[marker + 1 : end], encoding


def _b64(text: bytes, layout: _Layout) -> bytes:
    """Decode base64 made of one or more separately padded segments (VTK may encode a header on its own)."""
    text = re.sub(rb"\s+", b"", text)
    try:
        return b"".join(base64.b64decode(seg, validate=True) for seg in re.findall(rb"[^=]+=*", text))
    except (binascii.Error, ValueError) as err:
        raise _fail(layout.path, f"invalid base64 data ({err})") from err


def _read_header(buf: bytes, count: int, layout: _Layout) -> list[int]:
    size = layout.header.itemsize * count
    if len(buf) < size:
        raise _fail(layout.path, f"binary block header truncated (expected {size} bytes, found {len(buf)})")
    return [int(x) for x in np.frombuffer(buf[:size], dtype=layout.header)]


def _decode_block(buf: bytes, layout: _Layout) -> bytes:
    """One binary block (header + data, already base64-decoded) → the array's bytes.

    Uncompressed: ``[nbytes][data]``. Compressed: ``[nblocks][blocksize][lastblocksize][csize_1..n][blocks]``.
    """
    hsize = layout.header.itemsize
    if layout.decompress is None:
        nbytes = _read_header(buf, 1, layout)[0]
        if len(buf) < hsize + nbytes:
            raise _fail(layout.path, f"data block truncated (expected {nbytes} bytes, found {len(buf) - hsize})")
        return buf[hsize : hsize + nbytes]
    nblocks = _read_header(buf, 1, layout)[0]
    header = _read_header(buf, 3 + nblocks, layout)
    blocksize, last, sizes = header[1], header[2], header[3:]
    pos = hsize * (3 + nblocks)
    out = []
    if pos + sum(sizes) > len(buf):
        raise _fail(layout.path, f"compressed blocks need {pos + sum(sizes)} bytes, the data hold {len(buf)}")
    for n, size in enumerate(sizes):
        limit = (last or blocksize) if n == nblocks - 1 else blocksize
        try:
            out.append(layout.decompress(buf[pos : pos + size], limit))
        except (zlib.error, lzma.LZMAError) as err:
            raise _fail(layout.path, f"compressed block cannot be inflated ({err})") from err
        pos += size
    data = b"".join(out)
    expected = blocksize * (nblocks - 1) + (last or blocksize) if nblocks else 0
    if len(data) != expected:
        raise _fail(layout.path, f"compressed data inflate to {len(data)} bytes, header says {expected}")
    return data


def _read_array(elem: ET.Element, layout: _Layout) -> NDArray[np.generic]:
    """Decode one ``<DataArray>`` → (n,) or (n, k) array in its own dtype."""
    name = elem.get("Name", "?")
    vtk_type = elem.get("type", "")
    if vtk_type not in _DTYPES:
        raise _fail(layout.path, f"DataArray {name!r} has type {vtk_type!r}, expected one of {sorted(_DTYPES)}")
    dtype = np.dtype(layout.byte_order + _DTYPES[vtk_type])
    ncomp = _count(layout.path, elem, "NumberOfComponents", 1, minimum=1)
    fmt = elem.get("format", "ascii")
    if fmt == "ascii":
        try:
            values = np.array((elem.text or "").split(), dtype=np.float64 if dtype.kind == "f" else np.int64)
        except (ValueError, OverflowError) as err:
            raise _fail(layout.path, f"DataArray {name!r} holds a value that is not a {vtk_type}") from err
        arr = values.astype(dtype.newbyteorder("="))
    elif fmt == "binary":
        arr = np.frombuffer(_decode_block(_b64((elem.text or "").encode("ascii"), layout), layout), dtype)
    elif fmt == "appended":
        offset = _count(layout.path, elem, "offset", 0)
        if layout.appended_encoding == "raw":
            block = layout.appended[offset:]
        elif layout.appended_encoding == "base64":  # offsets count characters; an array ends at the next one
            end = min((o for o in layout.offsets if o > offset), default=len(layout.appended))
            block = _b64(layout.appended[offset:end], layout)
        else:
            raise _fail(layout.path, f"AppendedData encoding {layout.appended_encoding!r} is not raw/base64")
        arr = np.frombuffer(_decode_block(block, layout), dtype)
    else:
        raise _fail(layout.path, f"DataArray {name!r} has format {fmt!r}, expected ascii, binary or appended")
    if arr.size % ncomp:
        raise _fail(layout.path, f"DataArray {name!r} has {arr.size} values, not a multiple of {ncomp}")
    arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return arr.reshape(-1, ncomp) if ncomp > 1 else arr


def _arrays(parent: ET.Element | None, layout: _Layout) -> dict[str, NDArray[np.generic]]:
    if parent is None:
        return {}
    return {e.get("Name", f"array{i}"): _read_array(e, layout) for i, e in enumerate(parent.findall("DataArray"))}


def _cells(piece: ET.Element, tag: str, layout: _Layout) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """(connectivity, starts) of one cell block, ``starts`` having one entry more than there are cells."""
    arrays = _arrays(piece.find(tag), layout)
    conn = np.asarray(arrays.get("connectivity", np.zeros(0)), dtype=np.int64)
    offsets = np.asarray(arrays.get("offsets", np.zeros(0)), dtype=np.int64)
    n = _count(layout.path, piece, f"NumberOf{tag}", len(offsets))
    if n == 0:
        return conn[:0], np.zeros(1, dtype=np.int64)
    if len(offsets) == n + 1 and offsets[0] == 0:
        starts = offsets
    elif len(offsets) == n:
        starts = np.concatenate([[0], offsets])
    else:
        raise _fail(layout.path, f"<{tag}> has {len(offsets)} offsets for NumberOf{tag}={n}")
    if np.any(np.diff(starts) < 0) or starts[-1] != len(conn):
        raise _fail(layout.path, f"<{tag}> offsets do not partition the {len(conn)} connectivity entries")
    return conn, starts


def _triangulate(
    conn: NDArray[np.int64], starts: NDArray[np.int64], path: Path
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Fan-split polygons → (triangles (t, 3), source cell index (t,))."""
    sizes = np.diff(starts)
    if np.any(sizes < 3):
        bad = int(np.argmax(sizes < 3))
        raise _fail(path, f"polygon {bad} has {sizes[bad]} corners, expected at least 3")
    if np.all(sizes == 3):
        return conn.reshape(-1, 3), np.arange(len(sizes), dtype=np.int64)
    cell = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes - 2)
    k = np.arange(len(cell)) - np.repeat(np.cumsum(sizes - 2) - (sizes - 2), sizes - 2)
    first = starts[:-1][cell]
    tris = np.stack([conn[first], conn[first + k + 1], conn[first + k + 2]], axis=1)
    return tris, cell


def read_vtp(path: str | Path) -> VTPData:
    """Read a VTK XML PolyData file → :class:`VTPData` (points, triangles, point/cell/field data).

    Raises :class:`~toothmcl_data.errors.MeshError` naming the file when it is not a readable single-piece
    PolyData triangle surface.
    """
    path = Path(path)
    xml, appended, encoding = _split_appended(path.read_bytes(), path)
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as err:
        raise _fail(path, f"not well-formed XML ({err})") from err
    if root.tag != "VTKFile" or root.get("type") != "PolyData":
        raise _fail(path, f'expected <VTKFile type="PolyData">, found <{root.tag} type={root.get("type")!r}>')
    compressor = root.get("compressor")
    if compressor and compressor not in _DECOMPRESSORS:
        raise _fail(
            path,
            f"compressor {compressor!r} is not supported (only {sorted(_DECOMPRESSORS)})",
            "re-save it with zlib compression or none",
        )
    header_name = root.get("header_type", "UInt32")
    if header_name not in ("UInt32", "UInt64"):
        raise _fail(path, f"header_type {header_name!r} is not UInt32 or UInt64")
    order = ">" if root.get("byte_order", "LittleEndian") == "BigEndian" else "<"
    offsets = {_count(path, e, "offset", 0) for e in root.iter("DataArray") if e.get("format") == "appended"}
    layout = _Layout(
        path,
        order,
        np.dtype(order + _DTYPES[header_name]),
        _DECOMPRESSORS[compressor] if compressor else None,
        appended,
        encoding,
        tuple(sorted(offsets)),
    )
    pieces = root.findall("PolyData/Piece")
    if len(pieces) != 1:
        raise _fail(path, f"expected exactly one <Piece>, found {len(pieces)}", "merge the pieces first")
    piece = pieces[0]
    if _count(path, piece, "NumberOfStrips", 0) > 0:
        raise _fail(path, "triangle strips are not supported", "convert them with vtkTriangleFilter")
    points_arrays = _arrays(piece.find("Points"), layout)
    if len(points_arrays) != 1:
        raise _fail(path, f"<Points> must hold one DataArray, found {len(points_arrays)}")
    points = np.asarray(next(iter(points_arrays.values())), dtype=np.float64)
    if points.size % 3:
        raise _fail(path, f"<Points> holds {points.size} values, not a multiple of 3 (x, y, z per point)")
    points = points.reshape(-1, 3)
    conn, starts = _cells(piece, "Polys", layout)
    triangles, cell = _triangulate(conn, starts, path)
    skip = _count(path, piece, "NumberOfVerts", 0) + _count(path, piece, "NumberOfLines", 0)
    ncells = skip + len(starts) - 1
    cell_data: dict[str, NDArray[np.generic]] = {}
    for name, arr in _arrays(piece.find("CellData"), layout).items():
        if len(arr) != ncells:
            raise _fail(path, f"cell array {name!r} has {len(arr)} tuples, expected {ncells} (one per cell)")
        cell_data[name] = arr[skip:][cell]
    point_data = _arrays(piece.find("PointData"), layout)
    for name, arr in point_data.items():
        if len(arr) != len(points):
            raise _fail(path, f"point array {name!r} has {len(arr)} tuples, expected {len(points)}")
    field_data: dict[str, str] = {}
    # VTK writes numeric field data as <DataArray>, string arrays (e.g. Slicer's SPACE) as <Array>
    for elem in root.findall("PolyData/FieldData/*"):
        if elem.tag not in ("DataArray", "Array"):
            continue
        values = _read_array(elem, layout).ravel()
        if elem.get("type") == "String":
            text = values.astype(np.uint8).tobytes().decode("utf-8", errors="replace")
            field_data[elem.get("Name", "?")] = "\n".join(s for s in text.split("\0") if s)
        else:
            field_data[elem.get("Name", "?")] = " ".join(map(str, values.tolist()))
    return VTPData(points, triangles, point_data, cell_data, field_data)
