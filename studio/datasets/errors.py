"""What a data file's problems raise: DatasetError for callers, _Bad inside the parsers."""

from __future__ import annotations


class DatasetError(ValueError):
    """A data file the studio cannot use: '<file>: line N: <problem>. Fix: <what to do>'."""

    def __init__(self, source: str, problem: str, fix: str, line: int | None = None) -> None:
        where = f"{source}: line {line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{problem}. Fix: {fix}")
        self.source = source
        self.line = line
        self.problem = problem
        self.fix = fix


class _Bad(Exception):
    """Raised by the parsers, which do not know the file's name; load_dataset adds it."""

    def __init__(self, problem: str, fix: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.fix, self.line = problem, fix, line
