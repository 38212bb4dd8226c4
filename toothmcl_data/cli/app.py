"""Root of the ``toothmcl-data`` command line (Typer); one module per command group."""

from __future__ import annotations

import sys

import typer

from toothmcl_data import __version__
from toothmcl_data.cli import inspect, labels, synth
from toothmcl_data.cli.output import errors
from toothmcl_data.errors import ToothmclError

app = typer.Typer(
    name="toothmcl-data",
    help="Curate paired CBCT + intraoral-scan dental datasets: synthesise, read, convert labels.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("synth")(synth.synth)
app.command("inspect")(inspect.inspect)
app.add_typer(labels.app, name="labels")


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """toothmcl-data: dental CBCT + IOS dataset curation."""


def main() -> None:
    """Console entry point: library errors become one clear line on stderr and exit code 2."""
    try:
        app()
    except ToothmclError as err:
        errors.print(f"[red]error:[/red] {err}", markup=True, highlight=False)
        sys.exit(2)
