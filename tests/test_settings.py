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
