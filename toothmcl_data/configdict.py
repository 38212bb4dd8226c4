"""The one way configurations are loaded: plain dicts (YAML, JSON, a checkpoint) → frozen dataclass configs.

Every config is a frozen stdlib dataclass (so ``dataclasses.replace``/``asdict`` keep working); this module
validates a raw dict against it with pydantic (``TypeAdapter`` semantics, ``extra="forbid"``): nested dicts become
the nested dataclasses, values are type-checked and coerced (lists → tuples, ``1`` → ``1.0`` for a float field),
unknown keys are refused with the known ones listed, and every failure is one :class:`ConfigError` naming the
file, the key path (``optim.lr``, ``model.ios.blocks[1]``), what was expected and what was found. Semantic rules
(ranges, cross-field checks) stay in each class's ``__post_init__``; their errors get the file and key path too.

``--set KEY=VALUE`` overrides (dotted keys, the value parsed as YAML) are applied to the raw dict before
validation by :func:`apply_overrides`; an unknown key is named together with the ``--set`` it came from.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pydantic
import yaml

from toothmcl_data.errors import ConfigError

C = TypeVar("C")

SET_HELP = "override one config value: dotted KEY=VALUE, the value read as YAML (e.g. optim.lr=0.01); repeatable"


def add_set_argument(parser: argparse.ArgumentParser) -> None:
    """Add the shared ``--set KEY=VALUE`` option (repeatable) to an argparse CLI; values land in ``args.set``."""
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help=SET_HELP)


def parse_override(item: str) -> tuple[tuple[str, ...], Any]:
    """``"optim.lr=0.01"`` → ``(("optim", "lr"), 0.01)``; the value is parsed as YAML (``[1, 2]``, ``null``)."""
    key, sep, text = item.partition("=")
    path = tuple(key.strip().split("."))
    if not sep or not all(path):
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. --set optim.lr=0.01")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({err}); quote it") from err
    return path, value


def apply_overrides(raw: Any, overrides: Sequence[str]) -> Any:
    """A copy of ``raw`` (a mapping, or None = empty) with each ``KEY=VALUE`` of ``overrides`` set; missing or
    null sections on the way are created. Keys are checked by the validation that follows, not here."""
    if not overrides:
        return raw
    out: dict[str, Any] = copy.deepcopy(dict(raw)) if isinstance(raw, Mapping) else {} if raw is None else raw
    if not isinstance(out, dict):
        raise ConfigError(f"--set {overrides[0]!r}: the config is a {type(raw).__name__}, not a mapping")
    for item in overrides:
        path, value = parse_override(item)
        node = out
        for depth, key in enumerate(path[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            elif not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(f"--set {item!r}: {where} is a value ({child!r}), not a section with keys")
            node = child
        node[path[-1]] = value
    return out


def without_null_sections(raw: Any, sections: Sequence[str]) -> Any:
    """``raw`` without those of ``sections`` that are null: an empty YAML section (``run:``) means its defaults.
    Anything else (not a mapping, other keys) is left for the validation to judge."""
    if not isinstance(raw, Mapping):
        return raw
    return {k: v for k, v in raw.items() if not (k in sections and v is None)}


@functools.cache
def _root(cls: type) -> type[pydantic.BaseModel]:
    # A wrapper model carries extra="forbid" down to every nested stdlib dataclass (TypeAdapter refuses a config
    # for a dataclass, and the dataclasses stay free of pydantic).
    model: type[pydantic.BaseModel] = pydantic.create_model(
        f"Load{cls.__name__}", __config__=pydantic.ConfigDict(extra="forbid"), value=(cls, ...)
    )
    return model


def config_from_dict(cls: type[C], data: Any, where: str | None = None, overrides: Sequence[str] = ()) -> C:
    """``data`` (after ``overrides``) validated into the dataclass ``cls``; ``where`` names the file in errors
    (None or ``"config"``: a dict, key paths read ``config.optim.lr``). Raises :class:`ConfigError`."""
    data = apply_overrides(dict(data) if isinstance(data, Mapping) else data, overrides)
    try:
        model = _root(typing.cast(type, cls))
        value: C = model.model_validate({"value": data}).value  # type: ignore[attr-defined]
    except pydantic.ValidationError as err:
        raise ConfigError(_describe(cls, err, where, overrides)) from err
    return value


def read_yaml(path: Path) -> Any:
    """The parsed YAML of ``path``; :class:`ConfigError` naming the file when it is missing or not YAML."""
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass a YAML path or a preset name")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err}); fix the syntax") from err


def preset_path(path: Path, prefix: str, folder: Path) -> Path:
    """``path`` itself when it is a file, else the preset ``folder/<prefix>_<path>.yaml`` when ``path`` names one;
    :class:`ConfigError` listing the presets of ``folder`` otherwise."""
    named = folder / f"{prefix}_{path}.yaml"
    if not path.exists() and named.is_file():
        return named
    if not path.is_file():
        known = sorted(p.stem.removeprefix(f"{prefix}_") for p in folder.glob(f"{prefix}_*.yaml"))
        raise ConfigError(f"{path}: no such config file; pass a YAML path or one of the presets {known}")
    return path


def config_from_yaml(cls: type[C], path: Path, overrides: Sequence[str] = ()) -> C:
    """The config ``cls`` of the YAML file ``path`` with ``overrides``; errors name the file and key."""
    return config_from_dict(cls, read_yaml(path), str(path), overrides)


def config_to_dict(config: Any) -> dict[str, Any]:
    """``dataclasses.asdict`` with tuples as lists: what :func:`config_from_dict` reads back to an equal config."""
    out: dict[str, Any] = _lists(dataclasses.asdict(config))
    return out


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_lists(v) for v in value]
    return value


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _label(loc: Sequence[Any], where: str | None) -> str:
    path = _path(loc)
    if where in (None, "config"):
        return f"config.{path}" if path else "config"
    return f"{where}: {path}" if path else f"{where}"


def _class_at(cls: type, loc: Sequence[Any]) -> type | None:
    """The dataclass reached from ``cls`` by the field names in ``loc`` (None when it is not one)."""
    current: Any = cls
    for part in loc:
        if isinstance(part, int) or not dataclasses.is_dataclass(current):
            return None
        hint = typing.get_type_hints(current).get(part)
        candidates = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        current = next((a for a in candidates if dataclasses.is_dataclass(a)), None)
    return current if isinstance(current, type) else None


def _from_set(loc: Sequence[Any], overrides: Sequence[str]) -> str:
    names = [str(p) for p in loc]
    hits = []
    for item in overrides:
        key = item.partition("=")[0].strip().split(".")
        if key[: len(names)] == names or names[: len(key)] == key:
            hits.append(item)
    return f" (from --set {', '.join(hits)})" if hits else ""


def _describe(cls: type, err: pydantic.ValidationError, where: str | None, overrides: Sequence[str]) -> str:
    unknown: dict[tuple[Any, ...], list[str]] = {}
    lines: list[str] = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])[1:]  # drop the wrapper's "value"
        kind = e["type"]
        if kind in ("unexpected_keyword_argument", "extra_forbidden"):
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
            continue
        if kind in ("dataclass_type", "dataclass_args_type", "dict_type", "model_type"):
            got = type(e["input"]).__name__
            lines.append(f"{_label(loc, where)}: expected a mapping, got {got}{_from_set(loc, overrides)}")
            continue
        cause = (e.get("ctx") or {}).get("error")
        if kind == "value_error" and isinstance(cause, ConfigError):
            lines.append(f"{_label(loc, where)}: {cause}{_from_set(loc, overrides)}")
            continue
        if kind == "literal_error":
            expected = (e.get("ctx") or {}).get("expected")
            lines.append(f"{_label(loc, where)} must be {expected}, got {e['input']!r}{_from_set(loc, overrides)}")
            continue
        if kind == "missing" and loc and isinstance(loc[-1], int):
            lines.append(f"{_label(loc[:-1], where)}: too few entries, got {e['input']!r}{_from_set(loc, overrides)}")
            continue
        got = "" if kind == "missing" else f", got {e['input']!r}"
        lines.append(f"{_label(loc, where)}: {e['msg']}{got}{_from_set(loc, overrides)}")
    for parent, names in unknown.items():
        owner = _class_at(cls, parent)
        known = sorted(f.name for f in dataclasses.fields(owner)) if owner else []
        sets = "".join(_from_set((*parent, n), overrides) for n in names)
        owner_name = f" ({owner.__name__})" if owner else ""
        lines.insert(
            0, f"{_label(parent, where)}: unknown key(s) {sorted(names)}; known keys: {known}{owner_name}{sets}"
        )
    return "; ".join(lines)


def require_positive(obj: object, *names: str) -> None:
    """Raise :class:`ConfigError` naming ``Class.field`` and its value for the first of ``names`` that is not > 0."""
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be > 0, got {value}")
