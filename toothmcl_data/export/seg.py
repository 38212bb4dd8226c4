"""FDI label maps as DICOM Segmentation objects (highdicom) and NIfTI, referencing their CBCT series.

A SEG must reference the image series it segments. Geometry decides which source slice a SEG frame belongs
to (:func:`toothmcl_data.export.series.slice_indices`), so any slice order and any right- or left-handed series
work.

Where the source series comes from:

- a published version keeps no DICOM headers or UIDs (the store holds the de-identified volume, its LPS
  affine and content hashes). :func:`export_seg` therefore references, in order of preference, (1) the
  de-identified series the curation flow left in its working folder (``STORE.work/cases/<pseudonym>/cbct/``)
  when its geometry matches the published volume, copied beside the SEG; else (2) a CT series rebuilt from the
  published volume (``series.series_from_volume``): one CT Image Storage file per slice, int16 values exactly
  as stored (RescaleSlope 1, RescaleIntercept 0), the pseudonym as PatientName/PatientID, no dates, and UIDs
  derived from the case's content hash (``series.derived_uid``), so exporting a version twice gives the same
  UIDs;
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
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from numpy.typing import NDArray
from pydicom.dataset import Dataset

from toothmcl_data import __version__
from toothmcl_data.errors import DependencyError, InputError, StoreError
from toothmcl_data.export.series import derived_uid, read_series_headers, series_from_volume, slice_indices
from toothmcl_data.export.toothcodes import ANATOMICAL_STRUCTURE, tooth_code
from toothmcl_data.fdi import load_color_table
from toothmcl_data.fdi.teeth import tooth
from toothmcl_data.io.volume import write_nifti
from toothmcl_data.types import Volume

log = logging.getLogger(__name__)


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
    with warnings.catch_warnings():
        # de-identified series carry the pseudonym as a one-component PatientName, which highdicom flags
        warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
        seg = _segmentation(hd, datasets, frames, table, uid_seed=uid_seed, algorithm=algorithm, version=version)
    return seg, table


def _segmentation(
    hd: Any,
    datasets: Sequence[Dataset],
    frames: NDArray[np.uint8],
    table: SegmentTable,
    *,
    uid_seed: str,
    algorithm: str | None,
    version: str,
) -> Any:
    return hd.seg.Segmentation(
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
    datasets: list[Dataset]
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
    seg, table = build_segmentation(
        datasets, labels, uid_seed=seed, algorithm=algorithm, version=version, where=str(out)
    )
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

    if not dry_run:
        _hd()  # a missing highdicom fails before anything is written
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
