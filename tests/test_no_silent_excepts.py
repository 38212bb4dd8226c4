"""No silent skips: every ``except`` in the library re-raises (a project error with context), records what
happened (a quarantine, a warning, a problem in a report, the error carried into the returned row), or says on
its ``except`` line why falling back is no skip (``# handled: <why>``). Bare ``except:`` must re-raise, and
``contextlib.suppress`` needs the same ``# handled:`` note. The walker reads the source with ``ast``."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("toothmcl_data", "toothmcl_models", "flows")
OWNED_ELSEWHERE: tuple[str, ...] = ()
"""Files the walker skips (none: every library file is checked)."""
MARK = "# handled:"
RECORDERS = frozenset({"quarantine", "warning", "error", "exception", "critical", "warn"})
"""Calls that record a fault where the user sees it (``w.quarantine``, ``log.warning``, ``warnings.warn`` …)."""
QUIET = frozenset({"debug", "info"})
"""Calls whose use of the exception does not count as recording it (nobody reads debug logs)."""


def _calls(node: ast.AST) -> Iterator[ast.Call]:
    for child in ast.walk(node):
        if isinstance(child, ast.Call):
            yield child


def _name(call: ast.Call) -> str:
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _body(handler: ast.ExceptHandler) -> list[ast.AST]:
    """Every node of the handler's body, not descending into nested functions or classes."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = list(handler.body)
    while todo:
        node = todo.pop()
        out.append(node)
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            todo.extend(ast.iter_child_nodes(node))
    return out


def _quiet_names(nodes: list[ast.AST]) -> set[int]:
    return {id(n) for node in nodes if isinstance(node, ast.Call) and _name(node) in QUIET for n in ast.walk(node)}


def _verdict(handler: ast.ExceptHandler, line: str) -> str:
    """'' when the handler is fine, else what is wrong."""
    nodes = _body(handler)
    if any(isinstance(n, ast.Raise) for n in nodes):
        return ""
    if any(isinstance(n, ast.Call) and _name(n) in ("exit", "Exit") for n in nodes):
        return ""  # ends the program with the error shown (the CLI's main)
    if handler.type is None:
        return "bare `except:` that does not re-raise"
    if MARK in line:
        return ""
    if any(isinstance(n, ast.Call) and _name(n) in RECORDERS for n in nodes):
        return ""
    if any(isinstance(n, ast.Call) and _name(n) == "append" and "problems" in ast.unparse(n.func) for n in nodes):
        return ""
    if handler.name:
        quiet = _quiet_names(nodes)
        used = [
            n
            for n in nodes
            if isinstance(n, ast.Name) and n.id == handler.name and isinstance(n.ctx, ast.Load) and id(n) not in quiet
        ]
        if used:
            return ""  # the error travels on, e.g. into the returned row's reason
    return f"swallows {ast.unparse(handler.type)} without raising, recording or a `{MARK} <why>` note"


def silent_excepts(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: what`` for each handler (and ``suppress``) of ``source`` that neither raises nor records."""
    tree = ast.parse(source, filename)
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ExceptHandler):
            why = _verdict(node, lines[node.lineno - 1])
            if why:
                found.append(f"{filename}:{node.lineno}: {why}")
        elif isinstance(node, ast.Call) and _name(node) == "suppress" and MARK not in lines[node.lineno - 1]:
            found.append(f"{filename}:{node.lineno}: contextlib.suppress without a `{MARK} <why>` note")
    return found


def _library_files() -> list[Path]:
    files = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if not any(rel == o or (o.endswith("/") and rel.startswith(o)) for o in OWNED_ELSEWHERE):
                files.append(path)
    return files


def test_no_except_in_the_library_skips_silently() -> None:
    files = _library_files()
    assert len(files) > 100  # the walker sees the library, not an empty folder
    problems = [
        p for path in files for p in silent_excepts(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("source", "flagged"),
    [
        ("try:\n    f()\nexcept ValueError:\n    continue_ = 1\n", True),
        ("try:\n    f()\nexcept:\n    log.warning('x')\n", True),
        ("try:\n    f()\nexcept Exception as err:\n    log.debug('skip %s', err)\n", True),
        ("try:\n    f()\nexcept OSError:\n    pass\n", True),
        ("with suppress(OSError):\n    f()\n", True),
        ("try:\n    f()\nexcept ValueError as err:\n    raise InputError(f'{err}') from err\n", False),
        ("try:\n    f()\nexcept Exception:\n    raise\n", False),
        ("try:\n    f()\nexcept ValueError as err:\n    w.quarantine(unit, str(err))\n", False),
        ("try:\n    f()\nexcept ValueError as err:\n    return {'status': str(err)}\n", False),
        ("try:\n    import x\nexcept ImportError:  # handled: x is optional\n    x = None\n", False),
    ],
)
def test_the_walker_tells_silent_from_handled(source: str, flagged: bool) -> None:
    wrapped = "def g():\n" + "".join(f"    {line}\n" for line in source.splitlines())
    assert bool(silent_excepts(wrapped)) is flagged, silent_excepts(wrapped)
