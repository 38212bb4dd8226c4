"""The key file must be private to its owner, and the audit area is created owner-only whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from toothmcl_data.deid.audit import private_dir, write_private
from toothmcl_data.deid.pseudonym import read_key
from toothmcl_data.errors import DeidError

KEY = b"0123456789abcdef-key-for-tests"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "key.txt"
    key.write_bytes(KEY)
    key.chmod(mode)
    with pytest.raises(DeidError, match=rf"key file .*key\.txt has mode {mode:04o}.*run `chmod 600 "):
        read_key(key_file=key)
    key.chmod(0o600)
    assert read_key(key_file=key) == KEY
    key.chmod(0o400)
    assert read_key(key_file=key) == KEY


def test_audit_area_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        folder = private_dir(tmp_path / "a" / "audit")
        written = write_private(folder / "pseudonyms.csv", b"patient,pseudonym\n")
        loose = tmp_path / "loose"
        loose.mkdir(mode=0o755)
        (loose / "f").write_text("x")
        (loose / "f").chmod(0o644)
        private_dir(loose)
        write_private(loose / "f", b"y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700  # an existing folder is tightened
    assert stat.S_IMODE((loose / "f").stat().st_mode) == 0o600
    assert (loose / "f").read_bytes() == b"y"
