"""The project's own sample project: the "Start here" loop on support tickets.

Four steps, each a shipped config under studio/samples/: compare 0 vs 4 shots, tune a small adapter,
compare base against adapter, find the runs again. The configs name their files relative to the
project root (so the CLI works from a checkout); this module loads them with those paths made
absolute, so the UI and `studio quickstart` work from any directory.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.compare.config import CompareConfig, load_config
from studio.compare.summary import ConfigSummary
from studio.models.adapters import adapter_path
from studio.settings import SAMPLES_DIR, SHIPPED_ROOT, Settings
from studio.store import ComparisonRun, Store, TuningRun
from studio.tuning.config import TuneConfig, load_tune_config

COMPARE_CONFIG = SAMPLES_DIR / "start-compare.yaml"
TUNE_CONFIG = SAMPLES_DIR / "start-tune.yaml"
ADAPTER_COMPARE_CONFIG = SAMPLES_DIR / "start-compare-adapter.yaml"
TRAIN_FILE = SAMPLES_DIR / "tickets-train.csv"
TEST_FILE = SAMPLES_DIR / "tickets-test.csv"
RUN_PREFIX = "start here"  # the names of the sample's comparison runs begin with this


@dataclass(frozen=True)
class Step:
    """One step of the loop as a newcomer meets it: what it does and the command that does it."""

    number: int
    title: str
    explanation: str
    command: str


STEPS = (
    Step(
        1,
        "Compare zero-shot with few-shot",
        "SmolLM2 routes the 72 held-out support tickets of the sample to one of four teams "
        "(billing, shipping, technical, account), scored by the log-likelihood of each answer. "
        "Once with no examples in the prompt, once with 4 examples from the training file, one "
        "per team: 144 rows scored.",
        "studio compare --config studio/samples/start-compare.yaml",
    ),
    Step(
        2,
        "Tune a small adapter",
        "A QLoRA adapter (LoRA r=16 on the 4-bit model) learns the same prompt format from the "
        "training tickets (180; 20 more give the eval loss): 40 steps of 8, loss on the answer "
        "only. It trains in its own "
        "process, so you can leave this page and come back. Running it again "
        "retrains the adapter in place.",
        "studio tune --config studio/samples/start-tune.yaml",
    ),
    Step(
        3,
        "Compare again: base against adapter",
        "The same tickets, the same template: the base model zero- and 4-shot next to the "
        "adapter. Enabled once the adapter of step 2 exists.",
        "studio compare --config studio/samples/start-compare-adapter.yaml",
    ),
    Step(
        4,
        "Find it all again",
        "Every run above is stored: the comparisons (with each example's exact prompt and "
        "choice scores) in the Compare tab's past runs and in Experiments, the tuning run with "
        "its loss curve in the Tune tab and in Experiments, the adapter in its own folder.",
        "studio runs list · studio jobs list · studio adapters show start-tickets",
    ),
)


def _from_root(path: str) -> str:
    candidate = Path(path).expanduser()
    return str(candidate if candidate.is_absolute() else SHIPPED_ROOT / candidate)


def compare_config(path: Path = COMPARE_CONFIG) -> CompareConfig:
    """A shipped comparison config with its data files made absolute."""
    config = load_config(path)
    update = {"data": _from_root(config.data)}
    if config.shot_pool is not None:
        update["shot_pool"] = _from_root(config.shot_pool)
    return config.model_copy(update=update)


def tune_config(path: Path = TUNE_CONFIG) -> TuneConfig:
    """The shipped tuning config with its data file made absolute."""
    config = load_tune_config(path)
    data = config.data.model_copy(update={"path": _from_root(config.data.path)})
    return config.model_copy(update={"data": data})


def adapter_name() -> str:
    return tune_config().name


def adapter_folder(settings: Settings) -> Path:
    """Where step 2 writes its adapter (STUDIO_ADAPTERS_DIR/<name>)."""
    return adapter_path(settings.adapters_dir, adapter_name())


def adapter_ready(settings: Settings) -> bool:
    """Whether step 2 has produced an adapter that step 3 can load."""
    return (adapter_folder(settings) / "adapter_config.json").is_file()


def latest_tuning_run(store: Store) -> TuningRun | None:
    """The newest tuning run of the sample adapter, if any."""
    name = adapter_name()
    return next((run for run in store.list_tuning_runs(limit=200) if run.name == name), None)


def sample_comparisons(store: Store, limit: int = 20) -> list[ComparisonRun]:
    """The sample's comparison runs, newest first."""
    runs = store.list_comparison_runs(limit=500)
    return [run for run in runs if (run.name or "").startswith(RUN_PREFIX)][:limit]


@dataclass(frozen=True)
class Headline:
    """Mean accuracy of one model at one shot count, over its seeds."""

    model: str
    shots: int
    accuracy: float
    n_seeds: int


def headlines(summaries: Sequence[ConfigSummary]) -> list[Headline]:
    """One line per model × shot count, in grid order: what a newcomer should look at first."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for s in sorted(summaries, key=lambda s: s.position):
        if s.n:
            groups[(s.model, s.shots)].append(s.accuracy.value)
    return [
        Headline(model, shots, sum(values) / len(values), len(values))
        for (model, shots), values in groups.items()
    ]


def headline_text(summaries: Sequence[ConfigSummary]) -> str:
    """'smollm2-135m-instruct 0-shot 0.431 · 4-shot 0.562 (mean of 2 seeds)' and so on."""
    by_model: dict[str, list[str]] = defaultdict(list)
    for line in headlines(summaries):
        seeds = f" (mean of {line.n_seeds} seeds)" if line.n_seeds > 1 else ""
        by_model[line.model].append(f"{line.shots}-shot {line.accuracy:.3f}{seeds}")
    return "; ".join(f"{model}: " + ", ".join(parts) for model, parts in by_model.items())
