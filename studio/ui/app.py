"""Assemble the tabs into the studio's Blocks app and launch it."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio import __version__, heap
from studio.services import Services, create_services
from studio.ui.compare import build_compare_tab
from studio.ui.experiments import build_experiments_tab
from studio.ui.playground import build_playground_tab
from studio.ui.prompts import build_prompts_tab
from studio.ui.start import build_start_tab
from studio.ui.tune import build_tune_tab

CSS_PATH = Path(__file__).with_name("studio.css")


def build_app(services: Services | None = None) -> gr.Blocks:
    """The whole studio UI. Tabs are added here as their features land."""
    services = services or create_services()
    settings = services.settings
    demo = (
        f"  \n**Demo mode**: training is off; a comparison scores at most "
        f"{settings.demo_max_examples} rows (examples × configurations)."
        if settings.demo
        else ""
    )
    with gr.Blocks(title="Instruct Studio", analytics_enabled=False) as app:
        gr.Markdown(
            f"## Instruct Studio <small>v{__version__}</small>\n"
            "Draft prompts, measure them, tune adapters, measure again. "
            f"Data: `{settings.home}` · store: `{services.store.url}`{demo}",
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
    """Build and serve the app; host/port default to GRADIO_SERVER_NAME/PORT or 127.0.0.1:7860."""
    services = services or create_services()
    app = build_app(services)
    services.watch_tuning_queue()  # queued training jobs start even with no tab open
    heap.settle()  # the UI lives as long as the server: keep it out of full collections
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        inbrowser=inbrowser,
        prevent_thread_lock=prevent_thread_lock,
        css_paths=[CSS_PATH],
        footer_links=["api", "settings"],
        show_error=True,
        # Uploads above STUDIO_MAX_UPLOAD_MB are refused before they reach the disk.
        max_file_size=services.settings.max_upload_mb * 2**20,
        auth=services.settings.auth_pairs,  # STUDIO_AUTH; None = no login
        auth_message="Instruct Studio: log in with a user and password from STUDIO_AUTH.",
    )
    return app
