"""Tuning on SST-2 with SmolLM2: the studio's trainer against plain TRL, and 4-bit QLoRA against
16-bit LoRA in memory, each training run in its own process.

1. Speed and quality (both 4-bit NF4 with double quantization, LoRA r 16 / alpha 32 / dropout
   0.05 on all linear layers, lr 2e-4, the same batch size, steps, seed and rows of
   ../shared/data/sst2/train.tsv through the `sst2-sentiment` chat template):
   - studio: `build_trainer` exactly as the tuning worker calls it (pre-tokenized prompt + answer,
     completion-only loss, fp32 and plain AdamW on CPU, no gradient checkpointing by default);
   - TRL (baseline): `SFTTrainer(model, SFTConfig(...), peft_config=LoraConfig(...))` with TRL's
     defaults (bf16 autocast, gradient checkpointing, fused AdamW, no warmup) on the same rows as a
     conversational prompt-completion dataset (system + user turn, assistant answer), which TRL
     trains completion-only by default; the model loaded the way TRL's `sft.py` loads it
     (BitsAndBytesConfig NF4, double quantization, fp32 like TRL's ModelConfig default).
   The runs alternate (studio, TRL, studio, TRL, ...) to spread the machine's noise over both.
   Reported: non-padding tokens trained per second (TRL's `num_tokens` over `train_runtime`),
   the median step time, and, after the same batches (so the same tokens), the loss and accuracy
   on the first SST-2 validation rows, computed by one function for both final models: the mean
   NLL of the answer tokens after the studio's exact prompt, and which label scores higher.
2. Memory: the studio's trainer for a few steps with a 4-bit NF4 base, a bf16 base (16-bit
   LoRA) and an fp32 base (what quantization 'none' trains on CPU), each process sampling its RSS
   during training, printed next to `studio.tuning.memory`'s estimate for the same run.

    .venv/bin/python benchmarks/tune_throughput.py [--steps 30] [--batch 8] [--repeats 2]
        [--memory-steps 10] [--eval-rows 100] [--quick] [--json OUT]

Prints the tables with ratios against the baseline measured in the same run.
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


def studio_config(args: argparse.Namespace, quantization: str, steps: int) -> Any:
    from studio.tuning.config import flat_config

    return flat_config(
        name="bench-tune",
        model=args.model,
        quantization=quantization,
        data=str(SST2 / "train.tsv"),
        format="template",
        template=args.template,
        eval_split=0.0,  # held-out loss is measured below, the same way for both trainers
        limit=args.rows,
        max_steps=steps,
        batch_size=args.batch,
        seed=SEED,
    )


def held_out_rows(n: int) -> list[dict[str, Any]]:
    from studio.datasets import load_dataset
    from studio.hosting import HostingPolicy

    return load_dataset(SST2 / "validation.tsv", policy=HostingPolicy.desktop()).rows[:n]


def held_out(model: Any, tokenizer: Any, template: Any, rows: list[dict[str, Any]]) -> dict:
    """Mean NLL of the gold answer's tokens after the studio's prompt (one forward pass a row),
    and accuracy: which label's first token the model prefers where the answer starts."""
    import torch

    encoded = [_encode_choices(template, row, tokenizer) for row in rows]
    nll = n_tokens = correct = 0.0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(encoded), 16):
            for row_nll, n, predicted, gold in _score(
                model, tokenizer, encoded[start : start + 16]
            ):
                nll, n_tokens, correct = nll + row_nll, n_tokens + n, correct + (predicted == gold)
    return {"loss": nll / n_tokens, "accuracy": correct / len(rows)}


def _encode_choices(template: Any, row: dict[str, Any], tokenizer: Any) -> dict[str, Any]:
    """The gold sequence (ids, answer mask) and every label's first answer token."""
    from studio.tuning.data import tokenize_segments
    from studio.tuning.formats import template_segments

    label_of = {answer: key for key, answer in (template.label_map or {}).items()}
    firsts, gold = [], None
    for choice in template.choices:  # SST-2's answer is its label column, mapped to a word
        choice_row = {**row, "label": label_of[choice]}
        segments = template_segments(template, choice_row, tokenizer)
        ids, answer = tokenize_segments(tokenizer, segments, template.mode == "completion")
        firsts.append(ids[answer.index(True)])
        if str(row["label"]) == label_of[choice]:
            gold = (ids, answer, len(firsts) - 1)
    assert gold is not None and len(set(firsts)) == len(firsts), "labels must differ at once"
    return {"ids": gold[0], "answer": gold[1], "gold": gold[2], "firsts": firsts}


def _score(model: Any, tokenizer: Any, batch: list[dict[str, Any]]) -> list[tuple]:
    """(answer NLL, answer tokens, predicted label, gold label) for each row of a batch."""
    import torch

    width = max(len(e["ids"]) for e in batch)
    ids = torch.tensor(
        [e["ids"] + [tokenizer.pad_token_id] * (width - len(e["ids"])) for e in batch]
    )
    answer = torch.tensor([e["answer"] + [False] * (width - len(e["answer"])) for e in batch])
    attention = torch.tensor([[1] * len(e["ids"]) + [0] * (width - len(e["ids"])) for e in batch])
    logits = model(input_ids=ids, attention_mask=attention, use_cache=False).logits.float()
    logprobs = torch.log_softmax(logits[:, :-1], -1)
    taken = logprobs.gather(-1, ids[:, 1:, None])[..., 0] * answer[:, 1:]
    scored = []
    for row, e in enumerate(batch):
        at = e["answer"].index(True) - 1  # the position that predicts the answer's first token
        predicted = int(logprobs[row, at, e["firsts"]].argmax())
        scored.append((-float(taken[row].sum()), sum(e["answer"]), predicted, e["gold"]))
    return scored


def trained_data(trainer: Any) -> tuple[list[list[int]], list[list[int]]]:
    """The token ids and loss masks the trainer's prepared dataset holds."""
    dataset = trainer.train_dataset
    masks = [[int(label != -100) for label in labels] for labels in dataset["labels"]]
    return list(dataset["input_ids"]), masks


def digest(input_ids: list[list[int]], masks: list[list[int]]) -> str:
    """A fingerprint of the exact training tokens and loss masks, to check both train alike."""
    data = json.dumps([input_ids, [[int(bool(m)) for m in mask] for mask in masks]])
    return hashlib.sha256(data.encode()).hexdigest()[:16]


def studio_trainer(args: argparse.Namespace, quantization: str, dtype: str, steps: int) -> dict:
    from studio.hosting import HostingPolicy
    from studio.models.loading import LoadRequest, load_model
    from studio.settings import load_settings
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import build_trainer

    config = studio_config(args, quantization, steps)
    settings = load_settings(home=Path(args.home), offline=True)
    loaded = load_model(LoadRequest(args.model, quantization, dtype=dtype), settings)
    prepared = prepare_data(
        config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=config.training.seed
    )
    timer = step_timer()
    out = Path(args.home) / f"out-{os.getpid()}"
    trainer = build_trainer(config, loaded, prepared, out, [timer])
    return {
        "trainer": trainer,
        "timer": timer,
        "tokenizer": loaded.tokenizer,
        "template": prepared.template,
        "config": config,
        "location": loaded.location,
        "footprint": loaded.footprint_bytes,
        "data": trained_data(trainer),
    }


def trl_trainer(args: argparse.Namespace) -> dict:
    """Plain TRL as its docs and `trl/scripts/sft.py` use it; only the data is the studio's rows."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
    from trl import SFTConfig, SFTTrainer

    from studio.datasets import load_dataset
    from studio.hosting import HostingPolicy
    from studio.templates import build_prompt, load_template

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
    template = load_template(args.template)
    rows = load_dataset(SST2 / "train.tsv", policy=HostingPolicy.desktop()).rows[: args.rows]
    built = [build_prompt(template, row, [], tokenizer) for row in rows]
    dataset = Dataset.from_list(
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
            learning_rate=2e-4,
            max_steps=args.steps,
            logging_steps=1,
            report_to="none",
            use_cpu=True,
            seed=SEED,
        ),
        train_dataset=dataset,
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
        "template": template,
        "footprint": int(model.get_memory_footprint()),
        "data": trained_data(trainer),
    }


def model_folder(args: argparse.Namespace) -> Path:
    from studio.models.convert import ensure_converted
    from studio.models.registry import resolve_spec
    from studio.settings import load_settings

    settings = load_settings(home=Path(args.home), offline=True)
    return ensure_converted(resolve_spec(args.model), settings.models_dir)


def train_and_measure(built: dict, eval_rows: list[dict[str, Any]], before: bool) -> dict:
    trainer, tokenizer, template = built["trainer"], built["tokenizer"], built["template"]
    # Before training the adapter is a no-op (LoRA B = 0): this is the base model's loss.
    start = held_out(trainer.model, tokenizer, template, eval_rows) if before else None
    with RssPeak() as rss:
        result = trainer.train()
    history = trainer.state.log_history
    tokens = next(e["num_tokens"] for e in reversed(history) if "num_tokens" in e)
    losses = [e["loss"] for e in history if "loss" in e]
    runtime = float(result.metrics["train_runtime"])
    lora = next(p for n, p in trainer.model.named_parameters() if "lora_A" in n)
    args = trainer.args
    return {
        "steps": int(trainer.state.global_step),
        "tokens": int(tokens),
        "train_runtime_s": runtime,
        "tokens_per_s": tokens / runtime,
        "median_step_s": statistics.median(built["timer"].times),
        "train_loss_last10": statistics.fmean(losses[-10:]),
        "train_losses": losses,
        "held_out_before": start,
        "held_out_after": held_out(trainer.model, tokenizer, template, eval_rows)
        if eval_rows
        else None,
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
    trainer = studio_trainer(args, "4bit", "auto", args.steps)["trainer"]
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
    eval_rows = held_out_rows(args.eval_rows)
    if args.worker == "studio":
        built = studio_trainer(args, "4bit", "auto", args.steps)
        result = train_and_measure(built, eval_rows, args.eval_before)
    elif args.worker == "trl":
        result = train_and_measure(trl_trainer(args), eval_rows, args.eval_before)
    elif args.worker == "ablation":
        result = ablation(args)
    else:
        _label, quantization, dtype, compute_bytes = MEMORY_RUNS[args.worker]
        built = studio_trainer(args, quantization, dtype, args.memory_steps)
        result = train_and_measure(built, [], before=False)
        result["estimate_mib"] = estimate(built, compute_bytes)
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


def run_child(kind: str, args: argparse.Namespace, home: Path, first: bool = False) -> dict:
    result = home / f"{kind}-{time.monotonic_ns()}.json"
    log = home / f"{kind}.log"
    flags = ["--steps", args.steps, "--batch", args.batch, "--rows", args.rows]
    flags += ["--memory-steps", args.memory_steps, "--eval-rows", args.eval_rows]
    flags += ["--model", args.model, "--template", args.template]
    flags += ["--eval-before"] if first else []
    command = [sys.executable, __file__, "--worker", kind, "--home", home, "--result", result]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    with log.open("w") as out:
        code = subprocess.call([str(c) for c in command + flags], stdout=out, stderr=out, env=env)
    if code != 0:
        sys.exit(f"worker {kind} failed (exit {code}):\n{log.read_text()[-4000:]}")
    print(f"  {kind}: {time.perf_counter() - started:.0f} s", flush=True)
    return dict(json.loads(result.read_text()))


def summarize_speed(runs: list[dict]) -> dict[str, Any]:
    studio = [r for r in runs if r["kind"] == "studio"]
    trl = [r for r in runs if r["kind"] == "trl"]
    ratios = [s["tokens_per_s"] / t["tokens_per_s"] for s, t in zip(studio, trl, strict=True)]
    return {"studio": studio, "trl": trl, "tokens_per_s_ratios": ratios}


def print_speed(summary: dict[str, Any]) -> None:
    print(
        f"\n{'trainer':<30} {'tok/s':>7} {'s/step':>7} {'vs TRL':>7} {'held-out loss':>16} "
        f"{'accuracy':>13} {'train loss':>10} {'peak RSS':>9}"
    )
    base = statistics.median(r["tokens_per_s"] for r in summary["trl"])
    for name, kind in (
        ("TRL SFTTrainer defaults (base)", "trl"),
        ("studio build_trainer", "studio"),
    ):
        runs = summary[kind]
        rate = statistics.median(r["tokens_per_s"] for r in runs)
        step = statistics.median(r["median_step_s"] for r in runs)
        before, after = runs[0]["held_out_before"], runs[-1]["held_out_after"]
        print(
            f"{name:<30} {rate:>7.1f} {step:>7.2f} {rate / base:>6.2f}x "
            f"{before['loss']:>7.3f} -> {after['loss']:>5.3f} "
            f"{before['accuracy']:>5.2f} -> {after['accuracy']:>4.2f} "
            f"{runs[-1]['train_loss_last10']:>10.3f} {runs[-1]['peak_rss_train_mib']:>6.0f} MiB"
        )
    ratios = summary["tokens_per_s_ratios"]
    print(f"studio/TRL tokens/s per interleaved pair: {', '.join(f'{r:.2f}x' for r in ratios)}")
    s, t = summary["studio"][-1], summary["trl"][-1]
    loss_ratio = s["held_out_after"]["loss"] / t["held_out_after"]["loss"]
    print(f"studio/TRL held-out loss after the same {s['tokens']} tokens: {loss_ratio:.2f}x")
    same = s["data_digest"] == t["data_digest"]
    print(
        f"training tokens and masks identical: {same} (studio {s['data_tokens']} tokens, "
        f"{s['answer_tokens']} trained; TRL {t['data_tokens']}, {t['answer_tokens']}); tokens "
        f"counted: studio {s['tokens']}, TRL {t['tokens']}"
    )
    for name, run in (("TRL", t), ("studio", s)):
        print(f"{name} setup: {json.dumps(run['setup'])}")


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
    parser.add_argument("--template", default="sst2-sentiment")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rows", type=int, help="train.tsv rows (default: steps x batch)")
    parser.add_argument("--repeats", type=int, default=2, help="studio/TRL pairs, interleaved")
    parser.add_argument("--memory-steps", type=int, default=10)
    parser.add_argument("--eval-rows", type=int, default=100, help="validation.tsv rows")
    parser.add_argument("--quick", action="store_true", help="a few steps: checks the script")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument(
        "--ablation", action="store_true", help="also time TRL's bf16 and checkpointing defaults"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--eval-before", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.quick:
        args.steps, args.batch, args.repeats, args.memory_steps, args.eval_rows = 4, 4, 1, 3, 16
    args.rows = args.rows or args.steps * args.batch
    return args


def main() -> None:
    args = parse_args()
    if args.worker:
        run_worker(args)
        return
    print(
        f"{args.model}, {args.template}, {args.steps} steps x batch {args.batch} "
        f"({args.rows} train.tsv rows), {args.repeats} interleaved pairs, "
        f"{args.eval_rows} held-out validation rows; memory runs {args.memory_steps} steps"
    )
    with tempfile.TemporaryDirectory() as tmp:
        home = prepare_home(Path(tmp))
        speed = [
            run_child(kind, args, home, first=repeat == 0)
            for repeat in range(args.repeats)
            for kind in ("studio", "trl")
        ]
        memory = [run_child(kind, args, home) for kind in MEMORY_RUNS]
        ablated = run_child("ablation", args, home) if args.ablation else None
    summary = summarize_speed(speed)
    print_speed(summary)
    print_memory(memory)
    if ablated:
        print_ablation(ablated)
    if args.json:
        report = {"speed": summary, "memory": memory, "ablation": ablated}
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
