"""Root of the ``toothmcl-data`` command line (Typer); one module per command group."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer
from rich.markup import escape

from toothmcl_data import __version__
from toothmcl_data.cli import deid, evaluate, export, imports, inspect, labels, query, register, report, synth, version
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
app.command("register")(register.register)
app.command("report")(report.report)
app.add_typer(labels.app, name="labels")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(deid.app, name="deid")
app.add_typer(version.app, name="version")
# Commands from installed plugins (e.g. ``build`` from the ``flows`` package, which needs Prefect): the library
# itself never imports them.
for _entry in entry_points(group="toothmcl_data.commands"):
    app.command(_entry.name)(_entry.load())
app.add_typer(imports.app, name="import")
app.add_typer(export.app, name="export")
app.command("query")(query.query)


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
        errors.print(f"[red]error:[/red] {escape(str(err))}", markup=True, highlight=False)
        sys.exit(2)
