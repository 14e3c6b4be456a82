"""``creditrisk validate``: check a book against the data contract; quarantine rejects."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.io import read_book, write_rejects
from features.schemas import (
    ContractError,
    RejectRateExceeded,
    ValidationResult,
    enforce_reject_rate,
    validate_tables,
)
from pipelines.settings import get_settings

VALIDATE_HELP = (
    "Validate a customer book against the data contract.\n\n"
    "Types, missing values, allowed values, signs, date order, duplicate keys and unknown "
    "customers are checked; every rejected row is written with its reason, and the run fails "
    "(exit code 1) when any table's reject rate is above the threshold."
)


def validate_book(
    data: Path,
    max_reject_rate: float,
    rejects: Path,
    console: Console | None = None,
    enforce: bool = True,
) -> ValidationResult:
    """Read, validate and write rejects; with ``enforce`` raise ``RejectRateExceeded``."""
    console = console or Console(stderr=True)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        progress.add_task(f"Reading {data}", total=None)
        tables = read_book(data)
    with Progress(*columns, console=console, transient=True) as progress:
        rows = sum(len(df) for df in tables.values())
        progress.add_task(f"Validating {rows:,} rows", total=None)
        result = validate_tables(tables, max_reject_rate=max_reject_rate)
    write_rejects(result.rejects, rejects)
    if enforce:
        enforce_reject_rate(result, max_reject_rate, str(rejects))
    return result


def counts_table(result: ValidationResult) -> Table:
    """Rows in, accepted and rejected per table, with the reject rate."""
    table = Table(title="Validation")
    for name in ("table", "rows in", "accepted", "rejected", "reject rate"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for row in result.counts.itertuples(index=False):
        rate = result.reject_rates.get(row.table, 0.0)
        style = "red" if rate > result.max_reject_rate else None
        table.add_row(
            row.table,
            f"{row.rows_in:,}",
            f"{row.accepted:,}",
            f"{row.rejected:,}",
            f"{rate:.2%}",
            style=style,
        )
    return table


def register(app: typer.Typer) -> None:
    """Add ``creditrisk validate`` to the app."""

    @app.command("validate", help=VALIDATE_HELP)
    def validate(
        data: Path = typer.Option(
            None,
            "--data",
            help="Folder with customers, financial_statements, repayments (and optionally events, "
            "defaults) as .parquet or .csv. Default: $CREDITRISK_HOME/book.",
        ),
        max_reject_rate: float = typer.Option(
            None,
            "--max-reject-rate",
            min=0.0,
            max=1.0,
            help="Fail when any table rejects more than this share of its rows. "
            "Default: $CREDITRISK_MAX_REJECT_RATE or 0.05.",
        ),
        rejects: Path = typer.Option(
            None,
            "--rejects",
            help="CSV file for rejected rows (table, key, column, reason). "
            "Default: $CREDITRISK_HOME/rejects/rejects.csv.",
        ),
    ) -> None:
        """Validate a customer book and quarantine rejected rows."""
        settings = get_settings()
        data = data or settings.book_dir
        rate = settings.max_reject_rate if max_reject_rate is None else max_reject_rate
        rejects = rejects or settings.rejects_dir / "rejects.csv"
        console = Console()
        try:
            result = validate_book(data, rate, rejects, enforce=False)
        except (ContractError, FileNotFoundError, ValueError) as err:
            console.print(f"[red]Cannot validate {data}: {err}[/red]", highlight=False)
            raise typer.Exit(2) from None
        console.print(counts_table(result))
        console.print(f"Rejected rows: {rejects}")
        try:
            enforce_reject_rate(result, rate, str(rejects))
        except RejectRateExceeded as err:
            console.print(f"[red]{err}[/red]", highlight=False)
            raise typer.Exit(1) from None
