"""Previews of a written synthetic drop: one CBCT picture and one per scan, drawn from what a user of the drop
would load (primary teeth in their successors' colours); a scan the reader refuses for its labels is drawn from
its geometry with the ground-truth labels and says so, a scan it cannot read at all gets no picture."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.synth import preview
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import DROP_DIR, TRUTH_DIR, write_drop
from toothmcl_data.synth.preview import display_codes, write_previews

COARSE = SynthConfig(spacing_mm=1.2, ios_resolution_mm=1.0, third_molar_probability=0.0, mesh_formats=("obj",))


def test_display_codes_map_primary_teeth_to_their_successors() -> None:
    labels = np.array([0, -1, 11, 28, 48, 51, 55, 65, 71, 85], dtype=np.int16)
    np.testing.assert_array_equal(display_codes(labels), [0, -1, 11, 28, 48, 11, 15, 25, 31, 45])
    assert labels[5] == 51  # the input is not changed


@pytest.fixture
def drop(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    write_drop(tmp_path, patients=1, seed=3, config=COARSE)
    entry = json.loads((tmp_path / TRUTH_DIR / "truth.json").read_text())["patients"][0]
    return tmp_path, entry


def _scan(out: Path, entry: dict[str, Any], role: str, jaw: str) -> Path:
    return out / DROP_DIR / next(f["path"] for f in entry["files"] if f["role"] == role and f.get("jaw") == jaw)


def _record_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any, Any, str]]:
    calls: list[tuple[str, Any, Any, str]] = []

    def volume(cbct: Any, labels: Any, path: Path, title: str = "") -> Path:
        calls.append(("cbct", cbct, labels, title))
        return path

    def mesh(m: Any, path: Path, title: str = "") -> Path:
        calls.append((path.stem, m, None, title))
        return path

    monkeypatch.setattr(preview, "volume_slices_png", volume)
    monkeypatch.setattr(preview, "mesh_png", mesh)
    return calls


def test_previews_draw_the_ground_truth_volume_and_the_scans_as_read(
    drop: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    out, entry = drop
    key = entry["key"]
    calls = _record_calls(monkeypatch)
    progress: list[int] = []
    written = write_previews(out, progress=progress.append)
    assert [p.name for p in written] == [f"{key}_cbct.png", f"{key}_upper.png", f"{key}_lower.png"]
    assert all(p.parent == out / "preview" for p in written)
    assert progress == [1]
    _, cbct, labels, title = calls[0]
    np.testing.assert_array_equal(cbct.array, np.load(out / TRUTH_DIR / entry["arrays"]["cbct"]))
    np.testing.assert_array_equal(labels.array, np.load(out / TRUTH_DIR / entry["arrays"]["cbct_labels"]))
    assert "FDI label map overlaid" in title
    for name, mesh, _, title in calls[1:]:
        jaw = name.split("_")[1]
        read = read_mesh(_scan(out, entry, "ios_mesh", jaw))
        np.testing.assert_array_equal(mesh.vertices, read.vertices)
        assert read.labels is not None
        np.testing.assert_array_equal(mesh.labels, display_codes(read.labels))
        assert f"{jaw} scan (obj, {len(read.vertices)} vertices)" in title
        assert "reader refused" not in title


def test_refused_labels_draw_the_ground_truth_and_an_unreadable_scan_is_skipped(
    drop: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out, entry = drop
    key = entry["key"]
    sidecar = _scan(out, entry, "ios_labels", "upper")
    data = json.loads(sidecar.read_text())
    data["labels"] = [99] * len(data["labels"])  # no FDI code: the reader refuses the labels
    sidecar.write_text(json.dumps(data))
    _scan(out, entry, "ios_mesh", "lower").write_bytes(b"not a mesh\n")
    calls = _record_calls(monkeypatch)
    with caplog.at_level(logging.WARNING, logger="toothmcl_data.synth.preview"):
        written = write_previews(out)
    assert [p.name for p in written] == [f"{key}_cbct.png", f"{key}_upper.png"]  # no picture of the lower scan
    _, mesh, _, title = calls[1]
    assert title.endswith("(reader refused the labels; ground truth drawn)")
    truth = np.load(out / TRUTH_DIR / entry["arrays"]["ios_labels"]["upper"])
    np.testing.assert_array_equal(mesh.labels, display_codes(truth))
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"{key} upper scan" in m for m in messages)
    assert any(f"{key} lower scan not drawn" in m for m in messages)


def test_previews_are_pictures(drop: tuple[Path, dict[str, Any]]) -> None:
    import matplotlib.image as mpimg

    out, _ = drop
    for path in write_previews(out):
        image = mpimg.imread(path)[..., :3]
        assert image.shape[0] > 200
        assert ((image.max(axis=-1) - image.min(axis=-1)) > 0.25).mean() > 0.002, path.name  # FDI colours drawn
