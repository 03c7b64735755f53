"""The `studio` command: fast help, model listing, clear errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

STUDIO = str(Path(sys.executable).with_name("studio"))


def run(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", **env}
    return subprocess.run([STUDIO, *args], capture_output=True, text=True, env=full_env)


def test_help_lists_the_commands_without_heavy_imports(tmp_path: Path) -> None:
    result = run("--help", home=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "models", "prepare"):
        assert command in result.stdout
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, studio.cli.main; studio.cli.main.build_parser();"
            "print(sorted(m for m in ('torch', 'transformers', 'gradio', 'sqlalchemy')"
            " if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"


def test_models_lists_both_bundled_models(tmp_path: Path) -> None:
    result = run("models", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    entries = {e["spec"]: e for e in json.loads(result.stdout)}
    assert entries["smollm2-135m-instruct"]["source"] == "bundled"
    assert entries["smollm2-135m-instruct"]["usable"]
    assert entries["gemma-3-270m"]["size_bytes"] > 100_000_000
    table = run("models", home=tmp_path).stdout
    assert "STATE" in table and "smollm2-135m-instruct" in table


def test_prepare_an_unknown_model_offline_fails_clearly(tmp_path: Path) -> None:
    result = run("prepare", "nobody/nothing", home=tmp_path, STUDIO_OFFLINE="1")
    assert result.returncode == 2
    assert "studio: error:" in result.stderr and "offline" in result.stderr
    assert "Traceback" not in result.stderr


def test_invalid_setting_fails_clearly(tmp_path: Path) -> None:
    result = run("models", home=tmp_path, STUDIO_MODEL_CACHE_MB="tiny")
    assert result.returncode == 2
    assert "STUDIO_MODEL_CACHE_MB" in result.stderr


def test_bad_db_url_stops_the_app_with_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        env={**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_DB_URL": "not a url"},
        timeout=120,
    )
    assert result.returncode == 2
    assert "STUDIO_DB_URL" in result.stderr and "Traceback" not in result.stderr
