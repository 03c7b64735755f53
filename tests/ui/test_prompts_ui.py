"""The Prompts tab without a browser: library, versions, diff, duplicate/delete and the preview,
on a copy of prompts/ and a fresh store. The preview's chat text and token counts come from the
bundled models' real tokenizers (SmolLM2's ChatML template; Gemma's tokenizer, which adds <bos>)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
import pytest

from studio.datasets import DatasetError, load_dataset
from studio.hosting import HostingPolicy
from studio.models.convert import ensure_converted
from studio.models.registry import resolve_spec
from studio.settings import SAMPLES_DIR
from studio.store import ComparisonConfigSpec, Store
from studio.templates import PROMPTS_DIR, TemplateError, load_template
from studio.templates import library as lib
from studio.templates import preview as pv
from studio.templates.library import TemplateLibrary
from studio.ui.prompts.handlers import PromptsHandlers
from studio.ui.prompts.tab import build_prompts_tab
from studio.ui.prompts.views import diff_html, version_choices, version_rows

REVIEWS = SAMPLES_DIR / "reviews.csv"
COMPLETION = """\
name: reviews-test
description: test template
mode: completion
system: Label the review.
template: "Review: {{ text }}\\nSentiment:"
answer: "{{ label }}"
"""


@pytest.fixture
def library(tmp_path: Path) -> Path:
    copy = tmp_path / "prompts"
    shutil.copytree(PROMPTS_DIR, copy)
    return copy


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'studio.db'}")
    yield opened
    opened.close()


@pytest.fixture
def templates(library: Path, store: Store) -> TemplateLibrary:
    return TemplateLibrary(library, store, HostingPolicy.desktop())


@pytest.fixture
def reviews():
    return load_dataset(REVIEWS, policy=HostingPolicy.desktop())


def bundled_tokenizer(model_home: Path, alias: str) -> Any:
    """A bundled model's real tokenizer, from its converted folder (converted on first use)."""
    from transformers import AutoTokenizer  # lazy: only the model tests need transformers

    folder = ensure_converted(resolve_spec(alias), model_home / "models")
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


@pytest.fixture(scope="module")
def smollm2(model_home: Path) -> Any:
    """SmolLM2's tokenizer: a ChatML chat template, no <bos> added to plain text."""
    return bundled_tokenizer(model_home, "smollm2-135m-instruct")


@pytest.fixture(scope="module")
def gemma(model_home: Path) -> Any:
    """Gemma-3-270M's tokenizer (a base model: no chat template), which adds <bos> to text."""
    return bundled_tokenizer(model_home, "gemma-3-270m")


# --- library -------------------------------------------------------------------------------


def test_library_rows_list_every_template_and_flag_a_broken_file(library, templates) -> None:
    (library / "broken.yaml").write_text("name: broken\ntemplate: [\n", encoding="utf-8")
    rows = {row[0]: row for row in templates.rows()}
    assert rows["sst2-sentiment"][1:] == [
        "chat",
        load_template("sst2-sentiment", library).description,
        "",
    ]
    assert rows["sst2-sentiment-completion"][1] == "completion"
    assert rows["broken"][1] == "error" and "YAML syntax error" in rows["broken"][2]
    templates.save(COMPLETION)
    assert {row[0]: row for row in templates.rows()}["reviews-test"][3] == "v1"


def test_read_source_keeps_comments_and_names_what_is_available(templates) -> None:
    text = templates.read("sst2-sentiment")
    assert text.startswith("# sst2-sentiment:")
    with pytest.raises(TemplateError, match=r"no template named 'nope'.*available: .*sst2"):
        templates.read("nope")
    with pytest.raises(TemplateError, match="not a valid template name"):
        templates.read("../etc/passwd")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the editor is empty"),
        ("name: x\ntemplate: hi\ncolour: red\n", "editor: unknown key 'colour'"),
        ("name: x\n", "key 'template' is missing"),
        ("name: x\ntemplate: '{{ text '\n", "Jinja2 syntax error on line 1 of template"),
        ("name: x\ntemplate: a: b: c\n", "YAML syntax error on line 2"),
    ],
)
def test_validate_names_the_key_at_fault(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        lib.validate(text)


def test_describe_valid_lists_columns_and_scoring() -> None:
    note = lib.describe_valid(lib.validate(COMPLETION))
    assert note == "valid · `reviews-test` · completion mode · columns: label, text · generated"


def test_save_numbers_versions_by_content(library, store, templates) -> None:
    first = templates.save(COMPLETION)
    assert first.message == "saved reviews-test v1"
    assert (library / "reviews-test.yaml").read_text() == first.template.to_yaml()
    assert templates.save(COMPLETION).message == "unchanged — same as v1 of reviews-test"
    edited = COMPLETION.replace("test template", "edited")
    assert templates.save(edited).message == "saved reviews-test v2"
    # Back to the first content: that version is found again, and the file follows the editor.
    assert templates.save(COMPLETION).message == "unchanged — same as v1 of reviews-test"
    assert "description: test template" in (library / "reviews-test.yaml").read_text()
    versions = store.template_versions("reviews-test")
    assert [v.version for v in versions] == [1, 2]
    assert versions[0].content == first.template.to_yaml()
    rows = version_rows(versions)
    assert rows[0][0] == "v1" and rows[0][1] == versions[0].content_hash[:12]
    assert rows[0][3] == 0
    assert version_choices(versions)[1] == (f"v2 · {versions[1].content_hash[:8]}", 2)


def test_diff_shows_the_changed_lines_escaped(store, templates) -> None:
    templates.save(COMPLETION)
    templates.save(COMPLETION.replace("test template", "<b>new</b>"))
    versions = store.template_versions("reviews-test")
    diff = lib.diff_versions(versions, 1, 2)
    assert "--- reviews-test v1\n+++ reviews-test v2\n" in diff
    assert "-description: test template\n+description: <b>new</b>\n" in diff
    shown = diff_html(diff, 1, 2)
    assert "<span class='diff-add'>+description: &lt;b&gt;new&lt;/b&gt;</span>" in shown
    assert "<span class='diff-del'>-description: test template</span>" in shown
    assert "<span class='diff-hunk'>@@" in shown
    assert lib.diff_versions(versions, 1, 7) == ""
    assert "same content" in diff_html(lib.diff_versions(versions, 2, 2), 2, 2)
    assert "Save a template twice" in diff_html("", None, None)


def test_duplicate_writes_a_validated_copy_never_over_another(library, templates) -> None:
    source = templates.read("sst2-sentiment")
    copy = templates.duplicate(source, " sst2-copy ")
    assert copy.name == "sst2-copy"
    again = load_template("sst2-copy", library)
    assert again.template == load_template("sst2-sentiment", library).template
    with pytest.raises(TemplateError, match="already exists"):
        templates.duplicate(source, "sst2-copy")
    with pytest.raises(TemplateError, match="'Bad Name' is not a valid template name"):
        templates.duplicate(source, "Bad Name")


def test_delete_keeps_versions_that_runs_use(library, store, templates) -> None:
    v1 = templates.save(COMPLETION).version
    templates.save(COMPLETION.replace("test template", "v2"))
    templates.save(COMPLETION.replace("test template", "v3"))
    dataset = store.register_dataset("r", str(REVIEWS), "csv", "d" * 64, 60, ["text", "label"])
    spec = ComparisonConfigSpec(
        model_spec="m",
        template_version_id=v1.id,
        shots=0,
        seed=1,
        selection="first",
        label="m · reviews-test@v1",
    )
    store.create_comparison_run(
        name="uses v1",
        scoring="generate",
        config={},
        dataset_id=dataset.id,
        shot_pool_id=None,
        n_examples=1,
        configs=[spec],
    )
    message = templates.delete("reviews-test")
    assert message == (
        "deleted reviews-test: library file removed, 2 stored versions deleted, "
        "1 kept because stored runs use it."
    )
    assert not (library / "reviews-test.yaml").exists()
    assert [v.version for v in store.template_versions("reviews-test")] == [1]
    assert templates.delete("reviews-test") == (
        "deleted reviews-test: no library file, 0 stored versions deleted, "
        "1 kept because stored runs use it."
    )


# --- preview -------------------------------------------------------------------------------


def test_preview_uses_the_first_other_rows_as_shots(reviews) -> None:
    template = lib.validate(COMPLETION)
    shown = pv.build_preview(template, reviews, 1, 2, None)
    row0, row1, row2 = reviews.rows[:3]
    assert shown.row == row1 and shown.answer == row1["label"]
    assert shown.fewshot == (
        f"Review: {row0['text']}\nSentiment: {row0['label']}\n\n"
        f"Review: {row2['text']}\nSentiment: {row2['label']}"
    )
    assert shown.text == (
        f"Label the review.\n\n{shown.fewshot}\n\nReview: {row1['text']}\nSentiment:"
    )
    assert (shown.rows, shown.mode) == (60, "completion")
    assert pv.build_preview(template, reviews, 0, 0, None).fewshot == ""


def test_preview_errors_say_what_to_fix(library, reviews) -> None:
    sst2 = load_template("sst2-sentiment-completion", library)
    with pytest.raises(TemplateError, match=r"variable 'sentence' is not a column.*label, text"):
        pv.build_preview(sst2, reviews, 0, 0, None)
    template = lib.validate(COMPLETION)
    with pytest.raises(IndexError, match=r"row 60 is not in .*60 rows \(0-59\)"):
        pv.build_preview(template, reviews, 60, 0, None)
    with pytest.raises(ValueError, match="between 0 and 8"):
        pv.build_preview(template, reviews, 0, 9, None)
    with pytest.raises(TemplateError, match="chat mode, which needs the model's tokenizer"):
        pv.build_preview(load_template("reviews-sentiment", library), reviews, 0, 0, None)


def test_chat_preview_without_a_model_shows_the_turns(library, reviews) -> None:
    template = load_template("reviews-sentiment", library)
    shown = pv.build_preview(template, reviews, 0, 1, pv.TurnsTokenizer())
    assert shown.text.startswith(f"[system]\n{template.system}\n\n[user]\nReview: ")
    assert f"[assistant]\n{reviews.rows[1]['label']}\n\n[user]\n" in shown.text


def test_a_judge_template_previews_on_any_data_with_stand_ins(tmp_path) -> None:
    from studio.datasets import load_dataset
    from studio.hosting import HostingPolicy
    from studio.settings import PROMPTS_DIR

    data = tmp_path / "tasks.csv"
    data.write_text("instruction,input,output\nName a colour.,,Blue\n", encoding="utf-8")
    tasks = load_dataset(data, policy=HostingPolicy.desktop())
    pairwise = load_template("judge-pairwise", PROMPTS_DIR)
    shown = pv.build_preview(pairwise, tasks, 0, 0, pv.TurnsTokenizer())
    assert "Answer A: (answer A)" in shown.text and "Answer B: (answer B)" in shown.text
    assert "Instruction: Name a colour." in shown.text
    graded = pv.build_preview(load_template("judge-pass-fail", PROMPTS_DIR), tasks, 0, 0,
                              pv.TurnsTokenizer())  # fmt: skip
    # The row's own output column is the answer graded; the gold answer is a stand-in.
    assert "Answer to grade: Blue" in graded.text
    assert "Reference answer: (the gold answer)" in graded.text


@pytest.mark.model
def test_chat_preview_with_the_model_is_its_exact_chat_template(library, reviews, smollm2) -> None:
    template = load_template("reviews-sentiment", library)
    shown = pv.build_preview(template, reviews, 0, 1, smollm2)
    # Row 0 with one shot (row 1), through SmolLM2's own ChatML template: the text it will read.
    assert shown.text == (
        "<|im_start|>system\n"
        "You label the sentiment of reviews. Answer with one word, positive or negative."
        "<|im_end|>\n"
        "<|im_start|>user\nReview: The zipper broke on the second day of the trip.\n"
        "Sentiment:<|im_end|>\n"
        "<|im_start|>assistant\nnegative<|im_end|>\n"
        "<|im_start|>user\nReview: The blender crushes ice in seconds and cleans up in no time.\n"
        "Sentiment:<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert shown.answer == "positive"
    # Each ChatML marker is one token, not its characters spelled out.
    assert pv.count_tokens(smollm2, shown.text, "chat") == 80
    assert pv.count_tokens(smollm2, "<|im_start|>user\nhi<|im_end|>\n", "chat") == 6


@pytest.mark.model
def test_count_tokens_adds_special_tokens_only_for_completion(smollm2, gemma) -> None:
    text = "Review: The zipper broke on the second day of the trip.\nSentiment:"
    # Gemma puts <bos> before plain text: a completion prompt reads it, 16 tokens + <bos>.
    assert gemma(text)["input_ids"][0] == gemma.bos_token_id
    assert pv.count_tokens(gemma, text, "completion") == 17
    # A chat template writes its own special tokens into the text: none are added again.
    assert pv.count_tokens(gemma, text, "chat") == 16
    # SmolLM2 adds no <bos>: both modes count the same.
    assert pv.count_tokens(smollm2, text, "completion") == pv.count_tokens(smollm2, text, "chat")
    assert pv.count_tokens(smollm2, text, "chat") == 18


def test_data_paths_resolve_against_the_project_and_are_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # not where app.py is: the project root is tried next
    assert pv.resolve_data_path(pv.DEFAULT_DATA) == REVIEWS
    with pytest.raises(DatasetError, match="no data file chosen"):
        pv.resolve_data_path("  ")
    data = tmp_path / "d.csv"
    data.write_text("text,label\na,b\n", encoding="utf-8")
    cache = pv.DatasetCache(size=1)
    first = cache.load(data, HostingPolicy.desktop())
    assert cache.load(data, HostingPolicy.desktop()) is first
    data.write_text("text,label\na,b\nc,d\n", encoding="utf-8")
    os.utime(data, ns=(1, 1))  # a new size and mtime: read again
    assert len(cache.load(data, HostingPolicy.desktop())) == 2
    with pytest.raises(DatasetError, match="does not exist"):
        cache.load(tmp_path / "missing.csv", HostingPolicy.desktop())


# --- handlers and the built tab --------------------------------------------------------------


@pytest.fixture
def handlers(store, templates) -> PromptsHandlers:
    models = SimpleNamespace(is_loaded=lambda request: False, get=None)
    settings = SimpleNamespace(
        default_model="smollm2-135m-instruct", models_dir=Path("/none"), adapters_dir=Path("/none")
    )
    services: Any = SimpleNamespace(
        settings=settings,
        store=store,
        models=models,
        policy=HostingPolicy.desktop(),
        templates=templates,
    )
    return PromptsHandlers(services)


def test_live_preview_never_loads_a_model(handlers, templates) -> None:
    chat = templates.read("reviews-sentiment")
    valid, status, text, tokens, fewshot, answer = handlers.preview(
        chat, pv.DEFAULT_DATA, 2, 1, "", load=False
    )
    assert valid.startswith("valid · `reviews-sentiment`")
    assert "row 2 of 60" in status and "1 shot " in status
    assert text.startswith("[system]") and answer == "positive"
    assert tokens == (
        "Press **Preview** to load `smollm2-135m-instruct`, apply its chat template and "
        "count the tokens."
    )
    assert fewshot.startswith("Review: ")


def test_preview_problems_are_shown_inline(handlers, templates) -> None:
    sst2 = templates.read("sst2-sentiment-completion")
    valid, status, *rest = handlers.preview(sst2, pv.DEFAULT_DATA, 0, 0, "", load=False)
    assert valid.startswith("valid")
    assert status.startswith("⚠ template 'sst2-sentiment-completion': variable 'sentence'")
    assert rest == ["", "", "", ""]
    valid, status, *_ = handlers.preview("name: x\n", pv.DEFAULT_DATA, 0, 0, "", load=False)
    assert valid == "⚠ editor: key 'template' is missing. Fix: add it (it is required)"
    assert handlers.validate("") == "⚠ the editor is empty. Fix: load a template or write one"


def test_actions_raise_clear_errors(handlers) -> None:
    with pytest.raises(gr.Error, match="unknown key 'colour'"):
        handlers.save("name: x\ntemplate: hi\ncolour: red\n")
    with pytest.raises(gr.Error, match="Tick 'Yes, delete'"):
        handlers.delete("sst2-sentiment", False)
    with pytest.raises(gr.Error, match="Choose a template"):
        handlers.load("")
    name, message = handlers.save(COMPLETION)
    assert (name, message) == ("reviews-test", "saved reviews-test v1")
    status, note, rows, _picker, versions, *_ = handlers.after_save(name, message)
    assert status == message and "reviews-test" in note
    assert ["reviews-test", "completion", "test template", "v1"] in rows
    assert versions[0][0] == "v1"


def test_tab_builds_on_any_library(handlers) -> None:
    with gr.Blocks() as app:
        tab = build_prompts_tab(handlers.services)
    ids = {block.elem_id for block in app.blocks.values() if block.elem_id}
    assert {"prompts-editor", "prompts-preview-text", "prompts-diff", "prompts-delete"} <= ids
    assert tab.picker.choices[0][0] == "alpaca-instruction-completion"
