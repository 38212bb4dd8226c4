"""Leak scanner: search every byte of every output, and every file and folder name, for known PHI strings.

Content is searched case-insensitively as raw bytes (UTF-8 and Latin-1 forms of each string, ASCII case
folded on both sides; one trie-shaped regex, so the cost hardly grows with the number of strings), and as what
the bytes encode: gzip streams (``.nii.gz``, NIfTI header and extensions included), Icechunk snapshots and
manifests (zstd: Zarr attributes, the store's metadata), Parquet tables (every cell; pages may be compressed),
PNG zTXt/iTXt text, deflated DICOM data sets (nested sequences and private elements are in the raw bytes of
any other DICOM), JSON with ``\\u`` escapes decoded, HTML entities and embedded ``data:`` images of a report,
VTP String arrays (written as numbers). Strings shorter than :data:`MIN_LENGTH` characters are skipped (they
would hit everywhere) and reported as skipped.

The scanner cannot go blind: a file it cannot search completely (unreadable, a broken link, a link to a folder,
a device or pipe, an encoded stream it cannot decode) is a finding (``where="unreadable"``), never silence.

PHI strings come from a file (``phi.json`` of a synthetic drop: ``{patient: [strings]}``, a JSON list, or
one string per line) or are pulled from a raw drop by :func:`phi_from_drop`: DICOM values the profile removes
or replaces (names, IDs, dates, UIDs, addresses …, name components split at ``^``), NIfTI header text, mesh
header/comment text, Teeth3DS ``id_patient`` and the drop's folder names and file stems.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pydicom
from pydicom.errors import InvalidDicomError

from toothmcl_data.deid.scanforms import UnreadableError, gunzip, texts
from toothmcl_data.deid.table import load_table
from toothmcl_data.errors import DeidError, InputError, InputNotFoundError
from toothmcl_data.io.discover import sniff
from toothmcl_data.io.fs import open_source

log = logging.getLogger(__name__)

MIN_LENGTH = 4
_VR_TEXT = frozenset({"PN", "LO", "SH", "DA", "DT", "LT", "ST", "UT", "UI", "AE", "UC", "CS"})
_GENERIC = frozenset(
    {"none", "null", "unknown", "anonymous", "original", "primary", "axial", "upper", "lower", "maxilla", "mandible"}
)


@dataclass(frozen=True)
class Hit:
    """One finding: ``path`` relative to the scanned folder; ``where`` = ``name`` or ``content`` (``value`` is the
    PHI string found) or ``unreadable`` (``value`` says why the file could not be searched completely)."""

    path: str
    where: str
    value: str


def load_phi(path: Path) -> list[str]:
    """Read PHI strings from a JSON file (dict of lists, or list) or a text file (one per line)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"PHI file {path} does not exist; pass phi.json or a text file of strings")
    text = path.read_text(encoding="utf-8")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:  # handled: not JSON, so a text file of one PHI string per line (documented)
        return [line.strip() for line in text.splitlines() if line.strip()]
    if isinstance(doc, dict):
        return sorted({str(v) for values in doc.values() for v in values})
    if isinstance(doc, list):
        return sorted({str(v) for v in doc})
    raise InputError(f"PHI file {path} holds a JSON {type(doc).__name__}; expected a list or {{patient: [strings]}}")


def _usable(values: Iterable[str]) -> tuple[list[str], list[str]]:
    keep: set[str] = set()
    skipped: set[str] = set()
    for v in values:
        v = v.strip().strip("\x00").strip()
        if not v:
            continue
        if not v.isprintable():
            continue
        (keep if len(v) >= MIN_LENGTH and v.casefold() not in _GENERIC else skipped).add(v)
    return sorted(keep, key=lambda s: (-len(s), s)), sorted(skipped)


def _trie_regex(words: set[bytes]) -> bytes:
    """A regex matching any of ``words`` built as a trie, so each position costs one step per shared prefix."""
    trie: dict[int, Any] = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def emit(node: dict[int, Any]) -> bytes:
        ends = -1 in node
        branches = [re.escape(bytes([b])) + emit(child) for b, child in sorted(node.items()) if b != -1]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 else b"(?:" + b"|".join(branches) + b")"
        return b"(?:" + body + b")?" if ends else body

    return emit(trie)


def _pattern(values: Sequence[str]) -> re.Pattern[bytes]:
    """Case-insensitive search for ``values``: lower-cased forms in a trie; match against lower-cased bytes."""
    forms: set[bytes] = set()
    for v in values:
        for text in (v, v.lower()):
            forms.add(text.encode("utf-8", "surrogateescape").lower())
            with contextlib.suppress(UnicodeEncodeError):  # handled: no Latin-1 form to search for this value
                forms.add(text.encode("latin-1").lower())
    return re.compile(_trie_regex({f for f in forms if f}))


def _walk(root: Path) -> tuple[list[Path], list[Hit]]:
    """Every entry under ``root`` (sorted) and the entries that cannot be searched: folders that cannot be
    listed, links to folders (not followed), broken links and anything that is not a regular file."""
    entries: list[Path] = []
    problems: list[Hit] = []

    def rel(p: Path) -> str:
        return str(PurePosixPath(*p.relative_to(root).parts))

    def failed(err: OSError) -> None:
        where = Path(err.filename) if err.filename else root
        problems.append(
            Hit(rel(where) if where != root else ".", "unreadable", f"folder cannot be listed ({err.strerror})")
        )

    for folder, dirs, files in os.walk(root, onerror=failed):
        for name in dirs + files:
            entries.append(Path(folder) / name)
        for name in dirs:
            if (Path(folder) / name).is_symlink():
                problems.append(Hit(rel(Path(folder) / name), "unreadable", "link to a folder (not followed)"))
    for path in entries:
        if path.is_symlink() and not path.exists():
            problems.append(Hit(rel(path), "unreadable", "broken link"))
        elif path.exists() and not path.is_dir() and not path.is_file():
            problems.append(Hit(rel(path), "unreadable", "not a regular file (device, pipe or socket); not read"))
    return sorted(entries), problems


def scan_tree(root: Path, phi: Iterable[str]) -> tuple[list[Hit], list[str]]:
    """Search every file under ``root`` (names and contents) for ``phi``; returns (hits, skipped short strings).

    Contents are searched as raw bytes and as what they encode: gzip streams, Icechunk files (zstd), Parquet
    tables (every cell), PNG zTXt/iTXt text, deflated DICOM data sets, JSON with ``\\u`` escapes decoded,
    HTML/XML with entities decoded and embedded ``data:`` URIs (a report's PNGs), VTP String arrays.

    The scanner never goes blind: a file or folder it cannot search completely (unreadable, a broken link, a
    link to a folder, a device or pipe, a stream it cannot decode) is a hit with ``where="unreadable"`` and the
    reason as ``value``, so a caller that treats any hit as failure fails.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputNotFoundError(f"{root} is not a folder; pass the de-identified output folder to scan")
    values, skipped = _usable(phi)
    pattern = _pattern(values) if values else None
    lower = {v.casefold(): v for v in values}
    entries, hits = _walk(root)
    for path in entries:
        rel = str(PurePosixPath(*path.relative_to(root).parts))
        if pattern is not None:
            name_bytes = rel.encode("utf-8", "surrogateescape")
            for m in {m.group(0) for m in pattern.finditer(name_bytes.lower())}:
                hits.append(Hit(rel, "name", lower.get(m.decode("utf-8", "replace").casefold(), m.decode("latin-1"))))
        if not path.is_file():
            continue
        found: set[bytes] = set()
        try:
            data = path.read_bytes()
            for blob in texts(path, data):
                if pattern is not None:
                    found.update(m.group(0) for m in pattern.finditer(blob.lower()))
        except OSError as err:
            hits.append(Hit(rel, "unreadable", f"cannot be read ({err.strerror or type(err).__name__})"))
        except UnreadableError as err:
            hits.append(Hit(rel, "unreadable", str(err)))
        for m in sorted(found):
            hits.append(Hit(rel, "content", lower.get(m.decode("latin-1").casefold(), m.decode("latin-1"))))
    return hits, skipped


def _dicom_values(data: bytes) -> set[str]:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        elements = list(ds.iterall())
        for elem in elements:
            elem.value  # noqa: B018 - decodes the value now, so a damaged one is reported here
    except (InvalidDicomError, OSError, EOFError, ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise UnreadableError(f"DICOM header cannot be parsed ({type(err).__name__}); its values are unknown") from err
    except (NotImplementedError, OverflowError, struct.error, zlib.error) as err:
        raise UnreadableError(f"DICOM header cannot be parsed ({type(err).__name__}); its values are unknown") from err
    table = load_table()
    found: set[str] = set()
    kept: set[str] = set()

    def walk(d: pydicom.Dataset) -> None:
        for elem in d:
            if elem.VR == "SQ":
                for item in elem.value:
                    walk(item)
                continue
            if elem.VR not in _VR_TEXT:
                continue
            values = elem.value if isinstance(elem.value, list | tuple | pydicom.multival.MultiValue) else [elem.value]
            texts = [str(v) for v in values]
            if not elem.tag.is_private and table.action(int(elem.tag)) is None:
                kept.update(texts)  # the profile keeps it: not identifying by the standard's judgement
                continue
            for text in texts:
                found.add(text)
                if elem.VR == "PN":
                    found.update(part for part in re.split(r"[\^=]", text) if len(part) >= MIN_LENGTH + 1)

    walk(ds)
    return found - kept


def _header_text(kind_fmt: tuple[str, str], data: bytes) -> set[str]:
    kind, fmt = kind_fmt
    found: set[str] = set()
    if fmt == "nifti":
        head = gunzip(data) if data[:2] == b"\x1f\x8b" else data
        for start, size in ((148, 80), (228, 24), (328, 16)):
            found.add(head[start : start + size].split(b"\x00")[0].decode("latin-1"))
    elif fmt == "stl" and not data.lstrip().startswith(b"solid"):
        found.add(data[:80].split(b"\x00")[0].decode("latin-1"))
    elif fmt in ("ply", "obj"):
        for line in data[:65536].decode("latin-1").splitlines():
            if line.startswith(("comment ", "obj_info ", "#")):
                text = line.split(" ", 1)[1] if " " in line else ""
                found.add(text)
                found.update(part.strip() for part in text.split(":")[1:])
    elif kind == "sidecar":
        try:
            doc = json.loads(data.decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UnreadableError(f"label sidecar cannot be parsed ({type(err).__name__})") from err
        if isinstance(doc, dict):
            found.add(str(doc.get("id_patient", "")))
    return found


def phi_from_drop_report(raw: str | Path) -> tuple[list[str], list[str]]:
    """(identifying strings pulled from a raw drop, sorted and deduplicated; ``"<path>: why"`` for each file
    whose values could not be pulled — the scan cannot know that file's PHI, so callers report it)."""
    source = open_source(raw)
    found: set[str] = set()
    unreadable: list[str] = []
    for rel in source.list_files():
        p = PurePosixPath(rel)
        found.update(p.parts[:-1])
        found.add(p.name.split(".")[0])
        data = source.read_bytes(rel)
        kind_fmt = sniff(rel, data)
        try:
            found.update(_dicom_values(data) if kind_fmt[0] == "dicom" else _header_text(kind_fmt, data))
        except UnreadableError as err:
            unreadable.append(f"{rel}: {err}")
    return _usable(found)[0], unreadable


def phi_from_drop(raw: str | Path) -> list[str]:
    """Identifying strings pulled from a raw drop (see the module docstring); sorted, deduplicated.

    Raises DeidError naming every file whose values cannot be pulled (use :func:`phi_from_drop_report` to get
    them as findings instead)."""
    values, unreadable = phi_from_drop_report(raw)
    if unreadable:
        raise DeidError(
            f"{len(unreadable)} files of drop {raw} cannot be parsed for PHI strings ({'; '.join(unreadable[:3])}); "
            "a scan against this drop would not know their values — remove or repair them, or pass --phi"
        )
    return values
