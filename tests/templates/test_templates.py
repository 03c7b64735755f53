"""Prompt templates: the shipped library, exact rendered prompts, strict errors, the sandbox."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from studio.templates import (
    PROMPTS_DIR,
    BuiltPrompt,
    PromptTemplate,
    RenderedExample,
    TemplateError,
    build_prompt,
    fewshot_block,
    list_templates,
    load_template,
    parse_template,
    render_fields,
    save_template,
)
from tests import needs

LIBRARY_FILES = sorted(PROMPTS_DIR.glob("*.yaml"))
REQUIRED = {
    "sst2-sentiment",
    "sst2-sentiment-completion",
    "topic-classification",
    "extract-entities",
    "qa-short-answer",
    "summarize-one-sentence",
    "alpaca-instruction",
}

# SST-2 rows as the TSV reader gives them: labels are text.
SHOT_POS = {"sentence": "a gorgeous , witty , seductive movie .", "label": "1"}
SHOT_NEG = {"sentence": "the plot is nothing but boilerplate clichés", "label": "0"}
QUERY = {"sentence": "unflinchingly bleak and desperate", "label": "0"}

FULL = {
    "name": "full",
    "description": "every field set",
    "mode": "completion",
    "system": "Sys for {{ sentence }}",
    "template": "Review: {{ sentence }}\nSentiment:\n",
    "answer": "{{ label }}",
    "label_map": {"0": "negative", "1": "positive"},
    "choices": ["negative", "positive"],
    "shot_separator": "\n###\n",
    "target_delimiter": "\t",
}


@pytest.fixture(scope="module")
def smollm2_tokenizer(model_home: Path) -> Any:
    """The real SmolLM2 tokenizer from its converted folder in the shared model home (converted
    there on first use), for this module only."""
    from transformers import AutoTokenizer

    from studio.models.convert import ensure_converted
    from studio.models.registry import resolve_spec

    folder = ensure_converted(resolve_spec("smollm2-135m-instruct"), model_home / "models")
    return AutoTokenizer.from_pretrained(folder, local_files_only=True)


def _tokenizer_without_chat_template() -> Any:
    """A real (tiny, in-memory) fast tokenizer with no chat template, as base models have."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    )


# --- the shipped library ----------------------------------------------------------------------


def test_library_ships_the_required_templates() -> None:
    names = [template.name for template in list_templates()]
    assert names == sorted(names)
    assert names == sorted(path.stem for path in LIBRARY_FILES)
    assert names == sorted({*REQUIRED, *names})


@pytest.mark.parametrize("path", LIBRARY_FILES, ids=lambda path: path.stem)
def test_library_file_loads_validates_and_round_trips(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# "), "a template file starts with a comment on how to use it"
    usage = "--judge-template" if path.stem.startswith("judge-") else "--template"
    assert f"studio compare {usage} {path.stem}" in text.split("\nname:")[0].replace("\n#", "")

    template = load_template(path)
    assert template == load_template(path.stem)
    assert template.name == path.stem
    assert template.description

    saved = template.to_yaml()
    assert saved.startswith("# ")
    assert parse_template(saved) == template
    assert parse_template(saved).content_hash() == template.content_hash()


def test_sst2_templates_render_every_validation_row() -> None:
    path = needs.shared_data("sst2", "validation.tsv")
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 872
    for name in ("sst2-sentiment", "sst2-sentiment-completion"):
        template = load_template(name)
        answers = {render_fields(template, row).answer for row in rows}
        assert answers == {"negative", "positive"}


def test_alpaca_templates_render_every_self_instruct_seed_instance() -> None:
    path = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [
        {"instruction": task["instruction"], **instance}
        for task in tasks
        for instance in task["instances"]
    ]
    chat, completion = (
        load_template("alpaca-instruction"),
        load_template("alpaca-instruction-completion"),
    )
    for row in rows:
        built = build_prompt(completion, row, [])
        assert ("### Input:" in built.text) == bool(row["input"])
        assert built.text.endswith("\n\n### Response:")
        assert built.answer == row["output"].rstrip("\n")
        prompt = render_fields(chat, row).prompt
        assert prompt == (
            f"{row['instruction']}\n\n{row['input']}" if row["input"] else row["instruction"]
        )


# --- exact prompts ----------------------------------------------------------------------------


def test_completion_mode_two_shots_renders_exactly() -> None:
    template = load_template("sst2-sentiment-completion")
    built = build_prompt(template, QUERY, [SHOT_POS, SHOT_NEG])
    assert built == BuiltPrompt(
        text=(
            "Each movie review is followed by its sentiment, positive or negative.\n"
            "\n"
            "Review: a gorgeous , witty , seductive movie .\n"
            "Sentiment: positive\n"
            "\n"
            "Review: the plot is nothing but boilerplate clichés\n"
            "Sentiment: negative\n"
            "\n"
            "Review: unflinchingly bleak and desperate\n"
            "Sentiment:"
        ),
        messages=None,
        answer="negative",
        continuation_prefix=" ",
    )
    assert fewshot_block(template, [SHOT_POS, SHOT_NEG]) == (
        "Review: a gorgeous , witty , seductive movie .\nSentiment: positive\n\n"
        "Review: the plot is nothing but boilerplate clichés\nSentiment: negative"
    )


def test_completion_mode_zero_shot_and_custom_separators() -> None:
    template = PromptTemplate(**FULL)
    assert build_prompt(template, QUERY, []).text == (
        "Sys for unflinchingly bleak and desperate\n###\n"
        "Review: unflinchingly bleak and desperate\nSentiment:"
    )
    built = build_prompt(template, QUERY, [SHOT_POS])
    assert built.text == (
        "Sys for unflinchingly bleak and desperate\n###\n"
        "Review: a gorgeous , witty , seductive movie .\nSentiment:\tpositive\n###\n"
        "Review: unflinchingly bleak and desperate\nSentiment:"
    )
    assert built.continuation_prefix == "\t"


@pytest.mark.model
def test_chat_mode_one_shot_is_exact_chatml_for_smollm2(smollm2_tokenizer: Any) -> None:
    template = load_template("sst2-sentiment")
    built = build_prompt(template, QUERY, [SHOT_POS], smollm2_tokenizer)
    system = (
        "Classify the sentiment of the movie review. Answer with one word, positive or negative."
    )
    assert built.messages == [
        {"role": "system", "content": system},
        {"role": "user", "content": "Review: a gorgeous , witty , seductive movie ."},
        {"role": "assistant", "content": "positive"},
        {"role": "user", "content": "Review: unflinchingly bleak and desperate"},
    ]
    assert built.text == (
        "<|im_start|>system\n"
        "Classify the sentiment of the movie review. Answer with one word, positive or negative."
        "<|im_end|>\n"
        "<|im_start|>user\nReview: a gorgeous , witty , seductive movie .<|im_end|>\n"
        "<|im_start|>assistant\npositive<|im_end|>\n"
        "<|im_start|>user\nReview: unflinchingly bleak and desperate<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    assert (built.answer, built.continuation_prefix) == ("negative", "")


def test_render_fields_maps_labels_for_the_answer_only() -> None:
    template = parse_template(
        "name: t\n"
        "template: |\n  {{ label }}: {{ sentence }}\n"
        "label_map: {0: negative, 1: positive}\n"
    )
    assert template.label_map == {"0": "negative", "1": "positive"}  # unquoted YAML keys are text
    assert template.variables() == {"label", "sentence"}
    assert render_fields(template, {"sentence": "fine", "label": 1}) == RenderedExample(
        prompt="1: fine", answer="positive", system=None
    )


def test_alpaca_completion_prompt_without_input() -> None:
    row = {"instruction": "Name a color.", "input": "", "output": "Blue."}
    built = build_prompt(load_template("alpaca-instruction-completion"), row, [])
    assert built.text == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nName a color.\n\n### Response:"
    )
    assert (built.answer, built.continuation_prefix) == ("Blue.", "\n")


# --- identity -------------------------------------------------------------------------------


def test_content_hash_is_stable_and_changes_with_every_field() -> None:
    base = PromptTemplate(**FULL)
    reordered = dict(reversed(list(FULL.items())), label_map={"1": "positive", "0": "negative"})
    assert PromptTemplate(**reordered).content_hash() == base.content_hash()
    # Pinned: stored template versions are keyed by this hash, so its recipe must not drift.
    assert base.content_hash() == "12d6a3e0638ba8cf045b53b8245c4ac3a78164936eb7109a3e1a9fa65f1e0012"
    changed = {
        "name": "full2",
        "description": "changed",
        "mode": "chat",
        "system": None,
        "template": "Text: {{ sentence }}",
        "answer": "{{ label | lower }}",
        "label_map": {"0": "positive", "1": "negative"},
        "choices": ["positive", "negative"],
        "shot_separator": "\n\n",
        "target_delimiter": " ",
    }
    assert set(changed) == set(PromptTemplate.model_fields), "cover every field"
    hashes = {
        PromptTemplate(**{**FULL, key: value}).content_hash() for key, value in changed.items()
    }
    assert len(hashes) == len(changed) and base.content_hash() not in hashes
    assert len({base, PromptTemplate(**FULL)}) == 1  # hashable despite dict and list fields


def test_to_yaml_round_trips_awkward_strings_and_custom_header() -> None:
    template = PromptTemplate(
        name="odd",
        description="tabs\tand\u0085odd breaks",
        template="  lead {{ x }}\ntrailing space \nline\u2028sep\n\n",
        system="\n\n",
        answer="yes",
        shot_separator="\r\n",
    )
    assert parse_template(template.to_yaml()) == template
    text = template.to_yaml(header="my header\n# already a comment")
    assert text.startswith("# my header\n# already a comment\nname: odd\n")
    assert parse_template(text) == template


# --- strict errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("name: t\ntemplate: x\ncolour: red\n", "f.yaml: unknown key 'colour'; allowed: name, "),
        (
            "name: t\ntemplate: x\nchoices: abc\n",
            "f.yaml: key 'choices': Input should be a valid list",
        ),
        ("name: 123\ntemplate: x\n", "f.yaml: key 'name': Input should be a valid string"),
        ("name: t\ntemplate: x\nchoices: [yes, no]\n", "key 'choices.0': .*quote it"),
        ("name: t\ntemplate: x\nchoices: []\n", "key 'choices': is empty"),
        ("name: t\ntemplate: x\nchoices: [a, b, a]\n", "key 'choices': lists 'a' more than once"),
        ("name: ../etc\ntemplate: x\n", "f.yaml: key 'name': '../etc' is not a valid name"),
        ("name: t\n", "f.yaml: key 'template' is missing"),
        (
            "name: t\ntemplate: x\nmode: chatty\n",
            "key 'mode': Input should be 'chat' or 'completion'",
        ),
        ("name: t\ntemplate: [\n", "f.yaml: YAML syntax error on line 3"),
        ("- name: t\n", "f.yaml: a template is a YAML mapping"),
        ("name: t\ntemplate: x\nanswer: {{ label }}\n", "f.yaml: YAML syntax error on line 3"),
    ],
)
def test_parse_errors_name_source_and_key(yaml_text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(yaml_text, source="f.yaml")


def test_jinja_syntax_error_names_key_and_line() -> None:
    with pytest.raises(TemplateError, match=r"key 'template': Jinja2 syntax error on line 2 of"):
        PromptTemplate(name="t", template="Review:\n{{ sentence }\nSentiment:")
    with pytest.raises(TemplateError, match=r"key 'system': Jinja2 syntax error on line 1"):
        PromptTemplate(name="t", template="x", system="{% if x %}")


def test_undefined_variable_names_the_variable_and_columns() -> None:
    template = load_template("sst2-sentiment")
    with pytest.raises(TemplateError) as caught:
        render_fields(template, {"a": 1, "b": 2})
    assert str(caught.value) == (
        "template 'sst2-sentiment': variable 'sentence' is not a column of the data "
        "(columns: a, b). Fix: rename the variable or map a column to it."
    )


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ sentence|attr('__class__') }}",
]


@pytest.mark.parametrize("escape", ESCAPES)
def test_sandbox_escapes_are_refused_when_built(escape: str) -> None:
    with pytest.raises(TemplateError, match="not allowed: templates run in a sandbox"):
        PromptTemplate(name="t", template=escape)


@pytest.mark.parametrize("escape", ESCAPES)
def test_sandbox_escapes_are_refused_when_rendered(escape: str) -> None:
    # Skips validation, as a record edited behind the studio's back would: the sandbox still holds.
    template = PromptTemplate.model_construct(name="t", template=escape, answer="{{ label }}")
    with pytest.raises(TemplateError, match=r"is unsafe\. That is not allowed"):
        render_fields(template, SHOT_POS)


@pytest.mark.parametrize(
    "source",
    [
        "{{ sentence|attr(label) }}",  # attribute name from the data, unseen at validation
        "{{ [1].append(2) }}",  # the sandbox is immutable
        "{{ 'x' * 10 ** 9 }}",  # a gigabyte string
        "{% set ns = namespace(n=3) %}{% for _ in range(64) %}{% set ns.n = ns.n * ns.n %}"
        "{% endfor %}{{ ns.n }}",  # an integer of 2**64 bits
    ],
)
def test_runtime_sandbox_limits(source: str) -> None:
    template = PromptTemplate(name="t", template=source)
    with pytest.raises(TemplateError, match="not allowed"):
        render_fields(template, {"sentence": "s", "label": "__class__"})


def test_template_runtime_errors_are_template_errors() -> None:
    template = PromptTemplate(name="t", template="{{ 1 / 0 }}")
    with pytest.raises(
        TemplateError, match=r"template 't' \(template\): rendering failed: ZeroDiv"
    ):
        render_fields(template, SHOT_POS)


def test_label_value_missing_from_label_map() -> None:
    template = load_template("sst2-sentiment")
    with pytest.raises(TemplateError, match=r"label value '2' \(column 'label'\).*keys: '0', '1'"):
        render_fields(template, {"sentence": "meh", "label": 2})


def test_answer_must_render_to_a_choice() -> None:
    with pytest.raises(TemplateError, match="answer renders 'pos' for the label_map value 'pos'"):
        PromptTemplate(
            name="t", template="x", label_map={"0": "neg", "1": "pos"}, choices=["neg", "positive"]
        )
    with pytest.raises(TemplateError, match="renders 'It is neg'"):
        PromptTemplate(
            name="t",
            template="x",
            answer="It is {{ label }}",
            label_map={"0": "neg"},
            choices=["neg"],
        )


def test_chat_mode_needs_a_tokenizer_with_a_chat_template() -> None:
    template = load_template("sst2-sentiment")
    with pytest.raises(TemplateError) as caught:
        build_prompt(template, QUERY, [SHOT_POS], _tokenizer_without_chat_template())
    assert str(caught.value) == (
        "template 'sst2-sentiment' is in chat mode but model has no chat template (a base model); "
        "use mode: completion"
    )
    with pytest.raises(TemplateError, match="is in chat mode, which needs the model's tokenizer"):
        build_prompt(template, QUERY, [])


# --- the library on disk ----------------------------------------------------------------------


def test_save_template_writes_atomically_and_loads_by_name(tmp_path: Path) -> None:
    library = tmp_path / "prompts"
    template = PromptTemplate(**FULL)
    path = save_template(template, library)
    assert path == library / "full.yaml"
    assert [p.name for p in library.iterdir()] == ["full.yaml"]  # no temp file left behind
    assert path.read_text(encoding="utf-8").startswith("# full: every field set\n# Use: ")
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert load_template("full", library) == template
    assert list_templates(library) == [template]

    edited = PromptTemplate(**{**FULL, "description": "edited"})
    save_template(edited, library)
    assert load_template("full", library) == edited
    with pytest.raises(TemplateError, match="already exists"):
        save_template(template, library, overwrite=False)
    assert load_template("full", library) == edited


def test_load_template_unknown_name_lists_available(tmp_path: Path) -> None:
    save_template(PromptTemplate(name="alpha", template="x"), tmp_path)
    save_template(PromptTemplate(name="beta", template="x"), tmp_path)
    with pytest.raises(TemplateError, match=r"no template named 'gamma' .*available: alpha, beta"):
        load_template("gamma", tmp_path)
    with pytest.raises(TemplateError, match="no such template file"):
        load_template(tmp_path / "missing.yaml", tmp_path)


def test_broken_library_file_is_named(tmp_path: Path) -> None:
    save_template(PromptTemplate(name="good", template="x"), tmp_path)
    (tmp_path / "broken.yaml").write_text("# broken\nname: broken\ntemplate: '{{ x'\n")
    with pytest.raises(TemplateError, match=r"broken\.yaml: key 'template': Jinja2 syntax error"):
        list_templates(tmp_path)
    (tmp_path / "broken.yaml").write_text("# renamed\nname: other\ntemplate: x\n")
    with pytest.raises(TemplateError, match=r"broken\.yaml: name 'other' does not match"):
        list_templates(tmp_path)
