"""Tuning SmolLM2 on rows of mixed length: the studio's trainer against plain TRL, what each of
its defaults buys, and 4-bit QLoRA against 16-bit LoRA in memory; each training run in its own
process.

1. Speed, memory and quality (both 4-bit NF4 with double quantization, LoRA r 16 / alpha 32 /
   dropout 0.05 on all linear layers, lr 2e-4, the same batch size, steps, seed, max length,
   evaluation schedule and rows). The data mixes short and long rows: the Self-Instruct seed
   tasks (../shared/data/self-instruct, one row per instance) and SST-2 sentences
   (../shared/data/sst2/train.tsv) as instruction / input / output rows, shuffled, in the
   studio's `alpaca-instruction` chat format, written to a temporary JSONL; the studio's seeded
   10% eval split is held out for both.
   - studio: `build_trainer` exactly as the tuning worker calls it, with its defaults
     (pre-tokenized prompt + answer, loss on the answer with logits only there, length-grouped
     batches, evaluations capped near 10% of the run, fp32 and plain AdamW on CPU);
   - TRL (baseline): `SFTTrainer(model, SFTConfig(...), peft_config=LoraConfig(...))` with TRL's
     defaults (bf16 autocast, gradient checkpointing, fused AdamW, no warmup, random batches,
     its own fused LM head, evaluation over the whole eval split) on the same rows as a
     conversational prompt-completion dataset, which TRL trains completion-only by default; the
     model loaded the way TRL's `sft.py` loads it (BitsAndBytesConfig NF4, double quantization,
     fp32 like TRL's ModelConfig default);
   - studio ablations, one default undone each: TRL's LM head instead of the answer-only one
     (`full-head`), random batches (`random-order`), and padding-free batches (`padding-free`).
   Both evaluate every --eval-steps steps and once at the end, as the tuning worker does.
   Reported: non-padding tokens trained per second (TRL's `num_tokens` over `train_runtime`, which
   includes the evaluations during training), the whole run's wall time with the final
   evaluation, the median step time, the peak RSS while training, and the mean answer NLL of
   every eval-split row after training, computed by one function for every final model.
2. --precision-memory: the studio's trainer for a few steps of SST-2 with a 4-bit NF4 base, a
   bf16 base (16-bit LoRA) and an fp32 base, each process sampling its RSS during training,
   printed next to `studio.tuning.memory`'s estimate for the same run.

    .venv/bin/python benchmarks/tune_throughput.py [--steps 24] [--batch 8] [--eval-steps 6]
        [--max-length 256] [--sst2-rows 250] [--repeats 1] [--no-ablations] [--kinds a,b]
        [--padding-only] [--head-only] [--precision-memory] [--quick] [--json OUT]

--padding-only counts the positions one epoch computes (random against length-grouped batches,
and the LM-head positions of TRL's head against the answer-only one); --head-only times the LM
head and loss alone, TRL's fused head against the answer-only one, interleaved.

Prints the tables with ratios against the TRL baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"
SEED_TASKS = ROOT.parent / "shared" / "data" / "self-instruct" / "seed_tasks.jsonl"
MIXED = "mixed.jsonl"
SST2_INSTRUCTION = "Is the sentiment of this movie review positive or negative?"
PROMPT_CHARS = 600
# Studio runs with one default undone (flat settings over the studio's config).
ABLATIONS: dict[str, dict[str, Any]] = {
    "full-head": {},  # TRL's LM head: switched in studio_trainer
    "random-order": {"batch_order": "random"},
    "padding-free": {"padding_free": True},
}
LABELS = {
    "trl": "TRL SFTTrainer defaults (base)",
    "studio": "studio build_trainer (defaults)",
    "full-head": "studio, TRL's LM head",
    "random-order": "studio, random batches",
    "padding-free": "studio, padding-free batches",
}
TEST_HOME = Path(os.environ.get("STUDIO_TEST_MODEL_HOME", ROOT / ".venv" / "studio-test-home"))
SEED = 0
MIB = 2**20
# Memory runs: (label, quantization, base dtype, compute bytes the estimate assumes).
MEMORY_RUNS = {
    "mem-4bit": ("4-bit QLoRA (NF4 base)", "4bit", "float32", 4),
    "mem-bf16": ("16-bit LoRA (bf16 base)", "none", "bfloat16", 2),
    "mem-fp32": ("fp32 LoRA (studio 'none' on CPU)", "none", "float32", 4),
}
# --ablation: the two TRL defaults that change the compute, on and off, on one batch.
ABLATION = {
    "fp32, no checkpointing (studio)": (False, False),
    "fp32 + gradient checkpointing": (False, True),
    "bf16 autocast": (True, False),
    "bf16 autocast + checkpointing (TRL)": (True, True),
}


# ---------------------------------------------------------------------------------------------
# Inside a worker process


class RssPeak:
    """Samples this process's memory in a thread: the peak resident set (RSS) and the peak of
    its anonymous part (RSS minus file-backed pages such as the mmapped checkpoint, which the
    kernel can drop and re-read; the anonymous part is what the process really costs)."""

    def __init__(self, every: float = 0.005) -> None:
        import psutil

        self._process = psutil.Process()
        self._every = every
        self._done = threading.Event()
        self.start_rss, self.start_anon = self._sample()
        self.peak, self.peak_anon = self.start_rss, self.start_anon
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> tuple[int, int]:
        info = self._process.memory_info()
        return info.rss, info.rss - info.shared

    def _update(self) -> None:
        rss, anon = self._sample()
        self.peak, self.peak_anon = max(self.peak, rss), max(self.peak_anon, anon)

    def _run(self) -> None:
        while not self._done.wait(self._every):
            self._update()

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()
        self._update()


def step_timer() -> Any:
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.times: list[float] = []
            self._began = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self._began = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.times.append(time.perf_counter() - self._began)

    return StepTimer()


def studio_config(args: argparse.Namespace, quantization: str, steps: int, kind: str) -> Any:
    """The studio's run: the mixed rows with its defaults, an ablation of one, or (memory runs)
    SST-2 rows with no evaluation."""
    from studio.tuning.config import flat_config

    if kind.startswith("mem-"):
        data = {"data": str(SST2 / "train.tsv"), "format": "template", "template": "sst2-sentiment"}
        data |= {"eval_split": 0.0, "limit": steps * args.batch}
    else:
        data = {"data": str(Path(args.home) / MIXED), "format": "alpaca", "eval_split": 0.1}
        data |= {"eval_steps": args.eval_steps, "max_length": args.max_length}
    return flat_config(
        name="bench-tune",
        model=args.model,
        quantization=quantization,
        max_steps=steps,
        batch_size=args.batch,
        seed=SEED,
        **data,
        **ABLATIONS.get(kind, {}),
    )


def write_mixed(path: Path, sst2_rows: int) -> int:
    """Self-Instruct seed instances and SST-2 sentences as shuffled alpaca rows (JSONL); prompts
    longer than PROMPT_CHARS are left out, so every prompt fits --max-length 256."""
    import random

    from studio.datasets import flatten_self_instruct, load_dataset
    from studio.hosting import HostingPolicy

    policy = HostingPolicy.desktop()
    rows = [dict(row) for row in flatten_self_instruct(SEED_TASKS, policy=policy).rows]
    for row in load_dataset(SST2 / "train.tsv", policy=policy).rows[:sst2_rows]:
        label = "positive" if str(row["label"]) == "1" else "negative"
        rows.append({"instruction": SST2_INSTRUCTION, "input": row["sentence"], "output": label})
    rows = [r for r in rows if len(str(r["instruction"])) + len(str(r["input"])) <= PROMPT_CHARS]
    random.Random(SEED).shuffle(rows)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return len(rows)


def padding_report(args: argparse.Namespace, home: Path) -> dict[str, float]:
    """Positions one epoch of the mixed rows computes at --batch: padded batches in random order
    and length-grouped (each the mean over 20 shuffles), against the real tokens; and the LM-head
    positions of TRL's head (every padded position) against the answer-only head's."""
    import torch
    from transformers import AutoTokenizer
    from transformers.trainer_pt_utils import get_length_grouped_indices

    from studio.hosting import HostingPolicy
    from studio.tuning.data import prepare_data

    args.home = str(home)
    config = studio_config(args, "4bit", args.steps, "studio")
    tokenizer = AutoTokenizer.from_pretrained(model_folder(args))
    train = prepare_data(config.data, tokenizer, HostingPolicy.desktop(), seed=SEED).train
    lengths = [e.n_tokens for e in train]

    def padded(order: list[int]) -> int:
        batches = [order[i : i + args.batch] for i in range(0, len(order), args.batch)]
        return sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)

    seeds = [torch.Generator().manual_seed(seed) for seed in range(20)]
    shuffled = statistics.fmean(padded(torch.randperm(len(lengths), generator=g).tolist())
                                for g in seeds)  # fmt: skip
    seeds = [torch.Generator().manual_seed(seed) for seed in range(20)]
    grouped = statistics.fmean(padded(get_length_grouped_indices(lengths, args.batch, generator=g))
                               for g in seeds)  # fmt: skip
    real, answers = sum(lengths), sum(e.completion_tokens for e in train)
    print(
        f"one epoch, {len(train)} train rows ({min(lengths)}-{max(lengths)} tokens, median "
        f"{statistics.median(lengths):g}), batch {args.batch}: {real} real tokens; random "
        f"batches compute {shuffled:.0f} positions ({shuffled / real:.2f}x), length-grouped "
        f"{grouped:.0f} ({grouped / real:.2f}x, {grouped / shuffled:.2f} of random); LM-head "
        f"positions: TRL's head {shuffled:.0f}, answer-only {answers} ({shuffled / answers:.1f}x "
        "fewer)"
    )
    return {"real": real, "random": shuffled, "grouped": grouped, "answers": answers}


def head_timing(args: argparse.Namespace, rounds: int = 5) -> dict[str, float]:
    """The LM head and loss alone, forward and backward, on SmolLM2's head shape (576 x 49,152,
    frozen) for a batch of --batch rows of --max-length positions, 28% of them trained (as in the
    mixed rows): TRL's fused head as it runs off CUDA (every position) against the answer-only
    head; interleaved, the median of `rounds` after a warm-up."""
    import torch
    from trl.trainer.utils import _CHUNKED_LOGPROB_CHUNK_SIZE, _ChunkedLogProbFunction

    from studio.tuning.loss import answer_log_probs

    generator = torch.Generator().manual_seed(SEED)
    head = torch.nn.Linear(576, 49152, bias=False).requires_grad_(False)
    hidden = torch.randn(args.batch, args.max_length, 576, generator=generator)
    labels = torch.randint(0, 49152, (args.batch, args.max_length), generator=generator)
    labels[torch.rand(labels.shape, generator=generator) > 0.28] = -100

    def trl() -> None:
        h = hidden[:, :-1].reshape(-1, 576).requires_grad_(True)
        shifted = labels[:, 1:].reshape(-1)
        out = _ChunkedLogProbFunction.apply(
            h, head.weight, None, shifted.clamp(min=0), 1.0, _CHUNKED_LOGPROB_CHUNK_SIZE,
            None, 1.0, ("log_probs", "entropy", "is_top1"),
        )  # fmt: skip
        (-(out[0] * (shifted != -100)).sum()).backward()

    def studio() -> None:
        h = hidden.clone().requires_grad_(True)
        answer_log_probs(h, labels, head).loss.backward()

    times: dict[str, list[float]] = {"trl": [], "studio": []}
    for _ in range(rounds + 1):
        for name, step in (("trl", trl), ("studio", studio)):
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    seconds = {name: statistics.median(t[1:]) for name, t in times.items()}
    print(
        f"LM head + loss, fwd + bwd, {args.batch} x {args.max_length} positions "
        f"({int((labels[:, 1:] != -100).sum())} trained): TRL's fused head {seconds['trl']:.2f} s, "
        f"answer-only {seconds['studio']:.2f} s ({seconds['trl'] / seconds['studio']:.1f}x faster)"
    )
    return seconds


def answer_nll(model: Any, examples: list[Any], pad_id: int) -> float:
    """Mean NLL of the trained (answer) tokens of `examples` under `model`: one function for
    every final model, over the studio's whole eval split."""
    import torch

    nll = tokens = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(examples), 8):
            batch = examples[start : start + 8]
            width = max(e.n_tokens for e in batch)
            ids = torch.tensor([e.input_ids + [pad_id] * (width - e.n_tokens) for e in batch])
            mask = torch.tensor([e.completion_mask + [0] * (width - e.n_tokens) for e in batch])
            seen = torch.tensor([[1] * e.n_tokens + [0] * (width - e.n_tokens) for e in batch])
            logits = model(input_ids=ids, attention_mask=seen, use_cache=False).logits.float()
            taken = torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:, None])[..., 0]
            nll -= float((taken * mask[:, 1:]).sum())
            tokens += float(mask[:, 1:].sum())
    return nll / tokens


def trained_data(trainer: Any) -> tuple[list[list[int]], list[list[int]]]:
    """The token ids and loss masks the trainer's prepared dataset holds."""
    dataset = trainer.train_dataset
    masks = [[int(label != -100) for label in labels] for labels in dataset["labels"]]
    return list(dataset["input_ids"]), masks


def digest(input_ids: list[list[int]], masks: list[list[int]]) -> str:
    """A fingerprint of the exact training tokens and loss masks, to check both train alike."""
    data = json.dumps([input_ids, [[int(bool(m)) for m in mask] for mask in masks]])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def studio_trainer(args: argparse.Namespace, kind: str, steps: int) -> dict:
    from studio.hosting import HostingPolicy
    from studio.models.loading import LoadRequest, load_model
    from studio.settings import load_settings
    from studio.tuning import trainer as studio_trainers
    from studio.tuning.data import prepare_data

    _label, quantization, dtype, _bytes = MEMORY_RUNS.get(kind, ("", "4bit", "auto", 4))
    config = studio_config(args, quantization, steps, kind)
    settings = load_settings(home=Path(args.home), offline=True)
    loaded = load_model(LoadRequest(args.model, quantization, dtype=dtype), settings)
    prepared = prepare_data(
        config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=config.training.seed
    )
    if kind == "full-head":  # the ablation: TRL's own fused head, every position projected
        studio_trainers.use_answer_only_head = lambda _model: False  # type: ignore[assignment]
    timer = step_timer()
    out = Path(args.home) / f"out-{os.getpid()}"
    trainer = studio_trainers.build_trainer(config, loaded, prepared, out, [timer])
    plan = studio_trainers.eval_plan(config, prepared.train, prepared.eval)
    return {
        "trainer": trainer,
        "timer": timer,
        "tokenizer": loaded.tokenizer,
        "prepared": prepared,
        "config": config,
        "location": loaded.location,
        "footprint": loaded.footprint_bytes,
        "data": trained_data(trainer),
        "eval_plan": plan.describe() if plan else None,
    }


def trl_trainer(args: argparse.Namespace) -> dict:
    """Plain TRL as its docs and `trl/scripts/sft.py` use it; only the data is the studio's rows
    (the same train and eval split), and it evaluates on the studio's schedule."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    from studio.hosting import HostingPolicy
    from studio.templates import build_prompt
    from studio.tuning.data import prepare_data
    from studio.tuning.formats import alpaca_row

    location = model_folder(args)
    tokenizer = AutoTokenizer.from_pretrained(location)
    quantization = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float32,  # TRL ModelConfig's default dtype
    )
    model = AutoModelForCausalLM.from_pretrained(
        location, quantization_config=quantization, dtype=torch.float32
    )
    config = studio_config(args, "4bit", args.steps, "studio")
    prepared = prepare_data(config.data, tokenizer, HostingPolicy.desktop(), seed=SEED)
    rows = prepared.dataset.rows

    def conversations(examples: list[Any]) -> Any:
        built = [build_prompt(prepared.template, alpaca_row(rows[e.row - 1]), [], tokenizer)
                 for e in examples]  # fmt: skip
        return Dataset.from_list(
            [
                {"prompt": b.messages, "completion": [{"role": "assistant", "content": b.answer}]}
                for b in built
            ]
        )

    timer = step_timer()
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(
            output_dir=str(Path(args.home) / f"out-{os.getpid()}"),
            per_device_train_batch_size=args.batch,
            per_device_eval_batch_size=args.batch,
            learning_rate=2e-4,
            max_steps=args.steps,
            max_length=args.max_length,
            eval_strategy="steps",
            eval_steps=args.eval_steps,
            logging_steps=1,
            report_to="none",
            use_cpu=True,
            seed=SEED,
        ),
        train_dataset=conversations(prepared.train),
        eval_dataset=conversations(prepared.eval),
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=16,
            lora_alpha=32,
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
        callbacks=[timer],
    )
    return {
        "trainer": trainer,
        "timer": timer,
        "tokenizer": tokenizer,
        "prepared": prepared,
        "footprint": int(model.get_memory_footprint()),
        "data": trained_data(trainer),
        "eval_plan": f"{args.steps // args.eval_steps + 1} evaluations × all "
        f"{len(prepared.eval)} eval rows",
    }


def model_folder(args: argparse.Namespace) -> Path:
    from studio.models.convert import ensure_converted
    from studio.models.registry import resolve_spec
    from studio.settings import load_settings

    settings = load_settings(home=Path(args.home), offline=True)
    return ensure_converted(resolve_spec(args.model), settings.models_dir)


def train_and_measure(built: dict, quality: bool) -> dict:
    trainer, prepared = built["trainer"], built["prepared"]
    started = time.perf_counter()
    with RssPeak() as rss:
        result = trainer.train()
        if trainer.eval_dataset is not None:
            trainer.evaluate()  # the final evaluation, as the tuning worker does
    wall = time.perf_counter() - started
    history = trainer.state.log_history
    tokens = next(e["num_tokens"] for e in reversed(history) if "num_tokens" in e)
    losses = [e["loss"] for e in history if "loss" in e]
    runtime = float(result.metrics["train_runtime"])
    lora = next(p for n, p in trainer.model.named_parameters() if "lora_A" in n)
    args = trainer.args
    pad_id = built["tokenizer"].pad_token_id
    return {
        "steps": int(trainer.state.global_step),
        "tokens": int(tokens),
        "train_runtime_s": runtime,
        "wall_s": wall,
        "tokens_per_s": tokens / runtime,
        "median_step_s": statistics.median(built["timer"].times),
        "evaluations": sum(1 for e in history if "eval_loss" in e),
        "eval_plan": built["eval_plan"],
        "train_loss_last10": statistics.fmean(losses[-10:]),
        "train_losses": losses,
        "held_out_nll": answer_nll(trainer.model, prepared.eval, pad_id) if quality else None,
        "rss_before_train_mib": rss.start_rss / MIB,
        "peak_rss_train_mib": rss.peak / MIB,
        "anon_before_train_mib": rss.start_anon / MIB,
        "peak_anon_train_mib": rss.peak_anon / MIB,
        "max_rss_process_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "footprint_mib": built["footprint"] / MIB,
        "data_digest": digest(*built["data"]),
        "data_tokens": sum(len(ids) for ids in built["data"][0]),
        "answer_tokens": sum(sum(bool(m) for m in mask) for mask in built["data"][1]),
        "setup": {
            "bf16": bool(args.bf16),
            "gradient_checkpointing": bool(args.gradient_checkpointing),
            "optim": str(getattr(args.optim, "value", args.optim)),
            "warmup_steps": int(args.warmup_steps),
            "lora_dtype": str(lora.dtype).removeprefix("torch."),
            "sampling": str(args.train_sampling_strategy),
            "padding_free": bool(getattr(args, "padding_free", False)),
        },
    }


def estimate(built: dict, compute_bytes: int) -> dict[str, float]:
    """The studio's estimate; `estimate_memory` assumes fp32 on CPU, so bf16 goes by its parts."""
    from studio.tuning.memory import estimate_from_shape, estimate_memory, model_shape

    config, location = built["config"], built["location"]
    longest = max(len(ids) for ids in built["data"][0])
    if compute_bytes == 4:
        parts = estimate_memory(config, location, longest).parts
    else:
        shape = model_shape(location, config.lora.target_modules)
        seq_len = min(config.data.max_length, longest)
        parts = estimate_from_shape(shape, config, False, compute_bytes, seq_len)
    return {name: size / MIB for name, size in parts.items()}


def ablation(args: argparse.Namespace, rounds: int = 3) -> dict:
    """Forward + backward of one batch of the studio's 4-bit model under each setting, the
    settings interleaved round by round (after one warm-up round) and the median kept."""
    trainer = studio_trainer(args, "studio", args.steps)["trainer"]
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.model.train()
    times: dict[str, list[float]] = {name: [] for name in ABLATION}
    for _ in range(rounds + 1):
        for name, (bf16, checkpointing) in ABLATION.items():
            times[name].append(_forward_backward(trainer.model, batch, bf16, checkpointing))
    seconds = {name: statistics.median(t[1:]) for name, t in times.items()}
    return {"tokens": int(batch["attention_mask"].sum()), "seconds": seconds}


def _forward_backward(model: Any, batch: dict, bf16: bool, checkpointing: bool) -> float:
    import torch

    if checkpointing:
        model.gradient_checkpointing_enable()
    else:
        model.gradient_checkpointing_disable()
    started = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(**batch).loss
    loss.backward()
    elapsed = time.perf_counter() - started
    model.zero_grad(set_to_none=True)
    return elapsed


def run_worker(args: argparse.Namespace) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    import transformers

    transformers.set_seed(SEED)
    if args.worker == "trl":
        result = train_and_measure(trl_trainer(args), quality=True)
    elif args.worker == "ablation":
        result = ablation(args)
    elif args.worker in MEMORY_RUNS:
        built = studio_trainer(args, args.worker, args.memory_steps)
        result = train_and_measure(built, quality=False)
        result["estimate_mib"] = estimate(built, MEMORY_RUNS[args.worker][3])
    else:
        result = train_and_measure(studio_trainer(args, args.worker, args.steps), quality=True)
    result["kind"] = args.worker
    result["threads"] = torch.get_num_threads()
    Path(args.result).write_text(json.dumps(result), encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# The driver


def prepare_home(tmp: Path) -> Path:
    """A studio home whose models are the test suite's converted ones (nothing reconverted)."""
    home = tmp / "home"
    home.mkdir()
    if (TEST_HOME / "models").is_dir():
        (home / "models").symlink_to(TEST_HOME / "models", target_is_directory=True)
    return home


def run_child(kind: str, args: argparse.Namespace, home: Path) -> dict:
    result = home / f"{kind}-{time.monotonic_ns()}.json"
    log = home / f"{kind}.log"
    flags = ["--steps", args.steps, "--batch", args.batch, "--eval-steps", args.eval_steps]
    flags += ["--memory-steps", args.memory_steps, "--max-length", args.max_length]
    flags += ["--model", args.model]
    command = [sys.executable, __file__, "--worker", kind, "--home", home, "--result", result]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call([str(c) for c in command + flags], stdout=out, stderr=out, env=env)
    if code != 0:
        sys.exit(f"worker {kind} failed (exit {code}):\n{log.read_text()[-4000:]}")
    print(f"  {kind}: {time.perf_counter() - started:.0f} s", flush=True)
    return dict(json.loads(result.read_text()))


def print_speed(runs: list[dict]) -> None:
    """One row per trainer: medians over its repeats, ratios against TRL's."""
    by_kind: dict[str, list[dict]] = {}
    for run in runs:
        by_kind.setdefault(run["kind"], []).append(run)
    base = by_kind.get("trl") or by_kind["studio"]  # without TRL: ratios to the studio
    base_rate = statistics.median(r["tokens_per_s"] for r in base)
    base_wall = statistics.median(r["wall_s"] for r in base)
    base_rss = statistics.median(r["peak_rss_train_mib"] for r in base)
    print(
        f"\n{'trainer':<34} {'tok/s':>6} {'vs TRL':>7} {'run s':>6} {'vs TRL':>7} "
        f"{'s/step':>6} {'evals':>5} {'peak RSS':>9} {'vs TRL':>7} {'held-out NLL':>12}"
    )
    for kind, runs_of in by_kind.items():
        rate = statistics.median(r["tokens_per_s"] for r in runs_of)
        wall = statistics.median(r["wall_s"] for r in runs_of)
        rss = statistics.median(r["peak_rss_train_mib"] for r in runs_of)
        step = statistics.median(r["median_step_s"] for r in runs_of)
        nll = statistics.median(r["held_out_nll"] for r in runs_of)
        print(
            f"{LABELS[kind]:<34} {rate:>6.1f} {rate / base_rate:>6.2f}x {wall:>6.0f} "
            f"{base_wall / wall:>6.2f}x {step:>6.2f} {runs_of[0]['evaluations']:>5} "
            f"{rss:>5.0f} MiB {base_rss / rss:>6.2f}x {nll:>12.3f}"
        )
    s, t = by_kind["studio"][-1], base[-1]
    if "trl" not in by_kind:
        return
    same = s["data_digest"] == t["data_digest"]
    print(
        f"training tokens and masks identical: {same} (studio {s['data_tokens']} tokens, "
        f"{s['answer_tokens']} trained; TRL {t['data_tokens']}, {t['answer_tokens']}); tokens "
        f"counted: studio {s['tokens']}, TRL {t['tokens']}"
    )
    for kind in ("trl", "studio"):
        run = by_kind[kind][-1]
        print(f"{LABELS[kind]}: evaluation {run['eval_plan']}; setup {json.dumps(run['setup'])}")


def print_memory(runs: list[dict]) -> None:
    print(
        f"\n{'base':<34} {'footprint':>9} {'peak RSS':>9} {'vs 4-bit':>8} {'peak anon':>9} "
        f"{'vs 4-bit':>8} {'training adds':>13} {'estimate':>9} {'est/RSS':>8}"
    )
    rss0, anon0 = runs[0]["peak_rss_train_mib"], runs[0]["peak_anon_train_mib"]
    for run in runs:
        est = sum(run["estimate_mib"].values())
        rss, anon = run["peak_rss_train_mib"], run["peak_anon_train_mib"]
        print(
            f"{MEMORY_RUNS[run['kind']][0]:<34} {run['footprint_mib']:>5.0f} MiB {rss:>5.0f} MiB "
            f"{rss / rss0:>7.2f}x {anon:>5.0f} MiB {anon / anon0:>7.2f}x "
            f"{anon - run['anon_before_train_mib']:>9.0f} MiB {est:>5.0f} MiB {est / rss:>7.2f}x"
        )
    for run in runs:
        parts = ", ".join(f"{k} {v:.0f}" for k, v in run["estimate_mib"].items())
        print(f"  estimate, {MEMORY_RUNS[run['kind']][0]} (MiB): {parts}")


def print_ablation(result: dict) -> None:
    print(f"\nwhere TRL's defaults cost time (one batch of {result['tokens']} tokens, fwd + bwd):")
    base = next(iter(result["seconds"].values()))
    for name, seconds in result["seconds"].items():
        print(f"  {name:<34} {seconds:>6.2f} s  {seconds / base:>5.2f}x")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--steps", type=int, default=24)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--eval-steps", type=int, default=6, help="evaluate every N steps")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--sst2-rows", type=int, default=250, help="SST-2 rows in the mix")
    parser.add_argument("--repeats", type=int, default=1, help="rounds of every trainer")
    parser.add_argument("--no-ablations", action="store_true", help="studio and TRL only")
    parser.add_argument("--kinds", help="only these runs, comma-separated (e.g. studio,full-head)")
    parser.add_argument("--padding-only", action="store_true", help="only count the padding")
    parser.add_argument("--head-only", action="store_true", help="only time the LM head + loss")
    parser.add_argument("--precision-memory", action="store_true", help="4-bit/bf16/fp32 bases")
    parser.add_argument("--memory-steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="a few steps: checks the script")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--ablation", action="store_true", help="also time TRL's bf16 and checkpointing defaults"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch, args.eval_steps, args.memory_steps = 4, 4, 2, 3
        args.sst2_rows = 40
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    if args.head_only:
        head_timing(args)
        return
    kinds = ["studio", "trl"] + ([] if args.no_ablations else list(ABLATIONS))
    kinds = args.kinds.split(",") if args.kinds else kinds
    with tempfile.TemporaryDirectory() as tmp:
        home = prepare_home(Path(tmp))
        rows = write_mixed(home / MIXED, args.sst2_rows)
        print(
            f"{args.model}, {rows} mixed rows (Self-Instruct seeds + {args.sst2_rows} SST-2), "
            f"{args.steps} steps x batch {args.batch}, max length {args.max_length}, evaluation "
            f"every {args.eval_steps} steps and at the end; {args.repeats} round(s) of "
            f"{', '.join(kinds)}"
        )
        padding = padding_report(args, home)
        if args.padding_only:
            return
        speed = [run_child(kind, args, home) for _ in range(args.repeats) for kind in kinds]
        memory = (
            [run_child(kind, args, home) for kind in MEMORY_RUNS] if args.precision_memory else []
        )
        ablated = run_child("ablation", args, home) if args.ablation else None
    print_speed(speed)
    if memory:
        print_memory(memory)
    if ablated:
        print_ablation(ablated)
    if args.json:
        report = {"padding": padding, "speed": speed, "memory": memory, "ablation": ablated}
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
