"""No module over 400 lines (CONVENTIONS.md: a module past that is asking to be split): every Python file of the
library packages, the flows and the benches, counted as physical lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("toothmcl_data", "toothmcl_models", "flows", "bench")
MAX_LINES = 400


def too_long(root: Path, folders: tuple[str, ...] = FOLDERS, limit: int = MAX_LINES) -> dict[str, int]:
    """``{path relative to root: lines}`` of the ``.py`` files under ``folders`` with more than ``limit`` lines."""
    out = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                out[str(path.relative_to(root))] = lines
    return out


def test_no_module_over_400_lines() -> None:
    assert sum(1 for folder in FOLDERS for _ in (ROOT / folder).rglob("*.py")) > 150  # the folders were found
    long = too_long(ROOT)
    assert not long, f"modules over {MAX_LINES} lines (split each by concept): {long}"


def test_the_count_sees_a_long_module(tmp_path: Path) -> None:
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "long.py").write_text("x = 1\n" * 401, encoding="utf-8")
    (tmp_path / "pkg" / "short.py").write_text("x = 1\n" * 400, encoding="utf-8")
    assert too_long(tmp_path, ("pkg",)) == {"pkg/sub/long.py": 401}
