"""Read and write NIfTI volumes (``.nii`` / ``.nii.gz``), converting NIfTI's RAS world to the library's LPS.

On disk a NIfTI affine maps ``(i, j, k, 1)`` to RAS mm; in memory :class:`~toothmcl_data.types.Volume` maps it
to LPS mm. The voxel array is the same in both (no flip of the data): only the affine changes,
``affine_lps = LPS_FROM_RAS @ affine_ras``.

Written files are deterministic: the gzip stream carries no time stamp and no file name.
"""

from __future__ import annotations

import logging
import math
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, cast

import nibabel as nib
import numpy as np
from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError

from toothmcl_data.errors import InputNotFoundError, VolumeError
from toothmcl_data.types import LPS_FROM_RAS, Volume

log = logging.getLogger(__name__)

_NIFTI_TEXT_FIELDS = {"descrip": 80, "aux_file": 24, "intent_name": 16}
"""NIfTI-1 header text fields and their sizes in bytes."""


_NIBABEL_ERRORS = (ImageFileError, HeaderDataError, OSError, EOFError, ValueError, OverflowError, zlib.error)
"""What nibabel raises on a damaged file (gzip.BadGzipFile is an OSError); each becomes a VolumeError."""
_CHUNK = 1 << 20


def _unreadable(path: Path, err: Exception) -> VolumeError:
    return VolumeError(
        f"cannot read NIfTI file {path}: {type(err).__name__}: {err}; the file is truncated or not NIfTI — re-export it"
    )


def _gzip_head(fh: BinaryIO) -> bytes:
    """The first 544 bytes of the gzip stream of ``fh`` (fewer when it holds fewer); ``fh`` is left anywhere."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    head = b""
    while len(head) < 544 and not inflate.eof and (chunk := fh.read(4096)):
        head += inflate.decompress(chunk, 544 - len(head))
    return head


def _inflate(fh: BinaryIO, keep: int) -> tuple[bytes, int]:
    """(the first ``keep`` bytes of the gzip stream of ``fh``, the stream's whole size), decompressing in 1 MiB
    steps: memory grows with what the stream really holds, never with what a header declares, and what lies past
    ``keep`` is checked (to the end marker and checksum) but not kept. EOFError for a stream without its end."""
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
    parts: list[bytes] = []
    size = 0
    while not inflate.eof and (chunk := fh.read(_CHUNK)):
        while chunk and not inflate.eof:
            data = inflate.decompress(chunk, _CHUNK)
            chunk = inflate.unconsumed_tail
            if size < keep:
                parts.append(data if size + len(data) <= keep else data[: keep - size])
            size += len(data)
    if not inflate.eof:
        raise EOFError("the gzip stream ends before its end marker")
    return b"".join(parts), size


def _header_fields(path: Path, head: bytes) -> tuple[list[int], int, int]:
    """(shape, bytes per voxel, vox_offset) of a NIfTI header, each checked (see :func:`check_nifti_header`)."""
    if len(head) < 348:
        raise VolumeError(f"NIfTI file {path} holds {len(head)} header bytes, expected at least 348; re-export it")
    order = next((o for o in "<>" if struct.unpack_from(o + "i", head, 0)[0] in (348, 540)), None)
    if order is None:
        raise VolumeError(
            f"NIfTI file {path} has sizeof_hdr {struct.unpack_from('<i', head, 0)[0]}, expected 348 or 540"
        )
    two = struct.unpack_from(order + "i", head, 0)[0] == 540
    if two and len(head) < 540:
        raise VolumeError(f"NIfTI-2 file {path} holds {len(head)} header bytes, expected 540; re-export it")
    code = struct.unpack_from(order + "h", head, 12 if two else 70)[0]
    dims = struct.unpack_from(order + ("8q" if two else "8h"), head, 16 if two else 40)
    offset = float(struct.unpack_from(order + ("q" if two else "f"), head, 168 if two else 108)[0])
    if not 1 <= dims[0] <= 7:
        raise VolumeError(f"NIfTI file {path} has rank dim[0] = {dims[0]}, expected 1..7; fix the header")
    shape = [int(d) for d in dims[1 : dims[0] + 1]]
    if min(shape) < 1:
        raise VolumeError(f"NIfTI file {path} has dimensions {shape}, expected sizes ≥ 1; fix the header")
    if code not in nib.nifti1.data_type_codes.value_set() or code in (0, 2048):
        raise VolumeError(f"NIfTI file {path} has datatype code {code}, which is not a NIfTI voxel type; re-export it")
    voxel: np.dtype[Any] = np.dtype(cast(Any, nib.nifti1.data_type_codes.dtype[code]))
    if voxel.kind not in "iuf":
        raise VolumeError(
            f"NIfTI file {path} has datatype code {code} ({voxel}), expected scalar integer or float intensities; "
            "convert it to a grey-value volume"
        )
    minimum = 544 if two else 352
    if not math.isfinite(offset) or offset < minimum:
        raise VolumeError(
            f"NIfTI file {path} has vox_offset {offset}, expected a finite offset ≥ {minimum} (after the header); "
            "fix the header or re-export"
        )
    return shape, voxel.itemsize, int(offset)


def check_nifti_header(path: Path) -> bytes | None:
    """Check a NIfTI file's header against its own size before anything is allocated from it.

    Refuses (VolumeError naming the file, the field and the fix): a rank outside 1..7, a negative or zero size,
    an unknown datatype, a ``vox_offset`` that is not finite or points into the header, and a declared data
    size (product of ``dim`` × bytes per voxel, after ``vox_offset``) larger than the stored bytes (for
    ``.nii.gz`` the decompressed stream, counted in bounded memory).

    Returns, for a ``.nii.gz``, the decompressed file up to the end of its declared data (the one decompression:
    the voxels are read from these bytes), and None for a plain ``.nii`` (read from the file itself).
    """
    data: bytes | None = None
    try:
        with path.open("rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
            fh.seek(0)
            head = _gzip_head(fh) if gzipped else fh.read(544)
            shape, itemsize, offset = _header_fields(path, head)
            declared = math.prod(shape) * itemsize
            if gzipped:
                fh.seek(0)
                data, stored = _inflate(fh, offset + declared)
            else:
                stored = path.stat().st_size
    except (OSError, EOFError, zlib.error) as err:
        raise _unreadable(path, err) from err
    if offset + declared > stored:
        raise VolumeError(
            f"NIfTI file {path} declares {shape} voxels of {itemsize} bytes from offset {offset} "
            f"({offset + declared} bytes) but holds {stored} bytes; the file is truncated or its header "
            "is wrong — re-export it"
        )
    return data


def _from_bytes(data: bytes) -> Any:
    """A NIfTI-1 or -2 image parsed from the bytes of a whole (decompressed) file."""
    two = struct.unpack_from("<i", data, 0)[0] == 540 or struct.unpack_from(">i", data, 0)[0] == 540
    return (nib.Nifti2Image if two else nib.Nifti1Image).from_bytes(data)


def read_nifti(path: Path) -> Volume:
    """Read a 3-D NIfTI file into a :class:`Volume` with an LPS affine.

    The affine is the sform when ``sform_code > 0``, else the qform (nibabel's choice). Data come back in the
    file's own dtype when the header has no scaling (``scl_slope`` 0/NaN or 1 with ``scl_inter`` 0), else as
    float64 after scaling. A 4-D file with a single volume is accepted and squeezed.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"NIfTI file {path} does not exist; check the path")
    stored = check_nifti_header(path)
    try:
        img = nib.load(path) if stored is None else _from_bytes(stored)
    except _NIBABEL_ERRORS as err:
        raise _unreadable(path, err) from err
    if not isinstance(img, nib.Nifti1Image | nib.Nifti2Image):
        raise VolumeError(f"{path} is a {type(img).__name__}, expected NIfTI-1/2; convert it to .nii.gz")
    try:
        data = np.asarray(img.dataobj)
        affine_ras = np.asarray(img.affine, dtype=np.float64)
    except _NIBABEL_ERRORS as err:
        raise _unreadable(path, err) from err
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise VolumeError(
            f"NIfTI file {path} has shape {data.shape}, expected a 3-D volume; split the time/channel axis first"
        )
    if not np.all(np.isfinite(affine_ras)):
        raise VolumeError(
            f"NIfTI file {path} has a non-finite affine (NaN or inf in pixdim, quaternion or srow); fix the header"
        )
    if data.dtype.kind in "fc" and not np.all(np.isfinite(data)):
        raise VolumeError(
            f"NIfTI file {path} holds NaN or inf voxel values (or a scl_slope/scl_inter that makes them), expected "
            "finite intensities; fix the scaling fields or the data"
        )
    if abs(np.linalg.det(affine_ras[:3, :3])) < 1e-12:
        raise VolumeError(
            f"NIfTI file {path} has a singular affine (sform/qform missing or zero voxel size); "
            "fix the header's pixdim / srow fields"
        )
    return Volume(array=data, affine=LPS_FROM_RAS @ affine_ras)


def write_nifti(
    path: Path,
    volume: Volume,
    *,
    descrip: str = "",
    aux_file: str = "",
    intent_name: str = "",
    compresslevel: int = 6,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
) -> Path:
    """Write ``volume`` (LPS affine in memory) as NIfTI-1 with a RAS affine on disk (sform and qform, code 1).

    The data keep their dtype (int16 CBCT, uint8 labels …) unscaled. ``descrip`` (≤ 80 bytes), ``aux_file``
    (≤ 24) and ``intent_name`` (≤ 16) are ASCII header text; longer text is refused, not cut. A ``.gz`` suffix
    writes a gzip stream without time stamp or file name, so equal inputs give byte-identical files;
    ``compresslevel`` (1 fastest … 9 smallest) and ``strategy`` (e.g. ``zlib.Z_RLE``: about twice as fast as the
    default at level 1 on CBCT noise, for a few % more bytes) are zlib's.
    """
    path = Path(path)
    for name, value in (("descrip", descrip), ("aux_file", aux_file), ("intent_name", intent_name)):
        limit = _NIFTI_TEXT_FIELDS[name]
        try:
            size = len(value.encode("ascii"))
        except UnicodeEncodeError as err:
            raise VolumeError(f"NIfTI {name} for {path} must be ASCII, got {value!r}") from err
        if size > limit:
            raise VolumeError(f"NIfTI {name} for {path} holds at most {limit} bytes, got {size}: {value!r}")
    affine_ras = LPS_FROM_RAS @ volume.affine
    img = nib.Nifti1Image(np.asarray(volume.array), affine_ras)
    header = img.header
    header.set_sform(affine_ras, code=1)
    header.set_qform(affine_ras, code=1)
    header.set_xyzt_units(xyz="mm")
    header["descrip"] = descrip.encode("ascii")
    header["aux_file"] = aux_file.encode("ascii")
    header["intent_name"] = intent_name.encode("ascii")
    raw = img.to_bytes()
    path.write_bytes(_gzip(raw, compresslevel, strategy) if path.suffix == ".gz" else raw)
    log.debug("wrote NIfTI %s shape %s", path, volume.shape)
    return path


def _gzip(raw: bytes, level: int, strategy: int) -> bytes:
    """``raw`` as one gzip member without time stamp or file name, with zlib's ``strategy``: with the default
    strategy, byte for byte what ``gzip.compress(raw, level, mtime=0)`` writes (zlib's own gzip framing)."""
    deflate = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS, 8, strategy)
    return deflate.compress(raw) + deflate.flush()


def _read_itk(path: Path, what: str) -> Volume:
    """MetaImage / NRRD through SimpleITK (optional backend): ITK's physical space is LPS, as ours."""
    try:
        import SimpleITK
    except ImportError as err:
        raise VolumeError(
            f"reading {what} file {path} needs SimpleITK: `pip install SimpleITK` (or convert it to NIfTI)"
        ) from err
    try:
        img = SimpleITK.ReadImage(str(path))
    except RuntimeError as err:
        raise VolumeError(
            f"cannot read {what} file {path}: {err}; the file is truncated or corrupt — re-export it"
        ) from err
    if img.GetDimension() != 3 or img.GetNumberOfComponentsPerPixel() != 1:
        raise VolumeError(
            f"{what} file {path} is {img.GetDimension()}-D with {img.GetNumberOfComponentsPerPixel()} components, "
            "expected a 3-D scalar volume"
        )
    data = np.ascontiguousarray(SimpleITK.GetArrayFromImage(img).transpose(2, 1, 0))  # (k, j, i) → (i, j, k)
    direction = np.asarray(img.GetDirection(), dtype=np.float64).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, :3] = direction * np.asarray(img.GetSpacing(), dtype=np.float64)[None, :]
    affine[:3, 3] = img.GetOrigin()
    return Volume(array=data, affine=affine)


_VOLUME_READERS = {"nifti": "NIfTI", "mha": "MetaImage", "nrrd": "NRRD"}


def read_volume(path: Path, *, fmt: str | None = None) -> Volume:
    """Read a CBCT volume file (NIfTI, MetaImage ``.mha``/``.mhd``, NRRD) into an LPS :class:`Volume`.

    ``fmt`` (``"nifti"``, ``"mha"``, ``"nrrd"``) comes from content sniffing (:mod:`toothmcl_data.io.discover`);
    without it the suffix decides. MHA/NRRD use SimpleITK (optional: ``pip install SimpleITK``); their world
    is LPS already, so orientation is preserved as written.
    """
    path = Path(path)
    if fmt is None:
        name = path.name.lower()
        fmt = "mha" if name.endswith((".mha", ".mhd")) else "nrrd" if name.endswith((".nrrd", ".nhdr")) else "nifti"
    if fmt not in _VOLUME_READERS:
        raise VolumeError(f"{path}: unknown volume format {fmt!r}; expected one of {sorted(_VOLUME_READERS)}")
    if fmt == "nifti":
        return read_nifti(path)
    if not path.exists():
        raise InputNotFoundError(f"{_VOLUME_READERS[fmt]} file {path} does not exist; check the path")
    return _read_itk(path, _VOLUME_READERS[fmt])
