"""Logging and reading playground exchanges and the models they used."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

import pytest

from studio.store import ExchangeRecord, ModelUse, Store, StoreError

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def test_round_trip_keeps_every_field(store: Store, make_record) -> None:
    original = make_record(
        turn=1,
        model_spec="HuggingFaceTB/SmolLM2-135M-Instruct",
        model_source="hub",
        model_resolved_path="/cache/models--HuggingFaceTB/snapshot",
        quantization="4bit",
        system_prompt="Réponds en français. 🇫🇷",
        history=[
            {"role": "user", "content": "Bonjour ✨"},
            {"role": "assistant", "content": "Salut ! 日本語もOK"},
        ],
        user_message="Quelle est la capitale ? «Ωμέγα»",
        prompt_text="<|im_start|>system\nRéponds…<|im_end|>\n",
        parameters={
            "temperature": 0.7,
            "top_p": 0.9,
            "top_k": 50,
            "max_new_tokens": 128,
            "repetition_penalty": 1.1,
            "stop": ["</s>", "\n\nUser:"],
            "seed": 1234,
        },
        response="Paris 🗼",
        first_token_ms=7.25,
        finish_reason="length",
        error=None,
    )
    exchange_id = store.log_exchange(original)
    loaded = store.get_exchange(exchange_id)
    assert loaded is not None
    assert loaded.created_at is not None and loaded.created_at.tzinfo is not None
    assert abs(loaded.created_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert loaded == dataclasses.replace(original, id=exchange_id, created_at=loaded.created_at)


def test_error_exchange_and_explicit_created_at_round_trip(store: Store, make_record) -> None:
    paris = timezone(timedelta(hours=1))
    original = make_record(
        mode="completion",
        response="",
        finish_reason="error",
        error="CUDA out of memory",
        created_at=datetime(2025, 3, 1, 13, 0, 0, 123456, tzinfo=paris),
    )
    loaded = store.get_exchange(store.log_exchange(original))
    assert loaded is not None
    assert loaded.created_at == datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    assert loaded.created_at.utcoffset() == timedelta(0)
    assert (loaded.error, loaded.finish_reason, loaded.mode) == (
        "CUDA out of memory",
        "error",
        "completion",
    )


def test_missing_exchange_is_none(store: Store) -> None:
    assert store.get_exchange(12345) is None


def test_list_is_newest_first_with_limit(store: Store, make_record) -> None:
    late = store.log_exchange(make_record(created_at=T0 + timedelta(hours=2)))
    early = store.log_exchange(make_record(created_at=T0))
    middle = store.log_exchange(make_record(created_at=T0 + timedelta(hours=1)))
    tie = store.log_exchange(make_record(created_at=T0 + timedelta(hours=1)))
    assert [s.id for s in store.list_exchanges()] == [late, tie, middle, early]
    assert [s.id for s in store.list_exchanges(limit=2)] == [late, tie]


def test_summary_fields_and_preview(store: Store, make_record) -> None:
    message = "é" * 50 + "x" * 100
    exchange_id = store.log_exchange(
        make_record(user_message=message, quantization="8bit", created_at=T0)
    )
    (summary,) = store.list_exchanges()
    assert summary.id == exchange_id
    assert summary.preview == message[:80]
    assert summary.created_at == T0
    assert (summary.model_spec, summary.quantization) == ("smollm2-135m-instruct", "8bit")
    assert (summary.completion_tokens, summary.latency_ms, summary.finish_reason) == (
        3,
        42.5,
        "eos",
    )
    assert (summary.conversation_id, summary.turn) == (
        "00000000-0000-4000-8000-000000000001",
        0,
    )


def test_search_is_case_insensitive_over_message_and_response(store: Store, make_record) -> None:
    in_message = store.log_exchange(make_record(user_message="Tell me about PENGUINS"))
    in_response = store.log_exchange(make_record(response="Penguins live in the south."))
    store.log_exchange(make_record(user_message="Nothing here", response="Nope"))
    store.log_exchange(make_record(user_message="100 percent", response="plain"))
    found = {s.id for s in store.list_exchanges(search="penguin")}
    assert found == {in_message, in_response}
    assert store.list_exchanges(search="%") == []
    assert store.list_exchanges(search="_") == []
    assert len(store.list_exchanges(search="")) == 4


def test_model_filter(store: Store, make_record) -> None:
    bundled = store.log_exchange(make_record())
    hub = store.log_exchange(make_record(model_spec="org/other-model", model_source="hub"))
    assert [s.id for s in store.list_exchanges(model_spec="org/other-model")] == [hub]
    assert [s.id for s in store.list_exchanges(model_spec="smollm2-135m-instruct")] == [bundled]
    assert store.list_exchanges(model_spec="never-used") == []


def test_conversation_in_turn_order_up_to_an_id(store: Store, make_record) -> None:
    conversation = "11111111-1111-4111-8111-111111111111"
    ids = [
        store.log_exchange(make_record(conversation_id=conversation, turn=turn))
        for turn in (0, 1, 2)
    ]
    store.log_exchange(make_record(conversation_id="other", turn=0))
    turns = store.conversation(conversation)
    assert [(r.id, r.turn) for r in turns] == list(zip(ids, [0, 1, 2], strict=True))
    assert [r.turn for r in store.conversation(conversation, upto_id=ids[1])] == [0, 1]
    assert store.conversation("unknown") == []


def test_models_used_counts_exchanges(store: Store, make_record) -> None:
    for _ in range(3):
        store.log_exchange(make_record())
    store.log_exchange(make_record(model_spec="/models/local-llm", model_source="local"))
    store.record_model_use("model.gguf", "gguf", "/converted/model")
    uses = {use.spec: use for use in store.models_used()}
    assert {spec: use.exchanges for spec, use in uses.items()} == {
        "smollm2-135m-instruct": 3,
        "/models/local-llm": 1,
        "model.gguf": 0,
    }
    assert uses["model.gguf"].resolved_path == "/converted/model"
    assert all(isinstance(use, ModelUse) for use in uses.values())
    assert store.models_used()[0].spec == "model.gguf"  # most recently used first


def test_record_model_use_upserts_and_touches_last_used(store: Store) -> None:
    first_id = store.record_model_use("org/model", "hub")
    (before,) = store.models_used()
    second_id = store.record_model_use("org/model", "hub", "/resolved/snapshot")
    (after,) = store.models_used()
    assert first_id == second_id
    assert after.first_used_at == before.first_used_at
    assert after.last_used_at > before.last_used_at
    assert after.first_used_at.tzinfo is not None
    assert after.resolved_path == "/resolved/snapshot"
    store.record_model_use("org/model", "hub")
    assert store.models_used()[0].resolved_path == "/resolved/snapshot"


def test_failed_log_leaves_nothing_behind(store: Store, make_record) -> None:
    with pytest.raises(StoreError, match="could not log an exchange") as caught:
        store.log_exchange(make_record(model_spec="brand-new/model", user_message=None))
    assert "required field" in str(caught.value)
    assert store.models_used() == []
    assert store.list_exchanges() == []


def test_failed_log_does_not_touch_an_existing_model(store: Store, make_record) -> None:
    store.record_model_use("smollm2-135m-instruct", "bundled")
    (before,) = store.models_used()
    with pytest.raises(StoreError):
        store.log_exchange(make_record(response=None, created_at=T0 + timedelta(days=3650)))
    assert store.models_used() == [before]


@pytest.mark.parametrize(
    "field, value",
    [
        ("quantization", "2bit"),
        ("mode", "instruct"),
        ("finish_reason", "done"),
        ("model_source", "ftp"),
        ("created_at", datetime(2025, 1, 1)),
    ],
)
def test_invalid_values_are_rejected_before_writing(
    store: Store, make_record, field: str, value: object
) -> None:
    with pytest.raises(ValueError, match=field):
        store.log_exchange(make_record(**{field: value}))
    assert store.models_used() == []


def test_record_model_use_rejects_unknown_source(store: Store) -> None:
    with pytest.raises(ValueError, match="source must be one of"):
        store.record_model_use("x", "ftp")


def test_records_are_frozen(make_record) -> None:
    record: ExchangeRecord = make_record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.turn = 3  # type: ignore[misc]
