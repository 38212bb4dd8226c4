"""Frozen dataclass configurations and plain dicts (YAML/JSON): one ``from_dict`` that refuses unknown keys by name
and turns lists into tuples, and one positivity check with a message naming the class and field."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, TypeVar

from toothmcl_data.errors import ConfigError

C = TypeVar("C")


def config_from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """``cls(**data)`` for a dataclass ``cls``; unknown keys raise :class:`ConfigError` listing them and the known
    ones; list values become tuples (frozen configs hold tuples)."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} keys {sorted(unknown)}; known: {sorted(names)}")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    return cls(**values)


def require_positive(obj: object, *names: str) -> None:
    """Raise :class:`ConfigError` naming ``Class.field`` and its value for the first of ``names`` that is not > 0."""
    for name in names:
        value = getattr(obj, name)
        if not value > 0:
            raise ConfigError(f"{type(obj).__name__}.{name} must be > 0, got {value}")
