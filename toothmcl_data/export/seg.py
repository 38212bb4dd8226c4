"""FDI label maps as DICOM Segmentation objects (highdicom) and NIfTI, referencing their CBCT series.

A SEG must reference the image series it segments. Geometry decides which source slice a SEG frame belongs
to: each source dataset's ImagePositionPatient is mapped through the volume's affine to its slice index ``k``
(it must land on the grid, with ImageOrientationPatient, PixelSpacing, Rows and Columns matching), and its
frame is ``labels[:, :, k].T`` — the transpose :mod:`toothmcl_data.io.dicom` applies when it reads a series
(``i`` = column, ``j`` = row). So any slice order and any right- or left-handed series work.

Where the source series comes from:

- a published version keeps no DICOM headers or UIDs (the store holds the de-identified volume, its LPS
  affine and content hashes). :func:`export_seg` therefore references, in order of preference, (1) the
  de-identified series the curation flow left in its working folder (``STORE.work/cases/<pseudonym>/cbct/``)
  when its geometry matches the published volume, copied beside the SEG; else (2) a CT series rebuilt from the
  published volume (:func:`series_from_volume`): one CT Image Storage file per slice, int16 values exactly as
  stored (RescaleSlope 1, RescaleIntercept 0), the pseudonym as PatientName/PatientID, no dates, and UIDs
  derived from the case's content hash (:func:`derived_uid`), so exporting a version twice gives the same UIDs;
- ``toothmcl-models predict cbct --format dicom-seg`` references the user's own input series when the input
  was DICOM, else the same rebuilt series.

One segment per FDI tooth present, numbered 1… in ascending FDI order, labelled ``"FDI 16 upper right first
molar"``, property category Anatomical Structure and property type the tooth's SNOMED CT code
(:mod:`toothmcl_data.export.toothcodes`), display colour from the ``fdi_colors`` table.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from toothmcl_data import __version__
from toothmcl_data.errors import DependencyError, InputError, StoreError
from toothmcl_data.export.toothcodes import ANATOMICAL_STRUCTURE, tooth_code
from toothmcl_data.fdi import load_color_table
from toothmcl_data.fdi.teeth import tooth
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.types import Volume

log = logging.getLogger(__name__)

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
_GRID_TOLERANCE = 1e-3
"""Largest distance (in voxels) of a source slice's position from the volume grid, and of direction cosines."""


def derived_uid(*parts: str) -> str:
    """A ``2.25.<decimal>`` UID (≤ 64 characters) from sha256 of ``parts``: the same parts give the same UID."""
    digest = hashlib.sha256("\x00".join(("toothmcl-export", *parts)).encode()).digest()
    return f"2.25.{int.from_bytes(digest[:16], 'big')}"


def _geometry(volume: Volume) -> tuple[list[float], list[float]]:
    """(ImageOrientationPatient (6,), PixelSpacing [row, column] mm) of slices ``array[:, :, k].T``."""
    a = volume.affine[:3, :3]
    di, dj = np.linalg.norm(a[:, 0]), np.linalg.norm(a[:, 1])
    x, y = a[:, 0] / di, a[:, 1] / dj
    if abs(float(x @ y)) > _GRID_TOLERANCE:
        raise InputError(
            f"cannot write DICOM slices of this volume: its i and j axes are not orthogonal (cos {float(x @ y):.3g})"
        )
    return [float(v) for v in (*x, *y)], [float(dj), float(di)]


def series_from_volume(
    volume: Volume, *, pseudonym: str, uid_seed: str, description: str = "toothmcl CBCT"
) -> list[Dataset]:
    """A de-identified CT series of ``volume`` ((I, J, K) integer values, LPS affine): one dataset per slice k.

    Pixel data are ``array[:, :, k].T`` as int16 (PixelRepresentation 1, Rescale 1/0: the stored values
    exactly); PatientName and PatientID are ``pseudonym``; dates and times are empty (Type 2); UIDs are
    :func:`derived_uid` of ``uid_seed``. Returns the datasets (with file meta) in order of ``k``.
    """
    values = np.asarray(volume.array)
    if not np.issubdtype(values.dtype, np.integer) or values.min() < -32768 or values.max() > 32767:
        raise InputError(f"case {pseudonym}: a CT series needs int16 values, got dtype {values.dtype}")
    iop, spacing = _geometry(volume)
    study, series, frame = (derived_uid(uid_seed, role) for role in ("study", "series", "frame"))
    thickness = float(abs(np.linalg.det(volume.affine[:3, :3])) / (spacing[0] * spacing[1]))
    out: list[Dataset] = []
    for k in range(volume.shape[2]):
        ds = Dataset()
        sop = derived_uid(uid_seed, "sop", str(k))
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
        ds.file_meta.MediaStorageSOPInstanceUID = UID(sop)
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.PatientName, ds.PatientID = f"{pseudonym}^", pseudonym
        ds.PatientBirthDate = ds.PatientSex = ds.StudyDate = ds.StudyTime = ""
        ds.ReferringPhysicianName = ds.StudyID = ds.AccessionNumber = ds.PositionReferenceIndicator = ""
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "toothmcl: rebuilt from a de-identified published volume"
        ds.Modality, ds.Manufacturer, ds.SeriesDescription = "CT", "", description
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        ds.ImageType = ["DERIVED", "SECONDARY", "AXIAL"]
        ds.ImageOrientationPatient = iop
        ds.ImagePositionPatient = [float(v) for v in (volume.affine @ [0.0, 0.0, float(k), 1.0])[:3]]
        ds.PixelSpacing = spacing
        ds.SliceThickness = round(thickness, 6)
        ds.Rows, ds.Columns = volume.shape[1], volume.shape[0]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.BurnedInAnnotation = "NO"
        ds.PixelData = np.ascontiguousarray(values[:, :, k].T).astype("<i2").tobytes()
        out.append(ds)
    return out


def read_series_headers(folder: Path) -> list[Dataset]:
    """The headers (no pixel data) of every DICOM file directly in ``folder``, in file-name order."""
    files = sorted(p for p in Path(folder).iterdir() if p.is_file())
    out = []
    for path in files:
        try:
            out.append(pydicom.dcmread(path, stop_before_pixels=True))
        except pydicom.errors.InvalidDicomError as err:
            raise InputError(f"{path}: not a DICOM file; a source series folder holds only its slices") from err
    if not out:
        raise InputError(f"{folder}: no DICOM files; expected the slices of one CT series")
    return out


def slice_indices(datasets: Sequence[Dataset], volume: Volume, where: str) -> NDArray[np.int64]:
    """The slice index ``k`` of ``volume`` each single-frame dataset shows; raises where geometry disagrees."""
    iop, spacing = _geometry(volume)
    inverse = np.linalg.inv(volume.affine)
    out = np.empty(len(datasets), dtype=np.int64)
    for n, ds in enumerate(datasets):
        rows, cols = int(ds.Rows), int(ds.Columns)
        got_iop = np.asarray(ds.ImageOrientationPatient, dtype=np.float64)
        ijk = (inverse @ [*map(float, ds.ImagePositionPatient), 1.0])[:3]
        k = int(round(ijk[2]))
        ok = (rows, cols) == (volume.shape[1], volume.shape[0])
        ok &= bool(np.allclose(got_iop, iop, atol=_GRID_TOLERANCE))
        ok &= bool(np.allclose(np.asarray(ds.PixelSpacing, dtype=np.float64), spacing, rtol=_GRID_TOLERANCE))
        ok &= bool(np.all(np.abs(ijk - [0.0, 0.0, k]) < _GRID_TOLERANCE)) and 0 <= k < volume.shape[2]
        if not ok:
            raise InputError(
                f"{where}: DICOM slice {ds.get('SOPInstanceUID', n)} does not lie on the volume grid (position "
                f"{ijk.round(3).tolist()} in voxels, {rows}×{cols} pixels, orientation {got_iop.round(4).tolist()}; "
                f"expected slice k of {volume.shape[1]}×{volume.shape[0]}, orientation {np.round(iop, 4).tolist()})"
                "; pass the series the label map was made on"
            )
        out[n] = k
    if len(set(out.tolist())) != len(out):
        raise InputError(f"{where}: two DICOM slices sit at the same position; expected one series")
    return out


@dataclass(frozen=True)
class SegmentTable:
    """FDI code of each segment number (segment ``n`` is ``fdi[n - 1]``), ascending FDI."""

    fdi: tuple[int, ...]

    @classmethod
    def from_labels(cls, labels: NDArray[np.integer], where: str) -> SegmentTable:
        codes = np.unique(np.asarray(labels))
        codes = codes[codes != 0]
        bad = [int(c) for c in codes if c < 11]
        if bad:
            raise InputError(f"{where}: label map holds code(s) {bad}, expected 0 (background) or FDI teeth")
        return cls(tuple(tooth(int(c)).fdi for c in codes))

    def numbers(self, labels: NDArray[np.integer]) -> NDArray[np.uint8]:
        """FDI label array → segment numbers (0 background), uint8 (at most 52 teeth)."""
        lut = np.zeros(90, dtype=np.uint8)
        lut[list(self.fdi)] = np.arange(1, len(self.fdi) + 1, dtype=np.uint8)
        return lut[np.asarray(labels, dtype=np.int64)]


def _hd() -> Any:
    try:
        import highdicom
    except ModuleNotFoundError as err:
        raise DependencyError(
            "DICOM-SEG export needs highdicom; install it with pip install 'toothmcl[dicomseg]'"
        ) from err
    return highdicom


def segment_descriptions(table: SegmentTable, *, algorithm: str | None, version: str) -> list[Any]:
    """highdicom SegmentDescriptions: MANUAL when ``algorithm`` is None, else AUTOMATIC by that algorithm."""
    hd = _hd()
    from pydicom.sr.codedict import codes

    colors = load_color_table("fdi_colors")
    ident = None
    if algorithm is not None:
        ident = hd.AlgorithmIdentificationSequence(
            name=algorithm, family=codes.DCM.ArtificialIntelligence, version=version
        )
    out = []
    for number, fdi in enumerate(table.fdi, start=1):
        r, g, b = (int(v) for v in colors.colors_for([fdi])[0])
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=f"FDI {fdi} {tooth(fdi).name}",
                segmented_property_category=ANATOMICAL_STRUCTURE,
                segmented_property_type=tooth_code(fdi),
                algorithm_type="AUTOMATIC" if algorithm else "MANUAL",
                algorithm_identification=ident,
                tracking_id=f"FDI {fdi}",
                tracking_uid=derived_uid("segment", str(fdi)),
                display_color=hd.color.CIELabColor.from_rgb(r, g, b),
            )
        )
    return out


def build_segmentation(
    datasets: Sequence[Dataset],
    labels: Volume,
    *,
    uid_seed: str,
    algorithm: str | None = None,
    version: str = "",
    where: str = "label map",
) -> tuple[Any, SegmentTable]:
    """A BINARY DICOM Segmentation of ``labels`` (FDI on the grid of ``datasets``) and its segment table.

    datasets: the single-frame source slices (headers suffice); their positions pick the frames
    (:func:`slice_indices`). UIDs of the SEG are :func:`derived_uid` of ``uid_seed``.
    """
    hd = _hd()
    ks = slice_indices(datasets, labels, where)
    table = SegmentTable.from_labels(labels.array, where)
    if not table.fdi:
        raise InputError(f"{where}: the label map holds no tooth; nothing to segment")
    frames = np.stack([table.numbers(labels.array[:, :, k].T) for k in ks])
    seg = hd.seg.Segmentation(
        source_images=list(datasets),
        pixel_array=frames,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segment_descriptions(table, algorithm=algorithm, version=version),
        series_instance_uid=derived_uid(uid_seed, "seg-series"),
        series_number=100,
        sop_instance_uid=derived_uid(uid_seed, "seg-sop"),
        instance_number=1,
        manufacturer="toothmcl",
        manufacturer_model_name="toothmcl export seg",
        software_versions=version or "0",
        device_serial_number="0",
        content_label="TEETH",
        content_description="FDI teeth",
        series_description="FDI teeth",
    )
    return seg, table


@dataclass(frozen=True)
class SegExport:
    """What was written for one case: paths, the source series used and the segment table."""

    pseudonym: str
    seg: Path
    nifti: Path
    series: Path
    source: str
    """``"deidentified-series"`` (the flow's working copy) or ``"rebuilt-from-store"``."""
    study_uid: str
    series_uid: str
    seg_series_uid: str
    fdi_by_segment: dict[int, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}


def write_case(
    out: Path,
    pseudonym: str,
    cbct: Volume,
    labels: Volume,
    *,
    uid_seed: str,
    deidentified: Path | None = None,
    algorithm: str | None = None,
    version: str = "",
) -> SegExport:
    """Write ``out/<pseudonym>/{cbct/, seg.dcm, labels.nii.gz}`` for one case (see the module docstring).

    cbct: the published (I, J, K) int16 volume, LPS affine. labels: FDI label map on the same grid.
    deidentified: the flow's de-identified series folder, used when its geometry matches ``cbct``.
    """
    where = f"case {pseudonym}"
    if labels.shape != cbct.shape or not np.allclose(labels.affine, cbct.affine, atol=1e-6):
        raise StoreError(f"{where}: label map grid {labels.shape} differs from the CBCT grid {cbct.shape}")
    folder = out / pseudonym
    series_dir = folder / "cbct"
    shutil.rmtree(series_dir, ignore_errors=True)
    series_dir.mkdir(parents=True)
    datasets: list[Dataset] | None = None
    source = "rebuilt-from-store"
    if deidentified is not None and deidentified.is_dir():
        try:
            datasets = read_series_headers(deidentified)
            slice_indices(datasets, cbct, f"{where} ({deidentified})")
            for path in sorted(p for p in deidentified.iterdir() if p.is_file()):
                shutil.copy2(path, series_dir / path.name)
            source = "deidentified-series"
        except InputError as err:
            log.warning("%s: not using the de-identified series %s: %s", where, deidentified, err)
            datasets = None
    if datasets is None:
        datasets = series_from_volume(cbct, pseudonym=pseudonym, uid_seed=uid_seed)
        for k, ds in enumerate(datasets):
            ds.save_as(series_dir / f"CT{k + 1:05d}.dcm", enforce_file_format=True)
    seg, table = build_segmentation(
        datasets, labels, uid_seed=uid_seed, algorithm=algorithm, version=version, where=where
    )
    seg.save_as(folder / "seg.dcm")
    nifti = write_nifti(
        folder / "labels.nii.gz", Volume(labels.array.astype(np.int16), labels.affine), descrip="FDI labels"
    )
    return SegExport(
        pseudonym,
        folder / "seg.dcm",
        nifti,
        series_dir,
        source,
        str(datasets[0].StudyInstanceUID),
        str(datasets[0].SeriesInstanceUID),
        str(seg.SeriesInstanceUID),
        {n: fdi for n, fdi in enumerate(table.fdi, start=1)},
    )


def write_seg_file(
    out: Path,
    labels: Volume,
    *,
    series_files: Sequence[Path] | None = None,
    volume: Volume | None = None,
    algorithm: str | None = None,
    version: str = "",
) -> dict[str, Any]:
    """Write one SEG file ``out`` for ``labels`` (FDI, (I, J, K), LPS affine) and say what it references.

    series_files: the single-frame DICOM slices the label map was made on (referenced where they are). Without
    them, ``volume`` (the image itself) is written as a CT series into ``<out stem>_cbct/`` beside ``out`` and
    referenced. UIDs derive from the label map's and the source's content. Returns facts for a report.
    """
    digest = hashlib.sha256(np.ascontiguousarray(labels.array).tobytes() + labels.affine.tobytes()).hexdigest()
    if series_files:
        datasets = [pydicom.dcmread(p, stop_before_pixels=True) for p in series_files]
        if any("ImagePositionPatient" not in ds for ds in datasets):
            raise InputError(
                f"{series_files[0]}: a multi-frame (enhanced) DICOM; DICOM-SEG output references single-frame "
                "slices only — use --format nifti, or convert the series to single-frame files first"
            )
        seed, source, folder = digest + str(datasets[0].SeriesInstanceUID), "input-series", Path(series_files[0]).parent
    else:
        if volume is None:
            raise InputError(f"{out}: DICOM-SEG output needs the source series or the image volume")
        values = np.asarray(volume.array)
        if not np.issubdtype(values.dtype, np.integer):
            values = np.clip(np.rint(values), -32768, 32767).astype(np.int16)
        folder = out.with_name(out.name.removesuffix(".dcm") + "_cbct")
        seed, source = digest, "rebuilt-series"
        datasets = series_from_volume(Volume(values, volume.affine), pseudonym="ANONYMOUS", uid_seed=seed)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for k, ds in enumerate(datasets):
            ds.save_as(folder / f"CT{k + 1:05d}.dcm", enforce_file_format=True)
    seg, table = build_segmentation(datasets, labels, uid_seed=seed, algorithm=algorithm, version=version, where=str(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(out)
    return {
        "seg_source": source,
        "series": str(folder),
        "series_uid": str(datasets[0].SeriesInstanceUID),
        "segments": {n: fdi for n, fdi in enumerate(table.fdi, start=1)},
    }


def export_seg(
    store: str | Path,
    version: str,
    out: str | Path,
    *,
    work: str | Path | None = None,
    cases: Sequence[str] | None = None,
    dry_run: bool = False,
    progress: Callable[[], object] | None = None,
) -> list[SegExport]:
    """Export every case of ``version`` that has a CBCT label map as DICOM-SEG + NIfTI under ``out``.

    work: the curation flow's working folder (default ``STORE.work``); its de-identified series are
    referenced where present. cases: only these pseudonyms. Writes ``out/export.json`` (the manifest) last.
    With ``dry_run`` nothing is written and the cases that would be exported are returned with empty paths.
    ``progress`` is called once per case.
    """
    from toothmcl_data.store import open_version

    reader = open_version(store, version)
    rows = {r["pseudonym"]: r for r in reader.table("cases").to_pylist()}
    wanted = list(cases) if cases else sorted(rows)
    unknown = sorted(set(wanted) - set(rows))
    if unknown:
        raise StoreError(f"store {store} version {version}: no case(s) {unknown}; see `toothmcl-data version show`")
    work_dir = Path(work) if work else Path(str(store).rstrip("/") + ".work")
    out = Path(out)
    done: list[SegExport] = []
    for pn in wanted:
        if progress is not None:
            progress()
        if not rows[pn].get("has_labels") or not rows[pn].get("has_cbct"):
            log.info("case %s has no CBCT label map; skipped", pn)
            continue
        if dry_run:
            done.append(SegExport(pn, Path(), Path(), Path(), "", "", "", ""))
            continue
        cbct, labels = reader.cbct(pn), reader.cbct_labels(pn)
        if cbct is None or labels is None:
            raise StoreError(f"store {store} version {version}: case {pn} lists a label map but has none")
        done.append(
            write_case(
                out,
                pn,
                cbct,
                labels,
                uid_seed=str(rows[pn]["content_sha256"]),
                deidentified=work_dir / "cases" / pn / "cbct",
                version=__version__,
            )
        )
    if not dry_run:
        manifest = {"store": str(store), "version": version, "cases": [d.to_dict() for d in done]}
        (out / "export.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return done
