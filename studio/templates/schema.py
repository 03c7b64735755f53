"""The prompt template record: its YAML fields, strict validation (a sandbox-safe Jinja2
source, known variables, sane sizes) and parsing from text with errors that name the key."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Literal

import yaml
from jinja2 import nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from studio.rendering import (
    INTERNAL_PREFIX,
    RenderLimitError,
    TemplateError,
    parse_source,
    render,
    shared_rendering,
    variables_of,
)

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
JINJA_FIELDS = ("system", "template", "answer")
# A longer field is a data file pasted into a template: refused before Jinja parses it.
MAX_FIELD_CHARS = 100_000
_SANDBOX_NOTE = (
    "That is not allowed: templates run in a sandbox and may use only the data's variables, "
    "Jinja2 filters and tests."
)
# What construction errors name: parse_template sets the file, else the template's own name.
_SOURCE: ContextVar[str | None] = ContextVar("template_source", default=None)
# Filters and tests that take another filter's or test's name as text.
_BY_NAME = frozenset({"map", "select", "reject", "selectattr", "rejectattr"})

_LOADING_TAGS: dict[type[nodes.Node], str] = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
}


def _is_private(name: object) -> bool:
    # Dunders and name-mangled privates are how sandbox escapes start; a plain '_id' key is data.
    return isinstance(name, str) and name.startswith("_") and "__" in name


def _private_names(ast: nodes.Template) -> list[str]:
    """Private attribute names a template spells out, caught at save time rather than at render."""
    names: list[Any] = [node.attr for node in ast.find_all(nodes.Getattr)]
    names += [n.arg.value for n in ast.find_all(nodes.Getitem) if isinstance(n.arg, nodes.Const)]
    for node in ast.find_all(nodes.Filter):
        if node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const):
            names.append(node.args[0].value)
    return sorted({name for name in names if _is_private(name)})


def _internal_names(ast: nodes.Template) -> list[str]:
    """The renderer's own hook filters (studio.rendering) named in a template: only the
    renderer inserts them, and a template calling one could misuse it."""
    names: list[Any] = [node.name for node in ast.find_all((nodes.Filter, nodes.Test))]
    for node in ast.find_all((nodes.Filter, nodes.Test)):
        if node.name in _BY_NAME:  # map('_bounded_loop') calls that filter by its name
            names += [arg.value for arg in node.args if isinstance(arg, nodes.Const)]
    return sorted({n for n in names if isinstance(n, str) and n.startswith(INTERNAL_PREFIX)})


class PromptTemplate(BaseModel):
    """One prompt template: how a dataset row becomes a prompt and its gold answer.

    Build it as PromptTemplate(**fields) or with parse_template: both raise TemplateError.
    (model_validate raises pydantic's ValidationError around the same message.)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(description="slug, also the file name: <library>/<name>.yaml")
    description: str = Field("", description="what the template is for")
    mode: Literal["chat", "completion"] = Field(
        "chat", description="chat: the model's chat template, shots as turns; completion: raw text"
    )
    system: str | None = Field(None, description="Jinja2 system message / completion preamble")
    template: str = Field(description="Jinja2 prompt; its variables are the dataset's columns")
    answer: str = Field("{{ label }}", description="Jinja2 gold answer, rendered after label_map")
    label_map: dict[str, str] | None = Field(None, description="raw label text -> answer word")
    choices: list[str] | None = Field(None, description="answers to score by log-likelihood")
    shot_separator: str = Field("\n\n", description="completion mode: between shots and query")
    target_delimiter: str = Field(" ", description="completion mode: between prompt and answer")

    def __init__(self, **data: Any) -> None:
        # Built from UI fields or code, a bad template raises the same TemplateError as a file.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            name = data.get("name")
            source = _SOURCE.get() or (
                f"template '{name}'" if isinstance(name, str) else "template"
            )
            raise TemplateError(_describe(exc, source)) from exc

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid name (it becomes the file name). Fix: use 1-64 "
                "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, "
                "e.g. 'my-template'"
            )
        return value

    @field_validator(*JINJA_FIELDS)
    @classmethod
    def _jinja_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        if len(value) > MAX_FIELD_CHARS:
            raise ValueError(
                f"{info.field_name} is {len(value):,} characters long; a template field may have "
                f"at most {MAX_FIELD_CHARS:,}. Fix: shorten it, and keep long texts in the data "
                "(a column the template reads), not in the template"
            )
        try:
            ast = parse_source(value)
        except TemplateSyntaxError as exc:
            raise ValueError(
                f"Jinja2 syntax error on line {exc.lineno} of {info.field_name}: "
                f"{(exc.message or '').rstrip('.')}. "
                "Fix: close every '{{' with '}}' and every '{%' with '%}' on that line"
            ) from None
        loads = sorted({_LOADING_TAGS[type(n)] for n in ast.find_all(tuple(_LOADING_TAGS))})
        if loads:
            raise ValueError(
                f"uses {', '.join(loads)}: a template cannot read other files or templates. "
                "Fix: write the text into this template (or into system:) instead"
            )
        private = _private_names(ast)
        if private:
            raise ValueError(f"uses the private attribute(s) {', '.join(private)}. {_SANDBOX_NOTE}")
        internal = _internal_names(ast)
        if internal:
            raise ValueError(f"uses the internal filter(s) {', '.join(internal)}. {_SANDBOX_NOTE}")
        return value

    @field_validator("label_map", mode="before")
    @classmethod
    def _integer_keys_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted `0: negative` as the integer 0; labels are matched as text anyway.
        if isinstance(value, dict):
            return {
                str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
                for k, v in value.items()
            }
        return value

    @field_validator("label_map")
    @classmethod
    def _label_map_not_empty(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("is empty. Fix: map each raw label to its word, or leave the key out")
        return value

    @field_validator("choices")
    @classmethod
    def _choices_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("is empty. Fix: list the answers to score, or leave the key out")
        repeated = sorted({choice for choice in value if value.count(choice) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(map(repr, repeated))} more than once")
        return value

    @model_validator(mode="after")
    def _answers_are_choices(self) -> PromptTemplate:
        if not (self.label_map and self.choices):
            return self
        names = variables_of(self.answer)
        with shared_rendering():  # every label_map value together, as one request
            for word in dict.fromkeys(self.label_map.values()):
                rendered = render_field(self, "answer", dict.fromkeys(names, word))
                if rendered not in self.choices:
                    raise ValueError(
                        f"answer renders {rendered!r} for the label_map value {word!r}, which is "
                        f"not one of choices ({', '.join(self.choices)}). Fix: make every "
                        "label_map value a choice, with answer: '{{ label }}'"
                    )
        return self

    def __hash__(self) -> int:
        # The default frozen-model hash fails on the dict and list fields; content is identity.
        return hash(self.content_hash())

    def variables(self) -> set[str]:
        """Names the system, template and answer read from a row (the columns they need)."""
        sources = (self.system, self.template, self.answer)
        return set().union(*(variables_of(s) for s in sources if s is not None))

    def content_hash(self) -> str:
        """sha256 of all fields as canonical JSON: same content, same hash; any change, new hash."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_yaml(self, header: str | None = None) -> str:
        """The template as a library file: a '# ...' comment header, then the keys in order."""
        lines = [
            line if line.startswith("#") else f"# {line}".rstrip()
            for line in (header or self._default_header()).strip("\n").splitlines()
        ]
        return "\n".join(lines) + "\n" + _dump_yaml(self.model_dump(exclude_none=True))

    def _default_header(self) -> str:
        columns = ", ".join(sorted(self.variables())) or "none"
        scoring = (
            f"log-likelihood of each choice ({', '.join(self.choices)})"
            if self.choices
            else "generated text against the answer"
        )
        return "\n".join(
            [
                *(
                    f"{self.name}: {self.description}" if self.description else self.name
                ).splitlines(),
                f"Use: studio compare --template {self.name} ...  (or pick it in the Prompts tab)",
                f"Data columns: {columns}. Mode: {self.mode}.",
                f"Scored by {scoring}.",
            ]
        )


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as '|' blocks, so saved templates read like hand-written ones."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None
    if "\n" in value:
        style = "|" if value.strip() else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def _dump_yaml(data: dict[str, Any]) -> str:
    options: dict[str, Any] = {"sort_keys": False, "allow_unicode": True, "width": 100}
    text = yaml.dump(data, Dumper=_BlockDumper, **options)
    # PyYAML's block style mangles rare line breaks such as U+0085; plain quoting never does.
    if yaml.safe_load(text) != data:
        text = yaml.safe_dump(data, **options)
    return text


def _describe(exc: ValidationError, source: str) -> str:
    return "\n".join(_describe_error(dict(error), source) for error in exc.errors())


def _describe_error(error: dict[str, Any], source: str) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(PromptTemplate.model_fields)
        return f"{source}: unknown key '{key}'; allowed: {allowed}"
    if error["type"] == "missing":
        return f"{source}: key '{key}' is missing. Fix: add it (it is required)"
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        value = error["input"]
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        message = f"{error['msg']} (got {type(value).__name__} {shown}){_yaml_hint(key, value)}"
    return f"{source}: key '{key}': {message}" if key else f"{source}: {message}"


def _yaml_hint(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return ". Fix: quote it; YAML reads unquoted yes/no/true/false/on/off as booleans"
    if value is None:
        return ". Fix: write '' or leave the key out; YAML reads an empty value as null"
    if isinstance(value, dict) and key in JINJA_FIELDS:
        return f'. Fix: quote it, e.g. {key}: "{{{{ label }}}}"; YAML reads {{...}} as a mapping'
    return ""


def parse_template(text: str, source: str = "<text>") -> PromptTemplate:
    """A template from YAML text; every problem is a TemplateError naming source and key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(
            f"{source}: YAML syntax error{where}: {problem}. Fix: check the indentation, and quote "
            "values that start with '{' or contain ': '"
        ) from exc
    if not isinstance(data, dict):
        raise TemplateError(
            f"{source}: a template is a YAML mapping of keys (name, template, ...), not "
            f"{type(data).__name__}. Fix: write one `key: value` per line, e.g. name: my-template"
        )
    unknown = [key for key in data if key not in PromptTemplate.model_fields]
    if unknown:  # checked here too because non-text keys (`1: x`) cannot be keyword arguments
        allowed = ", ".join(PromptTemplate.model_fields)
        raise TemplateError(
            "\n".join(f"{source}: unknown key '{key}'; allowed: {allowed}" for key in unknown)
        )
    token = _SOURCE.set(source)
    try:
        return PromptTemplate(**data)
    finally:
        _SOURCE.reset(token)


def render_field(template: PromptTemplate, key: str, context: Mapping[str, Any]) -> str:
    # Every rendering has a budget (validation and preview too); inside shared_rendering() the
    # block's budget is spent instead of a fresh one.
    try:
        # A `key: |` block scalar ends in a newline that belongs to YAML, not to the prompt.
        return render(getattr(template, key), context).rstrip("\n")
    except RenderLimitError as exc:
        raise RenderLimitError(f"template '{template.name}' ({key}): {exc}") from exc
    except SecurityError as exc:
        raise TemplateError(f"template '{template.name}' ({key}): {exc} {_SANDBOX_NOTE}") from exc
    except UndefinedError as exc:
        raise TemplateError(_undefined_message(template, key, exc, context)) from exc
    except Exception as exc:  # user-written template code can raise anything, e.g. 1 / 0
        raise TemplateError(
            f"template '{template.name}' ({key}): rendering failed: {type(exc).__name__}: {exc}. "
            "Fix: check the expressions against the row's values"
        ) from exc


def _undefined_message(
    template: PromptTemplate, key: str, exc: UndefinedError, context: Mapping[str, Any]
) -> str:
    match = re.fullmatch(r"'(.+)' is undefined", exc.message or "")
    if match is None:  # an attribute or item of a value, not a top-level column
        return (
            f"template '{template.name}' ({key}): {exc.message}. "
            "Fix: check the attribute or key name against the data"
        )
    return (
        f"template '{template.name}': variable '{match.group(1)}' is not a column of the data "
        f"(columns: {', '.join(sorted(context))}). Fix: rename the variable or map a column to it."
    )
