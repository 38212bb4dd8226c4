"""``toothmcl-data synth``: write synthetic paired patients as a raw clinical drop plus ground truth."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from toothmcl_data.cli.output import emit, progress
from toothmcl_data.configdict import SET_HELP
from toothmcl_data.synth.conditions import CONDITION_NAMES


def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder (drop/ and ground_truth/ go inside).")],
    patients: Annotated[int, typer.Option("--patients", "-n", min=1, help="Number of patients.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives byte-identical output.")] = 0,
    bad_fraction: Annotated[
        float, typer.Option("--bad-fraction", min=0.0, max=1.0, help="Fraction of patients given bad inputs.")
    ] = 0.0,
    condition: Annotated[
        list[str] | None,
        typer.Option(
            "--condition",
            "-c",
            help="NAME[=FRACTION]: give this clinical condition to FRACTION of the patients (default all); "
            "repeatable. Names: " + ", ".join(CONDITION_NAMES) + ".",
        ),
    ] = None,
    variety: Annotated[
        str | None,
        typer.Option("--variety", help="'all': every condition, each to about 1/21 of the patients."),
    ] = None,
    spacing: Annotated[float, typer.Option(help="CBCT voxel size in mm.")] = 0.4,
    field_mm: Annotated[
        str | None,
        typer.Option(
            "--field-mm",
            help="Clinical field of view: 'clinical' (160,160,110) or X,Y,Z mm — the CBCT covers this box around "
            "the teeth with the head around them (default: the grid fitted to both jaws).",
        ),
    ] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write PNG previews under OUT/preview/.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", metavar="KEY=VALUE", help=f"SynthConfig: {SET_HELP}.")
    ] = None,
) -> None:
    """Synthesise PATIENTS paired CBCT + IOS patients (with planted PHI and, optionally, bad inputs and
    clinical conditions: field of view, bite, head pose, intensity scale, IOS kind, anatomy)."""
    from toothmcl_data.synth.conditions import parse_condition_specs
    from toothmcl_data.synth.config import SynthConfig
    from toothmcl_data.synth.drop import write_drop
    from toothmcl_data.synth.head import parse_field

    base: dict[str, object] = {"spacing_mm": spacing}
    if field_mm is not None:
        base["field_mm"] = parse_field(field_mm)
    config = SynthConfig.from_dict(base, overrides or [])
    conditions = parse_condition_specs(condition or [], variety)
    with progress("synthesising patients", patients, enabled=not as_json) as advance:
        summary = write_drop(
            out,
            patients=patients,
            seed=seed,
            bad_fraction=bad_fraction,
            config=config,
            progress=lambda done: advance(1),
            conditions=conditions,
        )
    report = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(summary).items()}
    if preview:
        from toothmcl_data.synth.preview import write_previews

        with progress("drawing previews", patients, enabled=not as_json) as advance:
            report["previews"] = [str(p) for p in write_previews(out, progress=advance)]
    emit(report, as_json=as_json, title=f"synthetic drop in {out}")
