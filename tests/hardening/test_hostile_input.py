"""Hostile and bad input through the engine calls the UI and the CLI make: every case is refused
with a message naming the problem and the fix (the setting, the accepted values or what to do),
and leaves the store, adapters/, prompts/ and the tuning folder exactly as they were: the same
bytes in every file and the same rows in every table (tests/snapshots.py hashes both), in a
studio that already holds a saved template and an adapter a careless refusal could touch.

The cases: malformed CSV/JSONL/Parquet, wrong encodings, empty files, an oversized file (proved
never opened, by inotify), missing columns, undefined template variables, Jinja sandbox escapes,
path traversal in template and adapter names, invalid hyperparameters, unknown models offline
and models that ship code.
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
from tests.snapshots import OpenWatch, assert_unchanged

REVIEWS = ROOT / "studio" / "samples" / "reviews.csv"
ONE_GIB = 2**30


@pytest.fixture(scope="module")
def studio_world(tmp_path_factory: pytest.TempPathFactory, model_home: Path):
    """One studio for every case (each checks its own before/after snapshot)."""
    from studio.settings import load_settings
    from tests.tuning.test_adapters import fake_folder

    base = tmp_path_factory.mktemp("hostile")
    home = linked_home(base / "home", model_home)
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    services = create_services(settings)
    (base / "library").mkdir()
    world = World(home, settings.adapters_dir, base / "library", {"services": services})
    # State to protect: a saved template (a library file and a stored version) and an adapter.
    _save_template(world, "Review: {{ text }}\nSentiment:", name="kept")
    fake_folder(settings.adapters_dir)
    assert world.snapshot()["library"] and world.snapshot()["adapters"]
    yield world
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


def _chat(
    world: World, model: str = "smollm2-135m-instruct", params: SamplingParams | None = None
) -> None:
    """What Send in the Playground runs (the /chat API too)."""
    params = params or SamplingParams(max_new_tokens=4)
    request = ChatRequest(model=model, user_message="hello", params=params)
    list(world.extra["services"].playground.stream(request))


def _chat_form(world: World, **controls: Any) -> None:
    """What Send in the Playground runs first: the sampling controls become SamplingParams."""
    from studio.ui.playground.form import sampling_params

    given = {"temperature": 0.7, "top_p": 0.9, "top_k": 50, "max_new_tokens": 4,
             "repetition_penalty": 1.0, "stop": "", "seed": ""}  # fmt: skip
    _chat(world, params=sampling_params(**{**given, **controls}))


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


SANDBOX = "templates run in a sandbox"
SANDBOX_ALLOWED = "may use only the data's variables, Jinja2 filters and tests"  # the fix
ADAPTER_NAMES = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
TEMPLATE_NAMES = "Fix: use 1-64 lowercase letters, digits, '.', '_' or '-'"


@dataclass(frozen=True)
class Case:
    id: str
    act: Callable[[World], Any]
    problem: tuple[str, ...]  # what the message must say is wrong
    fix: tuple[str, ...]  # and how to put it right: what to do, the setting, the accepted values


CASES = [
    # --- malformed files -------------------------------------------------------------------
    Case(
        "csv-unclosed-quote",
        lambda w: _compare(w, data=_file(w, "q.csv", 'text,label\n"great film,positive\n')),
        ("q.csv: line 2", "is never closed"),
        ("Fix: wrap a field that contains commas", "double every quote inside it"),
    ),
    Case(
        "csv-ragged-row",
        lambda w: _compare(w, data=_file(w, "r.csv", "text,label\nfine,positive,extra\n")),
        ("r.csv: line 2", "expected 2 fields (text, label) but found 3"),
        ("Fix: give this row one value per header column",),
    ),
    Case(
        "jsonl-broken-line",
        lambda w: _compare(
            w, data=_file(w, "b.jsonl", '{"text": "a", "label": "positive"}\n{"text": "b",\n')
        ),
        ("b.jsonl: line 2", "invalid JSON"),
        ("Fix: each line must be one complete JSON object",),
    ),
    Case(
        "jsonl-array-not-object",
        lambda w: _compare(w, data=_file(w, "a.jsonl", '["good film", "positive"]\n')),
        ("a.jsonl: line 1", "expected a JSON object", "found a list"),
        ("Fix: write one object per line",),
    ),
    Case(
        "parquet-garbage",
        lambda w: _compare(w, data=_file(w, "g.parquet", b"PAR1 this is not parquet PAR1")),
        ("g.parquet", "cannot be read as Parquet"),
        ("Fix: check that it is a complete Parquet file",),
    ),
    Case(
        "parquet-truncated",
        lambda w: _compare(w, data=_parquet_truncated(w)),
        ("cut.parquet", "cannot be read as Parquet"),
        ("Fix: check that it is a complete Parquet file",),
    ),
    # --- encodings and empty files ---------------------------------------------------------
    Case(
        "latin-1",
        lambda w: _compare(
            w, data=_file(w, "l1.csv", "text,label\ncafé crème,positive\n".encode("latin-1"))
        ),
        ("l1.csv: line 2", "byte 0xe9", "not valid UTF-8"),
        ("Fix: re-save the file as UTF-8",),
    ),
    Case(
        "utf-16-without-bom",
        lambda w: _compare(
            w, data=_file(w, "u16.csv", "text,label\ngood,positive\n".encode("utf-16-le"))
        ),
        ("u16.csv", "not UTF-8", "UTF-16"),
        ("Fix: re-save the file as UTF-8",),
    ),
    Case(
        "empty-file",
        lambda w: _compare(w, data=_file(w, "empty.csv", b"")),
        ("empty.csv", "is empty"),
        ("Fix: the first line must be a header naming the columns",),
    ),
    Case(
        "header-only",
        lambda w: _compare(w, data=_file(w, "header.csv", "text,label\n")),
        ("header.csv", "no data rows"),
        ("Fix: add data rows",),
    ),
    Case(
        "blank-jsonl",
        lambda w: _compare(w, data=_file(w, "blank.jsonl", "\n\n\n")),
        ("blank.jsonl", "is empty"),
        ("Fix: add rows to the file",),
    ),
    Case(
        "one-gib-file",
        lambda w: _compare(w, data=_sparse(w, "huge.csv", ONE_GIB)),
        ("huge.csv", "1.0 GiB", "above the limit"),
        ("Fix: use a smaller file", "STUDIO_MAX_UPLOAD_MB"),
    ),
    # --- columns and template variables ----------------------------------------------------
    Case(
        "missing-column",
        lambda w: _compare(w, data=_file(w, "cols.csv", "review,label\ngood,positive\n")),
        ("cols.csv", "missing column(s) 'text'", "columns are: review, label"),
        ("Fix: rename the column",),
    ),
    Case(
        "undefined-attribute",
        lambda w: _compare(w, templates=[_template(w, "Review: {{ text.words }}\nSentiment:")]),
        ("no attribute 'words'",),
        ("Fix: check the attribute or key name",),
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
        ("label value '3'", "has no entry in label_map"),
        ("Fix: add it to label_map or drop those rows",),
    ),
    # --- Jinja sandbox escapes (Save in the Prompts tab, and a template file in Compare) -----
    Case(
        "jinja-class-of-str",
        lambda w: _save_template(w, "{{ ''.__class__.__mro__[1].__subclasses__() }}"),
        ("private attribute(s) __class__", SANDBOX),
        (SANDBOX_ALLOWED,),
    ),
    Case(
        "jinja-cycler-globals",
        lambda w: _save_template(w, "{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
        ("private attribute(s) __globals__", SANDBOX),
        (SANDBOX_ALLOWED,),
    ),
    Case(
        "jinja-attr-filter",
        lambda w: _save_template(w, "{{ text|attr('__class__') }}"),
        ("private attribute(s) __class__", SANDBOX),
        (SANDBOX_ALLOWED,),
    ),
    Case(
        "jinja-lipsum-globals",
        lambda w: _save_template(w, "{{ lipsum.__globals__['os'].system('id') }}"),
        ("private attribute(s) __globals__", SANDBOX),
        (SANDBOX_ALLOWED,),
    ),
    Case(
        "jinja-computed-dunder-at-run",
        lambda w: _compare(w, templates=[_template(w, "{{ text|attr('__cla' ~ 'ss__') }}")]),
        ("attribute '__class__' of 'str' object is unsafe", SANDBOX),
        (SANDBOX_ALLOWED,),
    ),
    Case(
        "jinja-builtin-method",
        lambda w: _compare(w, templates=[_template(w, "{{ text }}{{ [].append(1) }}")]),
        ("attribute 'append' of 'list' object is unsafe", SANDBOX),
        (SANDBOX_ALLOWED,),
    ),
    Case(
        "jinja-include-file",
        lambda w: _save_template(w, "{% include '/etc/passwd' %}"),
        ("{% include %}", "cannot read other files"),
        ("Fix: write the text into this template",),
    ),
    Case(
        "jinja-import-file",
        lambda w: _compare(w, templates=[_template(w, "{% import 'os' as os %}{{ text }}")]),
        ("{% import %}", "cannot read other files"),
        ("Fix: write the text into this template",),
    ),
    Case(
        "jinja-huge-repeat",
        lambda w: _compare(w, templates=[_template(w, "{{ text * 10 ** 9 }}")]),
        ("rendering stopped", "would exceed 1,000,000 characters"),
        ("Fix: make the template do less", "STUDIO_MAX_RENDER_CHARS"),
    ),
    # --- path traversal in names ----------------------------------------------------------
    Case(
        "template-name-dotdot",
        lambda w: _save_template(w, "{{ text }}", name="../escaped"),
        ("'../escaped' is not a valid name",),
        (TEMPLATE_NAMES,),
    ),
    Case(
        "template-name-absolute",
        lambda w: _save_template(w, "{{ text }}", name="/tmp/escaped"),
        ("'/tmp/escaped' is not a valid name",),
        (TEMPLATE_NAMES,),
    ),
    Case(
        "template-name-nul",
        lambda w: _save_template(w, "{{ text }}", name="a\x00b"),
        ("'a\\x00b' is not a valid name",),
        (TEMPLATE_NAMES,),
    ),
    Case(
        "template-spec-traversal",
        lambda w: _compare(w, templates=["../../../../etc/passwd"]),
        ("/etc/passwd", "not a template file"),
        ("Fix: give a template name from the library or the path of a .yaml template file",),
    ),
    Case(
        "adapter-name-dotdot",
        lambda w: _tune(w, name="../escaped"),
        ("name: '../escaped' is not a valid adapter name",),
        (ADAPTER_NAMES,),
    ),
    Case(
        "adapter-name-absolute",
        lambda w: _tune(w, name="/tmp/escaped"),
        ("name: '/tmp/escaped' is not a valid adapter name",),
        (ADAPTER_NAMES,),
    ),
    Case(
        "adapter-name-nul-slash",
        lambda w: _tune(w, name="a\x00/b"),
        ("name: 'a\\x00/b' is not a valid adapter name",),
        (ADAPTER_NAMES,),
    ),
    Case(
        "adapter-spec-traversal",
        lambda w: _compare(w, models=["adapter:../../etc"]),
        ("'../../etc' is not a valid adapter name",),
        (ADAPTER_NAMES, "(no paths)"),
    ),
    # --- invalid hyperparameters: each setting named with the values it accepts -------------
    Case(
        "tune-hyperparameters",
        lambda w: _tune(w, lr=0, batch_size=0, lora_r=-4, eval_split=0.95, max_length=4),
        ("Invalid tuning settings",),
        (
            "training.learning_rate: Input should be greater than 0",
            "training.batch_size: Input should be greater than or equal to 1",
            "lora.r: Input should be greater than or equal to 1",
            "data.eval_split: Input should be less than 0.9",
            "data.max_length: Input should be greater than or equal to 16",
        ),
    ),
    Case(
        "compare-hyperparameters",
        lambda w: _compare(w, shots=[-1], batch_rows=0, temperature=-1),
        ("Invalid comparison settings",),
        (
            "shots: Value error, shot counts must be between 0 and 64",
            "batch_rows: Input should be greater than or equal to 1",
            "temperature: Input should be greater than or equal to 0",
        ),
    ),
    Case(
        "playground-sampling",
        lambda w: _chat_form(w, temperature=-1, top_p=0),
        ("Invalid setting 'temperature'",),
        ("Input should be greater than or equal to 0",),
    ),
    # --- models that cannot be found offline, and models that ship code -------------------
    Case(
        "unknown-model-offline-compare",
        lambda w: _compare(w, models=["someone/not-cached-anywhere"]),
        ("someone/not-cached-anywhere", "offline", "cannot be downloaded"),
        ("Fix: pick a bundled model", "smollm2-135m-instruct"),
    ),
    Case(
        "unknown-model-offline-playground",
        lambda w: _chat(w, model="someone/not-cached-anywhere"),
        ("someone/not-cached-anywhere", "offline", "cannot be downloaded"),
        ("Fix: pick a bundled model", "smollm2-135m-instruct"),
    ),
    Case(
        "remote-code-folder-compare",
        lambda w: _compare(w, models=[str(_remote_code_folder(w))]),
        ("ships its own Python code", "does not run code that comes with a model"),
        ("Fix: use a model transformers supports natively", "--trust-remote-code"),
    ),
    Case(
        "remote-code-folder-playground",
        lambda w: _chat(w, model=str(_remote_code_folder(w))),
        ("ships its own Python code", "does not run code that comes with a model"),
        ("Fix: use a model transformers supports natively",),
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
        ("trust_remote_code: unknown setting",),
        ("check the spelling against `studio compare --help`",),
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
    hidden = [c for c in message if ord(c) < 32 and c not in "\n\t"]
    assert not hidden, f"{case.id}: raw control characters {hidden} in {message!r}"
    for needle in case.problem:
        assert needle in message, f"{case.id}: the problem {needle!r} is not in {message!r}"
    for needle in case.fix:
        assert needle in message, f"{case.id}: the fix {needle!r} is not in {message!r}"
    assert_unchanged(before, world.snapshot(), case.id)
    assert not (world.extra.get("marker") and world.extra["marker"].exists()), "model code ran"


def test_there_are_at_least_twenty_cases_each_naming_problem_and_fix() -> None:
    assert len(CASES) >= 20
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert case.problem and case.fix, case.id
        # "Fix:" alone proves nothing: each fix needle says what to do or what is accepted.
        assert all(len(needle.removeprefix("Fix:").strip()) >= 8 for needle in case.fix), case.id


@pytest.mark.parametrize("through", ["load_dataset", "compare"])
def test_a_one_gib_file_is_refused_without_being_opened(world: World, through: str) -> None:
    """The size limit is decided from stat(): inotify sees no open and no read of the file, by
    this process or any other, while it is refused."""
    from studio.datasets import DatasetError, load_dataset

    path = Path(_sparse(world, "sparse.csv", ONE_GIB))
    assert os.stat(path).st_blocks * 512 < 2**20  # the test itself wrote no gigabyte
    with OpenWatch([path]) as watch, pytest.raises(DatasetError) as info:
        if through == "load_dataset":
            load_dataset(path, policy=HostingPolicy.desktop())
        else:
            _compare(world, data=str(path))
    assert "above the limit" in str(info.value) and "STUDIO_MAX_UPLOAD_MB" in str(info.value)
    assert watch.events == [], f"the refused file was opened: {watch.events}"
