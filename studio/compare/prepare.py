"""Turn a CompareConfig into checked inputs: templates, data, shot pool and the grid of configs.

Everything that can be wrong with a run is found here, before anything is written to the store.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from studio.compare.config import CompareConfig, CompareConfigError
from studio.compare.judges import check_judge_template
from studio.datasets import (
    Dataset,
    flatten_self_instruct,
    is_self_instruct,
    load_dataset,
    map_columns,
    require_columns,
    split_dataset,
)
from studio.hosting import HostingPolicy
from studio.templates import PromptTemplate, load_template, render_fields
from studio.templates.fewshot import check_disjoint


@dataclass(frozen=True)
class GridCell:
    """One configuration of the grid (one column of the side-by-side view)."""

    position: int
    model: str
    template: PromptTemplate
    shots: int
    seed: int

    @property
    def label(self) -> str:
        return f"{self.model} · {self.template.name} · {self.shots}-shot · seed {self.seed}"


@dataclass(frozen=True)
class Prepared:
    config: CompareConfig
    templates: list[PromptTemplate]
    evaluation: Dataset  # the rows evaluated (after limit)
    pool: Dataset | None
    cells: list[GridCell]
    evaluation_source: Dataset  # the whole evaluation data as read: recorded with its hash
    judge_template: PromptTemplate | None = None  # judged runs: the judge's template, checked


def prepare_run(config: CompareConfig, policy: HostingPolicy) -> Prepared:
    """Every check a run needs, under the hosting policy (which templates, data files and
    models a visitor may name, and how many rows a demo scores); nothing is stored."""
    for spec in config.templates:
        if spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec:
            policy.check_template_path(spec)
    for model in config.models:
        policy.check_model_spec(model)
    templates = [load_template(spec, policy.library) for spec in config.templates]
    if config.scoring == "loglik":
        missing = [t.name for t in templates if not t.choices]
        if missing:
            raise CompareConfigError(
                f"log-likelihood scoring needs `choices` in every template; {', '.join(missing)} "
                "has none. Fix: add choices to the template, or use scoring: generate."
            )
    if config.metric == "regex" and not config.regex:
        raise CompareConfigError("metric 'regex' needs a pattern: set regex.")
    source, pool = _data(config, policy)
    evaluation = _head(source, config.limit) if config.limit is not None else source
    for template in templates:
        require_columns(evaluation, sorted(template.variables()), f"template '{template.name}'")
        if pool is not None:
            require_columns(pool, sorted(template.variables()), f"template '{template.name}'")
        for row in evaluation.rows:
            # A row that cannot render (an undefined attribute, a label missing from label_map)
            # would fail the run midway; found here, nothing is stored.
            render_fields(template, row)
    cells = [
        GridCell(i, model, template, shots, seed)
        for i, (model, template, shots, seed) in enumerate(
            (m, t, k, s)
            for m in config.models
            for t in templates
            for k in config.shots
            for s in config.seeds
        )
    ]
    judge = _judge_template(config, evaluation, policy)
    policy.check_comparison_rows(len(evaluation), work_per_example(config, len(cells)))
    return Prepared(config, templates, evaluation, pool, cells, source, judge)


def work_per_example(config: CompareConfig, n_cells: int) -> int:
    """Model calls per evaluation example: every sample of every cell, plus the judge's (two
    orders per pair for a pairwise judge); what a demo's row cap counts."""
    judged = 0
    if config.judge:
        judged = 2 * (n_cells - 1) if config.judge_mode == "pairwise" else n_cells
    return n_cells * config.samples + judged


def _judge_template(
    config: CompareConfig, evaluation: Dataset, policy: HostingPolicy
) -> PromptTemplate | None:
    """The judge's template, checked against the mode and the data (judges.py)."""
    if config.judge is None or config.judge_template is None:
        return None
    policy.check_model_spec(config.judge)
    spec = config.judge_template
    if spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec:
        policy.check_template_path(spec)
    template = load_template(spec, policy.library)
    check_judge_template(template, config.judge_mode, evaluation.columns)
    return template


def _load(path: str, config: CompareConfig, policy: HostingPolicy) -> Dataset:
    """A data file with the column map applied; Self-Instruct seed tasks flattened to one
    instruction/input/output row per instance (as the Tune tab reads them)."""
    data = load_dataset(path, policy=policy)
    if is_self_instruct(data):
        data = flatten_self_instruct(path, policy=policy)
    return map_columns(data, config.column_map)


def _data(config: CompareConfig, policy: HostingPolicy) -> tuple[Dataset, Dataset | None]:
    data = _load(config.data, config, policy)
    needs_pool = max(config.shots) > 0
    if config.shot_pool is not None:
        if Path(config.shot_pool).resolve() == Path(config.data).resolve():
            raise CompareConfigError(
                f"shot_pool and data are the same file ({policy.shown_path(config.data)}): shots "
                "would leak from the evaluation set. Fix: give a separate shot-pool file, or "
                "leave shot_pool unset to split the file into a pool and an evaluation set."
            )
        pool = _load(config.shot_pool, config, policy)
        evaluation = data
    elif needs_pool:
        if len(data) <= config.pool_size:
            raise CompareConfigError(
                f"{policy.shown_path(config.data)} has {len(data)} rows, not enough to hold out a "
                f"shot pool of {config.pool_size}. Fix: lower pool_size or give a shot_pool file."
            )
        pool, evaluation = split_dataset(data, config.pool_size, seed=0)
    else:
        pool, evaluation = None, data
    if pool is not None and needs_pool:
        check_disjoint(pool.rows, evaluation.rows, None)
    return evaluation, pool if needs_pool else None


def _head(dataset: Dataset, n: int) -> Dataset:
    # The limited view keeps the source's hash on purpose: the store records which data the
    # run read (by hash) and the run's own config records the limit.
    return replace(dataset, rows=dataset.rows[:n])
