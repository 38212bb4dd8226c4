"""Conditions in a written drop and on the command line: seeded, byte-identical, recorded in the ground truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from toothmcl_data.cli.app import app
from toothmcl_data.errors import ConfigError
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.synth.config import SynthConfig
from toothmcl_data.synth.drop import write_drop
from toothmcl_data.types import apply_transform

TINY = SynthConfig(spacing_mm=0.8, ios_resolution_mm=0.6, mesh_formats=("ply",))
CONDITIONS = {"ios_bite_scan": 0.5, "bite_occlusion": 0.5, "pose_tilted": 0.5, "fov_quadrant": 0.5}


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def test_drop_with_conditions_is_byte_identical_and_recorded(tmp_path: Path) -> None:
    a = write_drop(tmp_path / "a", patients=2, seed=4, config=TINY, conditions=CONDITIONS)
    b = write_drop(tmp_path / "b", patients=2, seed=4, config=TINY, conditions=CONDITIONS)
    assert _hashes(a.root) == _hashes(b.root)
    assert a.conditions == {"bite_occlusion": 1, "fov_quadrant": 1, "ios_bite_scan": 1, "pose_tilted": 1}
    truth = json.loads((a.ground_truth / "truth.json").read_text())
    assert truth["conditions"] == dict(sorted(CONDITIONS.items()))
    given = [c for e in truth["patients"] for c in e["conditions"]]
    assert sorted(given) == sorted(CONDITIONS)
    for entry in truth["patients"]:
        variety = entry["variety"]
        assert variety["conditions"] == entry["conditions"]
        assert set(variety["teeth_cbct"]) == set(variety["fov"]["inside"]) | set(variety["fov"]["cut"])
        cbct = np.load(a.ground_truth / entry["arrays"]["cbct_labels"])
        assert sorted(int(v) for v in np.unique(cbct) if v) == variety["teeth_cbct"]
        if "ios_bite_scan" in entry["conditions"]:
            (bite,) = [f for f in entry["files"] if f["role"] == "ios_bite"]
            assert bite["path"].endswith("_BiteScan.ply")
            mesh = read_mesh(a.drop / bite["path"])
            labels = np.load(a.ground_truth / entry["arrays"]["ios_labels"]["bite"])
            assert len(labels) == len(mesh.vertices) == bite["vertices"]
            world = apply_transform(np.asarray(variety["world_from_bite"]), mesh.vertices)
            assert np.all(np.isfinite(world))


def test_drop_without_conditions_has_no_condition_keys(tmp_path: Path) -> None:
    summary = write_drop(tmp_path / "d", patients=1, seed=4, config=TINY)
    truth = json.loads((summary.ground_truth / "truth.json").read_text())
    assert "conditions" not in truth
    assert "variety" not in truth["patients"][0]
    assert summary.conditions == {}


def test_cli_condition_and_variety(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "c"
    args = ["synth", "-n", "2", "--out", str(out), "--seed", "3", "--spacing", "0.8", "--json"]
    result = runner.invoke(app, [*args, "--condition", "bite_open=0.5", "-c", "intensity_hu"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["conditions"] == {"bite_open": 1, "intensity_hu": 2}
    bad = runner.invoke(app, ["synth", "--out", str(tmp_path / "x"), "--condition", "fov_tiny"])
    assert isinstance(bad.exception, ConfigError)
    assert "unknown synth condition" in str(bad.exception)
    assert not (tmp_path / "x").exists()
    help_text = runner.invoke(app, ["synth", "--help"]).output
    assert "--condition" in help_text
    assert "--variety" in help_text
