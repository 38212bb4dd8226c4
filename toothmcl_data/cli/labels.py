"""``toothmcl-data labels``: list label schemes and convert tooth codes between them."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from toothmcl_data.cli.output import emit

app = typer.Typer(
    help="Tooth numbering schemes (FDI, Universal, ToothFairy2, Teeth3DS, per-jaw 17-class).",
    no_args_is_help=True,
)


@app.command("list")
def list_schemes(as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False) -> None:
    """List the label schemes found in catalogs/labelmaps/."""
    from toothmcl_data.fdi import load_scheme, scheme_names

    emit(
        {name: load_scheme(name).description for name in scheme_names()},
        as_json=as_json,
        title="label schemes",
    )


@app.command("convert")
def convert(
    codes: Annotated[list[int], typer.Argument(help="Codes to convert.")],
    source: Annotated[str, typer.Option("--from", help="Scheme of CODES.")] = "fdi",
    target: Annotated[str, typer.Option("--to", help="Scheme to convert to.")] = "fdi",
    jaw: Annotated[Literal["upper", "lower"] | None, typer.Option(help="Jaw, for per-jaw schemes (perjaw17).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Convert CODES from one scheme to another through FDI (e.g. ``--from universal --to fdi 8`` → 11)."""
    from toothmcl_data.fdi import from_fdi, to_fdi

    fdi = to_fdi(codes, source, jaw)
    out = from_fdi(fdi, target, jaw)
    emit(
        {"from": source, "to": target, "codes": codes, "fdi": fdi.tolist(), "converted": out.tolist()},
        as_json=as_json,
        title="label conversion",
    )
