"""Apply a fine-tuned model to one user file: CBCT → FDI label map NIfTI, jaw scan → Teeth3DS JSON.

What ``toothmcl-models predict {cbct,ios}`` runs (the CLI parses, this module does the work):

- :func:`read_cbct_input`: a NIfTI/MHA/NRRD file or a folder holding one DICOM series → LPS :class:`Volume`.
- :func:`read_ios_input`: one ``.stl``/``.ply``/``.obj``/``.vtp`` scan → :class:`Mesh` in the file's vertex
  order (the readers of :mod:`toothmcl_data.io.mesh`; STL corners merged in order of first appearance).
- :func:`load_segmenter`: a fine-tuning checkpoint of the asked-for task (refuses pretraining checkpoints and
  the other task's, saying which it is).
- :func:`predict_cbct` / :func:`predict_ios`: the above + :func:`toothmcl_models.evaluate.predict_volume` /
  :func:`~toothmcl_models.evaluate.predict_mesh`, written with the input's geometry: the label map has the input's
  shape and voxel-to-world affine (NIfTI stores RAS, so a NIfTI input's affine comes back unchanged and a DICOM
  series' LPS geometry becomes the RAS affine nibabel, dcm2niix and 3D Slicer use); the JSON has one FDI label
  and one instance per mesh vertex, in the file's vertex order.

Inputs are told apart by content (:func:`toothmcl_data.io.discover.sniff`), so a mesh given to ``predict cbct``
or a volume given to ``predict ios`` is named as such, with the command to use instead.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from toothmcl_data.errors import ConfigError, InputError, InputNotFoundError, LabelSchemeError, MeshError, VolumeError
from toothmcl_data.io.discover import sniff
from toothmcl_data.io.palate import jaw_from_palate
from toothmcl_data.types import JAWS, Jaw, Mesh, Volume
from toothmcl_models.evaluate import predict_mesh, predict_volume, write_prediction_nifti, write_prediction_teeth3ds
from toothmcl_models.finetune import load_finetuned
from toothmcl_models.segconfig import FinetuneConfig
from toothmcl_models.segmentation import CBCTSegmenter, IOSSegmenter

log = logging.getLogger(__name__)

Task = Literal["cbct", "ios"]
OutputFormat = Literal["nifti", "dicom-seg"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("nifti", "dicom-seg")
"""``predict cbct`` outputs: an FDI label map NIfTI, or a DICOM Segmentation referencing the input series."""
CBCT_INPUTS = "a CBCT volume (NIfTI .nii/.nii.gz, MetaImage .mha, NRRD) or a folder holding one DICOM series"
IOS_INPUTS = "one jaw scan mesh (.stl, .ply, .obj or .vtp)"
MESH_SUFFIXES = (".stl", ".ply", ".obj", ".vtp")
NIFTI_SUFFIXES = (".nii.gz", ".nii")
_HEAD_BYTES = 4096
"""Bytes read to tell a file's kind from its content."""


def _a(task: str) -> str:
    """``a CBCT`` / ``an IOS``."""
    return {"cbct": "a CBCT", "ios": "an IOS"}.get(task, f"a {task!r}")


def _kind(path: Path) -> tuple[str, str]:
    """(kind, format) of a file from its first bytes (``sniff``'s kinds: dicom, volume, mesh, sidecar, empty, other)."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    return sniff(path.name, head)


def _is_dicom(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(132)[128:132] == b"DICM"


def dicom_slices(path: Path) -> list[Path]:
    """The DICOM files under folder ``path`` (recursively, by content; ``DICOMDIR`` skipped), sorted by path."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.upper() != "DICOMDIR")
    slices = [p for p in files if _is_dicom(p)]
    if not slices:
        raise InputError(
            f"{path}: folder holds no DICOM file ({len(files)} other file(s)); `predict cbct` expects "
            f"{CBCT_INPUTS} — pass the series folder, or the NIfTI file itself"
        )
    return slices


def read_cbct_input(path: Path) -> Volume:
    """The CBCT at ``path`` → :class:`Volume` ((I, J, K) scanner values, LPS affine mm).

    path: a NIfTI / MHA / NRRD file, a single (multi-frame) DICOM file, or a folder whose DICOM files (found
    recursively, by content; ``DICOMDIR`` skipped) form one series. Raises :class:`InputNotFoundError` for a
    missing path and :class:`InputError` naming the file, what it is and the fix for anything else.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file or folder; `predict cbct` expects {CBCT_INPUTS}")
    if path.is_dir():
        from toothmcl_data.io.dicom import read_series

        return read_series(dicom_slices(path))
    kind, fmt = _kind(path)
    if kind == "volume":
        from toothmcl_data.io.volume import read_volume

        return read_volume(path, fmt=fmt)
    if kind == "dicom":
        from toothmcl_data.io.dicom import read_series

        return read_series([path])
    if kind == "mesh":
        raise InputError(
            f"{path}: is an intraoral scan mesh ({fmt.upper()}), not a CBCT volume; `predict cbct` expects "
            f"{CBCT_INPUTS} — segment meshes with `toothmcl-models predict ios`"
        )
    if kind == "empty":
        raise VolumeError(f"{path}: file is empty (0 bytes); `predict cbct` expects {CBCT_INPUTS} — re-export it")
    raise VolumeError(
        f"{path}: content is not a volume this reader knows (kind {kind!r}); `predict cbct` expects {CBCT_INPUTS}"
    )


def read_ios_input(path: Path, *, jaw: Jaw | None = None) -> Mesh:
    """The jaw scan at ``path`` → :class:`Mesh` (vertices (n, 3) float64 mm in the scan's own frame, file order).

    ``jaw`` overrides the jaw found by :func:`~toothmcl_data.io.mesh.read_mesh` (a ``<stem>.json`` sidecar
    beside the scan, labels inside it, the file name's ``upper``/``lower``…); labels that cannot be read (no
    scheme for a VTP label array, a sidecar of another mesh) are ignored with a warning: prediction needs none.
    Raises :class:`InputNotFoundError` for a missing file, :class:`MeshError` for an empty or corrupt mesh,
    :class:`InputError` for a volume or DICOM given instead.
    """
    from toothmcl_data.io.mesh import read_mesh

    path = Path(path)
    if not path.exists():
        raise InputNotFoundError(f"{path}: no such file; `predict ios` expects {IOS_INPUTS}")
    if path.is_dir():
        raise InputError(
            f"{path}: is a folder; `predict ios` expects {IOS_INPUTS} — pass the scan file (a DICOM folder is a "
            "CBCT: use `toothmcl-models predict cbct`)"
        )
    kind, fmt = _kind(path)
    if kind in ("volume", "dicom"):
        raise InputError(
            f"{path}: is a CBCT volume ({fmt.upper()}), not an intraoral scan; `predict ios` expects {IOS_INPUTS} "
            "— segment volumes with `toothmcl-models predict cbct`"
        )
    if kind == "empty":
        raise MeshError(
            f"{path}: mesh file is empty (0 bytes), expected {IOS_INPUTS} with at least one triangle; "
            "re-export the scan"
        )
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(
            f"{path}: suffix {path.suffix!r} is not a mesh format; `predict ios` expects {IOS_INPUTS} — "
            "rename or convert the file"
        )
    if jaw is not None:
        return read_mesh(path, jaw=jaw, read_labels=False)
    try:  # labels are not needed, but a sidecar or the labels say which jaw the scan is
        return read_mesh(path)
    except (InputError, LabelSchemeError) as err:
        mesh = read_mesh(path, read_labels=False)  # raises again when the geometry itself is bad
        log.warning("tooth labels of the scan not used (prediction needs none): %s", err)
        return mesh


def _describe_checkpoint(checkpoint: Path, err: Exception) -> InputError:
    """An error saying what ``checkpoint`` is when it is not a fine-tuning checkpoint (read once more, on failure)."""
    from toothmcl_models.checkpoint import load_checkpoint

    folder = checkpoint / "checkpoints" if (checkpoint / "checkpoints").is_dir() else checkpoint
    config = load_checkpoint(folder).get("config")
    if isinstance(config, dict) and ({"tokens", "loss"} & set(config) or "segment" not in config):
        return InputError(
            f"{checkpoint}: is a ToothMCL pretraining checkpoint (contrastive encoders, no segmentation head), "
            "expected a fine-tuning checkpoint; fine-tune it first: `torchrun -m toothmcl_models.finetune "
            f"{{cbct,ios}} --init {checkpoint} …`, then predict with that run's folder"
        )
    return InputError(
        f"{checkpoint}: not a fine-tuning checkpoint this version can load ({err}); pass a run folder of "
        "`toothmcl_models.finetune`, its checkpoints/ folder or a step-*.pt file"
    )


def load_segmenter(checkpoint: Path, task: Task) -> tuple[nn.Module, FinetuneConfig]:
    """The fine-tuned network (eval mode, CPU) and config of ``checkpoint`` (run folder, checkpoints folder or
    step-*.pt file), refusing anything that is not a ``task`` fine-tuning checkpoint with a message naming it."""
    checkpoint = Path(checkpoint)
    if not checkpoint.exists():
        raise InputNotFoundError(
            f"{checkpoint}: no such checkpoint; `predict {task}` expects {_a(task)} fine-tuning run folder, its "
            "checkpoints/ folder or a step-*.pt file — check the path"
        )
    kind, fmt = _kind(checkpoint) if checkpoint.is_file() else ("folder", "")
    if kind in ("volume", "dicom", "mesh", "sidecar"):
        raise InputError(
            f"{checkpoint}: is a data file ({fmt}), not a checkpoint; pass --checkpoint {_a(task)} fine-tuning "
            "run folder or step-*.pt, and the data file as --input"
        )
    try:
        net, config = load_finetuned(checkpoint)
    except (ConfigError, KeyError, RuntimeError) as err:
        raise _describe_checkpoint(checkpoint, err) from err
    if config.task != task:
        raise InputError(
            f"{checkpoint}: is {_a(config.task)} fine-tuning checkpoint, expected {_a(task)} one; use it with "
            f"`toothmcl-models predict {config.task}`, or pass {_a(task)} fine-tuning run"
        )
    return net, config


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as err:
        raise InputError(f"--device {device!r} is not a torch device; use auto, cpu, cuda or cuda:N") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return resolved


def check_output(out: Path, task: Task, fmt: OutputFormat = "nifti") -> Path:
    """Refuse an output name of the wrong type before any work: ``.nii.gz``/``.nii`` (cbct), ``.dcm`` (cbct as
    DICOM-SEG), ``.json`` (ios)."""
    out = Path(out)
    name = out.name.lower()
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"--format {fmt!r}: expected one of {', '.join(OUTPUT_FORMATS)}")
    if task == "cbct" and fmt == "dicom-seg":
        if not name.endswith(".dcm"):
            raise InputError(f"--out {out}: --format dicom-seg writes one DICOM file; name it .dcm (e.g. seg.dcm)")
    elif task == "cbct" and not name.endswith(NIFTI_SUFFIXES):
        raise InputError(f"--out {out}: expected a NIfTI file name ending .nii.gz or .nii (e.g. seg.nii.gz)")
    if task == "ios" and not name.endswith(".json"):
        raise InputError(f"--out {out}: expected a Teeth3DS JSON file name ending .json (e.g. labels.json)")
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder; expected a file name")
    return out


def pad_one_voxel(volume: Volume) -> Volume:
    """``volume`` grown by one voxel on every side (edge values repeated), its affine shifted by −1 voxel per index
    axis, so ``padded.array[1:-1, 1:-1, 1:-1]`` is ``volume.array`` at the same world positions.

    Why: :func:`~toothmcl_models.evaluate.predict_volume` resamples onto an LPS grid at the training spacing that
    covers the voxel centres only up to rounding; with a float32 NIfTI affine (e.g. 1.2000000477 mm for 1.2 mm)
    the last plane of voxels maps a few µm outside that grid and comes back as background. Predicting on the
    padded volume and cropping keeps every input voxel strictly inside.
    """
    affine = volume.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.ones(3)
    return Volume(np.pad(np.asarray(volume.array), 1, mode="edge"), affine)


@dataclass(frozen=True)
class Prediction:
    """What one ``predict`` call wrote (the CLI prints it)."""

    task: Task
    input: Path
    output: Path | None
    facts: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "input": str(self.input), "output": str(self.output or ""), **self.facts}


def predict_cbct(
    checkpoint: Path,
    source: Path,
    out: Path,
    *,
    scheme: str | None = None,
    overlap: float = 0.25,
    device: str = "auto",
    dry_run: bool = False,
    fmt: OutputFormat = "nifti",
) -> Prediction:
    """Segment the CBCT ``source`` (see :func:`read_cbct_input`) with the CBCT fine-tuning ``checkpoint`` and
    write the label map to ``out`` (NIfTI, int16, the input's shape and affine; codes of ``scheme``: ``fdi``
    or ``toothfairy2``, default the run's ``segment.output_scheme``). ``dry_run``: check and read everything,
    predict and write nothing.

    ``fmt="dicom-seg"``: ``out`` is a DICOM Segmentation (:func:`toothmcl_data.export.seg.write_seg_file`, one
    segment per FDI tooth with its SNOMED CT code, AUTOMATIC by "toothmcl") that references the input's DICOM
    slices; a NIfTI/MHA/NRRD input is first written as a CT series into ``<out stem>_cbct/``."""
    out = check_output(out, "cbct", fmt)
    if not 0.0 <= overlap < 1.0:
        raise InputError(f"--overlap {overlap}: expected a fraction in [0, 1) of the window (e.g. 0.25)")
    if scheme not in (None, "fdi", "toothfairy2"):
        raise InputError(f"--scheme {scheme!r}: expected fdi or toothfairy2")
    if fmt == "dicom-seg" and scheme not in (None, "fdi"):
        raise InputError(f"--scheme {scheme}: DICOM-SEG segments are FDI teeth (SNOMED CT coded); drop --scheme")
    volume = read_cbct_input(source)
    net, config = load_segmenter(checkpoint, "cbct")
    where = _device(device)
    facts: dict[str, Any] = {
        "shape": list(volume.shape),
        "spacing_mm": [round(s, 4) for s in volume.spacing],
        "model_spacing_mm": config.data.spacing_mm,
        "window": list(config.data.crop_shape),
        "scheme": "fdi" if fmt == "dicom-seg" else scheme or config.segment.output_scheme,
        "device": str(where),
        "format": fmt,
    }
    if dry_run:
        return Prediction("cbct", Path(source), None, facts)
    start = time.perf_counter()
    padded = predict_volume(
        cast(CBCTSegmenter, net),  # load_segmenter checked the task
        pad_one_voxel(volume),
        spacing_mm=config.data.spacing_mm,
        roi=config.data.crop_shape,
        overlap=overlap,
        device=where,
    )
    pred = Volume(np.ascontiguousarray(padded.array[1:-1, 1:-1, 1:-1]), volume.affine.copy())
    facts["predict_seconds"] = round(time.perf_counter() - start, 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "dicom-seg":
        from toothmcl_data import __version__
        from toothmcl_data.export.seg import write_seg_file

        source = Path(source)
        files = dicom_slices(source) if source.is_dir() else [source] if _is_dicom(source) else None
        facts |= write_seg_file(out, pred, series_files=files, volume=volume, algorithm="toothmcl", version=__version__)
    else:
        write_prediction_nifti(out, pred, scheme=facts["scheme"])
    teeth, counts = np.unique(pred.array[pred.array > 0], return_counts=True)
    facts["teeth"] = {int(t): int(n) for t, n in zip(teeth, counts, strict=True)}
    return Prediction("cbct", Path(source), out, facts)


def predict_ios(
    checkpoint: Path,
    source: Path,
    out: Path,
    *,
    jaw: Jaw | None = None,
    id_patient: str | None = None,
    seed: int = 0,
    device: str = "auto",
    dry_run: bool = False,
) -> Prediction:
    """Segment the jaw scan ``source`` (see :func:`read_ios_input`) with the IOS fine-tuning ``checkpoint``
    and write a Teeth3DS JSON to ``out``: ``id_patient`` (default: the file stem), ``jaw``, per-vertex FDI
    ``labels`` (0 gingiva) and ``instances`` (0 gingiva, 1… per tooth) in the file's vertex order. ``jaw``:
    default the one :func:`read_ios_input` finds; ``seed`` draws the sampled points."""
    out = check_output(out, "ios")
    if jaw is not None and jaw not in JAWS:
        raise InputError(f"--jaw {jaw!r}: expected upper or lower")
    mesh = read_ios_input(source, jaw=jaw)
    net, config = load_segmenter(checkpoint, "ios")
    palate = None if jaw or mesh.jaw else jaw_from_palate(mesh)  # the scan's shape can only ever say upper
    which = jaw or mesh.jaw or palate
    if which is None:
        raise InputError(
            f"{source}: cannot tell which jaw the scan is (no readable sidecar or labels, no upper/lower in the "
            "file name, no palate); pass --jaw upper or --jaw lower"
        )
    if which not in config.segment.jaws:
        raise InputError(
            f"{source}: is a {which} jaw scan but {checkpoint} was fine-tuned on {'/'.join(config.segment.jaws)} "
            "scans only; pass a run trained on that jaw (or --jaw if the scan's jaw was misread)"
        )
    where = _device(device)
    facts: dict[str, Any] = {
        "jaw": which,
        "jaw_source": "argument" if jaw is not None else "palate" if palate else mesh.meta.get("jaw_source", "unknown"),
        "vertices": len(mesh.vertices),
        "faces": len(mesh.faces),
        "points": config.data.points,
        "device": str(where),
    }
    if dry_run:
        return Prediction("ios", Path(source), None, facts)
    start = time.perf_counter()
    labels, instances = predict_mesh(
        cast(IOSSegmenter, net),  # load_segmenter checked the task
        mesh,
        which,
        points=config.data.points,
        rng=np.random.default_rng(seed),
        frame=config.segment.frame,  # a canonical-frame run puts the scan in its own canonical pose, as trained
        device=where,
    )
    facts["predict_seconds"] = round(time.perf_counter() - start, 2)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_prediction_teeth3ds(out, labels, id_patient=id_patient or Path(source).stem, jaw=which, instances=instances)
    teeth, counts = np.unique(labels[labels > 0], return_counts=True)
    facts["teeth"] = {int(t): int(n) for t, n in zip(teeth, counts, strict=True)}
    return Prediction("ios", Path(source), out, facts)
