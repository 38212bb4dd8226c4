"""Input locations as paths or fsspec URLs (local, ``memory://``, ``s3://`` with s3fs installed …).

A :class:`Source` is a file system plus a root folder; files are named by their path relative to the root
(POSIX separators; a name that is not valid UTF-8 is held as :func:`os.fsdecode` gives it). Readers that need
a real file get one from :meth:`Source.local_path` (the file itself on a local disk, else a temporary copy).

A drop is hostile input: names that are absolute or climb out (``..``), links leaving the drop and device files,
pipes or sockets are refused with an :class:`~toothmcl_data.errors.UnsafeInputError` listing each, before any
file is read (a pipe would block a reader, a device would never end, a link would import a file from anywhere).
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from toothmcl_data.errors import InputNotFoundError, UnsafeInputError

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
        check_name(rel, self.url)
        return f"{self.root.rstrip('/')}/{rel}"

    def list_files(self) -> list[str]:
        """Every file under the root, as sorted relative POSIX paths.

        Raises UnsafeInputError naming every entry that is refused (see :func:`check_name` and, on a local disk,
        :func:`local_files`): nothing of the drop is read before the whole listing is safe."""
        if self.is_local:
            return local_files(Path(self.root), self.url)
        root = self.root.rstrip("/")
        rels = [str(PurePosixPath(p).relative_to(root)) for p in self.fs.find(self.root, withdirs=False)]
        problems = [f"{rel} ({why})" for rel in rels if (why := _bad_name(rel))]
        if problems:
            raise _refused(self.url, problems)
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


def _bad_name(rel: str) -> str:
    """Why the relative name ``rel`` is unsafe (``""`` if it is not)."""
    path = PurePosixPath(rel)
    if not rel or rel.startswith("/") or path.is_absolute():
        return "an absolute path"
    if any(part in ("..", ".") for part in rel.split("/")) or "//" in rel:
        return "a name with '..', '.' or an empty folder in it"
    if "\x00" in rel:
        return "a name with a NUL byte"
    return ""


def _refused(url: str, problems: list[str]) -> UnsafeInputError:
    return UnsafeInputError(
        f"drop {url} holds {len(problems)} entries that are refused: {'; '.join(problems[:5])}"
        f"{' …' if len(problems) > 5 else ''}; a drop must hold regular files inside its own folder — remove "
        "these entries (or copy the real files into the drop) and run again"
    )


def check_name(rel: str, url: str = "the drop") -> None:
    """Raise UnsafeInputError when ``rel`` is absolute or climbs out of the drop (``..``)."""
    why = _bad_name(rel)
    if why:
        raise _refused(url, [f"{rel} ({why})"])


def local_files(root: Path, url: str = "") -> list[str]:
    """Every regular file under the local folder ``root`` (sorted relative POSIX paths), links not followed.

    Refused (UnsafeInputError listing each with the reason): a link whose target lies outside ``root``
    (or does not exist), and anything that is not a regular file or folder (device, pipe, socket). A link to a
    file inside the drop is listed (its content is the target's); a link to a folder inside it is not followed
    (its files are listed under their own path)."""
    root = Path(root)
    real_root = root.resolve()
    found: list[str] = []
    problems: list[str] = []

    def failed(err: OSError) -> None:
        problems.append(f"{err.filename} (cannot be listed: {err.strerror})")

    for folder, dirs, files in os.walk(root, onerror=failed):
        for name in sorted(dirs + files):
            path = Path(folder) / name
            rel = str(PurePosixPath(*path.relative_to(root).parts))
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                target = path.resolve()
                if real_root != target and real_root not in target.parents:
                    problems.append(f"{rel} (a link leaving the drop, to {os.readlink(path)})")
                elif not target.exists():
                    problems.append(f"{rel} (a broken link)")
                elif target.is_file():
                    found.append(rel)
            elif stat.S_ISREG(mode):
                found.append(rel)
            elif not stat.S_ISDIR(mode):
                kind = "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a pipe or socket"
                problems.append(f"{rel} ({kind}, not a regular file)")
    if problems:
        raise _refused(url or str(root), problems)
    return sorted(found)


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
