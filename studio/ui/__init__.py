"""The Gradio UI: one builder per tab, assembled by build_app(). The only package importing gradio."""

from studio.ui.app import build_app, launch

__all__ = ["build_app", "launch"]
