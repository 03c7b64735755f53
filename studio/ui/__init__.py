"""The Gradio UI: one builder per tab, assembled by build_app(); the only gradio importer."""

from studio.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
