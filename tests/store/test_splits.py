"""Patient-level splits: keyed, stable when patients are added, stratifiable."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toothmcl_data.errors import ConfigError
from toothmcl_data.store import SplitConfig, assign_splits

NAMES = [f"P{i:05d}" for i in range(2000)]


@settings(max_examples=30, deadline=None)
@given(n_old=st.integers(0, 200), n_new=st.integers(0, 100), stratify=st.booleans())
def test_existing_patients_never_change_split(n_old, n_new, stratify):
    config = SplitConfig(key="k", stratify_by="site" if stratify else None)
    strata = {p: ("A" if int(p[1:]) % 3 else "B") for p in NAMES}
    old = assign_splits(NAMES[:n_old], config, strata=strata)
    new = assign_splits(NAMES[: n_old + n_new], config, previous=old, strata=strata)
    assert {p: new[p] for p in old} == old
    assert set(new) == set(NAMES[: n_old + n_new])


def test_unstratified_split_is_a_function_of_key_and_pseudonym_only():
    config = SplitConfig(key="secret-ish")
    full = assign_splits(NAMES, config)
    alone = {p: assign_splits([p], config)[p] for p in NAMES[:50]}
    assert all(full[p] == alone[p] for p in alone)
    counts = Counter(full.values())
    assert abs(counts["train"] / 2000 - 0.8) < 0.03
    assert abs(counts["test"] / 2000 - 0.1) < 0.02
    other = assign_splits(NAMES, SplitConfig(key="other"))
    assert sum(full[p] != other[p] for p in NAMES) > 300  # the key matters


def test_stratified_split_balances_each_stratum():
    strata = {p: ("rare" if i % 20 == 0 else "common") for i, p in enumerate(NAMES[:400])}
    config = SplitConfig(key="k", fractions=(0.6, 0.2, 0.2), stratify_by="site")
    out = assign_splits(NAMES[:400], config, strata=strata)
    rare = Counter(out[p] for p in NAMES[:400] if strata[p] == "rare")
    assert rare == {"train": 12, "val": 4, "test": 4}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fractions": (0.5, 0.5, 0.5)}, "summing to 1"),
        ({"fractions": (1.2, -0.1, -0.1)}, "non-negative"),
        ({"key": ""}, "non-empty"),
    ],
)
def test_bad_split_config_is_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SplitConfig(**kwargs)


def test_split_config_round_trips():
    c = SplitConfig(key="x", fractions=(0.7, 0.2, 0.1), stratify_by="site")
    assert SplitConfig.from_dict(c.to_dict()) == c
