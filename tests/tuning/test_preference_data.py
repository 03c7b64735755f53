"""Preference data before any training: the three shapes are told apart (and a method that does
not fit its data is refused), each row becomes the exact strings the trainer gets — the prompt
through the model's chat template, each answer as the template writes it, ending at EOS — and
every bad row is reported by its number before a run is queued, by the engine and by `studio
tune --check`, which also previews those strings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.hosting import HostingPolicy
from studio.settings import Settings
from studio.tuning.config import TuneConfigError, flat_config
from studio.tuning.formats import TuneDataError
from studio.tuning.preference_data import (
    detect_preference_format,
    method_format,
    prepare_preference_data,
)
from tests import needs
from tests.tuning.test_cli_tune import studio


def write(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n", encoding="utf-8")
    return path


def test_the_shapes_are_told_apart_and_a_method_must_fit_its_data() -> None:
    assert detect_preference_format(["prompt", "chosen", "rejected"]) == "preference"
    assert detect_preference_format(["conversations", "chosen", "rejected"]) == (
        "sharegpt-preference"
    )
    assert detect_preference_format(["prompt", "completion", "label"]) == "kto"
    assert detect_preference_format(["instruction", "output"]) is None
    assert method_format("dpo", "auto", ["prompt", "chosen", "rejected"]) == "preference"
    with pytest.raises(TuneDataError, match="method kto needs unpaired"):
        method_format("kto", "auto", ["prompt", "chosen", "rejected"])
    with pytest.raises(TuneDataError, match="method orpo needs chosen/rejected pairs"):
        method_format("orpo", "kto", ["prompt", "completion", "label"])
    with pytest.raises(TuneDataError, match="none of its shapes"):
        method_format("dpo", "auto", ["instruction", "output"])
    with pytest.raises(TuneDataError, match="not format 'alpaca'"):
        method_format("dpo", "alpaca", ["instruction", "output"])


def test_method_settings_are_validated() -> None:
    config = flat_config(name="a", data="x", method="dpo", beta=0.3, from_adapter="adapters/s")
    assert (config.preference.method, config.preference.beta) == ("dpo", 0.3)
    with pytest.raises(TuneConfigError, match=r"preference\.method"):
        flat_config(name="a", data="x", method="ppo")
    with pytest.raises(TuneConfigError, match="beta and from_adapter apply to the preference"):
        flat_config(name="a", data="x", beta=0.2)
    with pytest.raises(TuneConfigError, match=r"preference\.beta"):
        flat_config(name="a", data="x", method="dpo", beta=0)


@pytest.fixture(scope="module")
def tokenizer(model_home: Path) -> Any:
    from studio.settings import load_settings
    from studio.tuning.jobs import base_location, load_tokenizer

    settings = load_settings(home=model_home, offline=True)
    return load_tokenizer(base_location("smollm2-135m-instruct", settings))


def prepared(path: Path, tokenizer: Any, method: str = "dpo", **settings: Any) -> Any:
    config = flat_config(name="a", data=str(path), method=method, eval_split=0.0, **settings)
    return prepare_preference_data(config.data, method, tokenizer, HostingPolicy.desktop())


@pytest.mark.model
def test_every_shape_becomes_the_exact_chat_strings(tokenizer: Any, tmp_path: Path) -> None:
    user = [{"role": "user", "content": "Capital of France?"}]
    head = tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=False)
    eos = tokenizer.eos_token
    as_text = {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Rome."}
    as_turns = {
        "prompt": user,
        "chosen": [{"role": "assistant", "content": "Paris."}],
        "rejected": [{"role": "assistant", "content": "Rome."}],
    }
    sharegpt = {
        "conversations": [{"from": "human", "value": "Capital of France?"}],
        "chosen": {"from": "gpt", "value": "Paris."},
        "rejected": {"from": "gpt", "value": "Rome."},
    }
    for number, row in enumerate((as_text, as_turns, sharegpt)):
        data = prepared(write(tmp_path / f"{number}.jsonl", [row]), tokenizer)
        [example] = data.train
        assert (example.prompt, example.chosen, example.rejected) == (
            head,
            "Paris." + eos,
            "Rome." + eos,
        )
        assert tokenizer.decode(example.chosen_ids) == "Paris." + eos
    assert data.format == "sharegpt-preference"
    kto = [{"prompt": "Capital of France?", "completion": "Paris.", "label": True}]
    [example] = prepared(write(tmp_path / "k.jsonl", kto), tokenizer, method="kto").train
    assert (example.prompt, example.chosen, example.label) == (head, "Paris." + eos, True)


@pytest.mark.model
def test_a_system_turn_stays_in_the_prompt_of_the_demo_data(tokenizer: Any) -> None:
    demo = needs.shared_data("preference", "dpo_en_demo.json")
    rows = json.loads(demo.read_text(encoding="utf-8"))
    number = next(i for i, row in enumerate(rows, start=1) if len(row["conversations"]) == 2)
    data = prepared(demo, tokenizer, limit=number, max_length=4096)
    example = next(e for e in data.train if e.row == number)
    system, human = rows[number - 1]["conversations"]
    assert example.prompt.startswith(f"<|im_start|>system\n{system['value']}<|im_end|>")
    assert human["value"] in example.prompt and example.prompt.endswith("assistant\n")
    assert example.chosen == rows[number - 1]["chosen"]["value"] + tokenizer.eos_token


@pytest.mark.model
def test_bad_rows_are_reported_by_number(tokenizer: Any, tmp_path: Path) -> None:
    rows = [
        {"prompt": "Fine?", "chosen": "Yes.", "rejected": "No."},
        {"prompt": "Missing?", "chosen": "Yes.", "rejected": None},
        {"prompt": "Whose?", "chosen": [{"role": "user", "content": "x"}], "rejected": "No."},
        {"prompt": "Empty?", "chosen": "  ", "rejected": "No."},
        {"prompt": "long " * 80, "chosen": "Yes.", "rejected": "No."},
        {"prompt": "Fine too?", "chosen": "Yes.", "rejected": "No."},
    ]
    with pytest.raises(TuneDataError) as caught:
        prepared(write(tmp_path / "bad.jsonl", rows), tokenizer, max_length=64)
    text = str(caught.value)
    assert "4 of 6 rows cannot be trained on" in text
    assert "row 2: rejected is missing" in text
    assert "row 3: chosen must be the assistant's answer" in text
    assert "row 4: chosen is empty" in text
    assert "row 5: the prompt alone is" in text and "filling max_length 64" in text
    assert "row 1:" not in text and "row 6:" not in text
    labels = [{"prompt": "p", "completion": "c", "label": "maybe"}]
    with pytest.raises(TuneDataError, match="row 1: label must be true or false"):
        prepared(write(tmp_path / "k.jsonl", labels), tokenizer, method="kto")


@pytest.mark.model
def test_check_previews_the_strings_and_refuses_bad_rows_before_queueing(
    settings: Settings, tmp_path: Path
) -> None:
    home = settings.home
    good = write(
        tmp_path / "pairs.jsonl",
        [{"prompt": f"Say {w}", "chosen": w, "rejected": "no"} for w in ("hi", "yo", "ok", "up")],
    )
    args = ("tune", "--output", "p", "--method", "dpo", "--beta", "0.2", "--check")
    result = studio(*args, "--data", str(good), home=home)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    assert "Format: preference" in out and "Method: dpo, beta 0.2" in out
    assert "reference: the base with the adapter disabled" in out
    assert "--- chosen (" in out and "<|im_start|>user\nSay" in out and "<|im_end|>" in out
    bad = write(tmp_path / "bad.jsonl", [{"prompt": "p", "chosen": "c", "rejected": ""}])
    result = studio("tune", "--output", "p", "--method", "orpo", "--data", str(bad), home=home)
    assert result.returncode == 2 and "row 1: rejected is empty" in result.stderr
    assert not (home / "adapters" / "p").exists()
