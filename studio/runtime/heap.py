"""Keep the cyclic garbage collector's full passes short in the long-running server.

A built studio holds ~270,000 long-lived Python objects (the six tabs' component tree, Gradio,
torch and transformers). CPython's full collection scans them all, which took ~200 ms and landed
on ~8 in 100 page-config requests, so the server's p95 latency was the collector's pause
(benchmarks/ui_latency.py). `settle()` moves everything alive now into the permanent generation:
full passes then scan only what requests allocate, a few milliseconds.

Frozen objects are still freed by reference counting; only cycles among them wait for the next
`settle()`, which is why the model cache calls it after every load or eviction.
"""

from __future__ import annotations

import gc


def settle() -> None:
    """Collect once over everything (frozen objects included), then freeze what survived."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
