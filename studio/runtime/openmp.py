"""How the studio's torch processes wait for work: OpenMP threads that sleep, not spin.

Torch's CPU kernels run on an OpenMP thread team (libgomp). Between parallel regions its idle
threads spin for a while (300,000 spins by default) before they sleep: free for a process with
the cores to itself, but the studio runs two such processes at once whenever a user compares or
chats while a job trains — the server and the training worker — and each one's spinning threads
took the cores the other needed. On 2 cores a comparison ran 3.8x slower while a job trained and
the job 7.1x slower, where sharing the cores fairly costs each about 2x. With
OMP_WAIT_POLICY=PASSIVE idle threads sleep at once: 1.36x and 1.19x, for a cost of 1.1-1.4x to a
job training alone (benchmarks/shared_cores.py; README "Measured"). Both processes must sleep:
with only one of them passive, the job still trained ~10x slower.

libgomp reads the setting once, when torch is first imported, so the entry points (`studio ...`,
`python app.py`, the training worker) call `use_passive_waits()` before anything imports torch,
and workers inherit it. A user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left as it is.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping

POLICY = {"OMP_WAIT_POLICY": "PASSIVE"}
USER_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def with_passive_waits(env: Mapping[str, str]) -> dict[str, str]:
    """`env` plus the studio's OpenMP wait policy, unless it already sets its own."""
    if any(name in env for name in USER_SETTINGS):
        return dict(env)
    return {**env, **POLICY}


def use_passive_waits(env: MutableMapping[str, str] = os.environ) -> None:
    """Set the policy in this process's environment (before torch is imported)."""
    for name, value in with_passive_waits(env).items():
        if env.get(name) != value:
            env[name] = value
