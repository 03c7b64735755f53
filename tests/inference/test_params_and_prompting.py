import pytest
from pydantic import ValidationError

from studio.inference.params import SamplingParams
from studio.playground.prompting import choose_mode, conversation_prompt


def test_stop_strings_split_by_line_and_unescape() -> None:
    params = SamplingParams(stop="###\n\\n\\nUser:\n")
    assert params.stop == ("###", "\n\nUser:")


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", -1), ("top_p", 0), ("max_new_tokens", 0), ("repetition_penalty", 9)],
)
def test_invalid_settings_name_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError, match=field):
        SamplingParams(**{field: value})


def test_unknown_settings_are_rejected() -> None:
    with pytest.raises(ValidationError, match="temprature"):
        SamplingParams(temprature=1.0)


def test_temperature_zero_is_greedy() -> None:
    assert SamplingParams(temperature=0).greedy


class BaseTokenizer:
    chat_template = None


def test_completion_mode_continues_the_document() -> None:
    history = [
        {"role": "user", "content": "Once upon"},
        {"role": "assistant", "content": " a time"},
    ]
    text = conversation_prompt(BaseTokenizer(), "completion", "Story:", history, ", there")
    assert text == "Story:\n\nOnce upon a time, there"


def test_mode_auto_and_chat_on_a_base_model() -> None:
    assert choose_mode("auto", BaseTokenizer()) == "completion"
    with pytest.raises(ValueError, match="no chat template"):
        choose_mode("chat", BaseTokenizer())
