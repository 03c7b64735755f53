"""Playground tab layout and wiring: the conversation, the model and sampling controls, and the
history of every exchange (selecting one reloads its conversation and settings)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.models.loading import QUANTIZATIONS
from studio.services import Services
from studio.settings import Settings
from studio.ui.common.choices import model_choices
from studio.ui.common.stops import wire_stop
from studio.ui.playground.handlers import PlaygroundHandlers, new_conversation
from studio.ui.playground.views import HISTORY_COLUMNS


@dataclass
class History:
    search: gr.Textbox
    refresh: gr.Button
    table: gr.Dataframe
    detail: gr.Markdown


@dataclass
class Chat:
    """The conversation and the controls next to it."""

    model: gr.Dropdown
    quantization: gr.Radio
    mode: gr.Radio
    status: gr.Markdown
    chatbot: gr.Chatbot
    message: gr.Textbox
    send: gr.Button
    stop: gr.Button
    new_chat: gr.Button
    stats: gr.Markdown
    prompt: gr.Code


@dataclass
class PlaygroundTab:
    handlers: PlaygroundHandlers
    conversation: gr.State
    chat: Chat
    settings: list[Any]  # system prompt, temperature ... seed: what a reload restores
    history: History

    @property
    def inputs(self) -> list[Any]:
        """The inputs of Send (and of the /chat API), in PlaygroundHandlers.respond order."""
        c = self.chat
        return [c.message, self.conversation, c.model, c.quantization, c.mode, *self.settings]

    @property
    def outputs(self) -> list[Any]:
        """What PlaygroundHandlers.respond fills, in order."""
        c = self.chat
        return [self.conversation, c.chatbot, c.message, c.status, c.stats, c.prompt]


def _chat_column(settings: Settings) -> Chat:
    with gr.Row():
        model = gr.Dropdown(
            model_choices(settings), value=settings.default_model, label="Model",
            info="Bundled alias, Hugging Face id, local folder or .gguf path.",
            allow_custom_value=True, scale=3,
        )  # fmt: skip
        quantization = gr.Radio(list(QUANTIZATIONS), value="none", label="Quantization")
        mode = gr.Radio(["auto", "chat", "completion"], value="auto", label="Mode",
                        info="auto: chat template if the model has one")  # fmt: skip
    status = gr.Markdown("", elem_id="playground-status")
    chatbot = gr.Chatbot(label="Conversation", height=420, elem_id="playground-chat")
    with gr.Row():
        message = gr.Textbox(
            placeholder="Message (Enter to send, Shift+Enter for a new line)",
            show_label=False, scale=6, elem_id="playground-message",
        )  # fmt: skip
        send = gr.Button("Send", variant="primary", scale=1, elem_id="playground-send")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="playground-stop")
        new_chat = gr.Button("New chat", scale=1)
    stats = gr.Markdown("", elem_id="playground-stats")
    with gr.Accordion("Prompt as sent to the model", open=False):
        prompt = gr.Code(label="Exact prompt text", language=None, lines=6)
    return Chat(model, quantization, mode, status, chatbot, message, send, stop, new_chat, stats,
                prompt)  # fmt: skip


def _settings_column() -> list[Any]:
    """System prompt, temperature, top-p, top-k, max new tokens, repetition penalty, stop, seed."""
    return [
        gr.Textbox(label="System prompt", lines=3, placeholder="Optional"),
        gr.Slider(0, 2, value=0.7, step=0.05, label="Temperature (0 = greedy)"),
        gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p"),
        gr.Slider(0, 200, value=50, step=1, label="Top-k (0 = off)"),
        gr.Slider(1, 2048, value=256, step=1, label="Max new tokens"),
        gr.Slider(0.8, 2.0, value=1.0, step=0.01, label="Repetition penalty"),
        gr.Textbox(label="Stop strings (one per line)", lines=2),
        gr.Textbox(
            label="Seed",
            placeholder="blank = random (the seed used is recorded)",
            elem_id="playground-seed",
        ),
    ]


def _history(h: PlaygroundHandlers) -> History:
    with gr.Accordion("History — every exchange is stored; select a row to reload it", open=True):
        with gr.Row():
            search = gr.Textbox(
                placeholder="Search messages and responses", show_label=False, scale=4
            )
            refresh = gr.Button("Refresh", scale=1)
        table = gr.Dataframe(
            value=lambda: h.refresh(),
            headers=HISTORY_COLUMNS,
            interactive=False,
            wrap=True,
            max_height=320,
            elem_id="playground-history",
        )
        detail = gr.Markdown("")
    return History(search, refresh, table, detail)


def _wire(tab: PlaygroundTab) -> None:
    h, c, history = tab.handlers, tab.chat, tab.history
    sent = c.send.click(h.respond, tab.inputs, tab.outputs, api_name="chat")
    c.message.submit(h.respond, tab.inputs, tab.outputs, api_visibility="private")
    wire_stop(c.stop, h.request_stop, None, api_name="stop")
    c.new_chat.click(
        lambda: (new_conversation(), [], "", "", ""),
        None,
        [tab.conversation, c.chatbot, c.status, c.stats, c.prompt],
        api_visibility="private",
    )
    history.refresh.click(h.refresh, history.search, history.table, api_name="history")
    history.search.submit(h.refresh, history.search, history.table, api_visibility="private")
    sent.then(h.refresh, history.search, history.table, api_visibility="private")
    # Selecting a row restores that conversation and the controls it was sent with.
    restored = [tab.conversation, c.chatbot, c.model, c.quantization, c.mode, *tab.settings,
                c.prompt, history.detail]  # fmt: skip
    history.table.select(h.reload, history.table, restored, api_visibility="private")


def build_playground_tab(services: Services) -> PlaygroundTab:
    h = PlaygroundHandlers(services)
    conversation = gr.State(new_conversation())
    with gr.Row():
        with gr.Column(scale=3):
            chat = _chat_column(services.settings)
        with gr.Column(scale=1):
            settings = _settings_column()
    tab = PlaygroundTab(h, conversation, chat, settings, _history(h))
    _wire(tab)
    return tab
