"""Stages in their rooms, read statically from the import lines (no module is imported here):

- ``toothmcl_data`` never imports Prefect, ``flows`` or ``toothmcl_models``;
- ``toothmcl_models`` never imports ``toothmcl_data.synth`` nor a store internal (only the ``toothmcl_data.store``
  package API);
- ``flows`` is wiring: no registration, pairing or table logic of its own (it calls ``toothmcl_data.curate``);
- a drop's plan is imported from ``toothmcl_data.io.plan``, where it lives.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _imports(package: str) -> list[tuple[str, str, list[str]]]:
    """(file, imported module, imported names) of every import in ``package`` (relative imports resolved)."""
    out = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = str(path.relative_to(ROOT))
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                out += [(rel, alias.name, []) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = ".".join(parts[: len(parts) - node.level]) if node.level else ""
                module = ".".join(p for p in (base, node.module or "") if p)
                out.append((rel, module, [alias.name for alias in node.names]))
    return out


def _under(module: str, *roots: str) -> bool:
    return any(module == r or module.startswith(r + ".") for r in roots)


def test_the_data_library_imports_no_flow_and_no_model() -> None:
    found = [(f, m) for f, m, _ in _imports("toothmcl_data") if _under(m, "prefect", "flows", "toothmcl_models")]
    assert found == []


def test_models_read_data_through_the_stream_and_the_store_api_only() -> None:
    found = [
        (f, m)
        for f, m, _ in _imports("toothmcl_models")
        if _under(m, "toothmcl_data.synth") or (_under(m, "toothmcl_data.store") and m != "toothmcl_data.store")
    ]
    assert found == []


def test_flows_hold_no_stage_logic() -> None:
    stages = ("toothmcl_data.register", "toothmcl_data.pair", "toothmcl_data.store.tables", "numpy", "pyarrow")
    found = [(f, m) for f, m, _ in _imports("flows") if _under(m, *stages)]
    assert found == []
    assert not (ROOT / "flows" / "steps.py").exists()  # a case's stages live in toothmcl_data.curate


def test_a_drops_plan_comes_from_io() -> None:
    found = [
        (f, m)
        for package in ("toothmcl_data", "toothmcl_models", "flows", "bench", "tests")
        for f, m, names in _imports(package)
        if {"plan_files", "plan_drop"} & set(names) and m != "toothmcl_data.io.plan"
    ]
    assert found == []
