"""Playground tab: chat with any model, streamed and stoppable; every exchange is logged."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr
from pydantic import ValidationError

from studio.inference.params import SamplingParams
from studio.models.catalog import list_models
from studio.models.errors import ModelError
from studio.models.loading import QUANTIZATIONS
from studio.playground.engine import ChatRequest, Delta, Finished, Status
from studio.services import Services
from studio.ui.history import build_history_panel
from studio.ui.stops import StopRegistry


def _model_choices(services: Services) -> list[str]:
    return [
        entry.spec
        for entry in list_models(services.settings.models_dir, services.settings.adapters_dir)
        if entry.usable
    ]


def _seed(value: Any) -> int | None:
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        return int(float(text)) if float(text).is_integer() else int(text)
    except ValueError:
        raise gr.Error(f"Invalid setting 'seed': '{text}' is not a whole number.") from None


def _params(
    temperature, top_p, top_k, max_new_tokens, repetition_penalty, stop, seed
) -> SamplingParams:
    try:
        return SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=int(top_k),
            max_new_tokens=int(max_new_tokens),
            repetition_penalty=repetition_penalty,
            stop=tuple((stop or "").split("\n")),
            seed=_seed(seed),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise gr.Error(f"Invalid setting '{first['loc'][0]}': {first['msg']}.") from None


def stats_markdown(finished: Finished) -> str:
    r = finished.result
    first = f"{r.first_token_s * 1000:.0f} ms" if r.first_token_s is not None else "-"
    if r.prompt_tokens is None or r.completion_tokens is None:  # a served model that did not say
        tokens, rate = "token counts not reported by the server", ""
    else:
        tokens = f"{r.prompt_tokens} prompt + {r.completion_tokens} new tokens"
        speed = r.completion_tokens / r.latency_s if r.latency_s > 0 else 0.0
        rate = f" ({speed:.1f} tok/s)"
    return (
        f"**#{finished.exchange_id}** · {tokens} · {r.latency_s:.2f} s{rate}"
        f" · first token {first} · seed {r.seed} · finish: {r.finish_reason}"
    )


def build_playground_tab(services: Services) -> None:
    stops = StopRegistry()
    default_model = services.settings.default_model
    conversation = gr.State({"id": None, "messages": []})
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row():
                model = gr.Dropdown(
                    _model_choices(services) or [default_model],
                    value=default_model,
                    label="Model",
                    info="Bundled alias, Hugging Face id, local folder or .gguf path.",
                    allow_custom_value=True,
                    scale=3,
                )
                quantization = gr.Radio(list(QUANTIZATIONS), value="none", label="Quantization")
                mode = gr.Radio(
                    ["auto", "chat", "completion"],
                    value="auto",
                    label="Mode",
                    info="auto: chat template if the model has one",
                )
            status = gr.Markdown("", elem_id="playground-status")
            chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="playground-chat")
            with gr.Row():
                message = gr.Textbox(
                    placeholder="Message (Enter to send, Shift+Enter for a new line)",
                    show_label=False,
                    scale=6,
                    elem_id="playground-message",
                )
                send = gr.Button("Send", variant="primary", scale=1, elem_id="playground-send")
                stop = gr.Button("Stop", variant="stop", scale=1, elem_id="playground-stop")
                new_chat = gr.Button("New chat", scale=1)
            stats = gr.Markdown("", elem_id="playground-stats")
            with gr.Accordion("Prompt as sent to the model", open=False):
                prompt_view = gr.Code(label="Exact prompt text", language=None, lines=6)
        with gr.Column(scale=1):
            system_prompt = gr.Textbox(label="System prompt", lines=3, placeholder="Optional")
            temperature = gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)")
            top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p")
            top_k = gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)")
            max_new_tokens = gr.Slider(1, 2048, value=256, step=1, label="Max new tokens")
            repetition_penalty = gr.Slider(
                0.8, 2.0, value=1.0, step=0.01, label="Repetition penalty"
            )
            stop_strings = gr.Textbox(label="Stop strings (one per line)", lines=2)
            seed = gr.Textbox(
                label="Seed",
                placeholder="blank = random (the seed used is recorded)",
                elem_id="playground-seed",
            )

    settings_inputs = [
        model,
        quantization,
        mode,
        system_prompt,
        temperature,
        top_p,
        top_k,
        max_new_tokens,
        repetition_penalty,
        stop_strings,
        seed,
    ]

    def respond(
        user_text,
        conv,
        model_spec,
        quant,
        chat_mode,
        system,
        temp,
        p,
        k,
        max_new,
        rep,
        stop_text,
        seed_value,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        params = _params(temp, p, k, max_new, rep, stop_text, seed_value)
        conv = {"id": conv.get("id") or str(uuid.uuid4()), "messages": list(conv["messages"])}
        try:
            chat = ChatRequest(
                model=model_spec or default_model,
                user_message=user_text or "",
                params=params,
                quantization=quant,
                mode=chat_mode,
                system_prompt=system or "",
                history=tuple(conv["messages"]),
                conversation_id=conv["id"],
            )
        except ValueError as exc:
            raise gr.Error(str(exc)) from None
        shown = [*conv["messages"], {"role": "user", "content": chat.user_message}]
        yield conv, [*shown, {"role": "assistant", "content": ""}], "", "", "", gr.skip()
        event = stops.begin(request.session_hash)
        try:
            for item in services.playground.stream(chat, event):
                if isinstance(item, Status):
                    yield conv, gr.skip(), "", item.message, gr.skip(), gr.skip()
                elif isinstance(item, Delta):
                    reply = {"role": "assistant", "content": item.text}
                    yield conv, [*shown, reply], "", "", gr.skip(), gr.skip()
                elif isinstance(item, Finished):
                    conv["messages"] = [
                        *shown,
                        {"role": "assistant", "content": item.record.response},
                    ]
                    yield (
                        conv,
                        conv["messages"],
                        "",
                        "",
                        stats_markdown(item),
                        item.record.prompt_text,
                    )
        except (ModelError, ValueError) as exc:
            raise gr.Error(str(exc)) from None
        finally:
            stops.end(request.session_hash, event)

    outputs = [conversation, chatbot, message, status, stats, prompt_view]
    inputs = [message, conversation, *settings_inputs]
    send_event = send.click(respond, inputs, outputs, api_name="chat")
    message.submit(respond, inputs, outputs, api_visibility="private")

    def request_stop(request: gr.Request) -> None:
        stops.stop(request.session_hash)

    # Not queued: a stop must get through while this session's generation holds the queue slot.
    stop.click(request_stop, None, None, queue=False, api_name="stop")
    new_chat.click(
        lambda: ({"id": None, "messages": []}, [], "", "", ""),
        None,
        [conversation, chatbot, status, stats, prompt_view],
        api_visibility="private",
    )
    history = build_history_panel(services)
    history.connect(
        reload_outputs=[
            conversation,
            chatbot,
            model,
            quantization,
            mode,
            *settings_inputs[3:],
            prompt_view,
        ],
        refresh_after=send_event,
    )
