"""Training data: exact prompt/answer tokens, masks, every problem with its row, split, formats.

The tokenizers are the real bundled ones: SmolLM2 (a chat template, no BOS) and gemma-3-270m
(a base model: no chat template, adds BOS).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from studio.datasets import DatasetError, load_dataset
from studio.hosting import HostingPolicy
from studio.inference.scoring import encode
from studio.templates import build_prompt, load_template
from studio.tuning.config import DataSettings
from studio.tuning.data import (
    DataProblem,
    PreparedData,
    TrainExample,
    TuneDataError,
    detect_format,
    eval_count,
    prepare_data,
    split_examples,
)
from tests import needs
from tests.conftest import SHARED_DATA

SST2_TRAIN = SHARED_DATA / "sst2" / "train.tsv"
SEED_TASKS = SHARED_DATA / "self-instruct" / "seed_tasks.jsonl"
END = "<|im_end|>\n"  # how SmolLM2's chat template ends an assistant turn


def _tokenizer(model_home: Path, alias: str) -> Any:
    from transformers import AutoTokenizer

    from studio.models.convert import ensure_converted
    from studio.models.registry import resolve_spec

    folder = ensure_converted(resolve_spec(alias), model_home / "models")
    return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)


@pytest.fixture(scope="module")
def smol(model_home: Path) -> Any:
    return _tokenizer(model_home, "smollm2-135m-instruct")


@pytest.fixture(scope="module")
def gemma(model_home: Path) -> Any:
    return _tokenizer(model_home, "gemma-3-270m")


def shared(path: Path) -> Path:
    return needs.shared_data(*path.relative_to(SHARED_DATA).parts)


def jsonl(tmp_path: Path, name: str, lines: list[Any]) -> Path:
    """A JSONL file; a None item writes a blank line (row numbers must count it)."""
    path = tmp_path / name
    text = "\n".join("" if item is None else json.dumps(item) for item in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def prepare(path: Path, tokenizer: Any, seed: int = 0, **settings: Any) -> PreparedData:
    settings.setdefault("eval_split", 0.0)
    return prepare_data(
        DataSettings(path=str(path), **settings), tokenizer, HostingPolicy.desktop(), seed=seed
    )


def trained(example: TrainExample) -> list[int]:
    return [t for t, m in zip(example.input_ids, example.completion_mask, strict=True) if m]


def runs(example: TrainExample) -> list[list[int]]:
    """The contiguous stretches of trained tokens."""
    out: list[list[int]] = []
    previous = 0
    for token, mask in zip(example.input_ids, example.completion_mask, strict=True):
        if mask and not previous:
            out.append([])
        if mask:
            out[-1].append(token)
        previous = mask
    return out


def ids(tokenizer: Any, text: str, special: bool) -> list[int]:
    return list(tokenizer(text, add_special_tokens=special)["input_ids"])


ALPACA = [
    {"instruction": "Say hello.", "input": "", "output": "Hello!"},
    None,
    {"instruction": "Add the numbers.", "input": "2 + 3", "output": "5"},
    {"instruction": "Name a colour.", "output": "Blue."},
]


# ---------------------------------------------------------------------------------------------
# Exact strings and tokens


@pytest.mark.model
def test_alpaca_chat_prompt_is_the_compare_prompt_and_only_the_answer_is_trained(
    tmp_path: Path, smol: Any
) -> None:
    prepared = prepare(jsonl(tmp_path, "a.jsonl", ALPACA), smol)
    template = load_template("alpaca-instruction")
    assert prepared.format == "alpaca" and prepared.template == template
    assert [e.row for e in prepared.train] == [1, 3, 4]  # JSONL lines: the blank line counts
    for example, row in zip(prepared.train, [r for r in ALPACA if r], strict=True):
        built = build_prompt(template, {"input": "", **row}, [], smol)
        prompt = built.text
        prompt_ids = ids(smol, prompt, special=False)
        completion = example.segments[1][0]
        assert example.segments == ((prompt, False), (row["output"] + END, True))
        assert example.input_ids[: len(prompt_ids)] == prompt_ids
        assert example.completion_mask == [0] * len(prompt_ids) + [1] * example.completion_tokens
        assert smol.decode(trained(example)) == row["output"] + END
        # The same tokens log-likelihood scoring gives this answer after this prompt.
        assert trained(example) == encode(smol, prompt, prompt_ids, completion, False)
        answer_turn = {"role": "assistant", "content": row["output"]}
        full = smol.apply_chat_template([*(built.messages or []), answer_turn], tokenize=False)
        assert example.text == full and example.prompt_tokens == len(prompt_ids)
        assert not example.truncated and example.n_tokens == len(example.input_ids)


@pytest.mark.model
def test_completion_template_on_csv_with_column_map_matches_scoring_tokens(
    tmp_path: Path, smol: Any
) -> None:
    data = tmp_path / "reviews.csv"
    data.write_text("text,stars\ngreat fun,1\ndull and slow,0\n", encoding="utf-8")
    prepared = prepare(
        data,
        smol,
        format="template",
        template="sst2-sentiment-completion",
        column_map={"sentence": "text", "label": "stars"},
    )
    template = load_template("sst2-sentiment-completion")
    assert prepared.template == template and prepared.format == "template"
    for example, (text, label) in zip(
        prepared.train, [("great fun", "1"), ("dull and slow", "0")], strict=True
    ):
        built = build_prompt(template, {"sentence": text, "label": label}, [], smol)
        word = built.answer
        assert word == ("positive" if label == "1" else "negative")
        prompt_ids = ids(smol, built.text, special=True)  # completion mode: as Compare scores it
        assert example.segments == ((built.text, False), (f" {word}<|im_end|>", True))
        assert example.input_ids[: len(prompt_ids)] == prompt_ids
        assert example.prompt_tokens == len(prompt_ids)
        assert smol.decode(trained(example)) == f" {word}<|im_end|>"
        # The choice tokens Compare's log-likelihood scores are exactly the trained answer start.
        choice = encode(smol, built.text, prompt_ids, built.continuation_prefix + word, True)
        assert trained(example)[: len(choice)] == choice


@pytest.mark.model
def test_a_base_model_gets_the_completion_alpaca_format_with_bos_and_eos(
    tmp_path: Path, gemma: Any
) -> None:
    prepared = prepare(jsonl(tmp_path, "a.jsonl", ALPACA), gemma)
    template = load_template("alpaca-instruction-completion")
    assert prepared.template == template
    first = prepared.train[0]
    built = build_prompt(template, {**ALPACA[0]}, [], gemma)
    prompt_ids = ids(gemma, built.text, special=True)
    assert first.input_ids[0] == gemma.bos_token_id  # added like scoring adds it
    assert first.input_ids[: len(prompt_ids)] == prompt_ids
    assert gemma.decode(trained(first)) == "\nHello!" + gemma.eos_token
    assert first.segments[1] == ("\nHello!" + gemma.eos_token, True)


@pytest.mark.model
def test_messages_trains_every_assistant_turn_and_masks_the_rest(tmp_path: Path, smol: Any) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "And of Italy?"},
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "Thanks"},  # after the last answer: left out
    ]
    prepared = prepare(jsonl(tmp_path, "m.jsonl", [{"messages": conversation}]), smol)
    example = prepared.train[0]
    assert prepared.format == "messages" and prepared.template is None
    assert [smol.decode(run) for run in runs(example)] == ["Paris." + END, "Rome." + END]
    full = smol.apply_chat_template(conversation[:5], tokenize=False)
    assert example.text == full
    assert example.input_ids == ids(smol, full, special=False)
    assert [text for text, answer in example.segments if answer] == ["Paris." + END, "Rome." + END]


@pytest.mark.model
def test_sharegpt_conversations_and_a_json_messages_cell_in_a_csv(
    tmp_path: Path, smol: Any
) -> None:
    share = [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello there."}]
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there."}]
    shared_gpt = prepare(jsonl(tmp_path, "s.jsonl", [{"conversations": share}]), smol)
    csv = tmp_path / "m.csv"
    cell = json.dumps(chat).replace('"', '""')
    csv.write_text(f'id,messages\n7,"{cell}"\n', encoding="utf-8")
    from_csv = prepare(csv, smol)
    expected = prepare(jsonl(tmp_path, "m.jsonl", [{"messages": chat}]), smol).train[0]
    for prepared in (shared_gpt, from_csv):
        assert prepared.format == "messages"
        assert prepared.train[0].input_ids == expected.input_ids
        assert prepared.train[0].completion_mask == expected.completion_mask


@pytest.mark.model
def test_without_completion_only_loss_every_token_is_trained(tmp_path: Path, smol: Any) -> None:
    prepared = prepare(jsonl(tmp_path, "a.jsonl", ALPACA), smol, completion_only_loss=False)
    assert [e.row for e in prepared.train] == [1, 3, 4]  # every row, so the loop checks them all
    for example in prepared.train:
        assert set(example.completion_mask) == {1}
        assert all(answer for _, answer in example.segments)


# ---------------------------------------------------------------------------------------------
# Problems before launch


@pytest.mark.model
def test_every_bad_alpaca_row_is_reported_at_once_with_its_line(tmp_path: Path, smol: Any) -> None:
    rows = [
        {"instruction": "ok", "output": "fine"},
        {"instruction": "no answer", "output": None},
        None,
        {"instruction": "blank answer", "output": "   "},
        {"instruction": "", "output": ""},
        {"instruction": "ok too", "output": "yes"},
    ]
    with pytest.raises(TuneDataError) as info:
        prepare(jsonl(tmp_path, "bad.jsonl", rows), smol)
    problems = [str(p) for p in info.value.problems]
    assert problems == [
        "row 2: output is missing",
        "row 4: output is empty",
        "row 5: instruction is empty",
        "row 5: output is empty",
    ]
    text = str(info.value)
    assert "3 of 5 rows cannot be trained on" in text
    assert all(problem in text for problem in problems)
    assert "Fix: correct or remove these rows in" in text


@pytest.mark.model
def test_every_bad_conversation_is_reported(tmp_path: Path, smol: Any) -> None:
    good = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    csv = tmp_path / "m.csv"
    cells = [
        json.dumps(good),
        json.dumps([{"role": "user", "content": "only a question"}]),
        json.dumps([{"role": "robot", "content": "x"}, {"role": "assistant", "content": ""}]),
        json.dumps([{"content": "who?"}, {"role": "assistant", "content": None}]),
        "[not json",
        json.dumps(good),
    ]
    body = "".join('"' + cell.replace('"', '""') + '"\n' for cell in cells)
    csv.write_text("messages\n" + body, encoding="utf-8")
    with pytest.raises(TuneDataError) as info:
        prepare(csv, smol)
    by_row = {(p.row, p.message.split(" (")[0].split(";")[0]) for p in info.value.problems}
    assert by_row == {
        (2, "messages has no assistant turn to learn from"),
        (3, "turn 1 has role 'robot'"),
        (3, "turn 2"),
        (4, "turn 1 has no role"),
        (4, "turn 2 has no text content"),
        (5, "messages is not valid JSON"),
    }
    assert "4 of 6 rows" in str(info.value)


@pytest.mark.model
def test_label_values_missing_from_the_label_map_name_their_rows(tmp_path: Path, smol: Any) -> None:
    data = tmp_path / "s.tsv"
    data.write_text("sentence\tlabel\ngood\t1\nodd\t2\nbad\t0\nnull\t\n", encoding="utf-8")
    with pytest.raises(TuneDataError) as info:
        prepare(data, smol, format="template", template="sst2-sentiment")
    assert [p.row for p in info.value.problems] == [2, 4]
    assert "label value '2'" in info.value.problems[0].message
    assert "has no entry in label_map" in str(info.value)


@pytest.mark.model
def test_an_unmapped_template_variable_is_one_problem_of_the_file(
    tmp_path: Path, smol: Any
) -> None:
    data = tmp_path / "s.csv"
    data.write_text("text,label\ngood,1\nbad,0\n", encoding="utf-8")
    with pytest.raises(TuneDataError) as info:
        prepare(data, smol, template="sst2-sentiment")
    [problem] = info.value.problems
    assert problem.row is None and problem.message.startswith("every row: ")
    assert "variable 'sentence' is not a column" in str(info.value)
    assert "column_map" in str(info.value)


@pytest.mark.model
def test_missing_alpaca_columns_and_bad_template_names_are_file_problems(
    tmp_path: Path, smol: Any
) -> None:
    data = jsonl(tmp_path, "a.jsonl", [{"instruction": "x", "response": "y"}])
    with pytest.raises(TuneDataError, match="needs the columns instruction and output"):
        prepare(data, smol, format="alpaca")
    mapped = prepare(data, smol, column_map={"output": "response"})  # auto, after mapping
    assert mapped.format == "alpaca" and smol.decode(trained(mapped.train[0])) == "y" + END
    with pytest.raises(TuneDataError, match="no template named 'nope'"):
        prepare(data, smol, format="template", template="nope")


@pytest.mark.model
def test_a_base_model_cannot_train_chat_formats(tmp_path: Path, gemma: Any) -> None:
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    with pytest.raises(TuneDataError, match="completion-mode template") as info:
        prepare(jsonl(tmp_path, "m.jsonl", [{"messages": chat}]), gemma)
    assert "has\nnone" not in str(info.value) and "no chat template" not in str(info.value)
    data = tmp_path / "s.csv"
    data.write_text("sentence,label\ngood,1\n", encoding="utf-8")
    with pytest.raises(TuneDataError, match="is in chat mode but the model has no chat template"):
        prepare(data, gemma, template="sst2-sentiment")


@pytest.mark.model
def test_data_loading_errors_propagate_unchanged(tmp_path: Path, smol: Any) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "output": "b"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DatasetError) as info:
        prepare(broken, smol)
    assert info.value.line == 2 and not isinstance(info.value, TuneDataError)
    with pytest.raises(DatasetError, match="does not exist"):
        prepare(tmp_path / "missing.jsonl", smol)


# ---------------------------------------------------------------------------------------------
# Truncation


@pytest.mark.model
def test_long_rows_are_cut_at_the_right_and_named_in_warnings(tmp_path: Path, smol: Any) -> None:
    long_answer = " ".join(["word"] * 60)
    rows = [
        {"instruction": "short", "output": "ok"},
        {"instruction": "long", "output": long_answer},
    ]
    prepared = prepare(jsonl(tmp_path, "a.jsonl", rows), smol, max_length=48)
    short, long = prepared.train
    assert not short.truncated and long.truncated
    assert len(long.input_ids) == len(long.completion_mask) == 48
    assert long.completion_mask[-1] == 1 and long.segments[1] == (long_answer + END, True)
    assert prepared.stats.truncated_rows == [2] and prepared.stats.max > 48
    assert prepared.stats.max_length == 48 and prepared.stats.min == short.n_tokens
    assert DataProblem(2, f"{prepared.stats.max} tokens, cut to 48") in prepared.warnings
    assert any("1 row(s) are longer than max_length 48" in w.message for w in prepared.warnings)
    assert "Truncated: 1 rows (2)" in prepared.summary()


@pytest.mark.model
def test_a_row_whose_answer_would_be_cut_away_entirely_is_an_error(
    tmp_path: Path, smol: Any
) -> None:
    rows = [
        {"instruction": "short", "output": "ok"},
        {"instruction": " ".join(["very long prompt"] * 30), "output": "lost"},
    ]
    with pytest.raises(TuneDataError) as info:
        prepare(jsonl(tmp_path, "a.jsonl", rows), smol, max_length=48)
    [problem] = info.value.problems
    assert problem.row == 2 and "none of the answer would be learned" in problem.message
    assert "raise it above" in str(info.value)


# ---------------------------------------------------------------------------------------------
# Limit, split, detection


def test_eval_count_rounds_and_keeps_one_row_each_side() -> None:
    assert eval_count(100, 0.1) == 10
    assert eval_count(2, 0.1) == 1  # at least one eval row when asked for
    assert eval_count(1, 0.5) == 0 and eval_count(50, 0.0) == 0
    assert eval_count(3, 0.85) == 2  # one row always stays for training


def test_split_is_seeded_deterministic_and_disjoint() -> None:
    examples = [TrainExample(i, (("x", True),), [i], [1], False) for i in range(1, 41)]
    train, held = split_examples(examples, 0.25, seed=3)
    again = split_examples(examples, 0.25, seed=3)
    other = split_examples(examples, 0.25, seed=4)
    assert (train, held) == again and held != other[1]
    assert len(held) == 10 and len(train) == 30
    assert sorted(e.row for e in train + held) == list(range(1, 41))
    assert [e.row for e in held] == sorted(e.row for e in held)  # file order kept


@pytest.mark.model
def test_limit_split_and_warnings_through_prepare(tmp_path: Path, smol: Any) -> None:
    rows = [{"instruction": f"Repeat {i}", "output": str(i)} for i in range(30)]
    path = jsonl(tmp_path, "a.jsonl", rows)
    prepared = prepare(path, smol, seed=5, limit=20, eval_split=0.2)
    assert len(prepared.dataset) == 20 and len(prepared.train) == 16 and len(prepared.eval) == 4
    assert {e.row for e in prepared.train}.isdisjoint({e.row for e in prepared.eval})
    assert {e.row for e in prepared.train + prepared.eval} == set(range(1, 21))
    same = prepare(path, smol, seed=5, limit=20, eval_split=0.2)
    assert [e.row for e in same.eval] == [e.row for e in prepared.eval]
    other = prepare(path, smol, seed=6, limit=20, eval_split=0.2)  # the seed reaches the split
    assert [e.row for e in other.eval] != [e.row for e in prepared.eval]
    assert any("only 4 row(s)" in w.message for w in prepared.warnings)
    assert prepared.stats.n == 20
    one = prepare(path, smol, limit=1, eval_split=0.1)
    assert len(one.train) == 1 and not one.eval
    assert any("no eval rows" in w.message for w in one.warnings)


def test_detect_format_from_columns() -> None:
    assert detect_format(["id", "messages"]) == "messages"
    assert detect_format(["conversations"], template="sst2-sentiment") == "messages"
    assert detect_format(["sentence", "label"], template="sst2-sentiment") == "template"
    assert detect_format(["instruction", "input", "output"]) == "alpaca"
    assert detect_format(["instruction", "instances", "id"]) == "alpaca"
    with pytest.raises(TuneDataError) as info:
        detect_format(["sentence", "label"])
    text = str(info.value)
    assert "sentence, label" in text and "choose a template" in text and "column_map" in text
    assert info.value.problems[0].row is None


@pytest.mark.model
def test_auto_detection_end_to_end(tmp_path: Path, smol: Any) -> None:
    chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    messages = prepare(
        jsonl(tmp_path, "m.jsonl", [{"messages": chat}]), smol, template="sst2-sentiment"
    )
    assert messages.format == "messages"
    assert any("is not used" in w.message for w in messages.warnings)  # the template is ignored
    data = tmp_path / "s.csv"
    data.write_text("sentence,label\ngood,1\n", encoding="utf-8")
    assert prepare(data, smol, template="sst2-sentiment").format == "template"
    with pytest.raises(TuneDataError, match="cannot tell the training format"):
        prepare(data, smol)


def test_data_problem_text() -> None:
    assert str(DataProblem(12, "output is empty")) == "row 12: output is empty"
    assert str(DataProblem(None, "no rows")) == "no rows"
    error = TuneDataError([DataProblem(i, "output is empty") for i in range(1, 15)], rows=20)
    text = str(error)
    assert "14 of 20 rows" in text and "row 10: output is empty" in text
    assert "row 11:" not in text and "and 4 more problems" in text
    copy = pickle.loads(pickle.dumps(error))  # e.g. raised in a worker process
    assert copy.problems == error.problems and str(copy) == text


# ---------------------------------------------------------------------------------------------
# The shared public data


@pytest.mark.model
def test_real_sst2_through_the_chat_template(smol: Any) -> None:
    path = shared(SST2_TRAIN)
    prepared = prepare(path, smol, template="sst2-sentiment", limit=200, eval_split=0.1)
    template = load_template("sst2-sentiment")
    rows = load_dataset(path, policy=HostingPolicy.desktop()).rows[:200]
    assert prepared.dataset.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(prepared.train) == 180 and len(prepared.eval) == 20
    for example in prepared.train[:25] + prepared.eval[:5]:
        row = rows[example.row - 1]  # TSV: data row numbers
        built = build_prompt(template, row, [], smol)
        assert example.input_ids[: example.prompt_tokens] == ids(smol, built.text, special=False)
        assert smol.decode(trained(example)) == built.answer + END
        assert built.answer in ("positive", "negative")


@pytest.mark.model
def test_real_self_instruct_seed_tasks_are_flattened_alpaca(smol: Any) -> None:
    path = shared(SEED_TASKS)
    prepared = prepare(path, smol, max_length=2048, eval_split=0.1)
    tasks = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    instances = sum(len(task["instances"]) for task in tasks)
    assert prepared.format == "alpaca" and prepared.template is not None
    assert prepared.template.name == "alpaca-instruction"
    assert prepared.stats.n == instances == len(prepared.train) + len(prepared.eval)
    by_row = {e.row: e for e in prepared.train + prepared.eval}
    assert set(by_row) <= set(range(1, len(tasks) + 1))  # task lines
    first_line = min(by_row)
    task = tasks[first_line - 1]
    example = by_row[first_line]
    assert smol.decode(trained(example)) == task["instances"][0]["output"] + END
    assert task["instruction"] in example.segments[0][0]
    summary = prepared.summary()
    for part in ("Format: alpaca through template 'alpaca-instruction'", "Split:", "median"):
        assert part in summary
