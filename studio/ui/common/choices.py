"""What a user can pick in more than one tab: the usable models, by one rule for every tab, and
the templates of the library."""

from __future__ import annotations

import gradio as gr

from studio.models.catalog import list_models
from studio.settings import Settings
from studio.templates import TemplateError, list_templates


def model_choices(settings: Settings, first: str | None = None, adapters: bool = True) -> list[str]:
    """Every usable model spec: bundled models, the trained adapters (unless `adapters` is False:
    adapters cannot be trained on) and the Hugging Face cache. `first` (the default model unless
    given) leads the list when it is not among them: the dropdown starts on a choice."""
    first = first or settings.default_model
    adapters_dir = settings.adapters_dir if adapters else None
    usable = [
        entry.spec for entry in list_models(settings.models_dir, adapters_dir) if entry.usable
    ]
    return usable if first in usable else [first, *usable]


def template_names(settings: Settings) -> list[str]:
    """The names of the library's templates (STUDIO_PROMPTS_DIR); a broken library file is a
    warning and no choices."""
    try:
        return [template.name for template in list_templates(settings.prompts_dir)]
    except TemplateError as exc:
        gr.Warning(str(exc))
        return []
