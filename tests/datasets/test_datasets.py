"""Reading data files (real files in tmp_path, the shared public data), splitting, leaks."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from studio.datasets import (
    Dataset,
    DatasetError,
    dataset_from_rows,
    flatten_self_instruct,
    load_dataset,
    overlap,
    require_columns,
    split_dataset,
)
from studio.hosting import HostingPolicy
from tests import needs
from tests.conftest import ROOT, SHARED_DATA

DESKTOP = HostingPolicy.desktop()

SAMPLE = ROOT / "studio" / "samples" / "reviews.csv"
SST2 = SHARED_DATA / "sst2"
SEED_TASKS = SHARED_DATA / "self-instruct" / "seed_tasks.jsonl"


def shared(path: Path) -> Path:
    return needs.shared_data(*path.relative_to(SHARED_DATA).parts)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8", newline="")
    return path


def error_of(path: Path, **kwargs: object) -> str:
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, policy=DESKTOP, **kwargs)  # type: ignore[arg-type]
    message = str(caught.value)
    assert message.startswith(f"{path}: ") and ". Fix: " in message
    return message


# --- each format -------------------------------------------------------------------------------


def test_csv_with_quoting_bom_and_crlf(tmp_path: Path) -> None:
    text = (
        '\ufefftext,label\r\n"good, really",pos\r\n"she said ""meh""",neg\r\n"two\nlines",pos\r\n'
    )
    data = load_dataset(write(tmp_path, "reviews.csv", text), policy=DESKTOP)
    assert (data.name, data.format, data.columns, len(data)) == (
        "reviews",
        "csv",
        ["text", "label"],
        3,
    )
    assert data.column("text") == ["good, really", 'she said "meh"', "two\nlines"]
    assert data.preview(1) == [{"text": "good, really", "label": "pos"}]


def test_tsv_keeps_bare_quotes_as_text(tmp_path: Path) -> None:
    path = write(tmp_path, "s.tab", 'sentence\tlabel\nthe " director \'s cut "\t1\n')
    data = load_dataset(path, policy=DESKTOP)
    assert data.format == "tsv"
    assert data.rows == [{"sentence": 'the " director \'s cut "', "label": "1"}]


def test_jsonl_skips_blank_lines_and_unions_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "d.ndjson", '{"q": "a", "n": 1}\n\n{"q": "b", "extra": [1, 2]}\n')
    data = load_dataset(path, policy=DESKTOP)
    assert data.format == "jsonl" and data.columns == ["q", "n", "extra"]
    assert data.rows[1] == {"q": "b", "n": None, "extra": [1, 2]}


def test_json_list_and_wrapped_list(tmp_path: Path) -> None:
    rows = [{"q": "a", "ok": True}, {"q": "b", "ok": False}]
    assert load_dataset(write(tmp_path, "a.json", json.dumps(rows)), policy=DESKTOP).rows == rows
    wrapped = {"version": 2, "tags": ["x"], "data": rows}
    assert load_dataset(write(tmp_path, "b.json", json.dumps(wrapped)), policy=DESKTOP).rows == rows


def test_parquet_gives_python_scalars(tmp_path: Path) -> None:
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["x", "y"], "label": [0, 1], "score": [0.5, 1.5]}).to_parquet(path)
    data = load_dataset(path, policy=DESKTOP)
    assert data.format == "parquet" and data.columns == ["text", "label", "score"]
    assert data.rows[1] == {"text": "y", "label": 1, "score": 1.5}
    assert type(data.rows[1]["label"]) is int


def test_format_argument_overrides_the_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "data.txt", "a\tb\n1\t2\n")
    assert load_dataset(path, format="tsv", name="mine", policy=DESKTOP).rows == [
        {"a": "1", "b": "2"}
    ]
    assert load_dataset(path, format="tsv", name="mine", policy=DESKTOP).name == "mine"


def test_sst2_validation_loads() -> None:
    data = load_dataset(shared(SST2 / "validation.tsv"), policy=DESKTOP)
    assert len(data) == 872 and data.columns == ["sentence", "label"]
    assert set(data.column("label")) == {"0", "1"}


def test_self_instruct_flattens_to_alpaca_columns() -> None:
    data = flatten_self_instruct(shared(SEED_TASKS), policy=DESKTOP)
    tasks = [json.loads(line) for line in SEED_TASKS.read_text().splitlines() if line.strip()]
    assert data.columns == ["instruction", "input", "output"]
    assert len(data) == sum(len(task["instances"]) for task in tasks)
    assert all(isinstance(row["input"], str) and row["output"] for row in data.rows)
    assert data.content_hash != load_dataset(SEED_TASKS, policy=DESKTOP).content_hash


def test_self_instruct_error_names_the_line(tmp_path: Path) -> None:
    good = {"instruction": "Say hi", "instances": [{"input": "", "output": "hi"}]}
    bad = {"instruction": "Say bye", "instances": [{"input": "x"}]}
    path = write(tmp_path, "t.jsonl", f"{json.dumps(good)}\n{json.dumps(bad)}\n")
    with pytest.raises(DatasetError, match=r"t\.jsonl: line 2: instance 1 has no 'output'"):
        flatten_self_instruct(path, policy=DESKTOP)


def test_sample_reviews_are_balanced() -> None:
    data = load_dataset(SAMPLE, policy=DESKTOP)
    counts = Counter(data.column("label"))
    assert data.columns == ["text", "label"]
    assert set(counts) == {"positive", "negative"} and counts["positive"] == counts["negative"]
    assert any("," in text and '"' in text for text in data.column("text"))


def test_hash_is_of_the_bytes(tmp_path: Path) -> None:
    first = load_dataset(write(tmp_path, "a.csv", "t,l\nx,1\n"), policy=DESKTOP)
    same = load_dataset(write(tmp_path, "elsewhere.csv", "t,l\nx,1\n"), policy=DESKTOP)
    other = load_dataset(write(tmp_path, "b.csv", "t,l\nx,2\n"), policy=DESKTOP)
    assert first.content_hash == same.content_hash != other.content_hash
    assert len(first.content_hash) == 64
    rows = dataset_from_rows([{"t": "x", "l": "1"}], name="mem")
    assert rows.content_hash == dataset_from_rows([{"t": "x", "l": "1"}], "m2").content_hash
    assert rows.path is None and rows.format == "rows"


# --- malformed inputs --------------------------------------------------------------------------


def test_unterminated_quote_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'text,label\nok,1\n"never closed,0\nmore,1\n')
    message = error_of(path)
    assert "line 3:" in message and "never closed" in message


def test_quote_closed_in_the_wrong_place_names_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "q.csv", 'text,label\n"open,1\nb,0\n"x"y,1\n')
    message = error_of(path)
    assert "line 4: bad quoting" in message and "starts on line 2" in message


def test_wrong_field_count_names_line_and_counts(tmp_path: Path) -> None:
    path = write(tmp_path, "f.csv", "text,label\nok,1\ntoo,many,fields\n")
    message = error_of(path)
    assert "line 3: expected 2 fields (text, label) but found 3" in message


def test_empty_and_header_only(tmp_path: Path) -> None:
    assert "is empty" in error_of(write(tmp_path, "e.csv", ""))
    message = error_of(write(tmp_path, "h.tsv", "text\tlabel\n"))
    assert "is empty" in message and "header (text, label)" in message
    assert "is empty" in error_of(write(tmp_path, "e.jsonl", "\n\n"))


def test_bad_header_names(tmp_path: Path) -> None:
    assert "line 1: duplicate column name 'a'" in error_of(write(tmp_path, "d.csv", "a,a\n1,2\n"))
    assert "line 1: header column 2 has no name" in error_of(write(tmp_path, "b.csv", "a,\n1,2\n"))


def test_broken_json_line_three(tmp_path: Path) -> None:
    path = write(tmp_path, "b.jsonl", '{"a": 1}\n{"a": 2}\n{"a": 3,,}\n{"a": 4}\n')
    message = error_of(path)
    assert "line 3: invalid JSON" in message


def test_non_object_jsonl_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "n.jsonl", '{"a": 1}\n[1, 2]\n'))
    assert "line 2: expected a JSON object" in message and "a list" in message


def test_json_that_is_not_a_list(tmp_path: Path) -> None:
    assert "not a list of objects" in error_of(write(tmp_path, "s.json", '"just text"'))
    message = error_of(write(tmp_path, "o.json", '{"a": [], "b": []}'))
    assert "2 lists of rows (a, b)" in message
    assert "item 1 of the list 'data' is a string" in error_of(
        write(tmp_path, "d.json", '{"data": ["x"]}')
    )
    assert "item 2 of the top-level list is a number" in error_of(
        write(tmp_path, "i.json", '[{"a": 1}, 5]')
    )
    assert "line 2: invalid JSON" in error_of(write(tmp_path, "x.json", '[\n{"a": }]'))


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "latin1.csv", "text,label\nok,1\ncaf\xe9,0\n".encode("latin-1"))
    message = error_of(path)
    assert "line 3:" in message and "not valid UTF-8" in message and "UTF-8" in message


def test_unknown_suffix_lists_supported_formats(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "data.xlsx", "x"))
    assert "csv, tsv, jsonl, json, parquet" in message
    assert "unknown format 'yaml'" in error_of(write(tmp_path, "d.csv", "a\n1\n"), format="yaml")


def test_too_large_names_size_and_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "big.csv", "text,label\n" + "x,1\n" * 100)
    message = error_of(path, max_bytes=100)
    assert "411 bytes" in message and "100 bytes" in message and "max_bytes" in message


def test_missing_file_and_broken_parquet(tmp_path: Path) -> None:
    assert "does not exist" in error_of(tmp_path / "nope.csv")
    assert "cannot be read as Parquet" in error_of(write(tmp_path, "p.parquet", b"PAR1junk"))


def test_require_columns_names_missing_and_available(tmp_path: Path) -> None:
    data = load_dataset(write(tmp_path, "c.csv", "text,label\nx,1\n"), policy=DESKTOP)
    require_columns(data, ["text"], "template 'sentiment'")
    with pytest.raises(DatasetError) as caught:
        require_columns(data, ["text", "answer"], "template 'qa'")
    message = str(caught.value)
    assert "missing column(s) 'answer' needed by template 'qa'" in message
    assert "columns are: text, label" in message and str(data.path) in message


# --- splitting and leaks -----------------------------------------------------------------------


def numbered(n: int) -> Dataset:
    return dataset_from_rows([{"text": f"row {i}", "label": i % 2} for i in range(n)], "nums")


def test_split_is_disjoint_sized_and_seeded() -> None:
    data = numbered(50)
    pool, evaluation = split_dataset(data, 10, seed=3)
    assert (len(pool), len(evaluation)) == (10, 40)
    assert (pool.name, evaluation.name) == ("nums[pool]", "nums[eval]")
    assert overlap(pool, evaluation) == 0
    assert sorted(pool.column("text") + evaluation.column("text")) == sorted(data.column("text"))
    again, _ = split_dataset(data, 10, seed=3)
    other, _ = split_dataset(data, 10, seed=4)
    assert again.rows == pool.rows and other.rows != pool.rows
    assert [len(part) for part in split_dataset(data, 0.3)] == [15, 35]


def test_split_keeps_repeated_rows_on_one_side() -> None:
    rows = [{"text": "same"}] * 5 + [{"text": f"u{i}"} for i in range(20)]
    for seed in range(10):
        pool, evaluation = split_dataset(dataset_from_rows(rows, "dups"), 10, seed=seed)
        assert overlap(pool, evaluation) == 0


def test_split_rejects_sizes_that_leave_a_side_empty() -> None:
    for size in (0, 50, 1.0, 0.0):
        with pytest.raises(DatasetError, match="pool_size"):
            split_dataset(numbered(50), size)


def test_overlap_counts_shared_rows() -> None:
    a = dataset_from_rows([{"text": "x ", "label": 1}, {"text": "y", "label": 0}], "a")
    b = dataset_from_rows(
        [{"text": "x", "label": 1, "id": 7}, {"text": "y", "label": 1}, {"text": "z", "label": 0}],
        "b",
    )
    assert overlap(a, b) == 1  # shared columns; whitespace at the ends does not hide a copy
    assert overlap(a, b, key_columns=["text"]) == 2
    with pytest.raises(DatasetError, match="missing column"):
        overlap(a, b, key_columns=["id"])


def test_sst2_train_and_validation_do_not_overlap() -> None:
    train = load_dataset(shared(SST2 / "train.tsv"), policy=DESKTOP)
    validation = load_dataset(SST2 / "validation.tsv", policy=DESKTOP)
    assert overlap(train, validation, key_columns=["sentence"]) == 0
