"""The leak scanner cannot go blind: a PHI value planted in every place an output can hold text is found, and a
file it cannot search completely is a finding that names the file (exit code 1 from the CLI)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, generate_uid
from typer.testing import CliRunner

from toothmcl_data.cli.app import app
from toothmcl_data.deid.scan import scan_tree

PHI = "Zwiebelmeyer"
"""The planted value (a family name that no library writes by itself)."""


def _dicom(syntax: pydicom.uid.UID, where: str) -> bytes:
    ds = Dataset()
    ds.PatientName = "ANON"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    if where == "nested":
        inner = Dataset()
        inner.PersonName = f"{PHI}^Hans"
        item = Dataset()
        item.ContentSequence = Sequence([inner])
        ds.ReferencedStudySequence = Sequence([item])
    else:
        block = ds.private_block(0x0009, "ACME 1.0", create=True)
        block.add_new(0x01, "LO", f"ref {PHI}")
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _nifti(where: str) -> bytes:
    img = nib.Nifti1Image(np.zeros((2, 2, 2), np.int16), np.eye(4))
    if where == "descrip":
        img.header["descrip"] = f"scan of {PHI}".encode()
    else:
        img.header.extensions.append(nib.nifti1.Nifti1Extension(6, f"comment {PHI}".encode()))
    return gzip.compress(img.to_bytes())


def _png(compressed: bool) -> bytes:
    info = PngInfo()
    info.add_text("Author", f"{PHI} clinic", zip=compressed)
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _icechunk(root: Path) -> None:
    import icechunk
    import zarr

    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(root)))
    session = repo.writable_session("main")
    group = zarr.group(store=session.store)
    group.attrs["operator"] = PHI
    session.commit("planted")


def _zarr(root: Path) -> None:
    import zarr

    group = zarr.open_group(str(root), mode="w")
    group.create_array("a", shape=(2,), dtype="int16").attrs["note"] = f"Ö {PHI}"  # written with \u escapes


def _vtp() -> bytes:
    text = " ".join(str(b) for b in f"{PHI}\0".encode())  # VTK writes String arrays as byte values
    return (
        '<?xml version="1.0"?><VTKFile type="PolyData"><PolyData><FieldData>'
        f'<DataArray type="String" Name="note" format="ascii">{text}</DataArray>'
        "</FieldData></PolyData></VTKFile>"
    ).encode()


PLACES: dict[str, Callable[[Path], object]] = {
    "dicom_nested": lambda d: (d / "a.dcm").write_bytes(_dicom(ExplicitVRLittleEndian, "nested")),
    "dicom_private": lambda d: (d / "b.dcm").write_bytes(_dicom(ExplicitVRLittleEndian, "private")),
    "dicom_deflated": lambda d: (d / "c.dcm").write_bytes(_dicom(DeflatedExplicitVRLittleEndian, "nested")),
    "nifti_header": lambda d: (d / "v.nii.gz").write_bytes(_nifti("descrip")),
    "nifti_extension": lambda d: (d / "w.nii.gz").write_bytes(_nifti("extension")),
    "ply_comment": lambda d: (d / "m.ply").write_bytes(f"ply\nformat ascii 1.0\ncomment {PHI}\nend_header\n".encode()),
    "stl_header": lambda d: (d / "m.stl").write_bytes(f"{PHI} scan".encode().ljust(80, b"\0") + bytes(4)),
    "vtp_string": lambda d: (d / "m.vtp").write_bytes(_vtp()),
    "json_escaped": lambda d: (d / "s.json").write_text(  # every character written as a \\u escape
        '{"id_patient": "' + "".join(f"\\u{ord(c):04x}" for c in PHI) + '"}'
    ),
    "parquet": lambda d: pq.write_table(pa.table({"x": [f"{PHI} " * 40]}), d / "t.parquet", compression="zstd"),
    "zarr_attributes": lambda d: _zarr(d / "z.zarr"),
    "icechunk_attributes": lambda d: _icechunk(d / "store"),
    "png_text": lambda d: (d / "p.png").write_bytes(_png(compressed=True)),
    "html_entities": lambda d: (d / "r.html").write_text(f"<p>{PHI[:4]}&#{ord(PHI[4])};{PHI[5:]}</p>"),
    "html_embedded_png": lambda d: (d / "q.html").write_text(
        f'<img src="data:image/png;base64,{base64.b64encode(_png(compressed=True)).decode()}">'
    ),
    "file_name": lambda d: (d / f"{PHI}.txt").write_text("nothing here"),
}


@pytest.mark.parametrize("place", sorted(PLACES))
def test_planted_value_is_found(tmp_path: Path, place: str) -> None:
    PLACES[place](tmp_path)
    hits, _ = scan_tree(tmp_path, [PHI])
    assert [h for h in hits if h.where == "unreadable"] == []
    found = [h for h in hits if h.value == PHI]
    assert found, f"{place}: {PHI} not found; hits {hits}"
    assert all(h.where in ("name", "content") for h in found)


def test_deflated_dicom_hides_the_value_from_a_raw_byte_search(tmp_path: Path) -> None:
    data = _dicom(DeflatedExplicitVRLittleEndian, "nested")
    assert PHI.encode() not in data  # only inflating the data set shows it
    assert pydicom.dcmread(io.BytesIO(data)).ReferencedStudySequence[0].ContentSequence[0].PersonName.family_name == PHI


def _truncated_png(d: Path) -> None:
    data = _png(compressed=True)
    (d / "cut.png").write_bytes(data[: data.index(b"zTXt") + 10])


UNREADABLE: dict[str, tuple[Callable[[Path], object], str, str]] = {
    "broken_link": (lambda d: (d / "gone").symlink_to(d / "nowhere"), "gone", "broken link"),
    "folder_link": (lambda d: (d / "elsewhere").symlink_to("/usr"), "elsewhere", "link to a folder"),
    "fifo": (lambda d: os.mkfifo(d / "pipe"), "pipe", "not a regular file"),
    "bad_gzip": (lambda d: (d / "x.nii.gz").write_bytes(b"\x1f\x8b\x08\x00broken"), "x.nii.gz", "gzip stream"),
    "bad_parquet": (lambda d: (d / "t.parquet").write_bytes(b"PAR1 not a table"), "t.parquet", "Parquet table"),
    "bad_json": (lambda d: (d / "c.json").write_bytes(b'{"id": '), "c.json", "JSON cannot be parsed"),
    "bad_png": (_truncated_png, "cut.png", "PNG chunk"),
    "bad_icechunk": (
        lambda d: (d / "snap").write_bytes(b"ICE\xf0\x9f\xa7\x8aCHUNK" + b" " * 20 + b"\x28\xb5\x2f\xfd" + b"junk"),
        "snap",
        "zstd frame",
    ),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_is_a_finding(tmp_path: Path, case: str) -> None:
    plant, name, why = UNREADABLE[case]
    (tmp_path / "ok.txt").write_text("clean")
    plant(tmp_path)
    hits, _ = scan_tree(tmp_path, [PHI])
    assert [(h.path, h.where) for h in hits] == [(name, "unreadable")], hits
    assert why in hits[0].value


def test_permission_denied_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "secret.bin").write_bytes(b"x")
    real = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == "secret.bin":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    hits, _ = scan_tree(tmp_path, [PHI])
    assert [(h.path, h.where, h.value) for h in hits] == [
        ("secret.bin", "unreadable", "cannot be read (Permission denied)")
    ]


def test_cli_exits_non_zero_and_names_an_unreadable_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "clean.txt").write_text("nothing")
    (out / "gone").symlink_to(out / "nowhere")
    phi = tmp_path / "phi.txt"
    phi.write_text(PHI + "\n")
    result = CliRunner().invoke(app, ["deid", "scan", str(out), "--phi", str(phi), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout[: result.stdout.rindex("}") + 1])
    assert report["hits"] == 0
    assert report["unreadable"] == 1
    assert report["unreadable_files"] == ["gone: broken link"]
    os.unlink(out / "gone")
    clean = CliRunner().invoke(app, ["deid", "scan", str(out), "--phi", str(phi), "--json"])
    assert clean.exit_code == 0, clean.output
