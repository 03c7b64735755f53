"""Assemble the tabs into the studio's Blocks app and launch it."""

from __future__ import annotations

import gc
from pathlib import Path

import gradio as gr

from studio import __version__
from studio.services import Services, create_services
from studio.ui.compare.tab import build_compare_tab
from studio.ui.data.tab import build_data_tab
from studio.ui.experiments.tab import build_experiments_tab
from studio.ui.playground.tab import build_playground_tab
from studio.ui.prompts.tab import build_prompts_tab
from studio.ui.start.tab import build_start_tab
from studio.ui.tune.tab import build_tune_tab

CSS_PATH = Path(__file__).with_name("studio.css")


def build_app(services: Services | None = None) -> gr.Blocks:
    """The whole studio UI. Tabs are added here as their features land."""
    services = services or create_services()
    settings, policy = services.settings, services.policy
    # Where the data lives is the operator's business: visitors of a hosted studio see the rules.
    where = (
        f"Data: `{settings.home}` · store: `{services.store.url}`"
        if policy.visitors_are_operators
        else f"**{policy.describe()}**"
    )
    with gr.Blocks(title="Instruct Studio", analytics_enabled=False) as app:
        gr.Markdown(
            f"## Instruct Studio <small>v{__version__}</small>\n"
            f"Draft prompts, measure them, tune adapters, measure again. {where}",
            elem_id="studio-header",
        )
        with gr.Tabs():
            with gr.Tab("Start here", id="start"):
                build_start_tab(services)
            with gr.Tab("Prompts", id="prompts"):
                build_prompts_tab(services)
            with gr.Tab("Compare", id="compare"):
                build_compare_tab(services)
            with gr.Tab("Tune", id="tune"):
                build_tune_tab(services)
            with gr.Tab("Data", id="data"):
                build_data_tab(services)
            with gr.Tab("Experiments", id="experiments"):
                build_experiments_tab(services)
            with gr.Tab("Playground", id="playground"):
                build_playground_tab(services)
    # STUDIO_CONCURRENCY requests of each kind at once; at most STUDIO_QUEUE_SIZE waiting.
    app.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    app.studio_services = services  # for tests and the CLI
    return app


def launch(
    services: Services | None = None,
    host: str | None = None,
    port: int | None = None,
    share: bool = False,
    inbrowser: bool = False,
    prevent_thread_lock: bool = False,
) -> gr.Blocks:
    """Build and serve the app; host/port default to GRADIO_SERVER_NAME/PORT or 127.0.0.1:7860.
    The listening address counts towards the hosting mode (see studio.hosting)."""
    services = services or create_services(host=host)
    policy = services.policy
    # The operator sees which promises this server keeps (SECURITY.md), in its own log.
    print(f"Instruct Studio: {policy.mode.value} mode. {policy.describe()}".rstrip(), flush=True)
    app = build_app(services)
    services.tuning.watch()  # queued training jobs start even with no tab open
    # The UI lives as long as the server: keep it out of full collections (studio.runtime.heap).
    # Frozen without collecting first: a full pass here costs ~0.25 s of start-up, and the few
    # cycles start-up leaves (~5 MiB) are collected by the next heap.settle(), after a model load.
    gc.freeze()
    gc.enable()  # `studio serve` pauses the collector while the UI is built (studio/cli/serve.py)
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        inbrowser=inbrowser,
        prevent_thread_lock=prevent_thread_lock,
        css_paths=[CSS_PATH],
        footer_links=["api", "settings"],
        # Handlers turn every user-facing error into a message; in a hosted studio anything
        # else (an OSError naming a server path) reaches visitors as a bare 'Error'.
        show_error=services.policy.visitors_are_operators,
        # Uploads above STUDIO_MAX_UPLOAD_MB are refused before they reach the disk.
        max_file_size=services.settings.max_upload_mb * 2**20,
        auth=services.settings.auth_pairs,  # STUDIO_AUTH; None = no login
        auth_message="Instruct Studio: log in with a user and password from STUDIO_AUTH.",
    )
    return app
