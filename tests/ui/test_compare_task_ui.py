"""The Compare tab's task picker: an lm-evaluation-harness task file fills the form and saves its
template to the studio's library; a bad task is a clear error and saves nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import gradio as gr
import pytest

from studio.services import create_services
from studio.settings import PROMPTS_DIR, load_settings
from studio.ui.compare.handlers import CompareHandlers
from tests.compare.test_tasks import TASK, write_task


@pytest.fixture
def handlers(tmp_path: Path):
    library = tmp_path / "library"
    shutil.copytree(PROMPTS_DIR, library)
    settings = load_settings(
        home=tmp_path / "home", offline=True, adapters_dir=tmp_path / "a", prompts_dir=library
    )
    services = create_services(settings)
    yield CompareHandlers(services), library
    services.close()


def test_loading_a_task_fills_the_form_and_saves_the_template(handlers, tmp_path: Path) -> None:
    h, library = handlers
    path = write_task(tmp_path)
    note, data, pool, templates, shots, selection, scoring = h.load_task(str(path))
    assert "lm-eval-tiny_sentiment" in note and "saved lm-eval-tiny_sentiment v1" in note
    assert (data, pool) == (str(tmp_path / "valid.csv"), str(tmp_path / "train.csv"))
    assert templates.value == ["lm-eval-tiny_sentiment"]
    assert "lm-eval-tiny_sentiment" in [c[0] for c in templates.choices]
    assert (shots, selection, scoring) == ("2", "first", "loglik")
    assert (library / "lm-eval-tiny_sentiment.yaml").is_file()
    again = h.load_task(str(path))[0]
    assert "unchanged — same as v1" in again


def test_a_bad_task_is_an_error_and_saves_nothing(handlers, tmp_path: Path) -> None:
    h, library = handlers
    before = sorted(p.name for p in library.iterdir())
    path = write_task(tmp_path, TASK + "process_docs: x\n")
    with pytest.raises(gr.Error, match="process_docs are not supported"):
        h.load_task(str(path))
    with pytest.raises(gr.Error, match="Give the path"):
        h.load_task("  ")
    assert sorted(p.name for p in library.iterdir()) == before
