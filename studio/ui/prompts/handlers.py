"""Prompts tab handlers: thin calls into services.templates and the preview, errors for the UI.

Preview problems (a missing column, a bad row index) are shown inline, since the preview reruns
as the template is typed; a failed Save, Duplicate or Delete raises gr.Error with the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from studio.datasets import DatasetError
from studio.models.errors import ModelError
from studio.models.loading import LoadRequest
from studio.services import Services
from studio.store import StoreError
from studio.templates import TemplateError
from studio.templates import library as lib
from studio.templates import preview as pv
from studio.templates.library import TemplateLibrary
from studio.ui.common.errors import user_error
from studio.ui.prompts import views

_FAILURES = (TemplateError, DatasetError, ValueError, IndexError, ModelError, StoreError)


def _whole(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@dataclass
class PromptsHandlers:
    services: Services
    data: pv.DatasetCache = field(default_factory=pv.DatasetCache)

    @property
    def library(self) -> TemplateLibrary:
        return self.services.templates

    # --- library ------------------------------------------------------------------------------

    def refresh(self, selected: str | None = None) -> tuple[Any, Any]:
        try:
            rows = self.library.rows()
        except StoreError as exc:
            raise user_error(exc) from None
        names = self.library.names()
        return rows, gr.Dropdown(choices=names, value=selected if selected in names else None)

    def load(self, name: str | None) -> tuple[str, str]:
        """(name, library file text) into states; shown by `show` only when this succeeded."""
        if not name:
            raise gr.Error("Choose a template to load (or select a row of the library table).")
        try:
            return name, self.library.read(name)
        except (TemplateError, OSError, UnicodeDecodeError) as exc:
            raise user_error(exc) from None

    def load_selected(self, rows: Any, evt: gr.SelectData) -> tuple[str, str]:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return self.load(str(rows.iloc[row, 0]))

    def show(self, name: str, text: str) -> tuple[Any, ...]:
        """(picker, editor, loaded note, *versions) for a loaded template."""
        return (gr.Dropdown(value=name), text, self.loaded_note(name), *self.versions(name))

    def loaded_note(self, name: str) -> str:
        shown = (
            self.services.policy.shown_path(self.library.folder / f"{name}.yaml") if name else ""
        )
        return views.loaded_note(name, shown)

    # --- editor and preview -------------------------------------------------------------------

    def validate(self, text: str) -> str:
        try:
            return lib.describe_valid(lib.validate(text))
        except TemplateError as exc:
            return views.problem_text(exc)

    def preview(
        self, text: str, data_path: str, index: Any, k: Any, model: str, load: bool
    ) -> tuple[str, ...]:
        """(validation, status, exact text, tokens, few-shot block, answer) for the tab."""
        try:
            template = lib.validate(text)
        except TemplateError as exc:
            return (views.problem_text(exc), views.FIX_TEMPLATE, *views.NO_PREVIEW)
        valid = lib.describe_valid(template)
        spec = (model or "").strip() or self.services.settings.default_model
        row, shots = _whole(index), _whole(k)
        try:
            path = pv.resolve_data_path(data_path)
            dataset = self.data.load(path, self.services.policy)
            tokenizer = self._tokenizer(spec, load)
            shown = pv.build_preview(
                template, dataset, row, shots, tokenizer or pv.TurnsTokenizer()
            )
        except _FAILURES as exc:
            return (valid, views.problem_text(exc), *views.NO_PREVIEW)
        status = pv.row_summary(shown, row, shots, data_path)
        count = None if tokenizer is None else pv.count_tokens(tokenizer, shown.text, shown.mode)
        tokens = views.tokens_note(count, spec, shown.mode)
        return (valid, status, shown.text, tokens, shown.fewshot, shown.answer)

    def _tokenizer(self, spec: str, load: bool) -> Any | None:
        """The model's tokenizer when asked to load it, or when it is loaded already."""
        self.services.policy.check_model_spec(spec)
        request = LoadRequest(spec)
        if load or self.services.models.is_loaded(request):
            return self.services.models.get(request).tokenizer
        return None

    # --- save and versions --------------------------------------------------------------------

    def save(self, text: str) -> tuple[str, str]:
        """(saved name, message) into states; `after_save` then updates what shows it."""
        try:
            saved = self.library.save(text)
        except (ValueError, OSError, StoreError) as exc:
            raise user_error(exc) from None
        return saved.template.name, saved.message

    def after_save(self, name: str, message: str) -> tuple[Any, ...]:
        """(status, loaded note, library table, picker, *versions)."""
        return (message, self.loaded_note(name), *self.refresh(name), *self.versions(name))

    def versions(self, name: str) -> tuple[Any, ...]:
        """(table rows, 'from' dropdown, 'to' dropdown, diff html): newest two preselected."""
        found = self.library.versions(name) if name else []
        choices = views.version_choices(found)
        new = found[-1].version if found else None
        old = found[-2].version if len(found) > 1 else new
        diff = lib.diff_versions(found, old, new)
        return (
            views.version_rows(found),
            gr.Dropdown(choices=choices, value=old),
            gr.Dropdown(choices=choices, value=new),
            views.diff_html(diff, old, new if len(found) > 1 else None),
        )

    def diff(self, name: str, old: Any, new: Any) -> str:
        found = self.library.versions(name) if name else []
        a, b = (None if v is None else _whole(v) for v in (old, new))
        return views.diff_html(lib.diff_versions(found, a, b), a, b)

    # --- duplicate and delete -----------------------------------------------------------------

    def duplicate(self, text: str, new_name: str) -> tuple[str, str, str]:
        """(copy's name, its file text, message) into states; shown as a loaded template."""
        try:
            copy = self.library.duplicate(text, new_name)
            source = self.library.read(copy.name)
        except (ValueError, OSError) as exc:
            raise user_error(exc) from None
        return copy.name, source, f"duplicated as {copy.name}; it is now in the editor"

    def delete(self, name: str, confirmed: bool) -> tuple[str, str]:
        """('', message) into states: nothing is loaded any more."""
        if not name:
            raise gr.Error("Load the template to delete first.")
        if not confirmed:
            raise gr.Error(f"Tick 'Yes, delete' to confirm deleting {name}.")
        try:
            message = self.library.delete(name)
        except (ValueError, OSError, StoreError) as exc:
            raise user_error(exc) from None
        return "", message + " The editor still holds its YAML: Save would bring it back."

    def after_manage(self, name: str, message: str) -> tuple[Any, ...]:
        """(status, confirm tick, library table, picker, loaded note, *versions)."""
        return (message, False, *self.refresh(name), self.loaded_note(name), *self.versions(name))
