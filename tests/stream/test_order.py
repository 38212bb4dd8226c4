"""Global sample order: world-size independent, disjoint across ranks, exact mid-epoch resume."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toothmcl_data.errors import ConfigError
from toothmcl_data.stream.order import ResumableSampler, epoch_permutation


@given(n=st.integers(1, 60), world=st.integers(1, 5), seed=st.integers(0, 2**16), epoch=st.integers(0, 5))
def test_ranks_partition_the_epoch_and_match_one_rank(n: int, world: int, seed: int, epoch: int) -> None:
    samplers = [ResumableSampler(n, seed=seed, rank=r, world_size=world) for r in range(world)]
    for s in samplers:
        s.set_epoch(epoch)
    per_rank = [list(s) for s in samplers]
    assert len({len(p) for p in per_rank}) == 1  # every rank takes the same number of steps
    # Interleaving the ranks gives the global order of a single-rank run (padded by wrapping).
    interleaved = [per_rank[r][i] for i in range(len(per_rank[0])) for r in range(world)]
    single = ResumableSampler(n, seed=seed)
    single.set_epoch(epoch)
    one = list(single)
    assert interleaved[:n] == one
    assert set(interleaved) == set(range(n))
    assert interleaved[n:] == [one[i % n] for i in range(len(interleaved) - n)]


def test_epochs_differ_and_are_reproducible() -> None:
    a = epoch_permutation(50, seed=3, epoch=0)
    assert list(a) == list(epoch_permutation(50, seed=3, epoch=0))
    assert list(a) != list(epoch_permutation(50, seed=3, epoch=1))
    assert list(epoch_permutation(5, seed=3, epoch=1, shuffle=False)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("world", [1, 2, 3])
def test_resume_mid_epoch_yields_the_same_remaining_samples(world: int) -> None:
    batch = 2
    uninterrupted = []
    for r in range(world):
        s = ResumableSampler(23, seed=9, rank=r, world_size=world)
        s.set_epoch(4)
        uninterrupted.append(list(s))
    steps_done = 3
    for r in range(world):
        s = ResumableSampler(23, seed=9, rank=r, world_size=world)
        s.set_epoch(4)
        for _ in range(steps_done):
            s.advance(batch * world)
        state = s.state_dict()
        resumed = ResumableSampler(23, seed=9, rank=r, world_size=world)
        resumed.load_state_dict(state)
        resumed.set_epoch(4)  # same epoch: keeps the position
        assert list(resumed) == uninterrupted[r][steps_done * batch :]
        assert len(resumed) == len(uninterrupted[r]) - steps_done * batch


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": 0, "seed": 1}, "empty dataset"),
        ({"n": 5, "seed": 1, "rank": 2, "world_size": 2}, "rank must be in"),
    ],
)
def test_bad_configuration(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ResumableSampler(**kwargs)


def test_state_from_another_dataset_is_refused() -> None:
    state = ResumableSampler(10, seed=1).state_dict()
    with pytest.raises(ConfigError, match="resume with the same version"):
        ResumableSampler(11, seed=1).load_state_dict(state)
