"""What a data file may decode to (cells, MiB of text): a budget spent while it is parsed."""

from __future__ import annotations

from studio.datasets.errors import _Bad
from studio.hosting import Limits


class _Budget:
    """What a file may decode to (limits.data_cells, limits.data_mb), spent while it is parsed.

    Cells are rows × columns, plus the items of lists and objects held inside cells; text is
    counted in characters (bytes for binary values), a MiB being 2**20 of them.
    """

    def __init__(self, limits: Limits) -> None:
        self.max_cells = limits.data_cells
        self.max_mb = limits.data_mb
        self.max_chars = limits.data_mb * 2**20
        self.cells = 0
        self.chars = 0

    def may_exceed(self, text_chars: int) -> bool:
        """False when text of this length cannot reach either limit: a delimited file has at
        most one field per character (plus one), and no format decodes more text than it holds.
        The parsers skip counting then (the common case, and the fast one)."""
        return text_chars + 1 > self.max_cells or text_chars > self.max_chars

    def add(self, cells: int, chars: int, line: int | None = None, where: str = "") -> None:
        self.cells += cells
        self.chars += chars
        if self.cells > self.max_cells:
            raise self.too_many_cells(line, where)
        if self.chars > self.max_chars:
            raise self.too_much_text(line, where)

    def check_table(self, rows: int, columns: int, line: int | None = None) -> None:
        """Rows × columns of the table as it will be built (every row gets every column)."""
        if rows * columns > self.max_cells:
            by = " by this line" if line is not None else ""
            raise self.too_many_cells(line, f" ({rows} rows × {columns} columns{by})")

    def too_many_cells(self, line: int | None = None, where: str = "") -> _Bad:
        return _Bad(
            f"decodes to more than {self.max_cells:,} cells (rows × columns, counting the items "
            f"of lists and objects inside cells){where}; the limit is STUDIO_MAX_DATA_CELLS",
            _limit_fix("STUDIO_MAX_DATA_CELLS"),
            line,
        )

    def too_much_text(self, line: int | None = None, where: str = "") -> _Bad:
        return _Bad(
            f"decodes to more than {self.max_mb} MiB of text{where}; the limit is "
            "STUDIO_MAX_DATA_MB",
            _limit_fix("STUDIO_MAX_DATA_MB"),
            line,
        )


def _limit_fix(setting: str) -> str:
    return (
        f"split the file into smaller files (or keep fewer rows or columns), or raise {setting} "
        "(on a hosted studio, ask its operator)"
    )


def _human_size(size: int) -> str:
    """'512 bytes', or '1.5 MiB (1572864 bytes)': readable, and exact for comparison."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size} bytes)"
        value /= 1024
    raise AssertionError("unreachable")
