"""A drop is hostile input: names leaving it, links leaving it and device files are refused with a clear error
before anything is read; a manifest cannot point outside the drop."""

from __future__ import annotations

import os
from pathlib import Path

import fsspec
import pytest

from toothmcl_data.errors import InputError, UnsafeInputError
from toothmcl_data.io.fs import Source, check_name, local_files
from toothmcl_data.io.match import read_manifest
from toothmcl_data.io.plan import plan_files


def _drop(tmp_path: Path) -> Path:
    drop = tmp_path / "drop"
    (drop / "P1").mkdir(parents=True)
    (drop / "P1" / "scan.stl").write_bytes(b"solid x\nendsolid x\n")
    return drop


def test_a_clean_drop_lists_its_files_and_inner_links(tmp_path: Path) -> None:
    drop = _drop(tmp_path)
    (drop / "P1" / "alias.stl").symlink_to(drop / "P1" / "scan.stl")  # a link inside the drop is fine
    (drop / "again").symlink_to(drop / "P1")  # a folder link inside: not followed, its files listed once
    assert local_files(drop) == ["P1/alias.stl", "P1/scan.stl"]


@pytest.mark.parametrize(
    ("plant", "message"),
    [
        (
            lambda d, t: (d / "P1" / "passwd").symlink_to("/etc/passwd"),
            r"P1/passwd \(a link leaving the drop, to /etc/passwd\)",
        ),
        (lambda d, t: (d / "up").symlink_to(t), r"up \(a link leaving the drop, to "),
        (lambda d, t: (d / "P1" / "dangling").symlink_to(d / "nowhere"), r"P1/dangling \(a broken link\)"),
        (lambda d, t: os.mkfifo(d / "P1" / "pipe"), r"P1/pipe \(a pipe or socket, not a regular file\)"),
        (lambda d, t: (d / "null").symlink_to("/dev/null"), r"null \(a link leaving the drop, to /dev/null\)"),
    ],
    ids=["symlink_out", "folder_link_out", "broken_link", "fifo", "device_link"],
)
def test_refused_entries(tmp_path: Path, plant: object, message: str) -> None:
    drop = _drop(tmp_path)
    plant(drop, tmp_path)  # type: ignore[operator]
    with pytest.raises(UnsafeInputError, match=message) as info:
        plan_files(drop)
    assert f"drop {drop}" in str(info.value)
    assert "remove these entries" in str(info.value)


def test_device_file_is_refused(tmp_path: Path) -> None:
    drop = _drop(tmp_path)
    try:
        os.mknod(drop / "P1" / "zero", 0o600 | 0o020000, os.makedev(1, 5))  # a character device like /dev/zero
    except PermissionError:
        pytest.skip("creating a device node needs root")
    with pytest.raises(UnsafeInputError, match=r"P1/zero \(a device, not a regular file\)"):
        local_files(drop)


@pytest.mark.parametrize("name", ["../outside.dcm", "/etc/passwd", "a/../../b", "a//b", "./a"])
def test_names_leaving_the_drop_are_refused(name: str) -> None:
    with pytest.raises(UnsafeInputError, match="refused"):
        check_name(name, "memory://drop")


def test_remote_listing_refuses_climbing_keys() -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe("/hostile/P1/scan.stl", b"solid x\n")
    source = Source(fs=fs, root="/hostile", url="memory://hostile")
    assert source.list_files() == ["P1/scan.stl"]
    with pytest.raises(UnsafeInputError, match=r"\.\./secret \(a name with '\.\.'"):
        source.read_bytes("../secret")
    fs.rm("/hostile", recursive=True)


def test_manifest_paths_outside_the_drop_are_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,patient_id\nP1,A\n../other/P2,B\n/abs/P3,C\n")
    with pytest.raises(InputError, match=r"names paths outside the drop \(\.\./other/P2, /abs/P3\)"):
        read_manifest(manifest)
    manifest.write_text("path,patient_id\nP1/,A\n")
    assert read_manifest(manifest) == {"P1": "A"}
