"""The ``toothmcl-data`` command line: help everywhere, JSON output, errors as one line with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel
import pytest
from typer.testing import CliRunner

from tests.conftest import SHARED_FIXTURES
from toothmcl_data.cli.app import app
from toothmcl_data.errors import ConfigError

runner = CliRunner()


@pytest.mark.parametrize(
    "args", [[], ["synth"], ["labels"], ["labels", "list"], ["labels", "convert"], ["inspect"]], ids=" ".join
)
def test_help_on_every_command(args: list[str]) -> None:
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["8", "9", "24", "25", "--from", "universal", "--to", "fdi"], [11, 21, 31, 41]),
        (["18", "48", "--from", "fdi", "--to", "universal"], [1, 32]),
        (["1", "9", "--from", "perjaw17", "--to", "fdi", "--jaw", "lower"], [31, 41]),
        (["16", "--from", "fdi", "--to", "toothfairy2"], [16]),
    ],
)
def test_labels_convert_json(args: list[str], expected: list[int]) -> None:
    result = runner.invoke(app, ["labels", "convert", *args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["converted"] == expected


def test_labels_list_json_names_every_scheme() -> None:
    result = runner.invoke(app, ["labels", "list", "--json"])
    assert result.exit_code == 0, result.output
    assert {"fdi", "universal", "toothfairy2", "teeth3ds", "perjaw17"} <= set(json.loads(result.output))


def test_inspect_real_vtp_fixture_in_fdi() -> None:
    vtp = SHARED_FIXTURES / "ios" / "Mesh_Labeler_Example_01.vtp"
    if not vtp.exists():
        pytest.skip(f"real fixture not found at {vtp} (../shared is laid beside the checkout)")
    result = runner.invoke(app, ["inspect", str(vtp), "--scheme", "universal", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["vertices"] == 50_643
    assert report["faces"] == 99_999
    assert report["jaw"] == "upper"
    assert set(map(int, report["fdi_vertex_counts"])) == {0, *range(11, 18), *range(21, 28)}


def test_synth_json_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "d"
    result = runner.invoke(
        app, ["synth", "--patients", "1", "--out", str(out), "--seed", "2", "--spacing", "0.8", "--preview", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["patients"] == 1
    assert report["files"] == len([p for p in (out / "drop").rglob("*") if p.is_file()])
    assert sorted(Path(p).name for p in report["previews"]) == ["P0000_cbct.png", "P0000_lower.png", "P0000_upper.png"]
    assert all(Path(p).stat().st_size > 10_000 for p in report["previews"])


def test_library_error_is_one_line_and_exit_code_2() -> None:
    code = "import sys; from toothmcl_data.cli.app import main; sys.argv = ['toothmcl-data', *sys.argv[1:]]; main()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "labels", "convert", "19", "--from", "fdi", "--to", "universal"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "error:" in proc.stderr
    assert "19" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_set_reaches_the_synth_config_and_unknown_keys_are_named(tmp_path: Path) -> None:
    out = tmp_path / "d"
    args = ["synth", "--patients", "1", "--out", str(out), "--spacing", "0.8", "--json"]
    result = runner.invoke(app, [*args, "--set", "cbct_noise=12.5", "--set", "mesh_formats=[ply]"])
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "ground_truth" / "truth.json").read_text(encoding="utf-8"))
    assert (truth["config"]["cbct_noise"], truth["config"]["mesh_formats"], truth["config"]["spacing_mm"]) == (
        12.5,
        ["ply"],
        0.8,
    )
    result = runner.invoke(app, [*args, "--set", "cbct_nois=1"])  # main() turns it into one line, exit code 2
    assert isinstance(result.exception, ConfigError)
    assert "unknown key(s) ['cbct_nois']" in str(result.exception)
    assert "--set cbct_nois=1" in str(result.exception)


def test_synth_field_option_reaches_the_config(tmp_path: Path) -> None:
    out = tmp_path / "d"
    args = ["synth", "--patients", "1", "--out", str(out), "--spacing", "1.2", "--json"]
    result = runner.invoke(app, [*args, "--field-mm", "100,110,80", "--set", "nifti_fraction=1"])
    assert result.exit_code == 0, result.output
    truth = json.loads((out / "ground_truth" / "truth.json").read_text(encoding="utf-8"))
    assert truth["config"]["field_mm"] == [100.0, 110.0, 80.0]
    (nifti,) = (out / "drop").rglob("*.nii.gz")
    assert abs(nibabel.load(nifti).shape[1] * 1.2 - 110.0) <= 2.4  # the CBCT covers the field
    result = runner.invoke(app, [*args, "--field-mm", "wide"])
    assert isinstance(result.exception, ConfigError)


def test_register_set_refuses_unknown_keys_before_reading_files(tmp_path: Path) -> None:
    args = ["register", "--cbct", str(tmp_path / "no.nii.gz"), "--ios", str(tmp_path / "no.stl"), "-o", str(tmp_path)]
    result = runner.invoke(app, [*args, "--set", "icp_iterations=many"])
    assert isinstance(result.exception, ConfigError)
    assert "config.icp_iterations: " in str(result.exception)
    assert "got 'many'" in str(result.exception)
