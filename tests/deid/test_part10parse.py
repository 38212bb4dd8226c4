"""The Part 10 element-stream parser (deid.part10parse): offsets of every element and sequence item agree with
pydicom's reading of the same file; what it cannot parse exactly is an UnsupportedError."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.data import get_testdata_file

from toothmcl_data.deid.part10parse import (
    PIXEL_DATA,
    UnsupportedError,
    parse_dataset,
    parse_meta,
    text_value,
)


def _path(name: str) -> str:
    path = get_testdata_file(name)
    assert isinstance(path, str)
    return path


def _read(name: str) -> bytes:
    with open(_path(name), "rb") as fh:
        return fh.read()


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_implicit.dcm", "priv_SQ.dcm"])
def test_top_level_tags_and_values_match_pydicom(name: str) -> None:
    buf = _read(name)
    meta, body = parse_meta(buf)
    ds = pydicom.dcmread(_path(name))
    assert text_value(buf, *meta[0x00020010][1:]) == str(ds.file_meta.TransferSyntaxUID)
    implicit = ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    elements, end = parse_dataset(buf, body, len(buf), implicit, False)
    assert end == len(buf)
    assert [e[0] for e in elements] == [int(el.tag) for el in ds if el.tag.group > 2]
    for tag, vr, start, vstart, vend, after, items in elements:
        assert start < vstart <= vend <= after
        if vr == "SQ":
            assert items is not None
            assert len(items) == len(ds[tag].value)
        if tag == PIXEL_DATA:
            assert vend - vstart == len(ds.PixelData)
    if "PatientName" in ds:
        e = next(e for e in elements if e[0] == 0x00100010)
        assert buf[e[3] : e[4]].decode("latin-1").strip() == str(ds.PatientName)


def test_files_without_dicm_prefix_or_with_truncated_elements_are_unsupported() -> None:
    with pytest.raises(UnsupportedError, match="no DICM prefix"):
        parse_meta(b"\0" * 200)
    buf = _read("CT_small.dcm")
    _, body = parse_meta(buf)
    with pytest.raises(UnsupportedError, match=r"runs past the end|truncated"):
        parse_dataset(buf[: body + 30], body, body + 30, False, False)
