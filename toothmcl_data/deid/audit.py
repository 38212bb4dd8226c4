"""The audit area (pseudonym map, original paths, identities) and the key file: private to their owner.

Folders of the audit area are created (or tightened to) mode 0700 and its files are written 0600, whatever the
process umask; a key file that its group or others may read is refused, as ssh refuses such a private key.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from toothmcl_data.errors import DeidError

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create ``path`` (and missing parents) and set it to 0700; an existing folder is tightened to 0700."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=FOLDER_MODE)
    os.chmod(path, FOLDER_MODE)
    return path


def write_private(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` as a 0600 file (created so; an existing file is truncated and set to 0600)."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        os.write(fd, data)
    finally:
        os.close(fd)
    return path


def check_key_file(path: Path) -> None:
    """Refuse a key file its group or others can read or write (DeidError naming the file, its mode, the fix)."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise DeidError(
            f"key file {path} has mode {mode:04o}: its group or others can read it, expected 0600 or stricter; "
            f"run `chmod 600 {path}` (and consider the key exposed if others could read it)"
        )
