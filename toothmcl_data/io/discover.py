"""Find every file of a drop, hash it, and say what it is from its content (DICOM never by extension).

Kinds: ``dicom`` (``DICM`` at byte 128), ``volume`` (NIfTI-1/2 plain or gzipped, MetaImage ``.mha``, NRRD),
``mesh`` (PLY / VTP by magic, binary STL by its size law ``84 + 50·n``, ASCII STL ``solid``, OBJ by its
``v``/``f`` records; an emptied mesh file is recognised by its suffix), ``sidecar`` (a JSON object with
Teeth3DS keys), ``empty`` (0 bytes), ``other`` (anything else: not medical data).

DICOM records carry the header facts grouping and matching need (read with ``stop_before_pixels``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import struct
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Literal

import orjson
import pydicom
from pydicom.errors import BytesLengthException, InvalidDicomError

from toothmcl_data.io.fs import Source

log = logging.getLogger(__name__)

Kind = Literal["dicom", "volume", "mesh", "sidecar", "empty", "other"]
_MESH_SUFFIXES = {".stl": "stl", ".ply": "ply", ".obj": "obj", ".vtp": "vtp"}
_SIDECAR_KEYS = {"labels", "jaw"}


@dataclass(frozen=True)
class DicomInfo:
    """Header facts of one DICOM file (identity stays in memory and the audit area only)."""

    patient_id: str
    patient_name: str
    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str
    image_type: tuple[str, ...]
    frames: int


@dataclass(frozen=True)
class FileRecord:
    """One input file. ``path``: relative POSIX path in the drop; ``sha256``: hex digest of the content.

    ``fmt``: ``dicom``, ``nifti``, ``mha``, ``nrrd``, ``stl``, ``ply``, ``obj``, ``vtp``, ``json`` or ``""``.
    ``header_id``: identity in the file's own header (DICOM PatientID, Teeth3DS ``id_patient``), or None.
    """

    path: str
    size: int
    sha256: str
    kind: Kind
    fmt: str
    dicom: DicomInfo | None = None
    header_id: str | None = None
    note: str = ""

    @property
    def name(self) -> str:
        return PurePosixPath(self.path).name


def _is_nifti_header(head: bytes) -> bool:
    if len(head) < 348:
        return False
    size_le = int.from_bytes(head[:4], "little")
    size_be = int.from_bytes(head[:4], "big")
    if 348 in (size_le, size_be):
        return head[344:348] in (b"n+1\x00", b"ni1\x00")
    return 540 in (size_le, size_be) and head[4:8] in (b"n+2\x00", b"ni2\x00")


def _gunzip_head(data: bytes, n: int = 544) -> bytes:
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, n)
    except zlib.error:  # handled: not a gzip stream, so not a gzipped NIfTI; discovery tries the other kinds
        return b""


DICOM_ERRORS = (
    InvalidDicomError,
    BytesLengthException,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    OverflowError,
    NotImplementedError,
    struct.error,
    zlib.error,
)
"""What pydicom raises on a damaged file or value (deflate errors, unknown VRs, bad numbers …)."""


def safe_message(err: BaseException) -> str:
    """``Type: message`` of a parser's exception, cut before the first quoted value: pydicom and numpy quote the
    offending bytes, which may be a patient's name, and reasons reach published tables."""
    text = str(err).splitlines()[0] if str(err) else ""
    cut = min((i for i in (text.find("'"), text.find('"')) if i >= 0), default=len(text))
    text = text[:cut].removesuffix(" b").rstrip(" :(")[:120]
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _dicom_info(data: bytes) -> tuple[DicomInfo | None, str]:
    """(header facts, "") or (None, why the header cannot be parsed)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        frames = ds.get("NumberOfFrames", 1) or 1
        return DicomInfo(
            patient_id=str(ds.get("PatientID", "") or ""),
            patient_name=str(ds.get("PatientName", "") or ""),
            study_uid=str(ds.get("StudyInstanceUID", "") or ""),
            series_uid=str(ds.get("SeriesInstanceUID", "") or ""),
            sop_uid=str(ds.get("SOPInstanceUID", "") or ""),
            modality=str(ds.get("Modality", "") or ""),
            image_type=tuple(str(v) for v in (ds.get("ImageType") or ())),
            frames=int(frames) if float(frames) == float(frames) else 1,
        ), ""
    except DICOM_ERRORS as err:  # recorded: the file is quarantined with this reason (group.build_units)
        return None, safe_message(err)


def _sidecar_id(data: bytes) -> tuple[bool, str | None]:
    """(is a Teeth3DS sidecar, its id_patient), from one C-level parse (sidecars hold a label per vertex)."""
    try:
        doc = orjson.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):  # handled: not JSON, so not a sidecar; other kinds tried
        return False, None
    if not isinstance(doc, dict) or not set(doc) >= _SIDECAR_KEYS:
        return False, None
    ident = doc.get("id_patient")
    return True, str(ident) if isinstance(ident, str | int) and str(ident).strip() else None


def _is_obj(head: bytes) -> bool:
    text = head.decode("latin-1")
    lines = [line.strip() for line in text.splitlines()[:-1]]
    return any(line.startswith("v ") for line in lines) and all(
        not line or line[0] in "#vfgosmu" for line in lines[:50]
    )


def sniff(name: str, data: bytes) -> tuple[Kind, str]:
    """(kind, format) of a file from its content; the name's suffix only breaks ties for emptied meshes."""
    kind, fmt, _ = _sniff(name, data)
    return kind, fmt


def _sniff(name: str, data: bytes) -> tuple[Kind, str, str | None]:
    """:func:`sniff` and, for a sidecar, its ``id_patient`` (so the JSON is parsed once)."""
    suffix = PurePosixPath(name).suffix.lower()
    if not data:
        return "empty", "", None
    head = data[:4096]
    if head[128:132] == b"DICM":
        return "dicom", "dicom", None
    if head[:2] == b"\x1f\x8b":
        return ("volume", "nifti", None) if _is_nifti_header(_gunzip_head(data)) else ("other", "", None)
    if _is_nifti_header(head):
        return "volume", "nifti", None
    if head.startswith(b"NRRD"):
        return "volume", "nrrd", None
    if head.lstrip().startswith(b"ObjectType") and b"ElementDataFile" in data[:8192]:
        return "volume", "mha", None
    if head.startswith(b"ply"):
        return "mesh", "ply", None
    if head.lstrip().startswith(b"<") and b"PolyData" in head:
        return "mesh", "vtp", None
    if len(data) >= 84 and len(data) == 84 + 50 * int.from_bytes(data[80:84], "little"):
        return "mesh", "stl", None
    if head.lstrip().startswith(b"solid") and b"facet" in head:
        return "mesh", "stl", None
    if head.lstrip().startswith(b"{"):
        ok, ident = _sidecar_id(data)
        return ("sidecar", "json", ident) if ok else ("other", "json", None)
    if _is_obj(head):
        return "mesh", "obj", None
    if suffix in _MESH_SUFFIXES:
        return "mesh", _MESH_SUFFIXES[suffix], None
    return "other", "", None


def describe(path: str, data: bytes) -> FileRecord:
    """A :class:`FileRecord` for one file's bytes."""
    kind, fmt, sidecar_id = _sniff(path, data)
    digest = hashlib.sha256(data).hexdigest()
    info, why = _dicom_info(data) if kind == "dicom" else (None, "")
    header_id: str | None = None
    note = ""
    if kind == "dicom":
        if info is None:
            note = f"DICOM preamble but the header cannot be parsed ({why})"
        else:
            header_id = info.patient_id or None
    elif kind == "sidecar":
        header_id = sidecar_id
    return FileRecord(
        path=path, size=len(data), sha256=digest, kind=kind, fmt=fmt, dicom=info, header_id=header_id, note=note
    )


def discover(
    source: Source, *, files: Sequence[str] | None = None, progress: Callable[[int], None] | None = None
) -> list[FileRecord]:
    """Read every file of ``source`` once: hash, kind, header facts. Sorted by path. ``files``: only these (relative
    paths of its :meth:`~toothmcl_data.io.fs.Source.list_files`) — a batch, when a drop is discovered on several
    workers at once."""
    records: list[FileRecord] = []
    for n, rel in enumerate(sorted(files) if files is not None else source.list_files(), start=1):
        records.append(describe(rel, source.read_bytes(rel)))
        if progress is not None:
            progress(n)
    log.info("discovered %d files under %s", len(records), source.url)
    return records
