"""Run preparation: every problem is found before anything is stored (no model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.compare.config import CompareConfigError, build_config
from studio.compare.prepare import prepare_run
from studio.compare.scoring import build_cell_prompts
from studio.datasets import DatasetError
from studio.hosting import HostingPolicy
from studio.templates import TemplateError


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def reviews(tmp_path: Path) -> str:
    rows = [f"review number {i} was {'great' if i % 2 else 'awful'},{i % 2}" for i in range(30)]
    return write(tmp_path / "r.csv", "review,sentiment_id\n" + "\n".join(rows) + "\n")


def config(data: str, **values):
    return build_config(
        data=data,
        templates=["sst2-sentiment-completion"],
        models=["smollm2-135m-instruct"],
        **values,
    )


def test_column_map_feeds_template_variables(reviews: str) -> None:
    prepared = prepare_run(
        config(
            reviews,
            shots=[0, 2],
            pool_size=10,
            column_map={"sentence": "review", "label": "sentiment_id"},
        ),
        HostingPolicy.desktop(),
    )
    assert len(prepared.pool) == 10 and len(prepared.evaluation) == 20
    assert [c.shots for c in prepared.cells] == [0, 2]
    items = build_cell_prompts(prepared, prepared.cells[1], tokenizer=None)
    first = items[0].built
    assert first.text.count("Sentiment:") == 3
    assert first.answer in ("negative", "positive")
    assert first.continuation_prefix == " "


def test_unmapped_columns_are_named(reviews: str) -> None:
    with pytest.raises(DatasetError, match="sentence"):
        prepare_run(config(reviews), HostingPolicy.desktop())
    with pytest.raises(DatasetError, match="nope"):
        prepare_run(config(reviews, column_map={"sentence": "nope"}), HostingPolicy.desktop())


def test_loglik_needs_choices(reviews: str) -> None:
    with pytest.raises(CompareConfigError, match="choices"):
        prepare_run(
            build_config(
                data=reviews, templates=["summarize-one-sentence"], models=["m"], scoring="loglik"
            ),
            HostingPolicy.desktop(),
        )


def test_pool_split_needs_enough_rows(reviews: str) -> None:
    with pytest.raises(CompareConfigError, match="pool_size"):
        prepare_run(
            config(
                reviews,
                shots=[3],
                pool_size=500,
                column_map={"sentence": "review", "label": "sentiment_id"},
            ),
            HostingPolicy.desktop(),
        )


def test_same_file_as_shot_pool_is_refused(reviews: str) -> None:
    with pytest.raises(CompareConfigError, match="same file"):
        prepare_run(config(reviews, shots=[1], shot_pool=reviews), HostingPolicy.desktop())


def test_unknown_template_lists_the_library(reviews: str) -> None:
    with pytest.raises(TemplateError, match="sst2-sentiment"):
        prepare_run(
            build_config(data=reviews, templates=["nope"], models=["m"]), HostingPolicy.desktop()
        )
