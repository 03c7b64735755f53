"""A synthetic-data job's settings, its candidates, and the work folder that keeps them.

A generation writes nothing to the store until it is saved. What it has produced lives in
`<home>/datasets/.work/<name>/`: `job.json` (the settings, written once, atomically) and
`rounds.jsonl`, one line per finished round holding that round's candidates, appended and
flushed to disk as each round ends. A stop or a crash loses at most the round in progress; a
last line cut short by a crash is ignored on reading. `--resume` reads both and goes on.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from studio.data.synthetic_filters import DEFAULT_ROUGE_THRESHOLD
from studio.templates.schema import NAME_PATTERN

WORK_DIR = ".work"
ACCEPTED = "accepted"
REJECTED = "rejected"


class GenerationSettings(BaseModel):
    """What `studio data generate` is asked for; stored as the job's settings and lineage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed_tasks: str = Field(description="Self-Instruct seed tasks (JSONL: instruction, instances)")
    generator: str = Field(description="Model spec that writes the instructions and instances")
    count: int = Field(ge=1, le=100_000, description="Accepted candidates to reach")
    output: str = Field(description="Dataset name the version is saved under")
    mode: Literal["completion", "chat"] = Field("completion", description="Prompt as text or chat")
    temperature: float = Field(0.7, ge=0.0, le=5.0, description="Sampling temperature")
    top_p: float = Field(0.5, gt=0.0, le=1.0, description="Nucleus mass (Self-Instruct used 0.5)")
    max_new_tokens: int = Field(256, ge=8, le=4096, description="Per answer, both stages")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Fixes task sampling and generation")
    batch: int = Field(8, ge=1, le=256, description="Instruction prompts per round")
    rouge_threshold: float = Field(
        DEFAULT_ROUGE_THRESHOLD, ge=0.0, le=1.0, description="Drop above this ROUGE-L to the pool"
    )
    context_tasks: int = Field(8, ge=2, le=20, description="Tasks shown per instruction prompt")
    context_generated: int = Field(2, ge=0, le=20, description="Of which generated, when there are")
    patience: int = Field(5, ge=1, le=1000, description="Give up after this many empty rounds")

    @field_validator("output")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid dataset name. Fix: use 1-64 lowercase letters, digits, "
                "'.', '_' or '-', starting with a letter or digit, e.g. 'tickets-synthetic'"
            )
        return value


@dataclass(frozen=True)
class Candidate:
    """One generated instruction, its instance if one was generated, and how it was judged.

    `reason` is None for an accepted candidate, else the reason code (synthetic_filters).
    The prompts are the exact text the generator saw; the seeds are the sampling seeds of the
    calls that produced them, and the context ids the tasks each prompt showed."""

    id: str
    round: int
    instruction: str
    status: str
    reason: str | None
    rouge_l: float
    most_similar: str | None
    most_similar_id: str | None
    instruction_prompt: str
    instruction_seed: int
    instruction_context: list[str]
    input: str | None = None
    output: str | None = None
    instance_prompt: str | None = None
    instance_seed: int | None = None
    instance_context: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return self.status == ACCEPTED


@dataclass(frozen=True)
class WorkState:
    """Everything a job has produced so far, as read back from its work folder."""

    folder: Path
    settings: GenerationSettings
    seed_hash: str
    candidates: list[Candidate]
    rounds: int

    @property
    def accepted(self) -> list[Candidate]:
        return [c for c in self.candidates if c.accepted]


def work_folder(datasets_dir: Path, name: str) -> Path:
    return datasets_dir / WORK_DIR / name


def start_work(folder: Path, settings: GenerationSettings, seed_hash: str) -> None:
    """Create the work folder with its job file (refusing one that exists)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    write_job(folder, settings, seed_hash)


def write_job(folder: Path, settings: GenerationSettings, seed_hash: str) -> None:
    job = {"settings": settings.model_dump(), "seed_hash": seed_hash}
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".job-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(job, handle, indent=1)
    os.replace(tmp, folder / "job.json")


def append_round(folder: Path, round_number: int, candidates: list[Candidate]) -> None:
    """One finished round, as one line, on disk before the next round starts."""
    line = json.dumps({"round": round_number, "candidates": [asdict(c) for c in candidates]})
    with (folder / "rounds.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_work(folder: Path) -> WorkState:
    """The job in `folder`; ValueError when there is none or its job file is unreadable."""
    try:
        job = json.loads((folder / "job.json").read_text(encoding="utf-8"))
        settings = GenerationSettings(**job["settings"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"no generation to resume in {folder} ({exc.__class__.__name__}). Fix: start one "
            "without --resume"
        ) from None
    candidates, rounds = [], 0
    path = folder / "rounds.jsonl"
    data = path.read_bytes() if path.exists() else b""
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) < len(data):  # a round cut short by a crash: dropped, and done again
        with path.open("r+b") as handle:
            handle.truncate(len(whole))
    for line in whole.decode("utf-8").splitlines():
        record: dict[str, Any] = json.loads(line)
        candidates += [Candidate(**c) for c in record["candidates"]]
        rounds = record["round"] + 1
    return WorkState(folder, settings, str(job["seed_hash"]), candidates, rounds)


def discard_work(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
