"""Synthetic instruction data (studio/data/synthetic*.py, `studio data generate`).

Proves: the filters on hand-made candidates (ROUGE-L equal to rouge-score's own values, 0.7 kept
and above it rejected; each heuristic with its reason; each instance check); the Self-Instruct
prompts (8 tasks, 2 generated when there are) and how answers are read; the review's edits; a
work folder cut by a crash read back to its last whole round; refusals (bad seed file, unknown
model offline, public demo, a job already under way) leaving nothing in the store or on disk;
and, with the bundled SmolLM2, a real `studio data generate` run whose rows and rejected
candidates keep their provenance, a stop then a resume that reaches the count, and a served model
(a real `transformers serve`) as the generator.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.data.seed_tasks import SeedTask, load_seed_tasks
from studio.data.synthetic import Finished, Judged, Started, SyntheticData, instance_verdict
from studio.data.synthetic_filters import RougePool, instruction_verdict
from studio.data.synthetic_prompts import (
    INSTRUCTION_HEADER,
    ContextTask,
    choose_context,
    instruction_prompt,
    parse_instructions,
)
from studio.data.synthetic_review import Edit, apply_edits, save_reviewed
from studio.data.synthetic_work import (
    Candidate,
    GenerationSettings,
    append_round,
    read_work,
    start_work,
)
from studio.hosting import HostingPolicy, Mode, PolicyRefusal
from studio.inference.registry import ModelBackends
from studio.models.manager import ModelManager
from studio.settings import get_settings, load_settings
from studio.store import Store
from tests import needs
from tests.conftest import SHARED_DATA

SEEDS = SHARED_DATA / "self-instruct" / "seed_tasks.jsonl"
LOCAL = "smollm2-135m-instruct"
POOL_TEXT = "List three reasons why people should learn a second language"


def _pool() -> RougePool:
    pool = RougePool()
    pool.add("seed_task_1", POOL_TEXT)
    pool.add("seed_task_2", "Translate the sentence into French")
    return pool


# -- the filters, on hand-made candidates -------------------------------------------------------


@pytest.mark.parametrize(
    ("candidate", "expected", "reason"),
    [
        # 10 words each; longest common subsequence 7 -> P = R = F = 0.7: kept (not above 0.7)
        ("Give three reasons why people should learn a musical instrument", 0.7, None),
        # LCS 8 -> 0.8: a near-duplicate
        ("List three reasons why people should learn a musical instrument", 0.8, "near-duplicate"),
        ("Give three reasons why children should learn a musical instrument", 0.6, None),
    ],
)
def test_rouge_l_is_rouge_score_s_value_and_only_above_the_threshold_rejects(
    candidate: str, expected: float, reason: str | None
) -> None:
    from rouge_score import rouge_scorer

    reference = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    reason_found, near = instruction_verdict(_pool(), candidate, 0.7)
    assert near.score == reference.score(POOL_TEXT, candidate)["rougeL"].fmeasure
    assert near.score == pytest.approx(expected, abs=1e-12)
    assert (near.most_similar, near.most_similar_id) == (POOL_TEXT, "seed_task_1")
    assert reason_found == reason


@pytest.mark.parametrize(
    ("instruction", "reason"),
    [
        ("", "empty"),
        ("Summarise this text", "too-short"),
        ("Explain " + "why " * 150, "too-long"),
        ("Describe the image below in two sentences", "keyword:image"),
        ("Draw the logo of a coffee shop for me", "keyword:draw"),
        ("Go to the nearest shop and buy some milk", "keyword:go to"),
        ("Compose a short piece of music for a wedding", "keyword:music"),
        ("Turn this process into a flowchart with five steps", "keyword:flowchart"),
        ("Write a program that prints the first prime numbers", "write-a-program"),
        ("- List the planets of the solar system", "starts-with-punctuation"),
        ("Écris une phrase sur la mer et le vent", "starts-non-english"),
        ("Explain how a hash table stores the mapping from keys to values", None),  # not "map"
        ("Update the profile of a customer who moved to Lisbon", None),  # not "file"
        ("Write a product description for a bamboo toothbrush", None),
    ],
)
def test_each_heuristic_rejects_with_its_reason(instruction: str, reason: str | None) -> None:
    assert instruction_verdict(_pool(), instruction, 0.7)[0] == reason


def test_a_cut_off_instruction_is_truncated_whatever_it_says() -> None:
    text = "Write a product description for a bamboo toothbrush"
    assert instruction_verdict(_pool(), text, 0.7, truncated=True)[0] == "truncated"


@pytest.mark.parametrize(
    ("answer", "hit_limit", "reason", "instance"),
    [
        (" <noinput>\nOutput: Paris is the capital.", False, None, ("", "Paris is the capital.")),
        (" The sky\nOutput: blue\n\nOutput: again", False, None, ("The sky", "blue")),
        (" The sky is blue.", False, "no-instance", (None, None)),
        (" The sky\nOutput: blue and", True, "instance-truncated", ("The sky", "blue and")),
        (" The sky\nOutput:   ", False, "empty-output", ("The sky", "")),
        (" The sky\nOutput: The sky", False, "output-equals-input", ("The sky", "The sky")),
        (" <noinput>\nOutput: name a colour", False, "output-repeats-instruction", None),
        (" cat\nOutput: feline", False, "duplicate-instance", ("cat", "feline")),
    ],
)
def test_each_instance_check_rejects_with_its_reason(
    answer: str, hit_limit: bool, reason: str | None, instance: tuple[str, str] | None
) -> None:
    seen = {("cat", "feline")}
    found, parsed = instance_verdict("Name a colour", answer, hit_limit, seen)
    assert found == reason
    if instance is not None:
        assert parsed == instance


# -- the prompts and how answers are read ---------------------------------------------------------


def _seed_tasks(n: int) -> list[SeedTask]:
    return [SeedTask(f"seed_task_{i}", f"Seed instruction number {i}", "", "x") for i in range(n)]


def test_an_instruction_prompt_shows_six_seed_and_two_generated_tasks_when_there_are() -> None:
    seeds = _seed_tasks(20)
    generated = [ContextTask(f"r0-{i}", f"Generated instruction number {i}") for i in range(5)]
    context = choose_context(random.Random(0), seeds, generated, 8, 2)
    assert len({t.id for t in context}) == 8
    assert sum(t.id.startswith("r0-") for t in context) == 2
    fewer = choose_context(random.Random(0), seeds, generated[:1], 8, 2)
    assert sum(t.id.startswith("r0-") for t in fewer) == 1 and len(fewer) == 8
    lines = instruction_prompt(context, chat=False).splitlines()
    assert lines[0] + "\n" == INSTRUCTION_HEADER
    assert lines[1:] == [f"{i}. {t.instruction}" for i, t in enumerate(context, 1)] + ["9."]
    chat = instruction_prompt(context, chat=True)
    assert chat.endswith("numbered from 9.") and "\n8. " in chat


def test_a_numbered_continuation_is_split_and_its_cut_last_item_marked() -> None:
    answer = " Name a fruit that is red.\n10. Say hello in Spanish\n11. Describe a"
    parsed = parse_instructions(answer, 9, hit_limit=True)
    assert [p.text for p in parsed] == [
        "Name a fruit that is red.",
        "Say hello in Spanish",
        "Describe a",
    ]
    assert [p.truncated for p in parsed] == [False, False, True]
    chat = parse_instructions(
        "Sure! Here are more:\n\n9. Name a fruit.\n10. Say hi", 9, False, True
    )
    assert [p.text for p in chat] == ["Name a fruit.", "Say hi"]


# -- the review ------------------------------------------------------------------------------


def _candidate(cid: str, accepted: bool, output: str | None = "an output") -> Candidate:
    return Candidate(
        id=cid, round=0, instruction=f"Instruction {cid}", status="accepted" if accepted else
        "rejected", reason=None if accepted else "near-duplicate", rouge_l=0.5, most_similar=None,
        most_similar_id=None, instruction_prompt="p", instruction_seed=1,
        instruction_context=["seed_task_1"], input="", output=output,
    )  # fmt: skip


def test_review_edits_override_status_and_text_and_refuse_what_cannot_be() -> None:
    candidates = [_candidate("r0-0", True), _candidate("r0-1", False), _candidate("r0-2", True)]
    edits = [
        Edit("r0-1", accept=True),
        Edit("r0-2", accept=False),
        Edit("r0-0", output=" A better output "),
    ]
    result = {c.id: (c.status, c.output, why) for c, why in apply_edits(candidates, edits)}
    assert result == {
        "r0-0": ("accepted", "A better output", "edited"),
        "r0-1": ("accepted", "an output", "accepted-by-reviewer"),
        "r0-2": ("rejected", "an output", "rejected-by-reviewer"),
    }
    with pytest.raises(ValueError, match="r0-9"):
        apply_edits(candidates, [Edit("r0-9", accept=True)])
    with pytest.raises(ValueError, match="more than once"):
        apply_edits(candidates, [Edit("r0-1", accept=True), Edit("r0-1", accept=False)])
    no_instance = [_candidate("r0-3", False, output=None)]
    with pytest.raises(ValueError, match="r0-3 cannot be accepted without"):
        apply_edits(no_instance, [Edit("r0-3", accept=True)])
    [(fixed, why)] = apply_edits(no_instance, [Edit("r0-3", accept=True, output="Written")])
    assert fixed.accepted and fixed.output == "Written" and why == "accepted-by-reviewer"


def test_a_round_cut_short_by_a_crash_is_dropped_and_the_file_repaired(tmp_path: Path) -> None:
    folder = tmp_path / ".work" / "job"
    settings = GenerationSettings(seed_tasks="s.jsonl", generator=LOCAL, count=3, output="job")
    start_work(folder, settings, "hash")
    append_round(folder, 0, [_candidate("r0-0", True), _candidate("r0-1", False)])
    with (folder / "rounds.jsonl").open("a") as handle:
        handle.write('{"round": 1, "candidates": [{"id": "r1-0", "rou')  # the crash
    state = read_work(folder)
    assert state.rounds == 1 and [c.id for c in state.candidates] == ["r0-0", "r0-1"]
    assert state.settings == settings and [c.id for c in state.accepted] == ["r0-0"]
    append_round(folder, 1, [_candidate("r1-0", True)])  # the next round appends cleanly
    assert read_work(folder).rounds == 2


# -- refusals: nothing in the store, nothing on disk ----------------------------------------------


def _engine(settings: Any, policy: HostingPolicy) -> SyntheticData:
    return SyntheticData(ModelBackends(ModelManager(settings), policy), settings.home / "datasets")


def _nothing_written(home: Path) -> None:
    assert not (home / "datasets").exists()
    store = Store(f"sqlite:///{home / 'studio.db'}")
    try:
        assert store.dataset_versions() == []
    finally:
        store.close()


def test_a_bad_seed_file_is_refused_naming_its_line_and_nothing_is_written(settings: Any) -> None:
    bad = settings.home.parent / "seeds.jsonl"
    bad.write_text(
        '{"id": "a", "instruction": "Say hi", "instances": [{"input": "", "output": "hi"}]}\n'
        '{"id": "b", "instruction": "Say bye", "instances": []}\n'
    )
    engine = _engine(settings, HostingPolicy.desktop())
    job = GenerationSettings(seed_tasks=str(bad), generator=LOCAL, count=2, output="bad")
    with pytest.raises(ValueError, match=r"seeds.jsonl: line 2: .*instances"):
        engine.generate(job)
    bad.write_text(bad.read_text().splitlines()[0] + "\n" + bad.read_text().splitlines()[0])
    with pytest.raises(ValueError, match="repeats the id 'a'"):
        load_seed_tasks(bad, HostingPolicy.desktop())
    _nothing_written(settings.home)


def test_a_public_demo_refuses_generating_and_saving_and_writes_nothing(settings: Any) -> None:
    seeds = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    demo = HostingPolicy(mode=Mode.DEMO)
    engine = _engine(settings, demo)
    job = GenerationSettings(seed_tasks=str(seeds), generator=LOCAL, count=2, output="demo")
    with pytest.raises(PolicyRefusal, match="public demo"):
        engine.generate(job)
    with pytest.raises(PolicyRefusal, match="public demo"):
        engine.resume("demo")
    store = Store(settings.database_url)
    try:
        with pytest.raises(PolicyRefusal, match="public demo"):
            save_reviewed(store, demo, settings.home / "datasets", "demo")
    finally:
        store.close()
    _nothing_written(settings.home)


@contextlib.contextmanager
def _studio_env(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


def _studio(*args: str) -> tuple[int, str, str]:
    from studio.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["data", "generate", *args])
    return code, out.getvalue(), err.getvalue()


def test_the_cli_refuses_an_unknown_model_offline_and_wrong_flags_writing_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = str(needs.shared_data("self-instruct", "seed_tasks.jsonl"))
    home = tmp_path / "home"
    with _studio_env(home, monkeypatch):
        code, _, err = _studio(
            "--seed-tasks", seeds, "--model", "nobody/nothing", "--count", "3", "--output", "x"
        )
        assert code == 2 and "nobody/nothing" in err and "offline" in err
        code, _, err = _studio("--output", "x", "--count", "3")
        assert code == 2 and "--seed-tasks, --model" in err and "--resume" in err
        code, _, err = _studio("--output", "x", "--resume", "--temperature", "1.0")
        assert code == 2 and "--temperature cannot be given" in err
        code, _, err = _studio("--output", "x", "--resume")
        assert code == 2 and "no generation to resume" in err
        code, _, err = _studio("--seed-tasks", seeds, "--model", LOCAL, "--count", "0",
                               "--output", "x")  # fmt: skip
        assert code == 2 and "--count: Input should be greater than or equal to 1" in err
    assert not (home / "datasets").exists()
    store = Store(f"sqlite:///{home / 'studio.db'}")
    try:
        assert store.dataset_versions() == []
    finally:
        store.close()


# -- real runs with the bundled model -------------------------------------------------------------


def _own_home(tmp_path_factory: pytest.TempPathFactory, model_home: Path, name: str) -> Path:
    home = tmp_path_factory.mktemp(name) / "home"
    home.mkdir()
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models").symlink_to(model_home / "models")
    return home


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> dict[str, Any]:
    """One real `studio data generate` with SmolLM2: short answers, one batch per stage."""
    seeds = str(needs.shared_data("self-instruct", "seed_tasks.jsonl"))
    home = _own_home(tmp_path_factory, model_home, "synthetic-cli")
    with pytest.MonkeyPatch.context() as mp, _studio_env(home, mp):
        code, out, err = _studio(
            "--seed-tasks", seeds, "--model", LOCAL, "--count", "3", "--output", "synth",
            "--max-new-tokens", "48", "--batch", "6", "--seed", "1",
        )  # fmt: skip
    store = Store(f"sqlite:///{home / 'studio.db'}")
    try:
        versions = store.dataset_versions()
    finally:
        store.close()
    return {"code": code, "out": out, "err": err, "home": home, "versions": versions}


@pytest.mark.model
def test_generate_saves_a_synthetic_version_in_the_alpaca_shape(cli_run: dict[str, Any]) -> None:
    from studio.datasets import load_dataset

    assert cli_run["code"] == 0, cli_run["err"]
    [version] = cli_run["versions"]
    assert (version.ref, version.kind, version.dataset.n_rows) == ("synth@v1", "synthetic", 3)
    assert version.ref in cli_run["out"] and "synth" in cli_run["err"]  # the progress bar
    data = load_dataset(version.dataset.path, policy=HostingPolicy.desktop())
    assert data.columns[:3] == ["instruction", "input", "output"]
    assert all(row["instruction"] and row["output"] for row in data.rows)
    lineage = version.lineage
    assert lineage["generator"] == LOCAL and lineage["count"] == 3
    assert lineage["settings"]["rouge_threshold"] == 0.7 and lineage["settings"]["seed"] == 1
    assert Path(lineage["seed_tasks"]).is_absolute()
    assert not (cli_run["home"] / "datasets" / ".work" / "synth").exists()  # the job ended


@pytest.mark.model
def test_every_candidate_keeps_its_provenance_and_why_it_was_rejected(
    cli_run: dict[str, Any],
) -> None:
    from rouge_score import rouge_scorer

    [version] = cli_run["versions"]
    lines = Path(version.lineage["candidates_file"]).read_text().splitlines()
    candidates = [json.loads(line) for line in lines]
    assert len(candidates) == version.lineage["candidates"] >= 6
    seeds = {s.id: s.instruction for s in load_seed_tasks(SEEDS, HostingPolicy.desktop()).tasks}
    texts = dict(seeds)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    accepted_ids = set()
    for c in candidates:
        assert c["instruction_prompt"].startswith(INSTRUCTION_HEADER)
        assert len(c["instruction_context"]) == 8
        for i, task_id in enumerate(c["instruction_context"], start=1):
            assert f"\n{i}. " in c["instruction_prompt"] and task_id in texts
        expected = max(scorer.score(t, c["instruction"])["rougeL"].fmeasure for t in texts.values())
        assert c["rouge_l"] == pytest.approx(expected) and texts[c["most_similar_id"]]
        if c["status"] == "accepted":
            assert c["reason"] is None and c["rouge_l"] <= 0.7 and c["instance_prompt"]
            assert c["instance_prompt"].endswith(f"Task: {c['instruction']}\nInput:")
            accepted_ids.add(c["id"])
        else:
            assert c["reason"], c
        if c["reason"] == "near-duplicate":
            assert c["rouge_l"] > 0.7
        if c["reason"] is None or c["reason"] in {"no-instance", "empty-output",
                                                   "output-equals-input", "count-reached",
                                                   "duplicate-instance", "instance-truncated",
                                                   "output-repeats-instruction"}:  # fmt: skip
            texts[c["id"]] = c["instruction"]  # it joined the pool
    rows = [json.loads(line) for line in Path(version.dataset.path).read_text().splitlines()]
    assert {r["candidate_id"] for r in rows} == accepted_ids
    for row in rows:
        assert row["generator"] == LOCAL and row["instruction_seed"] is not None
        assert row["review"] == "generated" and row["instance_context"]


@pytest.mark.model
def test_a_stopped_job_resumes_from_its_last_round_and_reaches_the_count(
    tmp_path_factory: pytest.TempPathFactory, model_home: Path
) -> None:
    seeds = str(needs.shared_data("self-instruct", "seed_tasks.jsonl"))
    home = _own_home(tmp_path_factory, model_home, "synthetic-resume")
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    engine = _engine(settings, HostingPolicy.desktop())
    job = GenerationSettings(
        seed_tasks=seeds, generator=LOCAL, count=100, output="resumed", max_new_tokens=40,
        batch=4, seed=2,
    )  # fmt: skip
    stop = threading.Event()
    first = []
    for event in engine.generate(job, stop):
        if isinstance(event, Judged):
            stop.set()  # round 0 is on disk; stop before round 1
        first.append(event)
    finished = first[-1]
    assert isinstance(finished, Finished) and finished.reason == "stopped"
    state = engine.state("resumed")
    assert state.rounds == 1 and len(state.candidates) == finished.candidates > 0
    _nothing_written_to_store(home)
    target = len(state.accepted) + 1
    second = list(engine.resume("resumed", count=target))
    started, done = second[0], second[-1]
    assert isinstance(started, Started) and started.resumed
    assert (started.accepted, started.candidates) == (len(state.accepted), len(state.candidates))
    assert isinstance(done, Finished) and done.reason == "reached" and done.accepted == target
    after = engine.state("resumed")
    assert after.candidates[: len(state.candidates)] == state.candidates  # round 0 kept as is
    assert {c.round for c in after.candidates[len(state.candidates) :]} >= {1}
    store = Store(settings.database_url)
    try:
        new = after.accepted[-1]
        edits = [Edit(new.id, instruction="An edited instruction for the reviewed row")]
        version = save_reviewed(store, engine.policy, home / "datasets", "resumed", edits)
    finally:
        store.close()
    assert version.dataset.n_rows == target and version.lineage["count"] == target
    assert version.lineage["review"][0]["candidate"] == new.id
    rows = [json.loads(line) for line in Path(version.dataset.path).read_text().splitlines()]
    assert rows[-1]["instruction"] == "An edited instruction for the reviewed row"
    assert rows[-1]["review"] == "edited"


@pytest.mark.model
def test_a_job_that_finds_nothing_new_gives_up_keeps_its_candidates_and_stores_nothing(
    fresh_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seeds = str(needs.shared_data("self-instruct", "seed_tasks.jsonl"))
    args = (
        "--seed-tasks", seeds, "--model", LOCAL, "--count", "1", "--output", "strict",
        "--rouge-threshold", "0", "--patience", "1", "--batch", "2", "--max-new-tokens", "16",
    )  # fmt: skip
    with _studio_env(fresh_home, monkeypatch):
        code, _, err = _studio(*args)
        assert code == 1 and "0 of 1 accepted" in err and "--resume" in err
        state = read_work(fresh_home / "datasets" / ".work" / "strict")
        assert state.rounds == 1 and state.candidates and not state.accepted
        assert "near-duplicate" in {c.reason for c in state.candidates}
        code, _, err = _studio(*args)  # the job is kept: a new one under its name is refused
        assert code == 2 and "already under way" in err and "--restart" in err
        elsewhere = [a if a != LOCAL else "nobody/nothing" for a in args]
        code, _, err = _studio(*elsewhere, "--restart")  # refused: the old job stays
        assert code == 2 and "nobody/nothing" in err
        assert read_work(fresh_home / "datasets" / ".work" / "strict") == state
        code, _, err = _studio(*args, "--restart")  # starts again from round 0
        assert code == 1 and read_work(fresh_home / "datasets" / ".work" / "strict").rounds == 1
    store = Store(f"sqlite:///{fresh_home / 'studio.db'}")
    try:
        assert store.dataset_versions() == []
        assert not (fresh_home / "datasets" / "strict").exists()
    finally:
        store.close()


def _nothing_written_to_store(home: Path) -> None:
    store = Store(f"sqlite:///{home / 'studio.db'}")
    try:
        assert store.dataset_versions() == []
        assert not (home / "datasets" / "resumed").exists()
    finally:
        store.close()


@pytest.mark.model
def test_a_served_model_generates_through_transformers_serve(
    tmp_path_factory: pytest.TempPathFactory, model_home: Path
) -> None:
    seeds = str(needs.shared_data("self-instruct", "seed_tasks.jsonl"))
    home = _own_home(tmp_path_factory, model_home, "synthetic-served")
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    engine = _engine(settings, HostingPolicy.desktop())
    with _serve(model_home, tmp_path_factory) as spec:
        job = GenerationSettings(
            seed_tasks=seeds, generator=spec, count=1, output="served", max_new_tokens=40,
            batch=3, seed=3,
        )  # fmt: skip
        events = list(engine.generate(job))
    assert isinstance(events[-1], Finished) and events[-1].reason == "reached", events[-1]
    store = Store(settings.database_url)
    try:
        version = save_reviewed(store, engine.policy, home / "datasets", "served")
    finally:
        store.close()
    [row] = [json.loads(line) for line in Path(version.dataset.path).read_text().splitlines()]
    assert row["generator"] == spec and version.lineage["generator"] == spec
    assert row["instruction_prompt"].startswith(INSTRUCTION_HEADER)  # completion text, as sent


@contextlib.contextmanager
def _serve(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve` on the converted SmolLM2 folder, started as tests/inference does."""
    from tests.inference.test_openai_serve import _wait_ready, converted_folder, free_port

    needs.package("openai", "transformers serve needs it")
    serve = shutil.which("transformers", path=str(Path(sys.executable).parent)) or needs.command(
        "transformers", "the served generator runs under `transformers serve`"
    )
    folder = converted_folder(model_home)
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "transformers-serve.log"
    command = [serve, "serve", str(folder), "--host", "127.0.0.1", "--port", str(port),
               "--device", "cpu", "--dtype", "float32"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(process, f"http://127.0.0.1:{port}", log)
        yield f"openai:{folder}@http://127.0.0.1:{port}/v1?timeout=900&parallel=1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
