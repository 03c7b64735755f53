"""Prompt template versions and datasets: idempotent saving, numbering, deleting, registering."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from studio.store import DatasetRecord, Store
from studio.store.engine import make_engine


def test_saving_the_same_content_twice_returns_the_same_version(store: Store) -> None:
    first = store.save_template_version("sst2-sentiment", "template: a\n", "hash-a")
    again = store.save_template_version("sst2-sentiment", "template: a\n", "hash-a")
    assert again == first
    assert first.version == 1 and first.template_name == "sst2-sentiment"
    assert first.content == "template: a\n" and first.used_by_runs == 0
    assert first.created_at.tzinfo is not None
    assert abs(first.created_at - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert store.template_versions("sst2-sentiment") == [first]


def test_new_content_gets_the_next_version(store: Store) -> None:
    v1 = store.save_template_version("qa", "a", "hash-a")
    v2 = store.save_template_version("qa", "b", "hash-b")
    v1_again = store.save_template_version("qa", "a", "hash-a")
    v3 = store.save_template_version("qa", "c", "hash-c")
    assert [v1.version, v2.version, v1_again.version, v3.version] == [1, 2, 1, 3]
    assert store.template_versions("qa") == [v1, v2, v3]
    assert store.get_template_version(v2.id) == v2
    assert store.get_template_version(9999) is None


def test_versions_are_numbered_per_template(store: Store) -> None:
    store.save_template_version("a", "x", "same-hash")
    other = store.save_template_version("b", "x", "same-hash")
    assert other.version == 1 and other.template_name == "b"
    assert store.template_versions("unknown") == []


def test_latest_versions_of_every_template_by_name(store: Store) -> None:
    store.save_template_version("zeta", "1", "z1")
    alpha_1 = store.save_template_version("alpha", "1", "a1")
    zeta_2 = store.save_template_version("zeta", "2", "z2")
    alpha_2 = store.save_template_version("alpha", "2", "a2")
    store.save_template_version("alpha", "1", "a1")  # an old content again is not newer
    assert store.latest_template_versions() == [alpha_2, zeta_2]
    assert alpha_1.version == 1


def test_used_by_runs_counts_runs_not_configs(store: Store, make_run) -> None:
    v1 = store.save_template_version("t", "1", "h1")
    v2 = store.save_template_version("t", "2", "h2")
    make_run(versions=[v1, v1, v2])
    make_run(versions=[v1])
    counts = {v.version: v.used_by_runs for v in store.template_versions("t")}
    assert counts == {1: 2, 2: 1}
    assert store.get_template_version(v1.id) == dataclasses.replace(v1, used_by_runs=2)
    assert store.latest_template_versions() == [dataclasses.replace(v2, used_by_runs=1)]
    assert store.save_template_version("t", "1", "h1").used_by_runs == 2


def test_delete_template_without_runs_removes_it(store: Store) -> None:
    for n in range(3):
        store.save_template_version("scratch", str(n), f"h{n}")
    assert store.delete_template("scratch") == 3
    assert store.template_versions("scratch") == []
    assert store.latest_template_versions() == []
    assert store.save_template_version("scratch", "new", "h-new").version == 1
    assert store.delete_template("never-saved") == 0


def test_delete_template_keeps_versions_used_by_a_run(store: Store, make_run) -> None:
    v1 = store.save_template_version("t", "1", "h1")
    store.save_template_version("t", "2", "h2")
    v3 = store.save_template_version("t", "3", "h3")
    run = make_run(versions=[v1, v3])
    store.save_template_version("t", "4", "h4")
    assert store.delete_template("t") == 2
    assert [v.version for v in store.template_versions("t")] == [1, 3]
    assert store.delete_template("t") == 0
    stored = store.get_comparison_run(run.id)
    assert stored is not None
    assert [c.template_version for c in stored.configs] == [1, 3]
    # Numbering continues after the newest remaining version.
    assert store.save_template_version("t", "5", "h5").version == 4


def test_database_refuses_deleting_a_used_version(store: Store, make_run, db_url) -> None:
    version = store.save_template_version("t", "1", "h1")
    make_run(versions=[version])
    engine = make_engine(db_url)
    try:
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(
                text("DELETE FROM template_versions WHERE id = :id"), {"id": version.id}
            )
    finally:
        engine.dispose()
    assert store.get_template_version(version.id) is not None


@pytest.mark.parametrize(
    ("name", "content", "content_hash", "match"),
    [
        ("", "x", "h", "template name"),
        ("n" * 65, "x", "h", "at most 64"),
        ("ok", "x", "h" * 65, "content_hash"),
        ("ok", None, "h", "content must be a string"),
    ],
)
def test_invalid_template_values_are_rejected(
    store: Store, name: str, content: str, content_hash: str, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        store.save_template_version(name, content, content_hash)
    assert store.latest_template_versions() == []


def test_register_dataset_round_trip_and_idempotent_by_hash(store: Store) -> None:
    first = store.register_dataset(
        "sst2 ✨", "/data/sst2.csv", "csv", "a" * 64, 872, ["sentence", "label"]
    )
    assert isinstance(first, DatasetRecord)
    assert (first.name, first.path, first.format) == ("sst2 ✨", "/data/sst2.csv", "csv")
    assert (first.n_rows, first.columns, first.content_hash) == (
        872,
        ["sentence", "label"],
        "a" * 64,
    )
    assert first.created_at.tzinfo is not None
    moved = store.register_dataset("copy", "/elsewhere/sst2.csv", "csv", "a" * 64, 872, [])
    assert moved == first
    other = store.register_dataset("pasted", None, "jsonl", "b" * 64, 3, ["q", "a"])
    assert other.id != first.id and other.path is None


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"name": ""}, "dataset name"),
        ({"format": "x" * 17}, "format"),
        ({"n_rows": -1}, "n_rows"),
        ({"columns": "text"}, "columns"),
        ({"content_hash": ""}, "content_hash"),
    ],
)
def test_invalid_dataset_values_are_rejected(
    store: Store, overrides: dict[str, Any], match: str
) -> None:
    fields: dict[str, Any] = {
        "name": "d",
        "path": None,
        "format": "csv",
        "content_hash": "c" * 64,
        "n_rows": 1,
        "columns": ["x"],
    }
    fields.update(overrides)
    with pytest.raises(ValueError, match=match):
        store.register_dataset(**fields)
