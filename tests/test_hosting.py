"""Where the studio runs, in process: the home on a Hugging Face Space, demo mode refusing
training and oversized comparisons in the engines through the hosting policy (so the UI, the
API and the CLI all refuse).
The UI side (the Gradio queue, real servers) is in test_hosting_server.py."""

from __future__ import annotations

from pathlib import Path

import pytest

import studio.settings
from studio.compare.config import build_config
from studio.compare.engine import ComparisonRunner
from studio.compare.prepare import prepare_run
from studio.datasets import load_dataset
from studio.hosting import HostingPolicy, Mode, PolicyRefusal
from studio.inference.registry import ModelBackends
from studio.models.manager import ModelManager
from studio.settings import Settings, load_settings
from studio.store import Store
from studio.tuning.config import flat_config
from studio.tuning.jobs import check_launch, queue_run, resume_run, start_next
from tests.conftest import ROOT

REVIEWS = str(ROOT / "studio" / "samples" / "reviews.csv")  # 60 rows


@pytest.fixture
def space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Space: SPACE_ID set, a temp dir standing in for its /data, no STUDIO_HOME given."""
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setattr(studio.settings, "SPACES_DATA", data)
    monkeypatch.setenv("SPACE_ID", "someone/instruct-studio")
    monkeypatch.delenv("STUDIO_HOME", raising=False)
    monkeypatch.delenv("STUDIO_ADAPTERS_DIR", raising=False)
    return data


def test_a_space_with_persistent_storage_keeps_everything_in_data(space: Path) -> None:
    settings = load_settings()
    assert settings.home == (space / "instruct-studio").resolve()
    assert settings.adapters_dir == settings.home / "adapters"
    assert settings.database_url == f"sqlite:///{settings.home / 'studio.db'}"
    assert settings.models_dir == settings.home / "models"


def test_without_persistent_storage_a_space_keeps_the_usual_defaults(
    space: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(studio.settings, "SPACES_DATA", space / "not-mounted")
    settings = load_settings()
    assert settings.home != space / "instruct-studio" and "instruct-studio" in str(settings.home)
    assert settings.adapters_dir == ROOT / "adapters"


def test_off_a_space_data_is_ignored(space: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPACE_ID")
    settings = load_settings()
    assert not settings.home.is_relative_to(space)
    assert settings.adapters_dir == ROOT / "adapters"


def test_an_explicit_home_wins_on_a_space(space: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("STUDIO_ADAPTERS_DIR", str(tmp_path / "mine-adapters"))
    settings = load_settings()
    assert settings.home == (tmp_path / "mine").resolve()
    assert settings.adapters_dir == (tmp_path / "mine-adapters").resolve()


DESKTOP = HostingPolicy.desktop()
DEMO = HostingPolicy(mode=Mode.DEMO, demo_max_examples=50)


def _grid(**values: object):
    base: dict[str, object] = {
        "data": REVIEWS,
        "pool_size": 20,
        "templates": ["reviews-sentiment"],
        "models": ["smollm2-135m-instruct"],
        "shots": [0, 2],
        "seeds": [1],
    }
    return build_config(**{**base, **values})


def test_demo_mode_refuses_a_comparison_over_the_cap() -> None:
    # 40 evaluation rows × 2 configurations = 80 > 50.
    with pytest.raises(PolicyRefusal) as caught:
        prepare_run(_grid(), DEMO)
    message = str(caught.value)
    assert caught.value.rule == "demo-row-cap" and "STUDIO_DEMO_MAX_EXAMPLES" in message
    assert "40 examples × 2 configurations = 80 rows; a public demo scores at most 50" in message
    assert "limit of at most 25" in message


def test_demo_mode_allows_a_comparison_within_the_cap() -> None:
    prepared = prepare_run(_grid(limit=25), DEMO)
    assert len(prepared.evaluation) * len(prepared.cells) == 50


def test_more_configurations_than_the_cap_says_so() -> None:
    seeds = list(range(26))  # 2 shot counts × 26 seeds = 52 configurations > 50
    with pytest.raises(PolicyRefusal, match="compare at most 50 configurations"):
        prepare_run(_grid(limit=1, seeds=seeds), DEMO)


def test_without_demo_mode_there_is_no_cap() -> None:
    prepared = prepare_run(_grid(seeds=list(range(10))), DESKTOP)
    assert len(prepared.evaluation) * len(prepared.cells) == 40 * 20


def test_a_refused_comparison_stores_nothing(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, demo=True, demo_max_examples=50)
    policy = HostingPolicy.from_settings(settings)
    with Store(settings.database_url) as store:
        runner = ComparisonRunner(store, ModelBackends(ModelManager(settings), policy))
        with pytest.raises(PolicyRefusal, match="demo-row-cap"):
            list(runner.run(_grid()))
        assert store.list_comparison_runs() == []


def _tune_config(name: str):
    return flat_config(
        name=name,
        model="smollm2-135m-instruct",
        data=REVIEWS,
        template="reviews-sentiment",
        limit=8,
        max_steps=1,
    )


def test_demo_mode_refuses_to_check_a_tuning_launch(settings: Settings) -> None:
    demo = HostingPolicy.from_settings(settings.model_copy(update={"demo": True}))
    with pytest.raises(PolicyRefusal) as caught:
        check_launch(_tune_config("demo-refused"), settings, demo)
    assert caught.value.rule == "demo-no-training" and "STUDIO_DEMO" in str(caught.value)
    assert "training is switched off" in str(caught.value)
    assert not (settings.adapters_dir / "demo-refused").exists()


@pytest.mark.model  # a real launch check loads the bundled model's tokenizer
def test_demo_mode_refuses_to_queue_resume_or_start_training(settings: Settings) -> None:
    demo_settings = settings.model_copy(update={"demo": True})
    demo = HostingPolicy.from_settings(demo_settings)
    with Store(settings.database_url) as store:
        checked = check_launch(_tune_config("demo-queued"), settings, DESKTOP)
        with pytest.raises(PolicyRefusal, match="demo-no-training"):
            queue_run(checked, settings, store, demo)
        assert store.list_tuning_runs() == []
        assert not settings.tuning_dir.exists() or not any(settings.tuning_dir.iterdir())

        # A run queued before demo mode was switched on is neither started nor resumed.
        queued = queue_run(checked, settings, store, DESKTOP)
        assert start_next(demo_settings, store) is None
        with pytest.raises(PolicyRefusal, match="demo-no-training"):
            resume_run(demo_settings, store, demo, queued.id)
        run = store.get_tuning_run(queued.id)
        assert run is not None and run.status == "queued" and run.pid is None
        store.request_tuning_stop(queued.id)  # cancel it: nothing trains after this test


def test_demo_mode_reads_data_only_from_the_samples_and_uploads(tmp_path: Path) -> None:
    uploads = tmp_path / "gradio-uploads"
    uploads.mkdir()
    demo = HostingPolicy(mode=Mode.DEMO, uploads_dir=uploads)
    secret = tmp_path / "server-secret.csv"
    secret.write_text("text,label\nthe server's own file,positive\n")
    with pytest.raises(PolicyRefusal) as caught:
        load_dataset(secret, policy=demo)
    message = str(caught.value)
    assert caught.value.rule == "server-files" and "upload the file instead" in message
    assert str(tmp_path) not in message  # the server's folders are not the visitor's business
    # A path that climbs out of an allowed folder is resolved first, and refused too.
    with pytest.raises(PolicyRefusal, match="server-files"):
        load_dataset(uploads / ".." / secret.name, policy=demo)
    with pytest.raises(PolicyRefusal, match="server-files"):  # the engine refuses too
        prepare_run(_grid(data=str(secret), limit=1), demo)
    uploaded = uploads / "mine.csv"
    uploaded.write_text(secret.read_text())
    assert load_dataset(uploaded, policy=demo).rows[0]["text"] == "the server's own file"
    assert len(load_dataset(REVIEWS, policy=demo).rows) == 60


def test_outside_demo_mode_any_readable_path_is_data(tmp_path: Path) -> None:
    mine = tmp_path / "mine.csv"
    mine.write_text("text,label\nanywhere,positive\n")
    assert load_dataset(mine, policy=DESKTOP).rows[0]["text"] == "anywhere"
