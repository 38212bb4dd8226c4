"""README command 1 end to end (slow: ~5 min on 2 cores): the demo completes and its report page renders."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_demo_runs_end_to_end_and_its_report_renders(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    proc = subprocess.run(
        [str(ROOT / "scripts" / "demo"), str(out)], capture_output=True, text=True, check=False, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = out / "report" / "index.html"
    assert page.exists()
    assert (out / "pretrain" / "checkpoints" / "latest.pt").exists()
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium not installed: the page was written but not rendered")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        tab = browser.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(page.as_uri())
        broken = tab.evaluate("[...document.images].filter(i => !i.complete || i.naturalWidth === 0).length")
        browser.close()
    assert broken == 0
    assert errors == []
