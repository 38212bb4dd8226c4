"""The ``toothmcl-models`` command line (Typer): apply a fine-tuned model to one user file.

    toothmcl-models predict cbct --checkpoint RUN --input CBCT_DIR_OR_NIFTI --out seg.nii.gz
    toothmcl-models predict ios --checkpoint RUN --input SCAN.ply --out labels.json [--jaw upper]

Training stays with ``torchrun -m toothmcl_models.{pretrain,finetune}``. The commands parse and call
:mod:`toothmcl_models.predict` (imported inside them, so ``--help`` needs no torch). Library errors print one
``error: …`` line on stderr and exit with code 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from toothmcl_data.errors import ToothmclError

_MODEL_PACKAGES = ("torch", "monai", "einops")
"""Packages of the ``models`` extra; a missing one is reported with the install command."""

app = typer.Typer(
    name="toothmcl-models",
    help="Apply fine-tuned ToothMCL segmenters to CBCT volumes and intraoral scans.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="markdown",
)
predict_app = typer.Typer(
    help="Segment one CBCT (→ FDI label map NIfTI) or one jaw scan (→ Teeth3DS JSON) with a fine-tuned model.",
    no_args_is_help=True,
)
app.add_typer(predict_app, name="predict")

Checkpoint = Annotated[
    Path,
    typer.Option(
        "--checkpoint", "-c", help="Fine-tuning run folder (from toothmcl_models.finetune), its checkpoints/ or a .pt."
    ),
]
Device = Annotated[str, typer.Option(help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and read the inputs; predict and write nothing.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]


@contextmanager
def _clear_errors() -> Iterator[None]:
    """A library error becomes one ``error: …`` line on stderr and exit code 2 (no traceback)."""
    try:
        yield
    except ToothmclError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(2) from err
    except ModuleNotFoundError as err:
        if err.name not in _MODEL_PACKAGES:
            raise
        typer.echo(
            f"error: predicting needs {err.name}, which is not installed: pip install 'toothmcl[models]'", err=True
        )
        raise typer.Exit(2) from err


def _report(facts: dict[str, Any], *, as_json: bool) -> None:
    from toothmcl_data.cli.output import emit

    emit(facts, as_json=as_json, title="prediction" if facts.get("output") else "dry run: nothing written")


@predict_app.command("cbct")
def cbct(
    checkpoint: Checkpoint,
    source: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="CBCT: NIfTI (.nii/.nii.gz), MHA, NRRD, or a folder holding one DICOM series."
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Label map to write: .nii.gz or .nii (--format dicom-seg: .dcm).")
    ],
    scheme: Annotated[
        str | None, typer.Option(help="Codes written: fdi or toothfairy2 (default: the run's output scheme).")
    ] = None,
    overlap: Annotated[float, typer.Option(help="Sliding-window overlap, fraction of the window.")] = 0.25,
    device: Device = "auto",
    dry_run: DryRun = False,
    as_json: AsJson = False,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="nifti (label map) or dicom-seg (a DICOM Segmentation referencing the input series; needs the "
            "dicomseg extra).",
        ),
    ] = "nifti",
) -> None:
    """Segment the teeth of one CBCT: an int16 FDI label map (0 = background) on the input's own grid.

    The map has the input's shape and voxel-to-world affine: a NIfTI input's affine comes back unchanged; a
    DICOM series gives the RAS affine of its LPS geometry (as dcm2niix writes it), so the map overlays the
    scan in nibabel, ITK-SNAP and 3D Slicer. Inference: sliding window (the training crop, Gaussian blending)
    on the run's voxel spacing, classes resampled (nearest) back onto the input's grid.

    `--format dicom-seg` writes a DICOM Segmentation instead (one segment per FDI tooth, SNOMED CT coded) that
    references the input's DICOM slices, for PACS viewers; a NIfTI input is first written as a CT series into
    `<out stem>_cbct/` beside it.
    """
    with _clear_errors():
        from toothmcl_models.predict import predict_cbct

        result = predict_cbct(
            checkpoint,
            source,
            out,
            scheme=scheme,
            overlap=overlap,
            device=device,
            dry_run=dry_run,
            fmt=cast(Any, fmt),
        )
    _report(result.to_dict(), as_json=as_json)


@predict_app.command("ios")
def ios(
    checkpoint: Checkpoint,
    source: Annotated[
        Path, typer.Option("--input", "-i", help="One jaw scan: .stl, .ply, .obj or .vtp (its own scanner frame).")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Teeth3DS JSON to write (.json).")],
    jaw: Annotated[
        str | None,
        typer.Option(help="upper or lower (default: from a <stem>.json sidecar or upper/lower in the file name)."),
    ] = None,
    id_patient: Annotated[str | None, typer.Option(help="id_patient written (default: the scan's file stem).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the points sampled from the scan.")] = 0,
    device: Device = "auto",
    dry_run: DryRun = False,
    as_json: AsJson = False,
) -> None:
    """Segment the teeth of one jaw scan: a Teeth3DS JSON with per-vertex FDI `labels` and `instances`.

    One entry per mesh vertex in the file's vertex order (read without merging or reordering; an STL's
    triangle corners are merged by equal coordinates in order of first appearance, as toothmcl reads STL):
    0 = gingiva, else the FDI tooth; instances 0 = gingiva, 1, 2, … one per predicted tooth.
    """
    with _clear_errors():
        from toothmcl_models.predict import predict_ios

        result = predict_ios(
            checkpoint,
            source,
            out,
            jaw=jaw,  # type: ignore[arg-type]  # checked by predict_ios
            id_patient=id_patient,
            seed=seed,
            device=device,
            dry_run=dry_run,
        )
    _report(result.to_dict(), as_json=as_json)


@app.callback()
def root() -> None:
    """toothmcl-models: apply fine-tuned ToothMCL segmenters."""


def main() -> None:
    """Console entry point (``toothmcl-models``)."""
    app()


if __name__ == "__main__":
    main()
