"""Every library module has a test of its own: some file under tests/ imports the module or a name defined in
it (a name taken from a package ``__init__`` or another module that imported it counts for the module it comes
from). Read statically, so no library module is imported here."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("toothmcl_data", "toothmcl_models", "flows")
WITHOUT_OWN_TESTS = {
    # command-line wrappers: exercised through the typer app (tests/cli, tests/deid, tests/store, tests/export …)
    "toothmcl_data.cli.deid",
    "toothmcl_data.cli.evaluate",
    "toothmcl_data.cli.export",
    "toothmcl_data.cli.imports",
    "toothmcl_data.cli.inspect",
    "toothmcl_data.cli.labels",
    "toothmcl_data.cli.output",
    "toothmcl_data.cli.query",
    "toothmcl_data.cli.register",
    "toothmcl_data.cli.report",
    "toothmcl_data.cli.synth",
    "toothmcl_data.cli.version",
    "flows.cli",
    "flows.serve",
    # exercised through publish / make_patient / write_previews only
    "toothmcl_data.store.casewrite",
    "toothmcl_data.synth.dimensions",
    "toothmcl_data.synth.preview",
}
"""Modules known to have no test of their own; shrink this set, never grow it."""


def _modules() -> set[str]:
    return {
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for package in PACKAGES
        for p in (ROOT / package).rglob("*.py")
        if p.name != "__init__.py"
    }


@cache
def _reexports(module: str) -> dict[str, str]:
    """Name → module it comes from, for the ``from X import name`` lines of ``module`` (a package's ``__init__``
    re-exporting, or a module importing a name a test then takes from it)."""
    base = ROOT.joinpath(*module.split("."))
    source = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
    if not source.is_file():
        return {}
    out = {}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.update({alias.asname or alias.name: node.module for alias in node.names})
    return out


@cache
def _imported_by_tests() -> frozenset[str]:
    seen: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                seen.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                seen.add(node.module)
                reexports = _reexports(node.module)
                for alias in node.names:
                    seen.add(f"{node.module}.{alias.name}")
                    if alias.name in reexports:
                        seen.add(reexports[alias.name])
    return frozenset(seen)


def test_every_library_module_has_a_test_that_imports_it() -> None:
    untested = _modules() - _imported_by_tests()
    assert untested <= WITHOUT_OWN_TESTS, (
        f"modules without a test of their own: {sorted(untested - WITHOUT_OWN_TESTS)}; add tests/<package>/"
        "test_<module>.py that imports it and checks its behaviour on known inputs"
    )


def test_the_checker_sees_reexports_and_misses() -> None:
    seen = _imported_by_tests()
    assert "toothmcl_data.store.writer" in seen  # via `from toothmcl_data.store import publish` too
    assert "toothmcl_data.synth.dimensions" not in seen
