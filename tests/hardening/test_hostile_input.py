"""Hostile and bad input through the engine calls the UI and the CLI make: every case is refused
with a message naming the problem and the fix, and leaves the store, adapters/, prompts/ and the
tuning folder exactly as they were.

The cases: malformed CSV/JSONL/Parquet, wrong encodings, empty files, an oversized file, missing
columns, undefined template variables, Jinja sandbox escapes, path traversal in template and
adapter names, invalid hyperparameters, unknown models offline and models that ship code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from studio.compare.config import build_config, load_config
from studio.hosting import HostingPolicy
from studio.inference.params import SamplingParams
from studio.playground.engine import ChatRequest
from studio.services import create_services
from studio.templates.library import TemplateLibrary
from studio.tuning.config import flat_config
from tests.conftest import ROOT
from tests.hardening.conftest import World, linked_home

REVIEWS = ROOT / "studio" / "samples" / "reviews.csv"
ONE_GIB = 2**30


@pytest.fixture(scope="module")
def studio_world(tmp_path_factory: pytest.TempPathFactory, model_home: Path):
    """One studio for every case (each checks its own before/after snapshot)."""
    from studio.settings import load_settings

    base = tmp_path_factory.mktemp("hostile")
    home = linked_home(base / "home", model_home)
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    services = create_services(settings)
    (base / "library").mkdir()
    yield World(home, settings.adapters_dir, base / "library", {"services": services})
    services.close()


@pytest.fixture
def world(studio_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    studio_world.extra.pop("marker", None)
    studio_world.extra["tmp"] = tmp_path
    return studio_world


def _file(world: World, name: str, content: bytes | str) -> str:
    path = world.extra["tmp"] / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return str(path)


def _compare(world: World, **values: Any) -> None:
    """What Start in the Compare tab and `studio compare` run: build, check, store, score."""
    given = {
        "data": str(REVIEWS),
        "templates": ["reviews-sentiment"],
        "models": ["smollm2-135m-instruct"],
        "shots": [0],
        "limit": 4,
    }
    list(world.extra["services"].comparisons.run(build_config(**{**given, **values})))


def _template(world: World, template: str, name: str = "hostile") -> str:
    """A template file (for Compare) with the given Jinja prompt."""
    text = (
        f"name: {name}\nmode: completion\ntemplate: {json.dumps(template)}\n"
        "answer: '{{ label }}'\nchoices: [positive, negative]\n"
    )
    return _file(world, f"{name}.yaml", text)


def _save_template(world: World, template: str, name: str = "hostile") -> None:
    """What Save in the Prompts tab runs: write the library file and store a version."""
    text = f"name: {json.dumps(name)}\nmode: completion\ntemplate: {json.dumps(template)}\n"
    services = world.extra["services"]
    TemplateLibrary(world.library, services.store, HostingPolicy.desktop()).save(text)


def _chat(world: World, model: str = "smollm2-135m-instruct", **params: Any) -> None:
    """What Send in the Playground runs (the /chat API too)."""
    request = ChatRequest(
        model=model, user_message="hello", params=SamplingParams(max_new_tokens=4, **params)
    )
    list(world.extra["services"].playground.stream(request))


def _tune(world: World, **values: Any) -> None:
    """What Launch in the Tune tab and `studio tune` build before anything is queued."""
    from studio.tuning.jobs import check_launch, queue_run

    given = {"name": "ok-name", "data": str(REVIEWS), "template": "reviews-sentiment"}
    services = world.extra["services"]
    check = check_launch(flat_config(**{**given, **values}), services.settings, services.policy)
    queue_run(check, services.settings, services.store, services.policy)


def _sparse(world: World, name: str, size: int) -> str:
    """A file of `size` bytes that takes no disk space (no real gigabyte is written)."""
    path = world.extra["tmp"] / name
    with path.open("wb") as handle:
        handle.write(b"text,label\n")
        handle.truncate(size)
    return str(path)


def _remote_code_folder(world: World) -> Path:
    """A local model folder whose config maps its classes to Python files it ships; importing
    them would leave a marker file behind."""
    folder = world.extra["tmp"] / "remote-code-model"
    folder.mkdir()
    marker = world.extra["tmp"] / "REMOTE-CODE-RAN"
    config = {
        "model_type": "evil",
        "architectures": ["EvilForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_evil.EvilConfig",
            "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    code = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    for module in ("configuration_evil.py", "modeling_evil.py"):
        (folder / module).write_text(code)
    world.extra["marker"] = marker
    return folder


def _parquet_truncated(world: World) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = world.extra["tmp"] / "cut.parquet"
    pq.write_table(pa.table({"text": ["good"] * 50, "label": ["positive"] * 50}), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return str(path)


@dataclass(frozen=True)
class Case:
    id: str
    act: Callable[[World], Any]
    needles: tuple[str, ...]  # what the message must say: the problem, and the fix


CASES = [
    # --- malformed files -------------------------------------------------------------------
    Case(
        "csv-unclosed-quote",
        lambda w: _compare(w, data=_file(w, "q.csv", 'text,label\n"great film,positive\n')),
        ("q.csv: line 2", "never closed", "Fix:", "double quotes"),
    ),
    Case(
        "csv-ragged-row",
        lambda w: _compare(w, data=_file(w, "r.csv", "text,label\nfine,positive,extra\n")),
        ("r.csv: line 2", "expected 2 fields", "Fix:"),
    ),
    Case(
        "jsonl-broken-line",
        lambda w: _compare(
            w, data=_file(w, "b.jsonl", '{"text": "a", "label": "positive"}\n{"text": "b",\n')
        ),
        ("b.jsonl: line 2", "invalid JSON", "Fix:"),
    ),
    Case(
        "jsonl-array-not-object",
        lambda w: _compare(w, data=_file(w, "a.jsonl", '["good film", "positive"]\n')),
        ("a.jsonl: line 1", "Fix:"),
    ),
    Case(
        "parquet-garbage",
        lambda w: _compare(w, data=_file(w, "g.parquet", b"PAR1 this is not parquet PAR1")),
        ("g.parquet", "Parquet", "Fix:"),
    ),
    Case(
        "parquet-truncated",
        lambda w: _compare(w, data=_parquet_truncated(w)),
        ("cut.parquet", "Parquet", "Fix:"),
    ),
    # --- encodings and empty files ---------------------------------------------------------
    Case(
        "latin-1",
        lambda w: _compare(
            w, data=_file(w, "l1.csv", "text,label\ncafé crème,positive\n".encode("latin-1"))
        ),
        ("l1.csv: line 2", "not valid UTF-8", "Fix: re-save the file as UTF-8"),
    ),
    Case(
        "utf-16-without-bom",
        lambda w: _compare(
            w, data=_file(w, "u16.csv", "text,label\ngood,positive\n".encode("utf-16-le"))
        ),
        ("u16.csv", "not UTF-8", "UTF-16", "Fix: re-save the file as UTF-8"),
    ),
    Case(
        "empty-file",
        lambda w: _compare(w, data=_file(w, "empty.csv", b"")),
        ("empty.csv", "is empty", "Fix:"),
    ),
    Case(
        "header-only",
        lambda w: _compare(w, data=_file(w, "header.csv", "text,label\n")),
        ("header.csv", "no data rows", "Fix: add data rows"),
    ),
    Case(
        "blank-jsonl",
        lambda w: _compare(w, data=_file(w, "blank.jsonl", "\n\n\n")),
        ("blank.jsonl", "empty", "Fix:"),
    ),
    Case(
        "one-gib-file",
        lambda w: _compare(w, data=_sparse(w, "huge.csv", ONE_GIB)),
        ("huge.csv", "1.0 GiB", "above the limit", "STUDIO_MAX_UPLOAD_MB"),
    ),
    # --- columns and template variables ----------------------------------------------------
    Case(
        "missing-column",
        lambda w: _compare(w, data=_file(w, "cols.csv", "review,label\ngood,positive\n")),
        ("text", "cols.csv", "Fix:"),
    ),
    Case(
        "undefined-attribute",
        lambda w: _compare(w, templates=[_template(w, "Review: {{ text.words }}\nSentiment:")]),
        ("no attribute 'words'", "Fix: check the attribute"),
    ),
    Case(
        "label-missing-from-label-map",
        lambda w: _compare(
            w,
            data=_file(w, "stars.csv", "text,label\ngood,5\nbad,1\nmeh,3\n"),
            templates=[
                _file(
                    w,
                    "stars.yaml",
                    "name: stars\nmode: completion\ntemplate: '{{ text }}'\n"
                    "label_map: {'5': positive, '1': negative}\nchoices: [positive, negative]\n",
                )
            ],
        ),
        ("label value '3'", "label_map", "Fix:"),
    ),
    # --- Jinja sandbox escapes (Save in the Prompts tab, and a template file in Compare) -----
    Case(
        "jinja-class-of-str",
        lambda w: _save_template(w, "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
        ("__class__", "sandbox"),
    ),
    Case(
        "jinja-cycler-globals",
        lambda w: _save_template(w, "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
        ("__globals__", "sandbox"),
    ),
    Case(
        "jinja-attr-filter",
        lambda w: _save_template(w, "{{ text|attr('__class__') }}"),
        ("__class__", "sandbox"),
    ),
    Case(
        "jinja-lipsum-globals",
        lambda w: _save_template(w, "{{ lipsum.__globals__['os'].system('id') }}"),
        ("__globals__", "sandbox"),
    ),
    Case(
        "jinja-computed-dunder-at-run",
        lambda w: _compare(w, templates=[_template(w, "{{ text|attr('__cla' ~ 'ss__') }}")]),
        ("unsafe", "sandbox"),
    ),
    Case(
        "jinja-builtin-method",
        lambda w: _compare(w, templates=[_template(w, "{{ text }}{{ [].append(1) }}")]),
        ("attribute 'append'", "unsafe", "sandbox"),
    ),
    Case(
        "jinja-include-file",
        lambda w: _save_template(w, "{% include '/etc/passwd' %}"),
        ("{% include %}", "cannot read other files", "Fix:"),
    ),
    Case(
        "jinja-import-file",
        lambda w: _compare(w, templates=[_template(w, "{% import 'os' as os %}{{ text }}")]),
        ("{% import %}", "cannot read other files", "Fix:"),
    ),
    Case(
        "jinja-huge-repeat",
        lambda w: _compare(w, templates=[_template(w, "{{ text * 10 ** 9 }}")]),
        ("too large",),
    ),
    # --- path traversal in names ----------------------------------------------------------
    Case(
        "template-name-dotdot",
        lambda w: _save_template(w, "{{ text }}", name="../escaped"),
        ("'../escaped' is not a valid name", "Fix:"),
    ),
    Case(
        "template-name-absolute",
        lambda w: _save_template(w, "{{ text }}", name="/tmp/escaped"),
        ("is not a valid name", "Fix:"),
    ),
    Case(
        "template-name-nul",
        lambda w: _save_template(w, "{{ text }}", name="a\x00b"),
        ("is not a valid name", "Fix:"),
    ),
    Case(
        "template-spec-traversal",
        lambda w: _compare(w, templates=["../../../../etc/passwd"]),
        ("/etc/passwd", "not a template file", "Fix:"),
    ),
    Case(
        "adapter-name-dotdot",
        lambda w: _tune(w, name="../escaped"),
        ("'../escaped' is not a valid adapter name",),
    ),
    Case(
        "adapter-name-absolute",
        lambda w: _tune(w, name="/tmp/escaped"),
        ("is not a valid adapter name",),
    ),
    Case(
        "adapter-name-nul-slash",
        lambda w: _tune(w, name="a\x00/b"),
        ("is not a valid adapter name",),
    ),
    Case(
        "adapter-spec-traversal",
        lambda w: _compare(w, models=["adapter:../../etc"]),
        ("not a valid adapter name", "no paths"),
    ),
    # --- invalid hyperparameters ------------------------------------------------------------
    Case(
        "tune-hyperparameters",
        lambda w: _tune(w, lr=0, batch_size=0, lora_r=-4, eval_split=0.95, max_length=4),
        (
            "training.learning_rate",
            "training.batch_size",
            "lora.r",
            "data.eval_split",
            "data.max_length",
        ),
    ),
    Case(
        "compare-hyperparameters",
        lambda w: _compare(w, shots=[-1], batch_rows=0, temperature=-1),
        ("shots", "batch_rows", "temperature"),
    ),
    Case(
        "playground-sampling",
        lambda w: _chat(w, temperature=-1, top_p=0),
        ("temperature", "top_p"),
    ),
    # --- models that cannot be found offline, and models that ship code -------------------
    Case(
        "unknown-model-offline-compare",
        lambda w: _compare(w, models=["someone/not-cached-anywhere"]),
        ("someone/not-cached-anywhere", "offline", "Fix: pick a bundled model"),
    ),
    Case(
        "unknown-model-offline-playground",
        lambda w: _chat(w, model="someone/not-cached-anywhere"),
        ("someone/not-cached-anywhere", "offline", "Fix: pick a bundled model"),
    ),
    Case(
        "remote-code-folder-compare",
        lambda w: _compare(w, models=[str(_remote_code_folder(w))]),
        ("ships its own Python code", "Fix:", "--trust-remote-code"),
    ),
    Case(
        "remote-code-folder-playground",
        lambda w: _chat(w, model=str(_remote_code_folder(w))),
        ("ships its own Python code", "Fix:"),
    ),
    Case(
        "remote-code-in-run-yaml",
        lambda w: load_config(
            _file(
                w,
                "run.yaml",
                f"data: {REVIEWS}\ntemplates: [reviews-sentiment]\n"
                "models: [smollm2-135m-instruct]\ntrust_remote_code: true\n",
            )
        ),
        ("trust_remote_code", "Extra inputs are not permitted"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_input_is_refused_and_changes_nothing(world: World, case: Case) -> None:
    before = world.snapshot()
    with pytest.raises(Exception) as info:  # each layer has its own error type
        case.act(world)
    message = str(info.value)
    # A user-facing error (what the UI shows and the CLI prints), never a crash deep inside.
    assert isinstance(info.value, ValueError) or type(info.value).__name__.endswith("Error")
    assert not isinstance(info.value, (AssertionError, TypeError, KeyError, AttributeError))
    for needle in case.needles:
        assert needle in message, f"{case.id}: {needle!r} not in {message!r}"
    assert world.snapshot() == before, f"{case.id} changed the studio's state"
    assert not (world.extra.get("marker") and world.extra["marker"].exists()), "model code ran"


def test_there_are_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)


def test_a_one_gib_file_is_refused_without_being_read(world: World) -> None:
    path = Path(_sparse(world, "sparse.csv", ONE_GIB))
    assert os.stat(path).st_blocks * 512 < 2**20  # the test itself wrote no gigabyte
    from studio.datasets import DatasetError, load_dataset

    with pytest.raises(DatasetError, match="above the limit"):
        load_dataset(path, policy=HostingPolicy.desktop())
