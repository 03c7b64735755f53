"""One long-lived thread per process runs all model computation (loading and generation).

Why: torch's CPU kernels (and bitsandbytes') parallelise with OpenMP, which keeps a thread team
per calling thread. When loads and generations run on whatever thread asked (Gradio's worker
pool, a new thread per stream), several teams compete for the same cores: 4-bit SmolLM2 generated
~16 tokens/s that way against ~26 tokens/s with everything on one thread (benchmarks/generation.py).
A single compute thread also serialises generations, which on a CPU box only slow each other down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None
_guard = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    global _executor
    with _guard:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-compute")
        return _executor


def on_compute_thread() -> bool:
    return threading.current_thread().name.startswith("studio-compute")


def submit(fn: Callable[..., T], *args: object, **kwargs: object) -> Future[T]:
    """Queue fn on the compute thread; called from the compute thread itself, run it inline."""
    if on_compute_thread():
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future
    return _pool().submit(fn, *args, **kwargs)


def run(fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """Run fn on the compute thread and wait for its result."""
    return submit(fn, *args, **kwargs).result()
