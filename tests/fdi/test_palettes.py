"""Published colour palettes as colour tables: meshes painted the 3DTeethSeg22 way read back as FDI labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import trimesh
from typer.testing import CliRunner

from tests.store.conftest import base_patient
from toothmcl_data.cli.app import app
from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi import ColorTable, load_color_table, scheme_names
from toothmcl_data.io.mesh import read_mesh
from toothmcl_data.io.meshwrite import write_ply

CHALLENGE = "teeth3ds_challenge_colors"


def _scan() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(vertices, faces, FDI labels) of a synthetic lower jaw scan."""
    mesh = base_patient(1).ios["lower"]
    return mesh.vertices, mesh.faces, mesh.labels


def test_challenge_palette_entries() -> None:
    table = load_color_table(CHALLENGE)
    assert CHALLENGE in scheme_names(kind="color_table")
    assert CHALLENGE not in scheme_names()
    assert sorted(table.colors) == [0, *range(11, 19), *range(21, 29), *range(31, 39), *range(41, 49)]
    # the hex values of the challenge script, left/right and upper/lower
    assert table.colors[16] == (0xFF, 0xAA, 0xAA)
    assert table.colors[26] == (0xAA, 0xAA, 0xFF)
    assert table.colors[36] == (0x00, 0x55, 0x00)
    assert table.colors[46] == (0xAA, 0x55, 0xFF)
    assert table.aliases == {(102, 102, 102): 0}


def test_ply_painted_like_the_challenge_script_reads_back(tmp_path: Path) -> None:
    """As export_labeled_3Dscan.py does: load the OBJ with trimesh (no colours: default grey), paint each tooth
    vertex with its palette colour, leave gingiva as it is, export PLY with trimesh."""
    vertices, faces, labels = _scan()
    table = load_color_table(CHALLENGE)
    tm = trimesh.Trimesh(vertices, faces, process=False)
    colors = np.array(tm.visual.vertex_colors)
    teeth = labels != 0
    colors[teeth, :3] = table.colors_for(labels[teeth])
    tm.visual.vertex_colors = colors
    path = tmp_path / "scan_lower.ply"
    tm.export(path)

    mesh = read_mesh(path, scheme=CHALLENGE)
    assert mesh.meta["labels_source"] == "vertex_colors"
    np.testing.assert_array_equal(mesh.labels, labels)
    assert mesh.jaw == "lower"
    with pytest.raises(LabelSchemeError, match="match no label of colour table 'fdi_colors'"):
        read_mesh(path, scheme="fdi_colors")

    runner = CliRunner()
    ok = runner.invoke(app, ["inspect", str(path), "--scheme", CHALLENGE, "--json"])
    assert ok.exit_code == 0, ok.output
    counts = json.loads(ok.stdout)["fdi_vertex_counts"]
    assert counts == {str(c): int(n) for c, n in zip(*np.unique(labels, return_counts=True), strict=True)}


def test_face_colours_win_over_shaded_vertex_colours(tmp_path: Path) -> None:
    """VCGLIB-style PLY: shaded grey vertex colours plus the label palette on the faces (binary)."""
    vertices, faces, labels = _scan()
    table = load_color_table(CHALLENGE)
    rng = np.random.default_rng(5)
    shaded = rng.integers(90, 200, size=(len(vertices), 1)).repeat(3, axis=1).astype(np.uint8)
    face_truth = labels[faces[:, 0]]  # any per-face truth will do
    path = tmp_path / "painted.ply"
    write_ply(path, vertices, faces, colors=shaded, face_colors=table.colors_for(face_truth))
    mesh = read_mesh(path, scheme=CHALLENGE)
    assert mesh.meta["labels_source"] == "face_colors"
    assert mesh.face_labels is not None
    np.testing.assert_array_equal(mesh.face_labels, face_truth)
    # the shaded vertex colours alone match nothing: what a reader that ignores face colours meets
    write_ply(tmp_path / "shaded.ply", vertices, faces, colors=shaded)
    with pytest.raises(LabelSchemeError, match="vertex colours"):
        read_mesh(tmp_path / "shaded.ply", scheme=CHALLENGE)


def test_a_colour_given_to_two_teeth_reads_as_unknown(tmp_path: Path) -> None:
    colors = {0: (0, 0, 0), 11: (255, 0, 0), 21: (0, 0, 255)}
    with pytest.raises(LabelSchemeError, match="belongs under 'ambiguous'"):
        ColorTable("dup", "", {**colors, 12: (255, 0, 0)}, 5.0)
    table = ColorTable("amb", "", colors, 5.0, ambiguous={(0, 255, 0): (31, 41)})
    got = table.labels_from_colors(np.array([[255, 0, 0], [0, 255, 0], [1, 254, 0], [0, 0, 0]], np.uint8))
    np.testing.assert_array_equal(got, [11, -1, -1, 0])
    with pytest.raises(LabelSchemeError, match="no colour for code"):
        table.colors_for([31])  # never written

    (tmp_path / "amb.yaml").write_text(
        "name: amb\nkind: color_table\ndescription: test\nsource: test\ntolerance: 5\n"
        "colors:\n  0: [0, 0, 0]\n  11: [255, 0, 0]\n"
        "ambiguous:\n  - {color: [0, 255, 0], fdi: [31, 41]}\n"
    )
    loaded = load_color_table("amb", tmp_path)
    assert loaded.ambiguous == {(0, 255, 0): (31, 41)}
    assert loaded.labels_from_colors(np.array([[0, 255, 0]], np.uint8)).tolist() == [-1]
