"""Patient-level train / val / test splits by a keyed hash of the pseudonym.

A patient's split never changes once published: patients already in the base version keep theirs. New
patients are placed by ``u = sha256(key ‖ pseudonym)`` read as a number in [0, 1): without stratification
``u`` alone picks the split (cumulative fractions), so the assignment of a patient does not depend on who else
is in the store. With ``stratify_by`` (a column of the ``cases`` table), new patients of each stratum are taken
in order of ``u`` and each goes to the split furthest below its target share of that stratum.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from toothmcl_data.configdict import config_from_dict, config_to_dict
from toothmcl_data.errors import ConfigError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    """How patients are split. ``key`` is not secret (it only makes splits reproducible); the card records its
    fingerprint."""

    key: str = "toothmcl-splits-v1"
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    stratify_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fractions", tuple(float(f) for f in self.fractions))
        if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1.0) > 1e-9:
            raise ConfigError(
                f"SplitConfig.fractions must be three non-negative numbers (train, val, test) summing to 1, "
                f"got {self.fractions}"
            )
        if not self.key:
            raise ConfigError("SplitConfig.key must be a non-empty string")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SplitConfig:
        return config_from_dict(cls, data)

    @property
    def key_fingerprint(self) -> str:
        return hashlib.sha256(b"split-key:" + self.key.encode()).hexdigest()[:16]


def keyed_uniform(key: str, pseudonym: str) -> float:
    """The patient's position in [0, 1): the first 8 bytes of sha256(key ‖ 0x00 ‖ pseudonym)."""
    digest = hashlib.sha256(key.encode() + b"\x00" + pseudonym.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_splits(
    pseudonyms: Sequence[str],
    config: SplitConfig,
    *,
    previous: Mapping[str, str] | None = None,
    strata: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Split of each patient in ``pseudonyms``; ``previous`` (the base version's splits) is kept as is.

    strata: pseudonym → value of the ``stratify_by`` column (required when the config stratifies).
    """
    previous = previous or {}
    out = {p: previous[p] for p in pseudonyms if p in previous}
    new = sorted((p for p in pseudonyms if p not in previous), key=lambda p: (keyed_uniform(config.key, p), p))
    if config.stratify_by is None:
        for p in new:
            u = keyed_uniform(config.key, p)
            cumulative = 0.0
            out[p] = SPLITS[-1]
            for name, fraction in zip(SPLITS, config.fractions, strict=True):
                cumulative += fraction
                if u < cumulative:
                    out[p] = name
                    break
        return out
    if strata is None:
        raise ConfigError(f"splits stratified by {config.stratify_by!r} need that column's value for every case")
    counts: dict[Any, dict[str, int]] = {}
    for p, split in out.items():
        counts.setdefault(str(strata.get(p)), dict.fromkeys(SPLITS, 0))[split] += 1
    for p in new:
        c = counts.setdefault(str(strata.get(p)), dict.fromkeys(SPLITS, 0))
        total = sum(c.values()) + 1
        deficits = [config.fractions[i] * total - c[name] for i, name in enumerate(SPLITS)]
        best = SPLITS[max(range(3), key=lambda i: (deficits[i], -i))]
        c[best] += 1
        out[p] = best
    return out
