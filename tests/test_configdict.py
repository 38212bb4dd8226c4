"""The one config loader (configdict): pydantic-validated frozen dataclasses from dicts and YAML files, unknown keys
and wrong types named by file and key path, ``--set`` overrides, dict round trip."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from toothmcl_data.configdict import (
    add_set_argument,
    apply_overrides,
    config_from_dict,
    config_from_yaml,
    config_to_dict,
    parse_override,
    require_positive,
    without_null_sections,
)
from toothmcl_data.errors import ConfigError


@dataclass(frozen=True)
class _Demo:
    size: tuple[float, float] = (1.0, 2.0)
    count: int = 3


@dataclass(frozen=True)
class _Inner:
    lr: float = 1e-3
    kind: Literal["a", "b"] = "a"

    def __post_init__(self) -> None:
        require_positive(self, "lr")


@dataclass(frozen=True)
class _Outer:
    inner: _Inner = field(default_factory=_Inner)
    maybe: _Demo | None = None
    names: tuple[str, ...] = ()


def test_config_from_dict_makes_tuples_and_refuses_unknown_keys() -> None:
    assert config_from_dict(_Demo, {"size": [4.0, 5.0]}) == _Demo(size=(4.0, 5.0))
    with pytest.raises(
        ConfigError, match=r"config: unknown key\(s\) \['sise'\]; known keys: \['count', 'size'\] \(_Demo\)"
    ):
        config_from_dict(_Demo, {"sise": [1.0, 1.0]})


def test_require_positive_names_class_field_and_value() -> None:
    require_positive(_Demo(), "count")
    with pytest.raises(ConfigError, match=r"_Demo.count must be > 0, got 0"):
        require_positive(_Demo(count=0), "count")


def test_nested_sections_become_dataclasses_with_coercion() -> None:
    got = config_from_dict(_Outer, {"inner": {"lr": 1}, "maybe": {"count": "4"}, "names": ["x", "y"]})
    assert got == _Outer(inner=_Inner(lr=1.0), maybe=_Demo(count=4), names=("x", "y"))
    assert isinstance(got.inner.lr, float)
    assert config_from_dict(_Outer, {}) == _Outer()
    with pytest.raises(ConfigError, match=r"^config: expected a mapping, got NoneType$"):  # an empty YAML file
        config_from_dict(_Outer, None)


def test_unknown_key_in_a_yaml_file_names_key_section_and_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("inner:\n  lr: 0.1\n  lrr: 0.2\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        config_from_yaml(_Outer, path)
    assert str(err.value) == (f"{path}: inner: unknown key(s) ['lrr']; known keys: ['kind', 'lr'] (_Inner)")


def test_wrong_type_names_the_key_path_expected_and_found(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^config\.inner\.lr: Input should be a valid number.*got 'fast'$"):
        config_from_dict(_Outer, {"inner": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"^config\.inner\.kind must be 'a' or 'b', got 'c'$"):
        config_from_dict(_Outer, {"inner": {"kind": "c"}})
    with pytest.raises(ConfigError, match=r"^config\.inner: expected a mapping, got int$"):
        config_from_dict(_Outer, {"inner": 3})
    with pytest.raises(ConfigError, match=r"^config\.maybe\.size: too few entries, got \[1\.0\]$"):
        config_from_dict(_Outer, {"maybe": {"size": [1.0]}})
    path = tmp_path / "c.yaml"
    path.write_text("names: [a, [b]]\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"c\.yaml: names\[1\]: Input should be a valid string, got \['b'\]"):
        config_from_yaml(_Outer, path)


def test_semantic_errors_of_post_init_keep_their_message_and_get_the_path() -> None:
    with pytest.raises(ConfigError, match=r"^config\.inner: _Inner\.lr must be > 0, got -1\.0$"):
        config_from_dict(_Outer, {"inner": {"lr": -1}})


def test_set_overrides_reach_the_config_and_unknown_keys_are_named(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("inner: {lr: 0.5}\nmaybe: null\n", encoding="utf-8")
    got = config_from_yaml(_Outer, path, ["inner.lr=0.01", "maybe.size=[3, 4]", "names=[p]"])
    assert got == _Outer(inner=_Inner(lr=0.01), maybe=_Demo(size=(3.0, 4.0)), names=("p",))
    with pytest.raises(ConfigError, match=r"inner: unknown key\(s\) \['lrr'\].*\(from --set inner\.lrr=1\)"):
        config_from_yaml(_Outer, path, ["inner.lrr=1"])
    with pytest.raises(ConfigError, match=r"inner\.lr: .*got 'x' \(from --set inner\.lr=x\)"):
        config_from_yaml(_Outer, path, ["inner.lr=x"])


def test_malformed_overrides_are_refused() -> None:
    assert parse_override("a.b=[1, 2]") == (("a", "b"), [1, 2])
    assert parse_override("a=null") == (("a",), None)
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("a.b")
    with pytest.raises(ConfigError, match="expected KEY=VALUE"):
        parse_override("a..b=1")
    with pytest.raises(ConfigError, match=r"inner\.lr is a value \(0\.5\), not a section"):
        apply_overrides({"inner": {"lr": 0.5}}, ["inner.lr.x=1"])
    raw = {"inner": {"lr": 0.5}}
    assert apply_overrides(raw, ["inner.kind=b"]) == {"inner": {"lr": 0.5, "kind": "b"}}
    assert raw == {"inner": {"lr": 0.5}}  # the input is not changed


def test_set_argument_is_repeatable() -> None:
    parser = argparse.ArgumentParser()
    add_set_argument(parser)
    assert parser.parse_args(["--set", "a=1", "--set", "b.c=x"]).set == ["a=1", "b.c=x"]
    assert parser.parse_args([]).set == []


def test_round_trip_dict_config_dict() -> None:
    config = _Outer(inner=_Inner(lr=0.2, kind="b"), maybe=_Demo(size=(5.0, 6.0), count=1), names=("q",))
    d = config_to_dict(config)
    assert d == {"inner": {"lr": 0.2, "kind": "b"}, "maybe": {"size": [5.0, 6.0], "count": 1}, "names": ["q"]}
    assert config_from_dict(_Outer, d) == config


def test_only_named_null_sections_are_dropped() -> None:
    raw = {"run": None, "data": {"a": 1}, "stray": None}
    assert without_null_sections(raw, ("run", "data")) == {"data": {"a": 1}, "stray": None}
    assert without_null_sections([1], ("run",)) == [1]


def test_preset_path_finds_a_named_preset_else_lists_them(tmp_path: Path) -> None:
    from toothmcl_data.configdict import preset_path

    (tmp_path / "run_small.yaml").write_text("count: 1\n", encoding="utf-8")
    (tmp_path / "run_large.yaml").write_text("count: 9\n", encoding="utf-8")
    assert preset_path(Path("small"), "run", tmp_path) == tmp_path / "run_small.yaml"
    own = tmp_path / "mine.yaml"
    own.write_text("count: 2\n", encoding="utf-8")
    assert preset_path(own, "run", tmp_path) == own
    with pytest.raises(ConfigError, match=r"^huge: no such config file; .* presets \['large', 'small'\]$"):
        preset_path(Path("huge"), "run", tmp_path)
