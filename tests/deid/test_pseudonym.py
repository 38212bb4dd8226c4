"""Keyed pseudonyms, UIDs and date shifts: deterministic, valid, unlinkable across keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toothmcl_data.deid.pseudonym import day_shift, key_fingerprint, pseudonym, read_key, remap_uid, shift_date
from toothmcl_data.errors import DeidError

KEY = b"k" * 32
OTHER = b"o" * 32


@given(st.text(alphabet="0123456789.", min_size=1, max_size=64))
def test_remapped_uids_are_valid_and_stable(uid: str) -> None:
    new = remap_uid(KEY, uid)
    assert re.fullmatch(r"2\.25\.(0|[1-9][0-9]*)", new)
    assert len(new) <= 64
    assert remap_uid(KEY, uid) == new
    assert remap_uid(OTHER, uid) != new


@given(st.text(min_size=1, max_size=30).filter(lambda s: s.strip()))
def test_pseudonyms_ignore_case_and_space_and_depend_on_the_key(patient: str) -> None:
    pn = pseudonym(KEY, patient)
    assert re.fullmatch(r"TM[0-9A-F]{12}", pn)
    assert pseudonym(KEY, f"  {patient.upper()} ") == pseudonym(KEY, patient.upper())
    assert pseudonym(OTHER, patient) != pn
    assert -36525 - 3650 < day_shift(KEY, patient) <= -36525


@pytest.mark.parametrize(
    ("value", "days", "expected"),
    [
        ("20200301", -1, "20200229"),
        ("20200301101500.5", -366, "20190301101500.5"),
        ("garbage", -1, ""),
        ("20201340", 0, ""),
    ],
)
def test_shift_date(value: str, days: int, expected: str) -> None:
    assert shift_date(value, days) == expected


def test_read_key(tmp_path: Path) -> None:
    (tmp_path / "k").write_bytes(b"  0123456789abcdefXYZ\n")
    (tmp_path / "k").chmod(0o600)
    assert read_key(key_file=tmp_path / "k") == b"0123456789abcdefXYZ"
    assert read_key(key_env="K", environ={"K": "0123456789abcdef!"}) == b"0123456789abcdef!"
    assert key_fingerprint(KEY) != key_fingerprint(OTHER)
    assert len(key_fingerprint(KEY)) == 16


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one key source"),
        ({"key_env": "MISSING"}, "MISSING is not set"),
        ({"key_env": "SHORT"}, "expected at least 16"),
        ({"key_file": Path("/nonexistent/key")}, "cannot read key file /nonexistent/key"),
    ],
)
def test_read_key_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DeidError, match=message):
        read_key(**kwargs, environ={"SHORT": "abc"})  # type: ignore[arg-type]
