"""release_memory: collects unreachable cycles and freezes what survives the first call."""

from __future__ import annotations

import gc
import weakref

from toothmcl_data.curate.memory import release_memory


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def test_a_cycle_is_collected_and_survivors_are_frozen() -> None:
    a, b = _Node(), _Node()
    a.other, b.other = b, a  # a cycle: reference counting alone never frees it
    gone = weakref.ref(a)
    del a, b
    release_memory()
    assert gone() is None
    assert gc.get_freeze_count() > 0  # the first call froze the survivors (imported modules …)
    release_memory()  # idempotent
    assert gc.get_freeze_count() > 0
