"""Prompt templates, the engine half of the Prompts tab: the YAML library in studio/prompts/,
strict validation, rows rendered through studio.rendering's bounded sandbox, and the exact
few-shot prompt text a model sees.

Callers import from here. The modules split the work by concern: schema (the PromptTemplate
record, its validation and parsing), render (a row through a template, the few-shot block, the
built prompt), files (the library folder on disk), library (versions in the store, and who may
change them), preview (the Prompts tab's live preview on a data row) and fewshot (choosing the
shots).
"""

from studio.rendering import (
    RenderLimitError,
    TemplateError,
    configure_rendering,
    rendering_limits,
)
from studio.settings import PROMPTS_DIR
from studio.templates.files import list_templates, load_template, save_template
from studio.templates.render import (
    BuiltPrompt,
    RenderedExample,
    build_prompt,
    fewshot_block,
    render_fields,
)
from studio.templates.schema import NAME_PATTERN, PromptTemplate, parse_template

__all__ = [
    "NAME_PATTERN",
    "PROMPTS_DIR",
    "BuiltPrompt",
    "PromptTemplate",
    "RenderLimitError",
    "RenderedExample",
    "TemplateError",
    "build_prompt",
    "configure_rendering",
    "fewshot_block",
    "list_templates",
    "load_template",
    "parse_template",
    "render_fields",
    "rendering_limits",
    "save_template",
]
