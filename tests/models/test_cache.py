import gc
import threading
import weakref

from studio.models.cache import LRUByteCache


class Blob:
    def __init__(self, name: str, size: int) -> None:
        self.name, self.size = name, size


def test_evicts_least_recently_used_over_budget() -> None:
    cache: LRUByteCache[Blob] = LRUByteCache(100, lambda b: b.size)
    cache.put("a", Blob("a", 40))
    cache.put("b", Blob("b", 40))
    assert cache.get("a") is not None  # a is now the most recent
    cache.put("c", Blob("c", 40))
    assert cache.keys() == ["a", "c"]
    assert cache.total_bytes == 80


def test_an_oversized_entry_is_kept_alone() -> None:
    cache: LRUByteCache[Blob] = LRUByteCache(100, lambda b: b.size)
    cache.put("a", Blob("a", 10))
    cache.put("big", Blob("big", 500))
    assert cache.keys() == ["big"]


def test_concurrent_requests_for_one_key_load_once() -> None:
    cache: LRUByteCache[Blob] = LRUByteCache(1000, lambda b: b.size)
    calls = []
    gate = threading.Event()

    def load() -> Blob:
        calls.append(1)
        gate.wait(2)
        return Blob("m", 10)

    results: list[Blob] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("m", load)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert len({id(r) for r in results}) == 1


def test_an_evicted_model_in_a_reference_cycle_is_freed_at_eviction() -> None:
    """Loads freeze the heap (studio/runtime/heap.py); eviction must still free frozen cyclic
    garbage."""
    cache: LRUByteCache[Blob] = LRUByteCache(100, lambda b: b.size)
    first = Blob("first", 60)
    first.self_ref = first  # type: ignore[attr-defined]  # a cycle: only the collector frees it
    gone = weakref.ref(first)
    cache.put("first", first)  # settles: first is now frozen
    del first
    assert gone() is not None  # still cached
    cache.put("second", Blob("second", 60))  # evicts first
    assert cache.keys() == ["second"]
    assert gone() is None
    gc.unfreeze()
