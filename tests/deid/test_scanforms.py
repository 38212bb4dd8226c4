"""The forms the leak scanner decodes: each yields the hidden text, and an announced form it cannot decode raises."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import pytest

from toothmcl_data.deid.scanforms import UnreadableError, gunzip, texts

SECRET = "Doe^Jane"


def _found(path: str, data: bytes) -> bool:
    return any(SECRET.encode() in form for form in texts(Path(path), data))


def test_gzip_json_escapes_and_html_entities_are_decoded() -> None:
    escaped = json.dumps({"name": SECRET}, ensure_ascii=True).replace("D", "\\u0044").encode()
    assert SECRET.encode() not in escaped
    assert _found("a.json", escaped)
    assert _found("a.json.gz", gzip.compress(escaped))
    html = b"<p>Doe&#94;Jane</p>"
    assert SECRET.encode() not in html
    assert _found("r.html", html)


def test_png_ztxt_chunk_is_decompressed() -> None:
    body = b"Comment\0\0" + zlib.compress(SECRET.encode())
    chunk = len(body).to_bytes(4, "big") + b"zTXt" + body + b"\0\0\0\0"
    png = b"\x89PNG\r\n\x1a\n" + chunk + (0).to_bytes(4, "big") + b"IEND\0\0\0\0"
    assert SECRET.encode() not in png
    assert _found("p.png", png)


def test_plain_bytes_are_searched_and_nothing_is_invented() -> None:
    assert _found("notes.txt", f"x {SECRET} y".encode())
    assert not _found("notes.txt", b"nothing here")


def test_announced_forms_that_cannot_be_decoded_are_unreadable() -> None:
    with pytest.raises(UnreadableError, match="gzip"):
        gunzip(b"\x1f\x8b" + b"\0" * 20)
    with pytest.raises(UnreadableError, match="JSON"):
        list(texts(Path("bad.json"), b"{not json"))
    with pytest.raises(UnreadableError, match="Parquet"):
        list(texts(Path("t.parquet"), b"PAR1garbage"))
    truncated = b"\x89PNG\r\n\x1a\n" + (1000).to_bytes(4, "big") + b"zTXt" + b"short"
    with pytest.raises(UnreadableError, match="past the end"):
        list(texts(Path("p.png"), truncated))
