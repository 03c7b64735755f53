"""A hostile visitor against real servers: `python app.py` as a public demo behind a login
(STUDIO_DEMO=1 + STUDIO_AUTH) and as a shared studio (STUDIO_AUTH only). Every attack goes
through the HTTP API — gradio_client by endpoint name, and the raw queue by fn_index, which
reaches handlers the UI marks private — and must be refused with a message naming the hosting
rule, leaving the store, the template library and the disk as they were (SECURITY.md).

No test here loads a model: every refusal happens before one would be."""

from __future__ import annotations

import html
import http.server
import json
import sqlite3
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tests.conftest import ROOT
from tests.hardening.raw_api import RawVisitor
from tests.snapshots import SQLITE_FILES, Snapshot, file_digests, table_digests
from tests.test_hosting_server import compare_inputs, tune_inputs
from tests.ui.conftest import run_studio

USER = ("alice", "correct-horse-battery")
HF_SECRET = "hf_host_token_must_stay_home"
PAGE_SECRET = "internal-page-must-not-leak"
FILE_SECRET = "server-file-value-must-not-leak"
PROMPTS = ROOT / "studio" / "prompts"


class Recorder(http.server.BaseHTTPRequestHandler):
    """A server a visitor controls (or an internal page): it records every request it gets and
    answers with a body a visitor must never see."""

    seen: ClassVar[list[dict[str, str]]] = []

    def _answer(self) -> None:
        type(self).seen.append({"path": self.path, **dict(self.headers.items())})
        body = f'{{"error": {{"message": "{PAGE_SECRET}"}}}}'.encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_: Any) -> None:
        pass


@dataclass
class Target:
    url: str
    home: Path
    recorder_port: int
    outside: Path  # a folder of the server's that no visitor may read

    def state(self) -> Snapshot:
        """By content: the store's rows, every file of the server's home (its template library
        and adapters included) and the shipped library."""
        return {
            "tables": table_digests(self.home / "studio.db"),
            "home": file_digests(self.home, skip=(*SQLITE_FILES, "server.log")),
            "shipped library": file_digests(PROMPTS),
        }


@pytest.fixture(scope="module")
def recorder() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _outside(tmp: Path) -> Path:
    """A server folder with a data file and a template holding values a visitor wants."""
    outside = tmp / "server-files"
    outside.mkdir()
    (outside / "secret.csv").write_text(f"sentence,label\n{FILE_SECRET},positive\n")
    (outside / "secret.yaml").write_text(
        f"name: secret\ntemplate: '{FILE_SECRET} {{{{ sentence }}}}'\n"
    )
    (outside / "model").mkdir()
    (outside / "model" / "config.json").write_text('{"model_type": "llama"}')
    return outside


@pytest.fixture(scope="module")
def demo(
    tmp_path_factory: pytest.TempPathFactory, model_home: Path, recorder: int
) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("demo-attacks")
    env = {
        "STUDIO_DEMO": "1",
        "STUDIO_DEMO_MAX_EXAMPLES": "10",
        "STUDIO_AUTH": f"{USER[0]}:{USER[1]}",
        "HF_TOKEN": HF_SECRET,
        "OPENAI_API_KEY": "sk-operator-allowed",
        "STUDIO_SERVED_KEYS": "OPENAI_API_KEY",
        # The operator allowed one server (the recorder) by address and port, nothing else.
        "STUDIO_SERVED_HOSTS": f"127.0.0.1:{recorder}",
        "STUDIO_MAX_DATA_MB": "4",
        "STUDIO_MAX_RENDER_CHARS": "100000",
    }
    with run_studio(tmp / "home", model_home, **env) as server:
        yield Target(server.url, server.home, recorder, _outside(tmp))


@pytest.fixture(scope="module")
def shared(
    tmp_path_factory: pytest.TempPathFactory, model_home: Path, recorder: int
) -> Iterator[Target]:
    tmp = tmp_path_factory.mktemp("shared-attacks")
    env = {"STUDIO_AUTH": f"{USER[0]}:{USER[1]}", "HF_TOKEN": HF_SECRET}
    with run_studio(tmp / "home", model_home, **env) as server:
        yield Target(server.url, server.home, recorder, _outside(tmp))


@pytest.fixture
def client(demo: Target) -> Any:
    from gradio_client import Client

    return Client(demo.url, auth=USER, verbose=False)


@pytest.fixture
def raw(demo: Target) -> Iterator[RawVisitor]:
    visitor = RawVisitor(demo.url, USER)
    yield visitor
    visitor.close()


def _refused(call: Any, *args: Any, **kwargs: Any) -> str:
    """The message a gradio_client call was refused with."""
    with pytest.raises(Exception) as caught:  # gradio_client raises AppError for gr.Error
        call(*args, **kwargs)
    return str(caught.value)


def _chat(client: Any, model: str) -> str:
    inputs = ["hello", model, "none", "auto", ""]
    inputs += [0.0, 1.0, 0, 8, 1.0, "", "1"]
    return _refused(client.predict, *inputs, api_name="/chat")


# -- the host's secrets and other servers ----------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        # Allowed server, but variables the operator did not list for keys.
        ("openai:m@http://127.0.0.1:{port}/v1?key_env=HF_TOKEN", "served-keys"),
        ("openai:m@http://127.0.0.1:{port}/v1?key_env=STUDIO_AUTH", "served-keys"),
        ("openai:m@http://127.0.0.1:{port}/v1?key_env=STUDIO_DB_URL", "served-keys"),
        ("openai:m@http://127.0.0.1:{port}/v1?key_env=PATH", "served-keys"),
        # The same machine under other names and ports: not what the operator listed.
        ("openai:m@http://localhost:{port}/v1", "served-hosts"),
        ("openai:m@http://127.0.0.2:{port}/v1", "served-hosts"),
        ("openai:m@http://[::1]:{port}/v1", "served-hosts"),
        ("openai:m@http://2130706433:{port}/v1", "served-hosts"),
        ("openai:m@http://127.0.0.1:1/v1", "served-hosts"),
    ],
)
def test_served_specs_cannot_take_secrets_or_reach_other_servers(
    demo: Target, client: Any, spec: str, rule: str
) -> None:
    Recorder.seen.clear()
    before = demo.state()
    message = _chat(client, spec.format(port=demo.recorder_port))
    assert f"hosting rule '{rule}'" in message
    # Each names the setting that would allow it, or says the variable never leaves the host.
    assert "STUDIO_SERVED_" in message or "never leave the machine" in message
    assert Recorder.seen == []  # nothing left the machine
    assert HF_SECRET not in message and USER[1] not in message
    assert demo.state() == before


def test_a_compare_with_a_forbidden_served_model_stores_nothing(demo: Target, client: Any) -> None:
    Recorder.seen.clear()
    before = demo.state()
    spec = f"openai:m@http://localhost:{demo.recorder_port}/v1?key_env=HF_TOKEN"
    message = _refused(client.predict, *compare_inputs(models=[spec], limit=2), api_name="/compare")
    assert "hosting rule" in message and Recorder.seen == []
    assert demo.state() == before


def test_an_allowed_servers_error_page_is_summarised_not_echoed(demo: Target, client: Any) -> None:
    Recorder.seen.clear()
    message = _chat(client, f"openai:m@http://127.0.0.1:{demo.recorder_port}/v1")
    assert "404" in message
    assert PAGE_SECRET not in message
    assert Recorder.seen and "authorization" not in {k.lower() for k in Recorder.seen[0]}


# -- the server's files ---------------------------------------------------------------------


def _same_refusal(a: str, b: str, *names: str) -> bool:
    for name in names:
        a, b = a.replace(name, "NAME"), b.replace(name, "NAME")
    return a == b


def test_server_data_files_are_refused_alike_whether_or_not_they_exist(
    demo: Target, client: Any
) -> None:
    before = demo.state()
    real = str(demo.outside / "secret.csv")
    ghost = str(demo.outside / "ghost.csv")
    refusals = [
        _refused(client.predict, *compare_inputs(data=path, limit=1), api_name="/compare")
        for path in (real, ghost, "/etc/passwd", str(ROOT / "pyproject.toml"), "../../x.csv")
    ]
    for message in refusals:
        assert "hosting rule 'server-files'" in message
        assert str(demo.outside) not in message and FILE_SECRET not in message
    assert _same_refusal(refusals[0], refusals[1], "secret.csv", "ghost.csv")
    assert demo.state() == before


def test_server_template_and_model_paths_are_refused(demo: Target, client: Any) -> None:
    before = demo.state()
    for template in (str(demo.outside / "secret.yaml"), str(demo.outside / "ghost.yaml")):
        message = _refused(
            client.predict,
            *compare_inputs(templates=[template], limit=1),
            api_name="/compare",
        )
        assert "hosting rule 'server-files'" in message and FILE_SECRET not in message
        assert str(demo.outside) not in message
    for model in (str(demo.outside / "model"), "/", "./adapters/../studio", "x/y/z.gguf"):
        message = _refused(
            client.predict, *compare_inputs(models=[model], limit=1), api_name="/compare"
        )
        assert "hosting rule 'server-files'" in message, model
        message = _chat(client, model)
        assert "hosting rule 'server-files'" in message, model
    assert demo.state() == before


def test_the_page_shows_the_rules_not_the_servers_folders(demo: Target, raw: RawVisitor) -> None:
    header = str(raw.config)
    assert "Public demo" in header
    assert str(demo.home) not in header and "studio.db" not in header
    assert "Instruct Studio: demo mode. Public demo" in (demo.home / "server.log").read_text()


# -- demo mode: measure only ------------------------------------------------------------------


def test_the_shared_template_library_is_read_only(demo: Target, client: Any) -> None:
    before = demo.state()
    yaml = (PROMPTS / "reviews-sentiment.yaml").read_text().replace("Review", "Pwned")
    for call in (
        lambda: client.predict(yaml, api_name="/prompts_save"),
        lambda: client.predict(yaml, "evil-copy", api_name="/prompts_duplicate"),
        # Delete acts on the session's loaded template: load it first, as the tab does.
        lambda: (
            client.predict("reviews-sentiment", api_name="/prompts_load"),
            client.predict(True, api_name="/prompts_delete"),
        ),
    ):
        message = _refused(call)
        assert "hosting rule 'demo-read-only'" in message and "STUDIO_DEMO" in message
    assert demo.state() == before


def test_private_handlers_called_by_fn_index_are_refused_by_the_engines(
    demo: Target, raw: RawVisitor, tmp_path: Path
) -> None:
    before = demo.state()
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("manifest.json", '{"format": "instruct-studio-bundle"}')
    imported = raw.call_named("import_bundle", [raw.upload(bundle)])
    assert "demo-read-only" in imported.text, imported
    checked = raw.call_named("check", tune_inputs())
    assert "demo-no-training" in checked.text, checked
    launched = raw.call_named("tune_launch", tune_inputs())
    assert "demo-no-training" in launched.text, launched
    saved = raw.call_named(
        "prompts_save", [(PROMPTS / "reviews-sentiment.yaml").read_text() + "\n# edited\n"]
    )
    assert "demo-read-only" in saved.text, saved
    assert demo.state() == before


def test_exporting_an_adapter_is_the_operators_alone(demo: Target, shared: Target) -> None:
    """The Tune tab's Export writes a model file to the server's disk: refused by the engine for
    a demo's and a shared studio's visitors, even called by fn_index, before anything is read."""
    for target in (demo, shared):
        before = target.state()
        visitor = RawVisitor(target.url, USER)
        try:
            inputs = ["demo", "gguf", "q8_0", str(target.outside / "secret.csv"), "", None]
            outcome = visitor.call_named("adapter_export", inputs)
        finally:
            visitor.close()
        assert "hosting rule 'operator-only'" in outcome.text, outcome
        assert "writes a model file" in outcome.text and FILE_SECRET not in outcome.text
        assert target.state() == before


def test_a_demo_visitor_may_not_save_a_dataset_even_by_fn_index(
    demo: Target, raw: RawVisitor
) -> None:
    """The Data tab's Save and Generate write into the shared store and the server's disk:
    refused by the engine before any run or seed file is read."""
    before = demo.state()
    review = {"headers": ["#", "keep", "swap", "example", "chosen from", "chosen",
                          "rejected from", "rejected"], "data": []}  # fmt: skip
    saved = raw.call_named("data_save", ["c1", "exact", 0, review, "visitor-pairs"])
    assert not saved.success and "hosting rule 'demo-read-only'" in saved.text, saved
    # Synthetic data: generating runs a model on the host and writes a shared dataset.
    sample = "studio/samples/seed-tasks.jsonl"
    made = raw.call_named("data_generate", [sample, "smollm2-135m-instruct", 2, 32, "visitor"])
    assert not made.success and "hosting rule 'demo-read-only'" in made.text, made
    assert demo.state() == before


def _task(data: Path) -> str:
    """An lm-evaluation-harness task over `data` (label strings are the choices)."""
    return (
        "task: visitor_task\ndataset_path: csv\n"
        f"dataset_kwargs: {{data_files: {{validation: '{data}'}}}}\n"
        "validation_split: validation\noutput_type: multiple_choice\n"
        "doc_to_text: '{{text}}'\ndoc_to_target: label\n"
        "doc_to_choice: [negative, positive]\n"
    )


def test_a_task_file_is_read_only_from_allowed_places_and_saves_nothing_in_a_demo(
    demo: Target, raw: RawVisitor, tmp_path: Path
) -> None:
    """Compare's Load task (a private handler): a task on the server is refused before it is
    read; an uploaded one over allowed data parses, but its template may not enter the shared
    library."""
    before = demo.state()
    on_server = demo.outside / "task.yaml"
    on_server.write_text(_task(demo.outside / "secret.csv"), encoding="utf-8")
    refused = raw.call_named("load_task", [str(on_server)])
    assert not refused.success and "hosting rule 'server-files'" in refused.text, refused
    assert str(demo.outside) not in refused.text and FILE_SECRET not in refused.text
    uploaded = tmp_path / "task.yaml"
    uploaded.write_text(_task(ROOT / "studio" / "samples" / "reviews.csv"), encoding="utf-8")
    saved = raw.call_named("load_task", [raw.upload(uploaded)["path"]])
    assert not saved.success and "hosting rule 'demo-read-only'" in saved.text, saved
    assert demo.state() == before


def test_the_row_cap_holds_over_the_api(demo: Target, client: Any) -> None:
    before = demo.state()
    message = _refused(client.predict, *compare_inputs(), api_name="/compare")
    assert "hosting rule 'demo-row-cap'" in message and "STUDIO_DEMO_MAX_EXAMPLES" in message
    assert demo.state() == before


# -- small inputs, unbounded work -------------------------------------------------------------

BOMBS = [
    "{{ 'x' | center(10**9) }}",
    "{{ 'x'.ljust(999999999) }}",
    "{{ '%*s' | format(999999999, 'x') }}",
    "{{ '{:>999999999}'.format(1) }}",
    "{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(60) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    "{{ range(99999) | join(',') | replace(',', 'xxxxxxxxxxxxxxxxxxxx') }}",
]


@pytest.mark.parametrize("bomb", BOMBS)
def test_template_bombs_stop_at_the_rendering_limits(
    demo: Target, raw: RawVisitor, client: Any, bomb: str
) -> None:
    yaml = f"name: bomb\ntemplate: {bomb!r}\n"
    # The live preview (a private handler, re-run on every keystroke) renders without a model.
    started = time.monotonic()
    reply = raw.call_named("live", [yaml, "studio/samples/reviews.csv", 0, 0, ""])
    validation, status, text, *_ = reply.data
    assert "STUDIO_MAX_RENDER" in validation + status, reply
    assert text == ""
    assert time.monotonic() - started < 60  # it came back: the server did not hang on it
    table, _ = client.predict(None, api_name="/library")  # and still serves others
    assert table["data"]


def test_a_small_parquet_file_that_decodes_huge_is_refused(
    demo: Target, raw: RawVisitor, client: Any, tmp_path: Path
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    before = demo.state()
    # One 64 KiB string repeated 200 times: a few hundred KiB on disk, ~12.5 MiB decoded.
    column = pa.array(["x" * 65536] * 200).dictionary_encode()
    bomb = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"sentence": column, "label": ["positive"] * 200}), bomb)
    assert bomb.stat().st_size < 1 << 20
    uploaded = raw.upload(bomb)["path"]
    message = _refused(client.predict, *compare_inputs(data=uploaded, limit=1), api_name="/compare")
    assert "STUDIO_MAX_DATA_MB" in message
    assert demo.state()["tables"] == before["tables"]


# -- a shared studio: colleagues, not operators -------------------------------------------------


def test_a_shared_studio_keeps_secrets_files_and_remote_code_with_the_operator(
    shared: Target,
) -> None:
    from gradio_client import Client

    Recorder.seen.clear()
    client = Client(shared.url, auth=USER, verbose=False)
    before = shared.state()
    message = _chat(client, f"openai:m@http://127.0.0.1:{shared.recorder_port}/v1?key_env=HF_TOKEN")
    assert "hosting rule 'served-" in message and Recorder.seen == []
    secret = str(shared.outside / "secret.csv")
    status, *_ = client.predict(*tune_inputs(data=secret), api_name="/tune_launch")
    message = html.unescape(status)
    assert "Not allowed on this studio" in message and "hosting rule 'server-files'" in message
    assert FILE_SECRET not in message and str(shared.outside) not in message
    assert shared.state() == before


def test_a_crafted_bundle_imports_into_a_shared_studio_without_its_paths_or_switches(
    shared: Target, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Colleagues may import bundles; what a bundle says about paths and remote code is not
    taken, and a re-run of its tuning run meets the same policy as a launch."""
    from studio.experiments.bundle import export_bundle
    from studio.experiments.refs import parse_refs
    from studio.store import Store
    from tests.experiments.test_bundle_hostile import _record_runs, read_rows, write_rows

    source = tmp_path_factory.mktemp("bundle-source")
    with Store(f"sqlite:///{source / 'studio.db'}") as store:
        _record_runs(store, source)
        export_bundle(store, parse_refs(["c1", "t1"]), source / "honest.zip")
    rows = read_rows(source / "honest.zip")
    run = rows["tuning_runs.json"][0]
    run["work_dir"], run["adapter_path"] = "/etc/cron.d", "../../../outside"
    run["config"]["model"].update(trust_remote_code=True, spec=str(shared.outside / "model"))
    crafted = write_rows(rows, source / "crafted.zip")

    visitor = RawVisitor(shared.url, USER)
    try:
        imported = visitor.call_named("import_bundle", [visitor.upload(crafted)])
        assert imported.success and "Imported" in imported.text, imported
        with sqlite3.connect(shared.home / "studio.db") as db:
            (work_dir, adapter_path, config), *_ = db.execute(
                "select work_dir, adapter_path, config from tuning_runs"
            ).fetchall()
        assert Path(work_dir).parent == (shared.home / "tuning").resolve()
        assert "/etc" not in adapter_path and ".." not in adapter_path
        assert json.loads(config)["model"]["trust_remote_code"] is False
        assert not Path("/etc/cron.d").joinpath("instruct").exists()
    finally:
        visitor.close()
