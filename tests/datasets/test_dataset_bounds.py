"""Data files that are small on disk but huge decoded, deeply nested, or on paths a visitor may
not read: each is refused with a DatasetError (or the policy's refusal) that names the file as
the policy shows it, the limit and the setting that raises it. Every bomb is built here, in
tmp_path, against low limits."""

from __future__ import annotations

import csv
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from studio.datasets import MAX_JSON_DEPTH, DatasetError, flatten_self_instruct, load_dataset
from studio.hosting import HostingPolicy, Limits, Mode, PolicyRefusal

LOW = HostingPolicy.desktop(limits=Limits(data_mb=1, data_cells=1000))
DESKTOP = HostingPolicy.desktop()


def refusal(path: Path, policy: HostingPolicy = LOW) -> str:
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, policy=policy)
    message = str(caught.value)
    assert message.startswith(f"{policy.shown_path(path)}: ") and ". Fix: " in message
    return message


def assert_names_limit(message: str, setting: str) -> None:
    assert setting in message and f"raise {setting}" in message
    assert "split the file" in message


# --- Parquet -------------------------------------------------------------------------------------


def test_parquet_of_one_long_string_repeated_is_refused_before_it_is_decoded(
    tmp_path: Path,
) -> None:
    # 1 MiB of text, dictionary-encoded once, on 200 rows: 200 MiB decoded from a tiny file.
    path = tmp_path / "bomb.parquet"
    pq.write_table(pa.table({"text": ["x" * 2**20] * 200}), path)
    assert path.stat().st_size < 2**16
    footer = pq.ParquetFile(path).metadata
    assert footer.row_group(0).column(0).total_uncompressed_size < 2 * 2**20  # metadata is mild
    tracemalloc.start()
    try:
        message = refusal(path, HostingPolicy.desktop(limits=Limits(data_mb=16)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decodes to more than 16 MiB of text" in message and "within its first" in message
    assert_names_limit(message, "STUDIO_MAX_DATA_MB")
    assert peak < 8 * 2**20  # no row of it became a Python string


def test_parquet_bomb_inside_a_list_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nested.parquet"
    pq.write_table(pa.table({"tags": [["y" * 2**16] * 20] * 10}), path)  # 12.5 MiB decoded
    message = refusal(path)
    assert "more than 1 MiB of text" in message and "STUDIO_MAX_DATA_MB" in message


def test_parquet_metadata_over_the_cell_limit_is_refused_from_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "rows.parquet"
    pq.write_table(pa.table({"a": list(range(600)), "b": list(range(600))}), path)
    message = refusal(path)
    assert "600 rows × 2 columns" in message and "by its metadata" in message
    assert "1,000 cells" in message
    assert_names_limit(message, "STUDIO_MAX_DATA_CELLS")


def test_parquet_metadata_over_the_size_limit_is_refused_from_the_footer(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    table = pa.table({"text": [f"{i:06d}" + "z" * 5000 for i in range(500)]})
    pq.write_table(table, path, use_dictionary=False, compression="zstd")
    assert path.stat().st_size < 2**20 < 2 * 2**20 < table.nbytes
    message = refusal(path)
    assert "decodes to more than 1 MiB: its metadata gives" in message
    assert_names_limit(message, "STUDIO_MAX_DATA_MB")


def test_parquet_within_the_limits_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "fine.parquet"
    rows = [{"text": "same words" * 10, "tags": ["a", "b"], "n": i} for i in range(100)]
    pq.write_table(pa.Table.from_pylist(rows), path)
    assert load_dataset(path, policy=LOW).rows == rows


# --- CSV / TSV -----------------------------------------------------------------------------------


def test_csv_of_many_long_fields_is_refused_at_the_line_that_crosses(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    field = "w" * 100_000  # under csv's own field limit: only the total is too much
    path.write_text("text,label\n" + "".join(f"{field},{i}\n" for i in range(20)))
    message = refusal(path)
    assert "line 12: decodes to more than 1 MiB of text" in message
    assert_names_limit(message, "STUDIO_MAX_DATA_MB")


def test_csv_field_over_the_field_limit_is_still_explained(tmp_path: Path) -> None:
    path = tmp_path / "one.csv"
    path.write_text('text,label\n"' + "q" * 200_000 + '",1\n')
    message = refusal(path, DESKTOP)
    assert "line 2: a field is too long" in message


@pytest.fixture
def raised_field_limit() -> Iterator[None]:
    """Another library in the process raised csv's global field limit."""
    before = csv.field_size_limit(2**31 - 1)
    yield
    csv.field_size_limit(before)


@pytest.mark.usefixtures("raised_field_limit")
def test_a_huge_field_is_refused_whatever_csv_field_limit_is(tmp_path: Path) -> None:
    path = tmp_path / "huge.tsv"
    path.write_text("text\tlabel\n" + "h" * (3 * 2**20) + "\t1\n")
    message = refusal(path)
    assert "line 2: decodes to more than 1 MiB of text" in message


def test_csv_of_many_columns_and_rows_is_refused_over_the_cell_limit(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    header = ",".join(f"c{i}" for i in range(50))
    path.write_text(header + "\n" + ("," * 49 + "\n") * 100)  # 5,050 cells in 5,100 bytes
    message = refusal(path)
    assert "line 21: decodes to more than 1,000 cells" in message  # 50 + 19 × 50 before it
    assert_names_limit(message, "STUDIO_MAX_DATA_CELLS")


# --- JSON / JSONL --------------------------------------------------------------------------------


def test_jsonl_over_the_cell_limit_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"a": i, "b": -i}) + "\n" for i in range(600)))
    message = refusal(path)
    assert "line 501: decodes to more than 1,000 cells" in message
    assert_names_limit(message, "STUDIO_MAX_DATA_CELLS")


def test_jsonl_with_a_new_key_on_every_line_is_refused_as_rows_times_columns(
    tmp_path: Path,
) -> None:
    # 40 tiny lines, but every row gets every column: 40 × 40 cells.
    path = tmp_path / "keys.jsonl"
    path.write_text("".join(json.dumps({f"k{i}": 1}) + "\n" for i in range(40)))
    message = refusal(path)
    assert "line 32: decodes to more than 1,000 cells" in message
    assert "(32 rows × 32 columns by this line)" in message


def test_json_list_over_the_cell_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rows.json"
    path.write_text(json.dumps([{"a": i, "b": i} for i in range(600)]))
    message = refusal(path)
    assert "more than 1,000 cells" in message and "STUDIO_MAX_DATA_CELLS" in message


def test_json_cells_holding_long_lists_count_their_items(tmp_path: Path) -> None:
    path = tmp_path / "lists.jsonl"
    path.write_text(json.dumps({"text": "x", "ids": list(range(2000))}) + "\n")
    assert "more than 1,000 cells" in refusal(path)


@pytest.mark.parametrize("depth", [10_000, MAX_JSON_DEPTH + 10])
def test_json_nested_too_deep_is_a_clear_error(tmp_path: Path, depth: int) -> None:
    deep = "[" * depth + "]" * depth
    document = tmp_path / "deep.json"
    document.write_text('[\n{"a": 1},\n{"a": ' + deep + "}\n]")
    message = refusal(document, DESKTOP)
    assert f"line 3: lists and objects are nested more than {MAX_JSON_DEPTH} levels" in message
    lines = tmp_path / "deep.jsonl"
    lines.write_text('{"a": 1}\n{"a": ' + deep + "}\n")
    assert "line 2: lists and objects are nested" in refusal(lines, DESKTOP)


def test_json_nested_moderately_inside_a_cell_loads(tmp_path: Path) -> None:
    value: object = "leaf"
    for level in range(20):
        value = {"level": level, "inner": [value]}
    path = tmp_path / "tree.json"
    path.write_text(json.dumps({"data": [{"text": "ok", "tree": value}]}))
    assert load_dataset(path, policy=DESKTOP).rows == [{"text": "ok", "tree": value}]
    lines = tmp_path / "tree.jsonl"
    lines.write_text(json.dumps({"text": "ok", "tree": value}) + "\n")
    assert load_dataset(lines, policy=DESKTOP).rows[0]["tree"] == value


def test_a_number_too_long_to_read_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "digits.jsonl"
    path.write_text('{"a": 1}\n{"a": ' + "7" * 5000 + "}\n")
    message = refusal(path, DESKTOP)
    assert "line 2: cannot be read as JSON" in message and "digits" in message
    assert "sys.set_int_max_str_digits" not in message


def test_self_instruct_seed_tasks_are_bounded_too(tmp_path: Path) -> None:
    path = tmp_path / "tasks.jsonl"
    task = {"instruction": "Say hi", "instances": [{"input": "", "output": "hi"}] * 400}
    path.write_text(json.dumps(task) + "\n")
    with pytest.raises(DatasetError, match="more than 1,000 cells"):
        flatten_self_instruct(path, policy=LOW)


# --- which paths, and how they are shown ---------------------------------------------------------


@pytest.fixture
def shared_policy(tmp_path: Path) -> HostingPolicy:
    for folder in ("uploads", "operator-data", "server"):
        (tmp_path / folder).mkdir()
    return HostingPolicy(
        mode=Mode.SHARED,
        uploads_dir=tmp_path / "uploads",
        data_dirs=((tmp_path / "operator-data").resolve(),),
    )


def test_a_server_path_is_refused_alike_whether_or_not_it_exists(
    tmp_path: Path, shared_policy: HostingPolicy
) -> None:
    secret = tmp_path / "server" / "secret.csv"
    messages = []
    for exists in (False, True):
        if exists:
            secret.write_text("text,label\nthe server's own,1\n")
        with pytest.raises(PolicyRefusal) as caught:
            load_dataset(secret, policy=shared_policy)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "secret.csv" in messages[0] and "STUDIO_DATA_DIRS" in messages[0]
    assert str(tmp_path) not in messages[0] and "server/" not in messages[0]
    climbing = tmp_path / "uploads" / ".." / "server" / "secret.csv"
    with pytest.raises(PolicyRefusal):
        load_dataset(climbing, policy=shared_policy)
    with pytest.raises(PolicyRefusal):
        flatten_self_instruct(secret, policy=shared_policy)


def test_files_in_the_operator_folders_are_read_and_shown_by_name(
    tmp_path: Path, shared_policy: HostingPolicy
) -> None:
    good = tmp_path / "operator-data" / "reviews.csv"
    good.write_text("text,label\nfine,1\n")
    data = load_dataset(good, policy=shared_policy)
    assert data.rows == [{"text": "fine", "label": "1"}] and data.source == "reviews.csv"
    bad = tmp_path / "uploads" / "bad.csv"
    bad.write_text("text,label\nok,1\ntoo,many,fields\n")
    message = refusal(bad, shared_policy)
    assert message.startswith("bad.csv: line 3: expected 2 fields")
    missing = refusal(tmp_path / "uploads" / "gone.csv", shared_policy)
    assert missing.startswith("gone.csv: does not exist") and str(tmp_path) not in missing
    wide = tmp_path / "uploads" / "wide.json"
    wide.write_text(json.dumps([{"a": i, "b": i} for i in range(600)]))
    low = HostingPolicy(mode=Mode.DEMO, uploads_dir=tmp_path / "uploads", limits=LOW.limits)
    assert refusal(wide, low).startswith("wide.json: decodes to more than")


def test_a_desktop_reads_any_path_and_names_it_whole(tmp_path: Path) -> None:
    anywhere = tmp_path / "server" / "mine.csv"
    anywhere.parent.mkdir()
    anywhere.write_text("text,label\nanywhere,1\n")
    data = load_dataset(anywhere, policy=DESKTOP)
    assert data.rows[0]["text"] == "anywhere" and data.source == str(anywhere)
    anywhere.write_text('text,label\n"open,1\n')
    assert refusal(anywhere, DESKTOP).startswith(f"{anywhere}: line 2:")
