"""Shared rendering of the command line: the console, tables, progress and one-line errors."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from pipelines.errors import CreditriskError

console = Console()
errors = Console(stderr=True)


def table(frame: pd.DataFrame, title: str, columns: Sequence[str] | None = None) -> Table:
    """A rich table of ``frame``'s ``columns`` (all by default), missing values blank."""
    columns = list(columns or frame.columns)
    out = Table(title=title)
    for column in columns:
        out.add_column(str(column))
    for row in frame[columns].itertuples(index=False):
        out.add_row(*["" if v is None or v is pd.NA else str(v) for v in row])
    return out


def print_error(exc: CreditriskError) -> None:
    """One line on stderr: the kind, the place, the reason and what to do."""
    errors.print(f"[red]error ({exc.kind}):[/red] {escape(exc.message)}", soft_wrap=True)


@contextmanager
def spinner(description: str) -> Iterator[callable]:
    """A spinner with elapsed time; yields a function that changes its text."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=errors, transient=True) as progress:
        task = progress.add_task(description, total=None)
        yield lambda text: progress.update(task, description=text)


@contextmanager
def bar(description: str, total: int | None) -> Iterator[Progress]:
    """A progress bar with counts and elapsed time (``progress.advance(0)`` to step)."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=errors, transient=True) as progress:
        progress.add_task(description, total=total)
        yield progress
