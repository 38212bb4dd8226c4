"""Guards of a publish: exclusive locks between processes (one publisher per store, one build per working
folder) and the error a publish that failed writing ends with.

A lock is ``fcntl.flock`` on a small file: the kernel drops it when its holder exits, however it exits (a
SIGKILLed build never leaves a stale lock behind). A second holder waits — the two serialise — and says so in
the log; with ``timeout`` it gives up with a :class:`~toothmcl_data.errors.StoreError` naming the holder.
Object-store URLs (``s3://`` …) take no file lock: Icechunk's conditional commit refuses the second of two
concurrent commits there (see :func:`toothmcl_data.store.writer.publish`).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import icechunk

from toothmcl_data.errors import StoreError, ToothmclError

log = logging.getLogger(__name__)

_HELD: dict[str, int] = {}
"""Lock files this process holds → the holding thread (a thread waiting on its own lock would wait forever)."""


def store_lock_path(store: str | Path) -> Path | None:
    """``<store>.lock`` beside a local store (None for an object-store URL)."""
    url = str(store)
    if url.startswith("file://"):
        url = url[len("file://") :]
    if "://" in url:
        return None
    path = Path(url).expanduser().absolute()
    return path.with_name(path.name + ".lock")


def _holder(fh: IO[str]) -> str:
    fh.seek(0)
    return fh.read().strip() or "another process"


@contextmanager
def exclusive(path: Path | None, what: str, *, timeout: float | None = None) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created when missing) for the ``with`` body; ``path`` None: no lock.

    what: names the guarded thing in messages. timeout: seconds to wait for a holder (None: wait as long as it
    runs)."""
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    key = str(path.resolve())
    if timeout is None and _HELD.get(key) == threading.get_ident():  # waiting on itself: forever
        raise StoreError(
            f"{what} is already open in this thread (lock {path}): close it first — use `with Writer(...)` or "
            "`publish(...)`, which release the store when done or failed"
        )
    with path.open("a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fh)
            log.warning("%s is busy (%s holds %s); waiting for it to finish", what, holder, path)
            _wait(fh, path, what, holder, timeout)
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        fh.flush()
        _HELD[key] = threading.get_ident()
        try:
            yield
        finally:
            _HELD.pop(key, None)
            fh.seek(0)
            fh.truncate()
            fh.flush()
            fcntl.flock(fh, fcntl.LOCK_UN)


def _wait(fh: IO[str], path: Path, what: str, holder: str, timeout: float | None) -> None:
    if timeout is None:
        fcntl.flock(fh, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"{what}: still locked by {holder} after {timeout:.0f} s ({path}); wait for it to finish, or "
                    "if no such process runs any more, run again (a lock dies with its process)"
                ) from None
            time.sleep(0.2)


@contextmanager
def write_errors(store: str | Path) -> Iterator[None]:
    """Raise a write into ``store`` that failed (an ``OSError``, an Icechunk error) as :func:`write_error`; this
    package's own errors pass unchanged (they already say what happened)."""
    try:
        yield
    except (OSError, icechunk.IcechunkError) as err:
        if isinstance(err, ToothmclError):
            raise
        raise write_error(store, err) from err


def write_error(store: str | Path, err: BaseException) -> StoreError:
    """The error for a publish that failed writing (disk full, permissions, a lost connection): it says that
    nothing of it became visible and what to do."""
    full = (isinstance(err, OSError) and err.errno == errno.ENOSPC) or "No space left" in str(err)
    why = "the disk is full" if full else "writing failed"
    fix = "free space on the store's disk" if full else "fix the cause"
    return StoreError(
        f"store {store}: publish aborted, {why} ({err}); nothing of it was committed — the latest version is "
        f"unchanged. {fix.capitalize()}, then run `toothmcl-data version gc {store}` to drop the partial "
        "writes and publish again"
    )
