"""``creditrisk generate``: write a synthetic customer book as Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from features.io import write_book
from features.synthetic import generate_book, summarise_book
from pipelines.settings import get_settings

GENERATE_HELP = (
    "Generate a synthetic customer book (corporate, SME and retail customers).\n\n"
    "Writes customers, financial_statements, repayments, events and defaults as Parquet. "
    "Defaults follow a latent credit quality, an industry factor and a macro cycle, so the "
    "book has a few percent annual default rate and realistic, noisy early signals. "
    "The same --seed gives the same book."
)


def make_book(
    customers: int, months: int, start: str, seed: int, out: Path, console: Console
) -> dict[str, pd.DataFrame]:
    """Generate with a progress bar over simulated months, then write Parquet to ``out``."""
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"Simulating {customers:,} customers", total=None)

        def on_month(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        tables = generate_book(customers, months, start, seed, on_month=on_month)
    spinner = (SpinnerColumn(), TextColumn("{task.description}"))
    with Progress(*spinner, console=console, transient=True) as progress:
        progress.add_task(f"Writing Parquet to {out}", total=None)
        write_book(tables, out)
    return tables


def summary_tables(tables: dict[str, pd.DataFrame]) -> list[Table]:
    """Rich tables: rows per table, and customers and annual default rate by segment."""
    summary = summarise_book(tables)
    rows = Table(title="Tables")
    rows.add_column("table")
    rows.add_column("rows", justify="right")
    for row in summary["rows"].itertuples(index=False):
        rows.add_row(row.table, f"{row.rows:,}")
    segments = Table(title="Segments")
    for name in ("segment", "customers", "defaults", "customer-years", "annual default rate"):
        segments.add_column(name, justify="left" if name == "segment" else "right")
    for row in summary["segments"].itertuples(index=False):
        segments.add_row(
            row.segment,
            f"{int(row.customers):,}",
            f"{int(row.defaults):,}",
            f"{row.customer_years:,.0f}",
            f"{row.annual_default_rate:.2%}",
            style="bold" if row.segment == "all" else None,
        )
    return [rows, segments]


def register(app: typer.Typer) -> None:
    """Add ``creditrisk generate`` to the app."""

    @app.command("generate", help=GENERATE_HELP)
    def generate(
        customers: int = typer.Option(20_000, "--customers", min=1, help="Number of customers."),
        months: int = typer.Option(
            48, "--months", min=1, help="Repayment months in the window (36 or more recommended)."
        ),
        seed: int = typer.Option(
            42, "--seed", help="Random seed; the same seed gives the same book."
        ),
        start: str = typer.Option(
            "2021-01-01", "--start", help="First month of the window (YYYY-MM-DD)."
        ),
        out: Path = typer.Option(
            None,
            "--out",
            help="Folder for the Parquet files [default: $CREDITRISK_HOME/book, .creditrisk/book].",
        ),
    ) -> None:
        try:
            pd.Timestamp(start)
        except ValueError as err:
            raise typer.BadParameter(
                f"{start!r} is not a date: use YYYY-MM-DD, e.g. 2021-01-01", param_hint="--start"
            ) from err
        console = Console()
        folder = out or get_settings().book_dir
        tables = make_book(customers, months, start, seed, folder, console)
        for table in summary_tables(tables):
            console.print(table)
        console.print(f"Book written to [bold]{folder}[/bold]")
