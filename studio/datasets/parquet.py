"""Parquet files: refused by their metadata when too large, then decoded a batch at a time."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from studio.datasets.bounds import _Budget, _human_size, _limit_fix
from studio.datasets.errors import _Bad

if TYPE_CHECKING:
    import pyarrow as pa

_PARQUET_BATCH_ROWS = 8192
_PARQUET_BATCH_FIXED_BYTES = 64 * 2**20


def _parse_parquet(data: bytes, budget: _Budget) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of a Parquet file, refused from its metadata when that already says too large, then
    decoded a batch of rows at a time with the budget checked before each batch becomes Python
    values (metadata can lie). Text columns are read as dictionaries, so one long string
    repeated on every row is measured, not materialised, before the check."""
    # Imported here: pyarrow takes a noticeable time to import and most files are not Parquet.
    import pyarrow as pa  # lazy: pyarrow is slow to import; only Parquet files need it
    import pyarrow.parquet as pq  # lazy: pyarrow is slow to import; only Parquet files need it

    fix = "check that it is a complete Parquet file"
    try:
        footer = pq.ParquetFile(io.BytesIO(data))
        schema = footer.schema_arrow
        columns = [str(name) for name in schema.names]
        if len(set(columns)) != len(columns):
            raise _Bad("has duplicate column names", "rename the columns so each is unique")
        batch_rows = _check_parquet_metadata(footer, len(columns), budget)
        text_leaves = [
            footer.schema.column(j).path
            for j in range(footer.metadata.num_columns)
            if footer.schema.column(j).physical_type == "BYTE_ARRAY"
        ]
        reader = pq.ParquetFile(
            io.BytesIO(data), metadata=footer.metadata, read_dictionary=text_leaves
        )
        rows: list[dict[str, Any]] = []
        for batch in reader.iter_batches(batch_size=batch_rows):
            cells, chars = batch.num_rows * batch.num_columns, 0
            for column in batch.columns:
                items, text = _arrow_size(column)
                cells, chars = cells + items, chars + text
            budget.add(cells, chars, where=f" (within its first {len(rows) + len(batch)} rows)")
            rows.extend(_undictionary(batch, schema).to_pylist())
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _Bad(f"cannot be read as Parquet ({exc})", fix) from None
    return columns, rows


def _undictionary(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the file's own column types: its size is checked, so the text columns
    read as dictionaries may be decoded now (converting decoded ones to Python is far faster)."""
    import pyarrow as pa  # lazy: pyarrow is slow to import; only Parquet files need it

    try:
        return batch.cast(schema)
    except (pa.ArrowException, ValueError, TypeError):
        return batch  # a type cast cannot rebuild: to_pylist decodes dictionaries as well


def _check_parquet_metadata(footer: Any, n_columns: int, budget: _Budget) -> int:
    """Refuse from the footer alone what it says is too large; the rows per decoded batch."""
    meta = footer.metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    rows = max(meta.num_rows, sum(group.num_rows for group in groups), 0)
    values = decoded = 0
    fixed_width = 0  # bytes per row of fixed-size binary columns: never dictionary-decoded
    for j in range(meta.num_columns):
        leaf = footer.schema.column(j)
        width = max(leaf.length or 0, 0) if leaf.physical_type == "FIXED_LEN_BYTE_ARRAY" else 0
        fixed_width += width
        for group in groups:
            chunk = group.column(j)
            count = max(chunk.num_values, 0)
            values += count
            decoded += max(chunk.total_uncompressed_size, width * count, 0)
    cells = max(rows * n_columns, values)
    if cells > budget.max_cells:
        raise _Bad(
            f"has {rows:,} rows × {n_columns} columns ({cells:,} values) by its metadata, more "
            f"than the {budget.max_cells:,} cells a data file may decode to; the limit is "
            "STUDIO_MAX_DATA_CELLS",
            _limit_fix("STUDIO_MAX_DATA_CELLS"),
        )
    if decoded > budget.max_chars:
        raise _Bad(
            f"decodes to more than {budget.max_mb} MiB: its metadata gives "
            f"{_human_size(decoded)} uncompressed; the limit is STUDIO_MAX_DATA_MB",
            _limit_fix("STUDIO_MAX_DATA_MB"),
        )
    return max(1, min(_PARQUET_BATCH_ROWS, _PARQUET_BATCH_FIXED_BYTES // max(fixed_width, 1)))


def _arrow_size(array: pa.Array) -> tuple[int, int]:
    """(items in its lists, maps and structs, characters or bytes of its text and binary
    values) of an Arrow column, computed without converting it to Python."""
    import pyarrow as pa  # lazy: pyarrow is slow to import; only Parquet files need it
    import pyarrow.compute as pc  # lazy: pyarrow is slow to import; only Parquet files need it

    kind = array.type
    if pa.types.is_dictionary(kind):
        lengths = _arrow_lengths(array.dictionary)
        if lengths is None:
            return 0, 0
        return 0, _arrow_sum(pc.take(lengths, array.indices))
    lengths = _arrow_lengths(array)
    if lengths is not None:
        return 0, _arrow_sum(lengths)
    if pa.types.is_fixed_size_binary(kind):
        return 0, (len(array) - array.null_count) * kind.byte_width
    if pa.types.is_map(kind):
        parts = [array.keys, array.items]
        items = len(array.keys)
    elif any(getattr(pa.types, test)(kind) for test in _ARROW_LISTS):
        parts = [array.flatten()]
        items = len(parts[0])
    elif pa.types.is_struct(kind):
        parts = array.flatten()
        items = len(array) * kind.num_fields
    else:
        return 0, 0
    chars = 0
    for part in parts:
        inner_items, inner_chars = _arrow_size(part)
        items, chars = items + inner_items, chars + inner_chars
    return items, chars


_ARROW_LISTS = ("is_list", "is_large_list", "is_fixed_size_list")


def _arrow_lengths(array: pa.Array) -> pa.Array | None:
    """Per-value lengths of a text (characters) or binary (bytes) array; None for others."""
    import pyarrow as pa  # lazy: pyarrow is slow to import; only Parquet files need it
    import pyarrow.compute as pc  # lazy: pyarrow is slow to import; only Parquet files need it

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.utf8_length(array)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pc.binary_length(array)
    return None


def _arrow_sum(lengths: pa.Array) -> int:
    import pyarrow.compute as pc  # lazy: pyarrow is slow to import; only Parquet files need it

    total = pc.sum(lengths).as_py()
    return int(total or 0)
