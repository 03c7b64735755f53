"""The hosting policy on its own: which mode the operator's settings give, and each rule's
answer in each mode (SECURITY.md). Servers attacked for real are in
tests/hardening/test_hosting_attacks.py; nothing here opens a connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.cli.main import main
from studio.hosting import HostingPolicy, Limits, Mode, PolicyRefusal, deployment_mode
from studio.settings import load_settings

DESKTOP = HostingPolicy.desktop()


def shared(**values: object) -> HostingPolicy:
    return HostingPolicy(mode=Mode.SHARED, **values)  # type: ignore[arg-type]


@pytest.fixture
def no_space(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID", raising=False)


@pytest.mark.usefixtures("no_space")
@pytest.mark.parametrize(
    ("values", "host", "mode"),
    [
        ({}, None, Mode.DESKTOP),
        ({}, "127.0.0.1", Mode.DESKTOP),
        ({}, "localhost", Mode.DESKTOP),
        ({}, "::1", Mode.DESKTOP),
        ({}, "0.0.0.0", Mode.SHARED),
        ({}, "192.168.1.20", Mode.SHARED),
        ({"auth": "alice:pw"}, None, Mode.SHARED),
        ({"shared": True}, None, Mode.SHARED),
        ({"shared": False, "auth": "alice:pw"}, "0.0.0.0", Mode.DESKTOP),
        ({"demo": True}, None, Mode.DEMO),
        ({"demo": True, "shared": False}, None, Mode.DEMO),
    ],
)
def test_the_mode_follows_the_operators_settings(
    tmp_path: Path, values: dict[str, object], host: str | None, mode: Mode
) -> None:
    settings = load_settings(home=tmp_path, **values)
    assert deployment_mode(settings, host) is mode


def test_a_space_is_shared_unless_it_is_a_demo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    assert deployment_mode(load_settings(home=tmp_path)) is Mode.SHARED
    assert deployment_mode(load_settings(home=tmp_path, demo=True)) is Mode.DEMO


def test_from_settings_reads_the_lists_and_limits(tmp_path: Path) -> None:
    settings = load_settings(
        home=tmp_path,
        auth="alice:pw",
        served_keys="OPENAI_API_KEY, TOGETHER_KEY",
        served_hosts="api.example.com,Models.Example.org:8443",
        data_dirs=f"{tmp_path / 'a'}:{tmp_path / 'b'}",
        max_data_mb=7,
        max_render_chars=5000,
    )
    policy = HostingPolicy.from_settings(settings)
    assert policy.served_keys == {"OPENAI_API_KEY", "TOGETHER_KEY"}
    assert policy.served_hosts == {"api.example.com", "models.example.org:8443"}
    assert policy.data_dirs == ((tmp_path / "a").resolve(), (tmp_path / "b").resolve())
    assert policy.limits.data_mb == 7 and policy.limits.render_chars == 5000


# -- served models ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["STUDIO_AUTH", "STUDIO_DB_URL", "STUDIO_SERVED_KEYS"])
@pytest.mark.parametrize("policy", [DESKTOP, shared(served_keys=frozenset({"STUDIO_AUTH"}))])
def test_the_studios_own_settings_are_never_a_key(policy: HostingPolicy, name: str) -> None:
    with pytest.raises(PolicyRefusal) as caught:
        policy.served_key(name)
    assert caught.value.rule == "served-keys"


def test_keys_come_only_from_listed_variables_in_a_shared_studio(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fine")
    assert DESKTOP.served_key("HF_TOKEN") == "hf_secret"  # the operator's own machine
    policy = shared(served_keys=frozenset({"OPENAI_API_KEY"}))
    assert policy.served_key("OPENAI_API_KEY") == "sk-fine"
    with pytest.raises(PolicyRefusal, match="STUDIO_SERVED_KEYS") as caught:
        policy.served_key("HF_TOKEN")
    assert "hf_secret" not in str(caught.value) and "allowed: OPENAI_API_KEY" in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",
        "http://[::1]:8000/v1",
        "http://10.0.0.5/v1",
        "http://192.168.0.1/v1",
        "http://172.16.3.4/v1",
        "http://169.254.169.254/latest",
        "http://[fe80::1]/v1",
        "http://[::ffff:127.0.0.1]/v1",
        "http://0.0.0.0:8000/v1",
        "http://100.64.0.1/v1",
    ],
)
def test_internal_addresses_need_the_operator_to_name_them(url: str) -> None:
    with pytest.raises(PolicyRefusal, match="STUDIO_SERVED_HOSTS") as caught:
        shared().check_served_url(url)  # nothing listed
    assert caught.value.rule == "served-hosts"
    with pytest.raises(PolicyRefusal, match="loopback, private or link-local"):
        shared(served_hosts=frozenset({"*"})).check_served_url(url)  # '*' is public hosts only
    DESKTOP.check_served_url(url)  # the operator's own machine: anything


def test_listed_hosts_are_allowed_by_name_or_with_their_port() -> None:
    policy = shared(served_hosts=frozenset({"127.0.0.1:8000", "203.0.113.9"}))
    policy.check_served_url("http://127.0.0.1:8000/v1")
    policy.check_served_url("https://203.0.113.9/v1")
    policy.check_served_url("http://203.0.113.9:9999/v1")
    with pytest.raises(PolicyRefusal, match=r"127\.0\.0\.1:8001"):
        policy.check_served_url("http://127.0.0.1:8001/v1")
    shared(served_hosts=frozenset({"*"})).check_served_url("https://8.8.8.8/v1")


# -- server files ----------------------------------------------------------------------------


def test_data_paths_are_refused_before_the_file_is_looked_at(tmp_path: Path) -> None:
    uploads, extra = tmp_path / "uploads", tmp_path / "team-data"
    policy = shared(uploads_dir=uploads, data_dirs=(extra.resolve(),))
    (tmp_path / "real.csv").write_text("a\n1\n")
    messages = []
    for name in ("real.csv", "ghost.csv"):
        with pytest.raises(PolicyRefusal, match="STUDIO_DATA_DIRS") as caught:
            policy.check_data_path(tmp_path / name)
        messages.append(str(caught.value).replace(name, "NAME"))
        assert str(tmp_path) not in str(caught.value)
    assert messages[0] == messages[1]  # existence is not revealed
    policy.check_data_path(uploads / "mine.csv")
    policy.check_data_path(extra / "sub" / "x.parquet")
    with pytest.raises(PolicyRefusal):
        policy.check_data_path(uploads / ".." / "real.csv")
    assert DESKTOP.check_data_path(tmp_path / "real.csv") == (tmp_path / "real.csv").resolve()


def test_templates_are_named_from_the_library(tmp_path: Path) -> None:
    policy = shared(library=tmp_path / "prompts")
    policy.check_template_path(str(tmp_path / "prompts" / "mine.yaml"))
    for path in ("/etc/app/config.yaml", str(tmp_path / "secret.yaml"), "../prompts/x.yaml"):
        with pytest.raises(PolicyRefusal, match="server-files"):
            policy.check_template_path(path)
    DESKTOP.check_template_path("/anywhere/mine.yaml")


@pytest.mark.parametrize(
    "spec", ["/", "/srv/models/llama", "./model", "~/weights.gguf", "a/b/c", "x.gguf", "..\\m"]
)
def test_model_paths_are_the_operators(tmp_path: Path, spec: str) -> None:
    with pytest.raises(PolicyRefusal, match="server-files"):
        shared(adapters_dir=tmp_path / "adapters").check_model_spec(spec)
    DESKTOP.check_model_spec(spec)


def test_model_names_and_the_studios_own_folders_are_allowed(tmp_path: Path) -> None:
    adapters = tmp_path / "adapters"
    policy = shared(adapters_dir=adapters, models_dir=tmp_path / "models")
    for spec in (
        "smollm2-135m-instruct",
        "HuggingFaceTB/SmolLM2-135M",
        "adapter:mine",
        str(adapters / "mine"),
        str(tmp_path / "models" / "gemma"),
        "openai:m@http://example.com/v1",  # checked when opened
    ):
        policy.check_model_spec(spec)


def test_remote_code_is_the_operators_call() -> None:
    DESKTOP.check_remote_code(True)
    shared().check_remote_code(False)
    with pytest.raises(PolicyRefusal, match="operator-only"):
        shared().check_remote_code(True)


def test_paths_in_messages_are_shortened_for_visitors() -> None:
    assert DESKTOP.shown_path("/srv/data/x.csv") == "/srv/data/x.csv"
    assert shared().shown_path("/srv/data/x.csv") == "x.csv"


def test_a_refusal_names_its_rule_and_the_setting() -> None:
    refusal = PolicyRefusal("demo-read-only", "no.", "STUDIO_DEMO")
    assert str(refusal) == (
        "no. (hosting rule 'demo-read-only'; the operator's setting STUDIO_DEMO changes this)"
    )
    assert isinstance(refusal, ValueError)  # every user-facing error is one
    assert Limits().render_chars == 1_000_000


def test_the_cli_gets_the_same_refusals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path))
    monkeypatch.setenv("STUDIO_DEMO", "1")
    from studio.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["runs", "tag", "c1", "mine"]) == 2
        assert main(["runs", "rename", "c1", "mine"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.count("hosting rule 'demo-read-only'") == 2


def test_an_unwritable_home_is_a_settings_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("STUDIO_HOME", str(blocker / "home"))
    from studio.settings import get_settings

    get_settings.cache_clear()
    try:
        assert main(["runs", "list"]) == 2
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert "STUDIO_HOME" in err and "Traceback" not in err


def test_deeply_nested_input_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    deep = tmp_path / "deep.yaml"
    deep.write_text("[" * 20000 + "]" * 20000)
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    from studio.settings import get_settings

    get_settings.cache_clear()
    try:
        code = main(["tune", "--config", str(deep), "--check"])
    finally:
        get_settings.cache_clear()
    assert code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_a_launch_meets_the_policy_before_anything_loads(tmp_path: Path) -> None:
    from studio.tuning.config import flat_config
    from studio.tuning.jobs import check_launch

    settings = load_settings(home=tmp_path, offline=True)
    policy = HostingPolicy.from_settings(settings.model_copy(update={"shared": True}))
    sample = str(Path(__file__).resolve().parents[1] / "studio" / "samples" / "reviews.csv")
    base = {"name": "x", "model": "smollm2-135m-instruct", "data": sample, "max_steps": 1}
    cases = [
        ({"model": str(tmp_path)}, "server-files"),
        ({"data": str(tmp_path / "secret.csv")}, "server-files"),
        ({"template": str(tmp_path / "t.yaml")}, "server-files"),
        ({"trust_remote_code": True}, "operator-only"),
    ]
    for change, rule in cases:
        with pytest.raises(PolicyRefusal) as caught:
            check_launch(flat_config(**{**base, **change}), settings, policy)
        assert caught.value.rule == rule, change
    assert not settings.tuning_dir.exists()


def test_a_demo_visitor_cannot_cancel_a_run_the_operator_queued(tmp_path: Path) -> None:
    from studio.store import Store
    from studio.tuning.config import flat_config
    from studio.tuning.jobs import stop_run

    with Store(f"sqlite:///{tmp_path / 'studio.db'}") as store:
        run = store.create_tuning_run(
            name="x", config=flat_config(name="x", data="d.tsv").to_dict(),
            base_model="smollm2-135m-instruct", work_dir=str(tmp_path), adapter_path="/a/x",
        )  # fmt: skip
        with pytest.raises(PolicyRefusal, match="demo-no-training"):
            stop_run(store, HostingPolicy(mode=Mode.DEMO), run.id)
        assert store.get_tuning_run(run.id).status == "queued"  # type: ignore[union-attr]
        assert stop_run(store, DESKTOP, run.id) == "cancelled"
