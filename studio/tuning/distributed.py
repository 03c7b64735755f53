"""Training in more than one process: which process is which, what may be launched, and how.

Under `accelerate launch` (torchrun underneath) every process runs the same worker; the
environment says which one it is (RANK, LOCAL_RANK, WORLD_SIZE). Rank 0 alone writes the store,
the checkpoints' shared files and the adapter; the Trainer shards the data across ranks and
averages the gradients (DDP: each rank holds the whole base, so a 4-bit base works as it does in
one process). Sharded launches (FSDP, DeepSpeed ZeRO-3) need the 4-bit weights stored in the
compute dtype (`bnb_4bit_quant_storage`), which the studio's quantization does not set, so those
combinations are refused before anything is loaded or stored. The studio's own launcher starts
N processes only on N local GPUs; on CPU several processes share the same cores and gain
nothing, so there a new run stays one process (`accelerate launch --multi_gpu` still runs
several CPU processes over gloo, which is how the multi-process path is tested).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from studio.models.device import Hardware
from studio.tuning.config import TuneConfigError

# `python -m accelerate.commands.launch` is the `accelerate launch` script beside sys.executable.
ACCELERATE_LAUNCH = ("-m", "accelerate.commands.launch")
_TRUE = ("1", "true", "yes")


@dataclass(frozen=True)
class Ranks:
    """This process's place in a launch (rank 0 of 1 outside a launcher)."""

    rank: int
    local_rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def launched(self) -> bool:
        """Started by a launcher (torchrun, accelerate launch), even with one process."""
        return self.world_size > 1 or self.local_rank >= 0


def ranks(env: Mapping[str, str] | None = None) -> Ranks:
    env = os.environ if env is None else env
    return Ranks(
        rank=int(env.get("RANK", "0")),
        local_rank=int(env.get("LOCAL_RANK", "-1")),
        world_size=int(env.get("WORLD_SIZE", "1")),
    )


def worker_device(hardware: Hardware, env: Mapping[str, str] | None = None) -> str:
    """The device a worker loads its model on: its own GPU under a launcher, the CPU under
    a CPU-only launch (gloo), else the model layer's choice."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_CPU", "").lower() in _TRUE or not hardware.cuda:
        return "cpu" if ranks(env).launched else "auto"
    local = ranks(env).local_rank
    return f"cuda:{local}" if local >= 0 else "auto"


def claim_pids(env: Mapping[str, str] | None = None) -> set[int]:
    """The pids a queued run may be claimed by: this process, and under a launcher its parent
    (the launcher process the job queue started and recorded)."""
    pids = {os.getpid()}
    if ranks(env).launched:
        pids.add(os.getppid())
    return pids


def sharding(env: Mapping[str, str] | None = None) -> str | None:
    """The sharded data parallelism this launch asked for: 'fsdp', 'zero3', or None (DDP, or
    DeepSpeed ZeRO-1/2, which shard only the adapter's gradients and optimizer state)."""
    env = os.environ if env is None else env
    if env.get("ACCELERATE_USE_FSDP", "").lower() in _TRUE:
        return "fsdp"
    deepspeed = env.get("ACCELERATE_USE_DEEPSPEED", "").lower() in _TRUE
    if deepspeed and env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE", "") == "3":
        return "zero3"
    return None


def refuse_unsupported(quantization: str, env: Mapping[str, str] | None = None) -> None:
    """Stop a sharded launch of a quantized base before anything is loaded or stored."""
    kind = sharding(env)
    if kind is None or quantization == "none":
        return
    name = "FSDP" if kind == "fsdp" else "DeepSpeed ZeRO-3"
    raise TuneConfigError(
        f"model.quantization: {name} cannot shard this {quantization} base. bitsandbytes stores "
        "quantized weights as uint8, which FSDP and ZeRO-3 cannot shard (that needs "
        "bnb_4bit_quant_storage set to the compute dtype, which the studio does not set). Fix: "
        "launch plain DDP (accelerate launch --multi_gpu --num_processes N: each GPU holds the "
        "whole 4-bit base) or DeepSpeed ZeRO-2, or set quantization: none to shard a "
        "full-precision base with FSDP or ZeRO-3"
    )


def check_processes(
    processes: int, hardware: Hardware, env: Mapping[str, str] | None = None
) -> None:
    """What the studio's launcher can start: N processes on N local GPUs (or the launch this
    process already runs in, which the person who launched it chose)."""
    if processes == 1 or ranks(env).world_size == processes:
        return
    if not hardware.cuda:
        raise TuneConfigError(
            f"training.processes: {processes} processes need {processes} CUDA GPUs and this "
            "machine has none; on CPU the processes would share the same cores and train no "
            "faster. Fix: set processes to 1 (to try the multi-process path on CPU: accelerate "
            f"launch --multi_gpu --num_processes {processes} -m studio.tuning.worker --config "
            "tune.yaml)"
        )
    if hardware.gpus < processes:
        raise TuneConfigError(
            f"training.processes: {processes} processes need {processes} GPUs and this machine "
            f"has {hardware.gpus}. Fix: set processes to at most {hardware.gpus}, or launch "
            "across machines with accelerate launch --num_machines (docs/tune.md)"
        )


def launch_prefix(processes: int) -> list[str]:
    """The command that starts a worker module in `processes` processes: the interpreter itself
    for one, `accelerate launch` (DDP, one process per local GPU) for more.

    `--multi_gpu` is accelerate's name for its torchrun launcher; without a GPU its processes
    train on the CPU over gloo (`--cpu` instead would start a single process). It also overrides
    an FSDP or DeepSpeed default in the user's accelerate config: the studio launches plain DDP."""
    if processes == 1:
        return [sys.executable]
    return [
        sys.executable,
        *ACCELERATE_LAUNCH,
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--dynamo_backend",
        "no",
    ]
