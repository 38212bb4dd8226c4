"""The forms a file's bytes encode, for the leak scanner: gzip, Icechunk (zstd), Parquet, PNG text chunks,
deflated DICOM, JSON escapes, HTML entities and data URIs, VTP String arrays (see :mod:`toothmcl_data.deid.scan`).

A form the file announces but that cannot be decoded raises :class:`UnreadableError` (the scanner reports it as
a finding: it never searches less than the file holds without saying so).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import html
import io
import json
import re
import zlib
from collections.abc import Iterable
from pathlib import Path

from toothmcl_data.errors import InputError


class UnreadableError(InputError):
    """A file the scanner cannot search completely; the message says why (it becomes an ``unreadable`` hit)."""


_ICECHUNK = b"ICE\xf0\x9f\xa7\x8aCHUNK"
_ZSTD = b"\x28\xb5\x2f\xfd"
_DEFLATED = b"1.2.840.10008.1.2.1.99"
_DATA_URI = re.compile(rb"data:[\w/+.-]+;base64,([A-Za-z0-9+/=\s]+)")
_VTP_STRING = re.compile(rb"<DataArray[^>]*type=\"String\"[^>]*>([^<]*)</DataArray>")


def gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise UnreadableError(f"gzip stream cannot be decompressed ({type(err).__name__})") from err


def _icechunk(data: bytes) -> bytes:
    """An Icechunk snapshot/manifest/transaction file: a fixed header, then one zstd frame."""
    from numcodecs import Zstd

    start = data.find(_ZSTD, 0, 128)
    if start < 0:
        return b""  # an uncompressed Icechunk file: its raw bytes were searched
    try:
        return bytes(Zstd().decode(data[start:]))
    except (RuntimeError, ValueError) as err:
        raise UnreadableError(f"Icechunk file whose zstd frame cannot be decompressed ({err})") from err


def _parquet(data: bytes) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as err:
        raise UnreadableError(f"Parquet table cannot be read ({type(err).__name__}: {err})") from err
    return json.dumps(table.to_pylist(), default=str, ensure_ascii=False).encode("utf-8", "replace")


def _png_text(data: bytes) -> list[bytes]:
    """The decompressed text of a PNG's zTXt/iTXt chunks (tEXt and eXIf are searched in the raw bytes)."""
    out, pos = [], 8
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if len(body) < length:
            raise UnreadableError(f"PNG chunk {kind!r} runs past the end of the file")
        try:
            if kind == b"zTXt":
                out.append(zlib.decompress(body[body.index(b"\0") + 2 :]))
            elif kind == b"iTXt":
                keyword_end = body.index(b"\0")
                if body[keyword_end + 1] == 1:
                    rest = body[keyword_end + 3 :]
                    rest = rest[rest.index(b"\0") + 1 :]  # language tag
                    out.append(zlib.decompress(rest[rest.index(b"\0") + 1 :]))  # translated keyword
        except (ValueError, IndexError, zlib.error) as err:
            raise UnreadableError(f"PNG {kind.decode('latin-1')} chunk cannot be decompressed") from err
        if kind == b"IEND":
            break
        pos += 12 + length
    return out


def _dicom_dataset(data: bytes) -> bytes:
    """The inflated data set of a deflated-transfer-syntax DICOM file (raw bytes hide its text)."""
    meta_end = 144 + int.from_bytes(data[140:144], "little")
    try:
        return zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[meta_end:])
    except zlib.error as err:
        raise UnreadableError("deflated DICOM data set cannot be inflated") from err


def _vtp_strings(data: bytes) -> list[bytes]:
    """VTP String arrays, which VTK writes as numbers (ASCII) or base64: their text, NUL-separated."""
    out = []
    for m in _VTP_STRING.finditer(data):
        text = m.group(1).strip()
        try:
            if re.fullmatch(rb"[\d\s]*", text):
                out.append(bytes(int(x) for x in text.split()))
            else:
                out.append(base64.b64decode(re.sub(rb"\s+", b"", text)))
        except (ValueError, binascii.Error) as err:
            raise UnreadableError("VTP String array cannot be decoded") from err
    return out


def texts(path: Path, data: bytes) -> Iterable[bytes]:
    """Every form of ``data`` to search: the raw bytes, then whatever they encode (see :func:`scan_tree`).

    Raises UnreadableError when a form the file announces cannot be decoded."""
    yield data
    suffix = path.suffix.lower()
    if data[:2] == b"\x1f\x8b":
        yield from texts(path.with_suffix(""), gunzip(data))
    elif data.startswith(_ICECHUNK):
        yield _icechunk(data)
    elif data[:4] == b"PAR1" or suffix == ".parquet":
        yield _parquet(data)
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        yield from _png_text(data)
    elif data[128:132] == b"DICM" and _DEFLATED in data[132:1024]:
        yield _dicom_dataset(data)
    if suffix == ".json" or (suffix in ("", ".txt") and data[:1] in (b"{", b"[")):
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if suffix == ".json":
                raise UnreadableError(f"JSON cannot be parsed ({type(err).__name__})") from err
        else:
            yield json.dumps(doc, ensure_ascii=False).encode("utf-8", "replace")  # \u escapes decoded
    if suffix in (".html", ".htm", ".xml", ".svg"):
        text = data.decode("utf-8", "replace")
        yield html.unescape(text).encode("utf-8", "replace")
        for m in _DATA_URI.finditer(data):
            try:
                blob = base64.b64decode(re.sub(rb"\s+", b"", m.group(1)))
            except binascii.Error as err:
                raise UnreadableError("an embedded base64 data URI cannot be decoded") from err
            yield from texts(Path("embedded"), blob)
    if b"<VTKFile" in data[:512]:
        yield from _vtp_strings(data)
