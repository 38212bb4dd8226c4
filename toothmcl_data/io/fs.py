"""Input locations as paths or fsspec URLs (local, ``memory://``, ``s3://`` with s3fs installed …).

A :class:`Source` is a file system plus a root folder; files are named by their path relative to the root
(POSIX separators; a name that is not valid UTF-8 is held as :func:`os.fsdecode` gives it). Readers that need
a real file get one from :meth:`Source.local_path` (the file itself on a local disk, else a temporary copy).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from toothmcl_data.errors import InputNotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Source:
    """A drop: ``fs`` (an fsspec file system) and ``root`` (its folder, in ``fs``'s own path form)."""

    fs: Any
    root: str
    url: str

    @property
    def is_local(self) -> bool:
        protocol = self.fs.protocol
        return "file" in (protocol if isinstance(protocol, tuple | list) else (protocol,))

    def full(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}"

    def list_files(self) -> list[str]:
        """Every file under the root, as sorted relative POSIX paths."""
        found = self.fs.find(self.root, withdirs=False)
        root = self.root.rstrip("/")
        rels = [str(PurePosixPath(p).relative_to(root)) for p in found]
        return sorted(rels)

    def read_bytes(self, rel: str) -> bytes:
        data: bytes = self.fs.cat_file(self.full(rel))
        return data

    @contextmanager
    def local_path(self, rel: str) -> Iterator[Path]:
        """A real file path for ``rel``: the file itself when local, else a temporary copy (same suffix)."""
        if self.is_local:
            yield Path(self.full(rel))
            return
        suffix = "".join(PurePosixPath(rel).suffixes[-2:])
        with tempfile.TemporaryDirectory(prefix="toothmcl-") as tmp:
            path = Path(tmp) / f"input{suffix}"
            path.write_bytes(self.read_bytes(rel))
            yield path


def open_source(location: str | os.PathLike[str]) -> Source:
    """Open a drop given as a local path or an fsspec URL; raise InputNotFoundError if it is not a folder."""
    import fsspec

    text = os.fspath(location)
    fs, root = fsspec.core.url_to_fs(text)
    if not fs.isdir(root):
        raise InputNotFoundError(
            f"input {text} is not a folder (or does not exist); pass the root folder of the drop "
            "(a local path or a URL such as s3://bucket/drop; s3:// needs `pip install s3fs`)"
        )
    return Source(fs=fs, root=root, url=text)
