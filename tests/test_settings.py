from pathlib import Path

import pytest

from studio.settings import SettingsError, load_settings


def test_defaults_put_the_store_under_studio_home(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "h"))
    monkeypatch.delenv("STUDIO_DB_URL", raising=False)
    settings = load_settings()
    assert settings.home == (tmp_path / "h").resolve()
    assert settings.database_url == f"sqlite:///{(tmp_path / 'h' / 'studio.db').resolve()}"
    assert settings.models_dir == settings.home / "models"
    assert settings.default_model == "smollm2-135m-instruct"


def test_home_defaults_to_a_per_user_data_dir(monkeypatch) -> None:
    monkeypatch.delenv("STUDIO_HOME", raising=False)
    home = load_settings().home
    assert "instruct-studio" in str(home)


def test_db_url_override(monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_DB_URL", "postgresql+psycopg://u:p@db/studio")
    assert load_settings().database_url == "postgresql+psycopg://u:p@db/studio"


def test_invalid_values_name_the_variable(monkeypatch) -> None:
    monkeypatch.setenv("STUDIO_MODEL_CACHE_MB", "12")
    with pytest.raises(SettingsError, match="STUDIO_MODEL_CACHE_MB"):
        load_settings()
    monkeypatch.setenv("STUDIO_MODEL_CACHE_MB", "lots")
    with pytest.raises(SettingsError, match="STUDIO_MODEL_CACHE_MB"):
        load_settings()


HOSTING_VARIABLES = (
    "STUDIO_DEMO",
    "STUDIO_DEMO_MAX_EXAMPLES",
    "STUDIO_AUTH",
    "STUDIO_CONCURRENCY",
    "STUDIO_QUEUE_SIZE",
)


@pytest.fixture
def clean_hosting_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in HOSTING_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_hosting_defaults(clean_hosting_env) -> None:
    settings = load_settings()
    assert settings.demo is False and settings.demo_max_examples == 200
    assert settings.auth is None and settings.auth_pairs is None
    assert settings.concurrency == 1 and settings.queue_size == 100


def test_hosting_values_are_read(clean_hosting_env) -> None:
    for name, value in (
        ("STUDIO_DEMO", "1"),
        ("STUDIO_DEMO_MAX_EXAMPLES", "40"),
        ("STUDIO_AUTH", " alice:s3cret , bob:pa:ss:word "),
        ("STUDIO_CONCURRENCY", "4"),
        ("STUDIO_QUEUE_SIZE", "12"),
    ):
        clean_hosting_env.setenv(name, value)
    settings = load_settings()
    assert settings.demo is True and settings.demo_max_examples == 40
    # A password may hold ':' (only the first one separates); spaces around entries go.
    assert settings.auth_pairs == [("alice", "s3cret"), ("bob", "pa:ss:word")]
    assert settings.concurrency == 4 and settings.queue_size == 12


def test_auth_is_never_shown(clean_hosting_env) -> None:
    clean_hosting_env.setenv("STUDIO_AUTH", "alice:hunter2")
    settings = load_settings()
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_blank_auth_means_no_login(clean_hosting_env) -> None:
    clean_hosting_env.setenv("STUDIO_AUTH", "  ")
    assert load_settings().auth_pairs is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("alice", "entry 1 is not user:password"),
        ("alice:", "entry 1 (user 'alice') is not user:password"),
        (":hunter2", "entry 1 is not user:password"),
        ("alice:hunter2,", "entry 2 is empty"),
        ("alice:hunter2,,bob:x", "entry 2 is empty"),
        ("alice:hunter2,alice:other", "user 'alice' is listed twice"),
    ],
)
def test_bad_auth_names_the_variable_and_hides_passwords(
    clean_hosting_env, value: str, message: str
) -> None:
    clean_hosting_env.setenv("STUDIO_AUTH", value)
    with pytest.raises(SettingsError, match="STUDIO_AUTH") as caught:
        load_settings()
    assert message in str(caught.value)
    assert "hunter2" not in str(caught.value) and "other" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STUDIO_DEMO", "sometimes"),
        ("STUDIO_DEMO_MAX_EXAMPLES", "0"),
        ("STUDIO_DEMO_MAX_EXAMPLES", "many"),
        ("STUDIO_CONCURRENCY", "0"),
        ("STUDIO_CONCURRENCY", "1000"),
        ("STUDIO_QUEUE_SIZE", "-1"),
    ],
)
def test_bad_hosting_values_name_the_variable(clean_hosting_env, name: str, value: str) -> None:
    clean_hosting_env.setenv(name, value)
    with pytest.raises(SettingsError, match=name):
        load_settings()


def test_every_setting_has_a_help_string() -> None:
    from studio.settings import Settings

    missing = [name for name, field in Settings.model_fields.items() if not field.description]
    assert missing == []
