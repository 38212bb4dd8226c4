"""ToothFairy2 (nnU-Net layout) → store cases (CBCT-only, FDI label maps), and predictions back as ToothFairy2 MHA.

Layout (card ``catalogs/sources/toothfairy2.yaml``)::

    SRC/dataset.json                     # {"channel_names": {"0": …}, "labels": {name: id}, "file_ending": ".mha", …}
    SRC/imagesTr/<case>_0000.mha         # CBCT, ITK physical space = LPS mm
    SRC/labelsTr/<case>.mha              # ToothFairy2 ids: teeth 11–48 = FDI, anatomy 1–10 (→ 0 here)
    SRC/imagesTs/<case>_0000.mha         # optional, unlabelled (imported without a label map)

Each case becomes one CBCT-only store case (pseudonym = the dataset's case id, which is already anonymous) with
attributes ``source=toothfairy2``, ``source_id`` and ``official_split`` (``train`` for imagesTr, ``test`` for
imagesTs). No registration, no tooth pairs. :func:`write_prediction` writes ``<case><file_ending>`` with
ToothFairy2 ids on the image's grid, as nnU-Net's own predictions are laid out.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toothmcl_data.adapters.importing import counted, file_sha256, import_records, load_source_card
from toothmcl_data.errors import InputError, InputNotFoundError, LabelSchemeError
from toothmcl_data.fdi import from_fdi, load_scheme, to_fdi
from toothmcl_data.io.volume import read_volume
from toothmcl_data.store import CaseRecord, VersionInfo
from toothmcl_data.types import Case, Volume

CHANNEL_SUFFIX = "_0000"


@dataclass(frozen=True)
class ToothFairy2Case:
    """One case of the source folder: its id, image file, label file (None for test images), official split."""

    case_id: str
    image: Path
    label: Path | None
    split: str


def read_dataset_json(src: Path) -> dict[str, Any]:
    """``SRC/dataset.json``, checked: a ``labels`` table whose every id the ``toothfairy2`` scheme knows."""
    path = src / "dataset.json"
    if not path.is_file():
        raise InputNotFoundError(f"{path}: not found; a ToothFairy2 (nnU-Net) folder holds dataset.json at its root")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not valid JSON ({err}); re-download the dataset") from err
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if not isinstance(labels, dict) or not labels:
        raise InputError(f"{path}: expected a 'labels' table {{name: id}}, found {type(labels).__name__}")
    scheme = load_scheme("toothfairy2")
    ids = [int(v) for v in labels.values()]
    try:
        scheme.to_fdi(np.asarray(ids), what=f"{path} label ids")
    except LabelSchemeError as err:
        raise LabelSchemeError(f"{path}: {err}; this is not a ToothFairy2/3 label table") from err
    return dict(meta)


def scan_folder(src: Path) -> list[ToothFairy2Case]:
    """The cases of a ToothFairy2 folder, sorted by id; a training image without its label file is an error."""
    meta = read_dataset_json(src)
    ending = str(meta.get("file_ending", ".mha"))
    cases: list[ToothFairy2Case] = []
    for folder, split in (("imagesTr", "train"), ("imagesTs", "test")):
        for image in sorted((src / folder).glob(f"*{CHANNEL_SUFFIX}{ending}")):
            case_id = image.name[: -len(CHANNEL_SUFFIX + ending)]
            label = src / "labelsTr" / f"{case_id}{ending}" if split == "train" else None
            if label is not None and not label.is_file():
                raise InputNotFoundError(
                    f"{image}: no label file {label}; every imagesTr case needs labelsTr/<case>{ending}"
                )
            cases.append(ToothFairy2Case(case_id, image, label, split))
    if not cases:
        raise InputNotFoundError(f"{src}: no imagesTr/*{CHANNEL_SUFFIX}{ending} or imagesTs images found")
    return cases


def _int16(volume: Volume, what: str) -> Volume:
    arr = np.asarray(volume.array)
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < -32768 or arr.max() > 32767:
        arr = np.clip(np.rint(arr), -32768, 32767)
    return Volume(arr.astype(np.int16), volume.affine)


def read_case(case: ToothFairy2Case) -> Case:
    """The case as a CBCT-only :class:`Case`: int16 scanner values, FDI label map (anatomy → 0, pulp → tooth)."""
    image = _int16(read_volume(case.image), str(case.image))
    labels = None
    if case.label is not None:
        raw = read_volume(case.label)
        if raw.shape != image.shape or not np.allclose(raw.affine, image.affine, atol=1e-3):
            raise InputError(
                f"{case.label}: label grid {raw.shape} does not match its image {case.image} {image.shape} (or the "
                "geometry differs); the label file must share its image's grid"
            )
        fdi = to_fdi(np.asarray(raw.array).astype(np.int64), "toothfairy2", what=str(case.label))
        labels = Volume(fdi.astype(np.uint8), image.affine)
    sources = {"cbct": file_sha256(case.image)}
    if case.label is not None:
        sources["cbct_labels"] = file_sha256(case.label)
    return Case(case.case_id, image, labels, {}, sources)


def records(cases: Sequence[ToothFairy2Case]) -> Iterator[CaseRecord]:
    """One CBCT-only record per case, read one at a time."""
    for case in cases:
        attributes = {"source": "toothfairy2", "source_id": case.case_id, "official_split": case.split}
        yield CaseRecord(read_case(case), attributes=attributes)


def import_folder(
    src: Path,
    store: str | Path,
    *,
    tag: str | None = None,
    limit: int | None = None,
    message: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VersionInfo:
    """Import a ToothFairy2 folder into the store's next version (other cases kept)."""
    card = load_source_card("toothfairy2")
    cases = scan_folder(Path(src))[:limit]
    hashes = {c.case_id: file_sha256(*(p for p in (c.image, c.label) if p is not None)) for c in cases}
    return import_records(
        store,
        counted(records(cases), progress),
        card=card,
        input_hashes=hashes,
        message=message or f"import {len(cases)} ToothFairy2 cases",
        tag=tag,
    )


def write_mha(path: Path, volume: Volume) -> Path:
    """Write a :class:`Volume` (LPS affine) as MetaImage with SimpleITK (ITK's physical space is LPS)."""
    try:
        import SimpleITK
    except ImportError as err:
        raise InputError(f"writing {path} needs SimpleITK: pip install SimpleITK") from err
    spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)
    image = SimpleITK.GetImageFromArray(np.ascontiguousarray(np.asarray(volume.array).transpose(2, 1, 0)))
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(x) for x in volume.affine[:3, 3]])
    image.SetDirection([float(x) for x in (volume.affine[:3, :3] / spacing[None, :]).ravel()])
    path.parent.mkdir(parents=True, exist_ok=True)
    SimpleITK.WriteImage(image, str(path), useCompression=True)
    return path


def write_prediction(out: Path, case_id: str, prediction: Volume, file_ending: str = ".mha") -> Path:
    """Write an FDI prediction as ``out/<case_id><file_ending>`` in ToothFairy2 ids (uint8), on its own grid."""
    codes = from_fdi(np.asarray(prediction.array), "toothfairy2", what=f"prediction {case_id}")
    return write_mha(Path(out) / f"{case_id}{file_ending}", Volume(codes.astype(np.uint8), prediction.affine))
