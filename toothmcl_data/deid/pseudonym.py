"""Keyed, consistent pseudonyms: patient pseudonyms, day offsets and UIDs from HMAC-SHA256 of one secret key.

The same key and the same original value give the same output in every run and every modality; a different
key gives unrelated outputs (HMAC is a PRF), so outputs made under two keys cannot be linked. The key itself
is never written anywhere: only :func:`key_fingerprint` may be recorded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
from pathlib import Path

from toothmcl_data.deid.audit import check_key_file
from toothmcl_data.errors import DeidError
from toothmcl_data.io.match import normalise_identity

_MIN_KEY_BYTES = 16
_SHIFT_MIN_DAYS = 36525
_SHIFT_SPAN_DAYS = 3650


def _mac(key: bytes, domain: bytes, value: str) -> bytes:
    return hmac.new(key, domain + b"\x00" + value.encode("utf-8", "surrogateescape"), hashlib.sha256).digest()


def check_key(key: bytes) -> bytes:
    """Return ``key`` if it is long enough (≥ 16 bytes), else raise DeidError."""
    if len(key) < _MIN_KEY_BYTES:
        raise DeidError(
            f"the pseudonymisation key has {len(key)} bytes, expected at least {_MIN_KEY_BYTES}; "
            "generate one with `(umask 077; head -c 32 /dev/urandom | base64 > key.txt)`"
        )
    return key


def pseudonym(key: bytes, patient: str) -> str:
    """``"TM"`` + 12 upper-case hex digits from HMAC(key, normalised patient identity)."""
    return "TM" + _mac(key, b"patient", normalise_identity(patient)).hex()[:12].upper()


def day_shift(key: bytes, patient: str) -> int:
    """The patient's date offset in days, in (-(36525 + 3650), -36525]: same key and patient → same offset.

    About a century back, so shifted dates (1900s–1920s for today's scans) can never be mistaken for, or
    collide with, a real date of another patient (a leak scanner searching original dates stays exact).
    """
    n = int.from_bytes(_mac(key, b"dateshift", normalise_identity(patient))[:8], "big")
    return -(_SHIFT_MIN_DAYS + n % _SHIFT_SPAN_DAYS)


def remap_uid(key: bytes, uid: str) -> str:
    """A valid ``2.25.<decimal>`` UID (≤ 64 characters) from HMAC(key, uid); the same UID maps the same."""
    n = int.from_bytes(_mac(key, b"uid", uid.strip().rstrip("\x00"))[:16], "big")
    return f"2.25.{n}"


def shift_date(value: str, days: int) -> str:
    """Shift a DICOM DA (``YYYYMMDD``) or the date part of a DT by ``days``; unparseable values → ``""``."""
    text = value.strip()
    if len(text) < 8 or not text[:8].isdigit():
        return ""
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:  # handled: not a calendar date — emptied, never kept (PS3.15 'Z'/'X' are both safe)
        return ""
    try:
        shifted = day + dt.timedelta(days=days)
    except OverflowError:  # handled: the shift leaves the calendar — emptied, never kept
        return ""
    return shifted.strftime("%Y%m%d") + text[8:]


def key_fingerprint(key: bytes) -> str:
    """First 16 hex digits of sha256(b"toothmcl-key-fingerprint" + key): safe to record, not reversible."""
    return hashlib.sha256(b"toothmcl-key-fingerprint" + key).hexdigest()[:16]


def read_key(
    *, key_file: Path | None = None, key_env: str | None = None, environ: dict[str, str] | None = None
) -> bytes:
    """Read the key from a file (bytes, surrounding whitespace stripped) or from the environment variable named.

    Exactly one of ``key_file`` / ``key_env`` must be given; ``environ`` defaults to ``os.environ``. A key file
    its group or others can read is refused (:func:`toothmcl_data.deid.audit.check_key_file`).
    """
    if (key_file is None) == (key_env is None):
        raise DeidError("give exactly one key source: --key-file FILE or --key-env VARIABLE")
    if key_file is not None:
        try:
            check_key_file(Path(key_file))
            raw = Path(key_file).read_bytes().strip()
        except OSError as err:
            raise DeidError(f"cannot read key file {key_file}: {err}; check the path and permissions") from err
        return check_key(raw)
    env = os.environ if environ is None else environ
    value = env.get(str(key_env))
    if value is None:
        raise DeidError(f"environment variable {key_env} is not set; export it with the key or use --key-file")
    return check_key(value.strip().encode("utf-8"))
