"""`studio templates` as a user runs it: real subprocesses against a fresh STUDIO_HOME for what
reads the library; save and delete on a copy of the library (STUDIO_PROMPTS_DIR), in-process
through the same command functions and as a subprocess. Each checks the output against the
engine the Prompts tab uses."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.cli import templates as command
from studio.compare.config import build_config
from studio.compare.prepare import prepare_run
from studio.datasets import load_dataset, map_columns
from studio.hosting import HostingPolicy, Mode
from studio.services import Services, create_services
from studio.settings import PROMPTS_DIR, SAMPLES_DIR, load_settings
from studio.templates import PromptTemplate, load_template
from studio.templates.library import TemplateLibrary, diff_versions
from studio.templates.preview import build_preview
from tests.conftest import ROOT

STUDIO = str(Path(sys.executable).with_name("studio"))
REVIEWS = SAMPLES_DIR / "reviews.csv"
COMPLETION = """\
name: reviews-completion
description: Sentiment of a short review, as text to continue.
mode: completion
system: Label the review.
template: "Review: {{ text }}\\nSentiment:"
answer: "{{ label }}"
choices: [negative, positive]
target_delimiter: " "
"""


def studio(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", **env}
    full_env.pop("STUDIO_DB_URL", None)
    return subprocess.run(
        [STUDIO, *args], capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=600
    )


@pytest.fixture
def completion_file(tmp_path: Path) -> Path:
    path = tmp_path / "reviews-completion.yaml"
    path.write_text(COMPLETION, encoding="utf-8")
    return path


@pytest.fixture
def services(fresh_home: Path, tmp_path: Path) -> Iterator[Services]:
    """The studio's services on fresh_home, its template library a copy of the shipped one."""
    library = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, library)
    settings = load_settings(
        home=fresh_home, offline=True, db_url=None, demo=False, prompts_dir=library
    )
    opened = create_services(settings)
    assert opened.templates.folder == library and opened.policy.library == library
    yield opened
    opened.close()


# -- reading the library (real subprocesses) -----------------------------------------------------


def test_list_shows_every_library_template_with_its_mode(fresh_home: Path) -> None:
    listed = studio("templates", "list", "--json", home=fresh_home)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert sorted(rows) == sorted(path.stem for path in PROMPTS_DIR.glob("*.yaml"))
    shipped = load_template("sst2-sentiment-completion")
    assert rows["sst2-sentiment-completion"] == {
        "name": "sst2-sentiment-completion",
        "mode": "completion",
        "description": shipped.description,
        "latest_version": None,  # a fresh store: nothing saved or run yet
    }
    assert rows["reviews-sentiment"]["mode"] == "chat"
    table = studio("templates", "list", home=fresh_home).stdout.splitlines()
    assert table[0].split() == ["NAME", "MODE", "LATEST", "DESCRIPTION"]
    assert any(line.split()[:3] == ["support-tickets", "chat", "-"] for line in table[1:])


def test_show_prints_the_library_file_as_written(fresh_home: Path) -> None:
    shown = studio("templates", "show", "sst2-sentiment-completion", home=fresh_home)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == (PROMPTS_DIR / "sst2-sentiment-completion.yaml").read_text("utf-8")
    missing = studio("templates", "show", "no-such-template", home=fresh_home)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "studio: error: no template named 'no-such-template'" in missing.stderr


def test_render_prints_the_preview_engines_exact_text(
    fresh_home: Path, completion_file: Path
) -> None:
    args = ["templates", "render", str(completion_file), "--data", "studio/samples/reviews.csv"]
    result = studio(*args, "--row", "0", "--shots", "2", "--json", home=fresh_home)
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    dataset = load_dataset(REVIEWS, policy=HostingPolicy.desktop())
    expected = build_preview(load_template(completion_file), dataset, 0, 2, None)
    assert (
        rendered["text"]
        == expected.text
        == (
            "Label the review.\n\n"
            "Review: The zipper broke on the second day of the trip.\nSentiment: negative\n\n"
            "Review: A warm, funny film that left the whole family smiling.\n"
            "Sentiment: positive\n\n"
            "Review: The blender crushes ice in seconds and cleans up in no time.\nSentiment:"
        )
    )
    assert rendered["answer"] == expected.answer == "positive"
    assert rendered["target_delimiter"] == " " and rendered["rows"] == 60
    plain = studio(*args, "--shots", "2", home=fresh_home).stdout
    assert plain.startswith("row 0 of 60 in `studio/samples/reviews.csv` · 2 shots")
    assert f"=== prompt ===\n{expected.text}\n=== gold answer" in plain
    assert plain.endswith("(follows the prompt after ' ') ===\npositive\n")


def test_render_a_library_template_with_a_column_map(fresh_home: Path, tmp_path: Path) -> None:
    data = tmp_path / "sst2.csv"
    data.write_text("review,label\nA moving film.,1\nDull.,0\n", encoding="utf-8")
    result = studio(
        "templates", "render", "sst2-sentiment-completion", "--data", str(data), "--row", "1",
        "--shots", "1", "--map", "sentence=review", "--json", home=fresh_home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rendered = json.loads(result.stdout)
    dataset = map_columns(
        load_dataset(data, policy=HostingPolicy.desktop()), {"sentence": "review"}
    )
    expected = build_preview(load_template("sst2-sentiment-completion"), dataset, 1, 1, None)
    assert rendered["text"] == expected.text
    assert rendered["text"].endswith("Review: A moving film.\nSentiment: positive\n\n"
                                     "Review: Dull.\nSentiment:")  # fmt: skip
    assert rendered["answer"] == "negative"  # label_map: "0" -> negative


@pytest.mark.parametrize(
    ("template", "extra", "message"),
    [
        ("reviews-sentiment", [], "is in chat mode"),  # chat mode needs --model
        ("COMPLETION", ["--row", "60"], "row 60 is not in studio/samples/reviews.csv"),
        ("COMPLETION", ["--shots", "9"], "shots k=9 must be between 0 and 8"),
        ("COMPLETION", ["--map", "x"], "'x' is not VARIABLE=COLUMN"),
        ("sst2-sentiment-completion", [], "variable 'sentence' is not a column"),
    ],
)
def test_render_errors_exit_2_with_the_fix(
    fresh_home: Path, completion_file: Path, template: str, extra: list[str], message: str
) -> None:
    spec = str(completion_file) if template == "COMPLETION" else template
    result = studio(
        "templates", "render", spec, "--data", "studio/samples/reviews.csv", *extra,
        home=fresh_home,
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert message in result.stderr
    if template == "reviews-sentiment":
        assert "Fix: add --model SPEC" in result.stderr


@pytest.mark.model
def test_render_a_chat_template_with_the_models_chat_template(fresh_home: Path) -> None:
    from transformers import AutoTokenizer  # lazy: only this test needs transformers

    result = studio(
        "templates", "render", "reviews-sentiment", "--data", "studio/samples/reviews.csv",
        "--shots", "1", "--model", "smollm2-135m-instruct", "--json", home=fresh_home,
        STUDIO_OFFLINE="1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    rendered = json.loads(result.stdout)
    tokenizer = AutoTokenizer.from_pretrained(fresh_home / "models" / "smollm2-135m-instruct")
    dataset = load_dataset(REVIEWS, policy=HostingPolicy.desktop())
    expected = build_preview(load_template("reviews-sentiment"), dataset, 0, 1, tokenizer)
    assert rendered["text"] == expected.text
    assert rendered["text"].startswith("<|im_start|>system\n")
    assert rendered["text"].endswith(
        "Review: The blender crushes ice in seconds and cleans up in no time.\nSentiment:"
        "<|im_end|>\n<|im_start|>assistant\n"
    )
    assert rendered["tokens"] == len(
        tokenizer(expected.text, add_special_tokens=False)["input_ids"]
    )


# -- changing the library (in-process on a copy), then reading it back (subprocess) --------------


def _call(function: object, services: Services, **values: object) -> None:
    assert callable(function)
    assert function(argparse.Namespace(**values), services) == 0


def test_save_versions_diff_and_delete(
    services: Services,
    fresh_home: Path,
    completion_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    library = services.templates.folder
    _call(command.run_save, services, file=str(completion_file))
    assert (
        capsys.readouterr().out
        == f"saved reviews-completion v1 ({library}/reviews-completion.yaml)\n"
    )
    changed = completion_file.with_name("changed.yaml")
    changed.write_text(COMPLETION.replace("Label the review.", "Label it."), encoding="utf-8")
    _call(command.run_save, services, file=str(changed))
    _call(command.run_save, services, file=str(changed))
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("saved reviews-completion v2 (")
    assert out[1].startswith("unchanged — same as v2 of reviews-completion (")
    saved = load_template("reviews-completion", library)
    assert isinstance(saved, PromptTemplate) and saved.system == "Label it."

    # A second process on the same store sees the versions the library stored.
    versions = studio("templates", "versions", "reviews-completion", "--json", home=fresh_home)
    assert versions.returncode == 0, versions.stderr
    listed = json.loads(versions.stdout)
    stored = services.templates.versions("reviews-completion")
    assert [(v["version"], v["hash"], v["used_by_runs"]) for v in listed] == [
        (v.version, v.content_hash, 0) for v in stored
    ] and len(stored) == 2
    table = studio("templates", "versions", "reviews-completion", home=fresh_home).stdout
    assert table.splitlines()[1].split()[:2] == ["v1", stored[0].content_hash[:12]]
    diff = studio("templates", "diff", "reviews-completion", "v1", "2", home=fresh_home)
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout == diff_versions(stored, 1, 2)
    assert "-system: Label the review.\n+system: Label it.\n" in diff.stdout
    missing = studio("templates", "diff", "reviews-completion", "1", "3", home=fresh_home)
    assert missing.returncode == 2 and "no stored version v3 (stored: v1, v2)" in missing.stderr

    with pytest.raises(ValueError, match="Add --yes to confirm"):
        command.run_delete(argparse.Namespace(name="reviews-completion", yes=False), services)
    assert (library / "reviews-completion.yaml").is_file()
    _call(command.run_delete, services, name="reviews-completion", yes=True)
    assert capsys.readouterr().out == (
        "deleted reviews-completion: library file removed, 2 stored versions deleted.\n"
    )
    assert not (library / "reviews-completion.yaml").exists()
    assert services.templates.versions("reviews-completion") == []


def test_save_names_the_file_in_a_validation_error(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(COMPLETION.replace("mode: completion", "mode: bogus"), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}: key 'mode'"):
        command.run_save(argparse.Namespace(file=str(bad)), services)
    with pytest.raises(ValueError, match="not a template file"):
        command.run_save(argparse.Namespace(file=str(tmp_path / "notes.txt")), services)
    assert services.templates.versions("reviews-completion") == []


def test_a_public_demo_changes_nothing_in_the_library(
    services: Services, completion_file: Path
) -> None:
    demo = HostingPolicy(mode=Mode.DEMO)
    services.templates = TemplateLibrary(services.templates.folder, services.store, demo)
    names = services.templates.names()
    with pytest.raises(ValueError, match="public demo"):
        command.run_save(argparse.Namespace(file=str(completion_file)), services)
    with pytest.raises(ValueError, match="public demo"):
        command.run_delete(argparse.Namespace(name="support-tickets", yes=True), services)
    assert services.templates.names() == names and "reviews-completion" not in names


def test_save_in_a_demo_studio_is_refused_by_the_real_command(
    fresh_home: Path, completion_file: Path
) -> None:
    result = studio("templates", "save", str(completion_file), home=fresh_home, STUDIO_DEMO="1")
    shipped = PROMPTS_DIR / "reviews-completion.yaml"
    try:
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert "saving to the template library is switched off" in result.stderr
        assert not shipped.exists()
    finally:
        shipped.unlink(missing_ok=True)  # never leave a test template in the shipped library


def test_studio_prompts_dir_moves_the_library_for_every_engine(
    fresh_home: Path, tmp_path: Path, completion_file: Path
) -> None:
    library = tmp_path / "team-prompts"
    library.mkdir()
    saved = studio(
        "templates", "save", str(completion_file), home=fresh_home, STUDIO_PROMPTS_DIR=str(library)
    )
    assert saved.returncode == 0, saved.stderr
    assert (library / "reviews-completion.yaml").is_file()
    assert not (PROMPTS_DIR / "reviews-completion.yaml").exists()
    listed = studio("templates", "list", "--json", home=fresh_home, STUDIO_PROMPTS_DIR=str(library))
    assert [row["name"] for row in json.loads(listed.stdout)] == ["reviews-completion"]
    # Compare names templates from the same library (the policy carries it to prepare_run).
    settings = load_settings(home=fresh_home, prompts_dir=library)
    policy = HostingPolicy.from_settings(settings)
    config = build_config(
        models=["smollm2-135m-instruct"], templates=["reviews-completion"], data=str(REVIEWS)
    )
    assert [t.name for t in prepare_run(config, policy).templates] == ["reviews-completion"]
