import gc
import weakref

from studio.runtime import heap


class Node:
    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_the_living_and_collects_frozen_cycles_later() -> None:
    try:
        node = Node()
        gone = weakref.ref(node)
        heap.settle()
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()  # a full pass skips frozen objects: the cycle survives it
        assert gone() is not None
        heap.settle()  # unfreezes, collects, refreezes
        assert gone() is None
    finally:
        gc.unfreeze()
