"""Every library module (``toothmcl_data``, ``toothmcl_models``, ``flows``) has a test of its own: some test file
(``tests/**/test_*.py``; a conftest or helper building fixtures does not count) imports the module or a name
defined in it and uses it (an import the file never refers to does not count). A name taken from a package
``__init__`` or another module that imported it counts for the module it comes from. Read statically, so no
library module is imported here."""

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


def _seen_in(source: str) -> set[str]:
    """The modules one test file's source imports and uses: ``import a.b`` (used as ``a.b…``), or ``from a.b import
    c`` with ``c`` referred to in the file (counting for ``a.b``, ``a.b.c`` and where ``a.b`` took ``c`` from)."""
    tree = ast.parse(source)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    attributes = {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                dotted = alias.name
                if alias.asname in names or any(a == dotted or a.startswith(f"{dotted}.") for a in attributes):
                    seen.add(alias.name)
        elif isinstance(node, ast.ImportFrom) and node.module:
            reexports = _reexports(node.module)
            for alias in node.names:
                if (alias.asname or alias.name) not in names:
                    continue
                seen.update((node.module, f"{node.module}.{alias.name}"))
                if alias.name in reexports:
                    seen.add(reexports[alias.name])
    return seen


@cache
def _imported_by_tests() -> frozenset[str]:
    seen: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        seen |= _seen_in(path.read_text(encoding="utf-8"))
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
    assert "toothmcl_data.synth.dimensions" in seen  # tests/synth/test_dimensions.py: `import … as dims`
    assert "toothmcl_data.cli.synth" not in seen
    used = _seen_in("from toothmcl_data.store import publish, open_version\nimport toothmcl_data.heap\npublish()\n")
    assert {"toothmcl_data.store", "toothmcl_data.store.writer"} <= used
    assert "toothmcl_data.store.reader" not in used  # imported, never used
    assert "toothmcl_data.heap" not in used
    assert "toothmcl_data.heap" in _seen_in("import toothmcl_data.heap\ntoothmcl_data.heap.release_memory()\n")
