"""Synthetic instruction data, Self-Instruct style, checked before use.

From seed tasks, a generator model (any spec: bundled, Hub, folder, adapter, served) writes new
instructions, round by round: `batch` instruction prompts of 8 in-context tasks each
(synthetic_prompts), every proposed instruction filtered (synthetic_filters: heuristics, then
ROUGE-L against the pool), then one input-first instance prompt per kept instruction, and the
instance filtered. An instruction and instance that pass are accepted; every candidate, kept or
not, is recorded with its exact prompts, sampling seeds, context task ids, its highest ROUGE-L
and the instruction that gave it, and its reason if rejected (synthetic_work.Candidate).

`SyntheticData.generate` checks everything (hosting policy, seed file, generator) before it
writes anything, then yields events (`Started`, `Stage`, `Judged`, `Finished`) that the CLI's
progress bar and the UI follow; a `threading.Event` stops it between batches. Candidates go to
the job's work folder as each round ends (synthetic_work); `resume` continues to the count.
Nothing reaches the store until the job is saved (synthetic_review.save_reviewed).
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Collection, Generator, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from studio.data.seed_tasks import SeedTasks, load_seed_tasks
from studio.data.synthetic_filters import RougePool, instance_problem, instruction_verdict
from studio.data.synthetic_prompts import (
    CHAT_INSTRUCTION_STOP,
    INSTANCE_STOP,
    INSTRUCTION_STOP,
    ContextTask,
    choose_context,
    instance_examples,
    instance_prompt,
    instruction_prompt,
    parse_instance,
    parse_instructions,
)
from studio.data.synthetic_work import (
    ACCEPTED,
    REJECTED,
    Candidate,
    GenerationSettings,
    WorkState,
    append_round,
    discard_work,
    read_work,
    start_work,
    work_folder,
    write_job,
)
from studio.hosting import HostingPolicy
from studio.inference.backends import InferenceBackend
from studio.inference.batch_generation import Generated
from studio.inference.params import SamplingParams
from studio.inference.registry import ModelBackends

# Reasons given after the instruction passed its own filters (it stays in the ROUGE-L pool).
INSTANCE_REASONS = frozenset(
    {"no-instance", "instance-truncated", "empty-output", "output-equals-input",
     "output-repeats-instruction", "duplicate-instance", "count-reached"}
)  # fmt: skip


@dataclass(frozen=True)
class Started:
    folder: Path
    settings: GenerationSettings
    accepted: int
    candidates: int
    resumed: bool


@dataclass(frozen=True)
class Stage:
    """A round's generation call begins: "instructions" or "instances", over `prompts`."""

    round: int
    stage: str
    prompts: int


@dataclass(frozen=True)
class Judged:
    """A candidate of a finished round (already in the work folder), kept or not."""

    candidate: Candidate
    accepted: int
    target: int


@dataclass(frozen=True)
class Finished:
    """`reason`: "reached" (count accepted), "stopped", or "exhausted" (`patience` rounds in a
    row accepted nothing). The work folder keeps everything for resume and review."""

    reason: str
    accepted: int
    target: int
    candidates: int
    folder: Path


Event = Started | Stage | Judged | Finished


class SyntheticData:
    """Generates, resumes and discards synthetic-data jobs under one hosting policy."""

    def __init__(self, backends: ModelBackends, datasets_dir: Path) -> None:
        self.backends = backends
        self.datasets_dir = datasets_dir

    @property
    def policy(self) -> HostingPolicy:
        return self.backends.policy

    def generate(
        self,
        settings: GenerationSettings,
        stop: threading.Event | None = None,
        restart: bool = False,
    ) -> Iterator[Event]:
        """Check the policy, the seed file and the generator now (raising before anything is
        written), then return the job's events; the model loads on the first one. A job
        already under the same name is refused, or with `restart` discarded once the checks
        pass."""
        self.policy.check_shared_write("generating a synthetic dataset")
        seeds = load_seed_tasks(settings.seed_tasks, self.policy)
        # Resolved, so that a resume from another folder reads the same file.
        resolved = str(Path(settings.seed_tasks).expanduser().resolve())
        settings = settings.model_copy(update={"seed_tasks": resolved})
        folder = work_folder(self.datasets_dir, settings.output)
        if folder.exists() and not restart:
            raise ValueError(
                f"a generation for {settings.output!r} is already under way in {folder}. Fix: "
                "continue it with --resume, or discard it with --restart"
            )
        self.backends.check([settings.generator], "generate", [])
        discard_work(folder)  # with restart: the old job goes only once the new one can start
        return self._run(settings, seeds, folder, None, stop or threading.Event())

    def resume(
        self, name: str, count: int | None = None, stop: threading.Event | None = None
    ) -> Iterator[Event]:
        """Continue job `name` with its own settings (a new `count` may raise or lower the
        target); refused when the seed file changed since it began."""
        self.policy.check_shared_write("generating a synthetic dataset")
        state = read_work(work_folder(self.datasets_dir, name))
        settings = state.settings
        if count is not None:
            settings = settings.model_copy(update={"count": count})
        seeds = load_seed_tasks(settings.seed_tasks, self.policy)
        if seeds.content_hash != state.seed_hash:
            raise ValueError(
                f"the seed tasks in {settings.seed_tasks} changed since generation {name!r} "
                "began. Fix: restore the file, or start again with --restart"
            )
        self.backends.check([settings.generator], "generate", [])
        return self._run(settings, seeds, state.folder, state, stop or threading.Event())

    def discard(self, name: str) -> None:
        """Remove job `name`'s work folder and every candidate in it (a fresh start)."""
        self.policy.check_shared_write("discarding a synthetic-data job")
        discard_work(work_folder(self.datasets_dir, name))

    def state(self, name: str) -> WorkState:
        """What job `name` has produced so far (for review)."""
        return read_work(work_folder(self.datasets_dir, name))

    def _run(
        self,
        settings: GenerationSettings,
        seeds: SeedTasks,
        folder: Path,
        state: WorkState | None,
        stop: threading.Event,
    ) -> Iterator[Event]:
        backend = self.backends.open(settings.generator)
        chat_check(backend, settings)
        if state is None:
            start_work(folder, settings, seeds.content_hash)
            state = WorkState(folder, settings, seeds.content_hash, [], 0)
        elif settings != state.settings:
            write_job(folder, settings, seeds.content_hash)
        job = _Job(settings, seeds, backend, state.candidates)
        yield Started(folder, settings, len(job.accepted), len(job.candidates), state.rounds > 0)
        round_number, empty = state.rounds, 0
        while len(job.accepted) < settings.count:
            if stop.is_set() or empty >= settings.patience:
                break
            found = yield from job.round(round_number, stop)
            if found is None:
                break  # stopped inside the round: it is done again on resume
            append_round(folder, round_number, found)
            kept = sum(c.accepted for c in found)
            so_far = len(job.accepted) - kept
            for candidate in found:
                so_far += candidate.accepted
                yield Judged(candidate, so_far, settings.count)
            empty = 0 if kept else empty + 1
            round_number += 1
        reason = "reached" if len(job.accepted) >= settings.count else "stopped"
        if reason == "stopped" and not stop.is_set():
            reason = "exhausted"
        yield Finished(reason, len(job.accepted), settings.count, len(job.candidates), folder)


def chat_check(backend: InferenceBackend, settings: GenerationSettings) -> None:
    """A chat-mode job needs a generator with a chat template; refused before any work."""
    if settings.mode == "chat":
        try:
            as_chat(backend, "probe")
        except Exception as exc:  # transformers raises ValueError; templates may raise more
            raise ValueError(
                f"{settings.generator} cannot build chat prompts ({exc}). Fix: --mode completion"
            ) from None


def as_chat(backend: InferenceBackend, text: str) -> str:
    messages = [{"role": "user", "content": text}]
    built = backend.prompt_format.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    return str(built)


def instance_verdict(
    instruction: str,
    answer: str,
    hit_limit: bool,
    seen: Collection[tuple[str | None, str | None]],
) -> tuple[str | None, tuple[str | None, str | None]]:
    """Why a generated instance is rejected (None: kept), and its (input, output) as read from
    the answer: no "Output:" is `no-instance`, an answer cut at max_new_tokens is
    `instance-truncated`, then the instance heuristics, then an (input, output) already in
    `seen` (kept for another instruction) is a `duplicate-instance`."""
    parsed = parse_instance(answer)
    if parsed is None:
        return "no-instance", (None, None)
    if hit_limit:
        return "instance-truncated", parsed
    reason = instance_problem(instruction, *parsed)
    if reason is None and parsed in seen:
        reason = "duplicate-instance"
    return reason, parsed


def derived_seed(seed: int, round_number: int, stage: str) -> int:
    """A sampling seed per job seed, round and stage (stable across runs and resumes)."""
    digest = hashlib.sha256(f"{seed}:{round_number}:{stage}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 2


class _Job:
    """The pool, the accepted candidates and one round's two generation stages."""

    def __init__(
        self,
        settings: GenerationSettings,
        seeds: SeedTasks,
        backend: InferenceBackend,
        candidates: Sequence[Candidate],
    ) -> None:
        self.settings, self.seeds, self.backend = settings, seeds, backend
        self.candidates = list(candidates)
        self.pool = RougePool()
        for task in seeds.tasks:
            self.pool.add(task.id, task.instruction)
        for c in self.candidates:
            if c.reason is None or c.reason in INSTANCE_REASONS:
                self.pool.add(c.id, c.instruction)
        self.accepted = [c for c in self.candidates if c.accepted]
        self.instances: set[tuple[str | None, str | None]] = {
            (c.input, c.output) for c in self.accepted
        }

    @property
    def chat(self) -> bool:
        return self.settings.mode == "chat"

    def round(
        self, number: int, stop: threading.Event
    ) -> Generator[Event, None, list[Candidate] | None]:
        """One round: its candidates, or None if stopped before it finished."""
        s = self.settings
        rng = random.Random(f"{s.seed}:{number}")
        generated = [ContextTask(c.id, c.instruction) for c in self.accepted]
        contexts = [
            choose_context(rng, self.seeds.tasks, generated, s.context_tasks, s.context_generated)
            for _ in range(s.batch)
        ]
        texts = [instruction_prompt(context, self.chat) for context in contexts]
        yield Stage(number, "instructions", len(texts))
        seed = derived_seed(s.seed, number, "instructions")
        stops = CHAT_INSTRUCTION_STOP if self.chat else INSTRUCTION_STOP
        answers = self._generate(texts, seed, stops, stop)
        if answers is None:
            return None
        judged = self._judge_instructions(number, contexts, texts, answers, seed)
        found = [c for c in judged if c.reason is not None]
        kept = [c for c in judged if c.reason is None]
        if kept:
            yield Stage(number, "instances", len(kept))
            instances = self._instances(number, kept, stop)
            if instances is None:
                return None
            found += instances
        found.sort(key=lambda c: int(c.id.rsplit("-", 1)[1]))
        self.candidates += found
        return found

    def _generate(
        self, texts: list[str], seed: int, stops: tuple[str, ...], stop: threading.Event
    ) -> list[Generated] | None:
        s = self.settings
        params = SamplingParams(
            temperature=s.temperature, top_p=s.top_p, max_new_tokens=s.max_new_tokens,
            stop=stops, seed=seed,
        )  # fmt: skip
        prompts = [as_chat(self.backend, t) for t in texts] if self.chat else texts
        results = list(
            self.backend.generate(prompts, s.mode, params, batch_size=s.batch, stop=stop)
        )
        if len(results) < len(prompts):
            return None
        return sorted(results, key=lambda g: g.index)

    def _hit_limit(self, answer: Generated) -> bool:
        tokens = answer.completion_tokens
        return tokens is not None and tokens >= self.settings.max_new_tokens

    def _prompt(self, text: str) -> str:
        return as_chat(self.backend, text) if self.chat else text

    def _judge_instructions(
        self,
        number: int,
        contexts: list[list[ContextTask]],
        texts: list[str],
        answers: list[Generated],
        seed: int,
    ) -> list[Candidate]:
        """Every proposed instruction of the round, filtered in order against a growing pool;
        kept ones have status "pending" until their instance is judged."""
        out: list[Candidate] = []
        for context, text, answer in zip(contexts, texts, answers, strict=True):
            hit = self._hit_limit(answer)
            for item in parse_instructions(answer.text, len(context) + 1, hit, self.chat):
                cid = f"r{number}-{len(out)}"
                reason, near = instruction_verdict(
                    self.pool, item.text, self.settings.rouge_threshold, item.truncated
                )
                if reason is None:
                    self.pool.add(cid, item.text)
                out.append(
                    Candidate(
                        id=cid, round=number, instruction=item.text,
                        status="pending" if reason is None else REJECTED, reason=reason,
                        rouge_l=near.score, most_similar=near.most_similar,
                        most_similar_id=near.most_similar_id,
                        instruction_prompt=self._prompt(text), instruction_seed=seed,
                        instruction_context=[t.id for t in context],
                    )
                )  # fmt: skip
        return out

    def _instances(
        self, number: int, kept: list[Candidate], stop: threading.Event
    ) -> list[Candidate] | None:
        s = self.settings
        rng = random.Random(f"{s.seed}:{number}:instances")
        examples = [instance_examples(rng, self.seeds.tasks) for _ in kept]
        texts = [
            instance_prompt(ex, c.instruction, self.chat)
            for ex, c in zip(examples, kept, strict=True)
        ]
        seed = derived_seed(s.seed, number, "instances")
        answers = self._generate(texts, seed, INSTANCE_STOP, stop)
        if answers is None:
            return None
        out = []
        for c, ex, text, answer in zip(kept, examples, texts, answers, strict=True):
            reason, (input_text, output) = instance_verdict(
                c.instruction, answer.text, self._hit_limit(answer), self.instances
            )
            if reason is None and len(self.accepted) >= s.count:
                reason = "count-reached"  # a good one, past the target: kept for provenance
            judged = replace(
                c, status=ACCEPTED if reason is None else REJECTED, reason=reason,
                input=input_text, output=output, instance_prompt=self._prompt(text),
                instance_seed=seed, instance_context=[e.id for e in ex],
            )  # fmt: skip
            if judged.accepted:
                self.accepted.append(judged)
                self.instances.add((input_text, output))
            out.append(judged)
        return out
