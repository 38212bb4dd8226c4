"""The label-map catalog (fdi.catalog): which files are schemes and which colour tables, strict YAML reading."""

from __future__ import annotations

from pathlib import Path

import pytest

from toothmcl_data.errors import LabelSchemeError
from toothmcl_data.fdi.catalog import catalog_folder, labelmaps_dir, read_catalog_file, scheme_names


def test_the_catalog_lists_schemes_and_colour_tables_apart() -> None:
    assert catalog_folder(None) == labelmaps_dir().resolve()
    schemes = scheme_names()
    tables = scheme_names(kind="color_table")
    assert {"fdi", "universal", "toothfairy2"} <= set(schemes)
    assert "fdi_colors" in tables
    assert not set(schemes) & set(tables)


def test_a_file_is_read_strictly(tmp_path: Path) -> None:
    good = tmp_path / "mine.yaml"
    good.write_text("name: mine\nkind: label_scheme\ndescription: d\nsource: s\nto_fdi: {0: 0, 1: 11}\n")
    assert read_catalog_file(good, "label_scheme")["to_fdi"] == {0: 0, 1: 11}
    assert scheme_names(tmp_path) == ["mine"]
    assert scheme_names(tmp_path, kind="color_table") == []
    dup = tmp_path / "dup.yaml"
    dup.write_text("name: dup\nkind: label_scheme\nname: dup\n")
    with pytest.raises(LabelSchemeError, match="duplicate key 'name'"):
        read_catalog_file(dup, "label_scheme")
    other = tmp_path / "other.yaml"
    other.write_text("name: wrong\nkind: label_scheme\ndescription: d\nsource: s\nto_fdi: {0: 0}\n")
    with pytest.raises(LabelSchemeError, match="name 'wrong' must equal the file name 'other'"):
        read_catalog_file(other, "label_scheme")
    short = tmp_path / "short.yaml"
    short.write_text("name: short\nkind: label_scheme\n")
    with pytest.raises(LabelSchemeError, match="missing key\\(s\\) description, source, to_fdi"):
        read_catalog_file(short, "label_scheme")
    with pytest.raises(LabelSchemeError, match="kind is 'label_scheme', expected 'color_table'"):
        read_catalog_file(good, "color_table")
