"""The global sample order of a training run: deterministic, world-size independent, resumable mid-epoch.

Epoch ``e`` visits the samples in ``permutation(seed, e)`` — the same sequence whatever the number of ranks or
loader workers. The sequence is padded by wrapping around to a multiple of ``world_size`` (so every rank takes the
same number of steps) and dealt round-robin: rank ``r`` takes global positions ``r, r + W, r + 2W, …``. Together
the ranks see exactly the epoch's sample set; a 1-rank and a 2-rank run see the same set, in the same global
order. Loader workers only fetch what the sampler yields, so they do not change the order.

Resume: the state is ``(epoch, consumed)`` with ``consumed`` counted in *global* positions; a run stopped after
any step and restarted from its state yields the same remaining samples in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from torch.utils.data import Sampler

from toothmcl_data.errors import ConfigError


def epoch_permutation(n: int, *, seed: int, epoch: int, shuffle: bool = True) -> NDArray[np.int64]:
    """(n,) int64 order of sample indices for ``epoch``; identity order when ``shuffle`` is False."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    return np.random.default_rng([seed, epoch]).permutation(n).astype(np.int64)


def rank_positions(n: int, *, rank: int, world_size: int) -> NDArray[np.int64]:
    """Global positions (into the padded epoch sequence) that ``rank`` takes, in order."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if n < 1:
        raise ConfigError("cannot order an empty dataset: the version/split has no samples")
    padded = -(-n // world_size) * world_size
    return np.arange(rank, padded, world_size, dtype=np.int64)


@dataclass
class OrderState:
    """Where a run is: ``epoch`` and how many global positions of it are consumed."""

    epoch: int = 0
    consumed: int = 0


class ResumableSampler(Sampler[int]):
    """A distributed sampler with the order above and ``state_dict()`` / ``load_state_dict()``.

    Call :meth:`advance` with the global number of samples consumed after each optimiser step (the
    training loop knows the global batch size), and :meth:`set_epoch` at the start of each epoch.
    """

    def __init__(self, n: int, *, seed: int, rank: int = 0, world_size: int = 1, shuffle: bool = True) -> None:
        self.n, self.seed, self.rank, self.world_size, self.shuffle = n, seed, rank, world_size, shuffle
        self._positions = rank_positions(n, rank=rank, world_size=world_size)
        self.state = OrderState()

    def __len__(self) -> int:
        """Samples this rank still yields in the current epoch."""
        return int(np.count_nonzero(self._positions >= self.state.consumed))

    def __iter__(self) -> Iterator[int]:
        order = epoch_permutation(self.n, seed=self.seed, epoch=self.state.epoch, shuffle=self.shuffle)
        for pos in self._positions[self._positions >= self.state.consumed]:
            yield int(order[pos % self.n])

    def set_epoch(self, epoch: int) -> None:
        """Start ``epoch`` from its beginning (no-op when resuming inside that same epoch)."""
        if epoch != self.state.epoch:
            self.state = OrderState(epoch=epoch, consumed=0)

    def advance(self, global_samples: int) -> None:
        """Record that ``global_samples`` more positions of the epoch were consumed by all ranks together."""
        self.state.consumed += global_samples

    @property
    def epoch_size(self) -> int:
        """Global positions in one epoch (the dataset padded to a multiple of the world size)."""
        return len(self._positions) * self.world_size

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.state.epoch, "consumed": self.state.consumed, "n": self.n, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["n"] != self.n or state["seed"] != self.seed:
            raise ConfigError(
                f"sampler state is for {state['n']} samples with seed {state['seed']}, this run has {self.n} "
                f"samples with seed {self.seed}: resume with the same version, split and seed"
            )
        self.state = OrderState(epoch=int(state["epoch"]), consumed=int(state["consumed"]))
