"""The typed settings of a comparison run, built the same way by the UI, the CLI and YAML files."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

Scoring = Literal["loglik", "generate"]
Selection = Literal["first", "random", "balanced", "similar"]
Metric = Literal["exact", "contains", "regex", "f1", "rouge_l", "chrf", "bleu"]


class CompareConfigError(ValueError):
    """A comparison setting is invalid; the message names the field."""


class CompareConfig(BaseModel):
    """One grid: every model × template × shot count × seed, over the same evaluation examples."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(None, description="A label for the run.")
    data: str = Field(description="Evaluation data file (CSV, TSV, JSONL, JSON, Parquet).")
    shot_pool: str | None = Field(
        None, description="File the few-shot examples come from; default: split off `data`."
    )
    pool_size: int = Field(
        100, ge=1, description="Rows of `data` held out as the shot pool when shot_pool is unset."
    )
    templates: list[str] = Field(min_length=1, description="Template names or YAML files.")
    models: list[str] = Field(min_length=1, description="Model specs (bundled, HF id, folder).")
    shots: list[int] = Field([0], min_length=1, description="Shot counts, e.g. [0, 5].")
    seeds: list[int] = Field([0], min_length=1, description="Seeds for shot sampling/decoding.")
    limit: int | None = Field(None, ge=1, description="Evaluate only the first N examples.")
    scoring: Scoring = Field(
        "loglik", description="loglik over the template's choices, or generate."
    )
    selection: Selection = Field("first", description="How shots are chosen.")
    quantization: Literal["none", "8bit", "4bit"] = "none"
    batch_rows: int = Field(16, ge=1, le=512, description="Sequences per forward pass.")
    metric: Metric = Field(
        "exact",
        description="Generation metric: exact, contains, regex, f1, rouge_l, chrf, bleu.",
    )
    regex: str | None = Field(None, description="Pattern for metric=regex (gold must match it).")
    max_new_tokens: int = Field(16, ge=1, le=2048, description="Generation length limit.")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="0 = greedy decoding.")
    label_column: str | None = Field(None, description="Column balanced selection groups by.")
    column_map: dict[str, str] = Field(
        default_factory=dict,
        description="Template variable -> data column, e.g. {sentence: text, label: stars}.",
    )
    calibrate: bool = Field(
        False,
        description="Contextual calibration (loglik): divide out the label prior the model shows "
        "for content-free inputs; raw and calibrated accuracy side by side.",
    )

    judge: str | None = Field(
        None, description="Judge model spec (generation runs): grades each answer."
    )
    judge_template: str | None = Field(
        None, description="Judge template (library name or YAML file), e.g. judge-pass-fail."
    )
    judge_mode: Literal["pointwise", "pairwise"] = Field(
        "pointwise",
        description="pointwise: grade each answer; pairwise: each against the reference's answer.",
    )
    reference: int = Field(
        1, ge=1, description="Configuration (1-based) a pairwise judge compares the others with."
    )
    samples: int = Field(
        1, ge=1, le=64, description="Answers sampled per example (needs temperature > 0)."
    )

    @field_validator("shots")
    @classmethod
    def _shots_range(cls, values: list[int]) -> list[int]:
        if any(v < 0 or v > 64 for v in values):
            raise ValueError("shot counts must be between 0 and 64")
        return sorted(set(values))

    @field_validator("seeds", "templates", "models")
    @classmethod
    def _unique(cls, values: list) -> list:
        return list(dict.fromkeys(values))

    @model_validator(mode="after")
    def _calibration_needs_loglik(self) -> CompareConfig:
        if self.calibrate and self.scoring != "loglik":
            raise ValueError(
                "calibrate works on log-likelihood scores over the template's choices; set "
                "scoring: loglik, or calibrate: false"
            )
        if self.calibrate and self.selection == "similar":
            raise ValueError(
                "calibrate needs shots that do not depend on the example (first, random or "
                "balanced selection); 'similar' picks them per example"
            )
        return self

    @model_validator(mode="after")
    def _judge_and_samples(self) -> CompareConfig:
        if (self.judge is None) != (self.judge_template is None):
            raise ValueError(
                "a judge needs both a model and a judge template: set judge and judge_template "
                "(e.g. --judge smollm2-135m --judge-template judge-pass-fail), or neither"
            )
        if (self.judge or self.samples > 1) and self.scoring != "generate":
            raise ValueError(
                "judges and repeated sampling grade generated answers; set scoring: generate"
            )
        if self.samples > 1 and self.temperature == 0:
            raise ValueError(
                f"samples: {self.samples} at temperature 0 would repeat one greedy answer; set a "
                "temperature above 0 (e.g. 0.7), or samples: 1"
            )
        if self.judge and self.judge_mode == "pairwise" and self.n_configs < 2:
            raise ValueError(
                "a pairwise judge compares configurations; this grid has one. Add a model, "
                "template, shot count or seed, or use judge_mode: pointwise"
            )
        if self.reference > self.n_configs:
            raise ValueError(
                f"reference {self.reference} is not a configuration of this grid (1 to "
                f"{self.n_configs})"
            )
        return self

    @property
    def n_configs(self) -> int:
        return len(self.models) * len(self.templates) * len(self.shots) * len(self.seeds)


def build_config(**values: object) -> CompareConfig:
    """CompareConfig from loose values, with one readable message per bad field."""
    try:
        return CompareConfig(**values)
    except ValidationError as exc:
        problems = [_describe(err) for err in exc.errors()]
        raise CompareConfigError("Invalid comparison settings — " + "; ".join(problems)) from None


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"]) or "config"
    if err["type"] == "extra_forbidden":
        return f"{where}: unknown setting (check the spelling against `studio compare --help`)"
    return f"{where}: {err['msg']}"


def load_config(path: str | Path, **overrides: object) -> CompareConfig:
    """Read a run.yaml; command-line values given in overrides win."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CompareConfigError(f"{path}: cannot read the run config: {exc}") from None
    if not isinstance(values, dict):
        raise CompareConfigError(f"{path}: a run config must be a mapping of settings")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return build_config(**values)
