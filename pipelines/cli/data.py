"""Data commands: `creditrisk generate`, `validate` and `features`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import typer
from rich.table import Table

from features.catalog import CATALOG_VERSION
from features.snapshots import LABEL, TIME
from features.synthetic import summarise_book
from pipelines.cli.flows import DASK_OPTION, as_flow, features_flow
from pipelines.cli.render import bar, console, spinner
from pipelines.settings import get_settings
from pipelines.usecases.book import (
    BookValidated,
    GenerateRequest,
    generate_book,
    read_typed_book,
    validate_book,
)
from pipelines.usecases.snapshots import as_of_dates, build_and_write_snapshots

GENERATE_HELP = (
    "Generate a synthetic customer book (corporate, SME and retail customers).\n\n"
    "Writes customers, financial_statements, repayments, events and defaults as Parquet. "
    "Defaults follow a latent credit quality, an industry factor and a macro cycle, so the "
    "book has a few percent annual default rate and realistic, noisy early signals. "
    "The same --seed gives the same book."
)
VALIDATE_HELP = (
    "Validate a customer book against the data contract.\n\n"
    "Types, missing values, allowed values, signs, date order, duplicate keys and unknown "
    "customers are checked; every rejected row is written with its reason, and the run fails "
    "(exit code 1) when any table's reject rate is above the threshold."
)
FEATURES_HELP = """Build point-in-time feature snapshots with default labels (one row per customer
and as-of date) and write them as Parquet with the catalog version.

Features use only what was known on the as-of date: statements by publication date, closed
repayment months, past events. The label says whether the customer defaulted within the horizon
after it; it is empty when the horizon has not been observed yet. Customers already in default
are left out.
"""


def book_tables(tables: dict[str, pd.DataFrame]) -> list[Table]:
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


def counts_table(book: BookValidated, title: str = "Validation") -> Table:
    """Rows in, accepted and rejected per table, with the reject rate."""
    result = book.validation
    out = Table(title=title)
    for name in ("table", "rows in", "accepted", "rejected", "reject rate"):
        out.add_column(name, justify="left" if name == "table" else "right")
    for row in result.counts.itertuples(index=False):
        rate = result.reject_rates.get(row.table, 0.0)
        style = "red" if rate > result.max_reject_rate else None
        out.add_row(
            row.table,
            f"{row.rows_in:,}",
            f"{row.accepted:,}",
            f"{row.rejected:,}",
            f"{rate:.2%}",
            style=style,
        )
    return out


def snapshots_table(summary: pd.DataFrame, seconds: dict[pd.Timestamp, float]) -> Table:
    """Rows, labelled rows and default rate per as-of date."""
    out = Table(title="Feature snapshots")
    for name in ("as_of", "rows", "labelled", "default rate", "seconds"):
        out.add_column(name, justify="left" if name == "as_of" else "right")
    for as_of, row in summary.iterrows():
        rate = "immature" if row["labelled"] == 0 else f"{row['default_rate']:.2%}"
        out.add_row(
            f"{as_of:%Y-%m-%d}",
            f"{int(row['rows']):,}",
            f"{int(row['labelled']):,}",
            rate,
            f"{seconds.get(as_of, float('nan')):.1f}",
        )
    return out


def generate(
    customers: int = typer.Option(20_000, "--customers", min=1, help="Number of customers."),
    months: int = typer.Option(
        48, "--months", min=1, help="Repayment months in the window (36 or more recommended)."
    ),
    seed: int = typer.Option(42, "--seed", help="Random seed; the same seed gives the same book."),
    start: str = typer.Option(
        "2021-01-01", "--start", help="First month of the window (YYYY-MM-DD)."
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Folder for the Parquet files [default: $CREDITRISK_HOME/book, .creditrisk/book].",
    ),
    truth: bool = typer.Option(
        True,
        "--truth/--no-truth",
        help="Also write each customer's true 12-month PD at each quarter (in truth/, never a "
        "feature; for benchmarks). --no-truth saves its simulation on very large books.",
    ),
) -> None:
    folder = out or get_settings().book_dir
    request = GenerateRequest(
        customers=customers, months=months, start=start, seed=seed, truth=truth
    )
    with bar(f"Simulating {customers:,} customers", None) as progress:
        task = progress.task_ids[0]
        tables = generate_book(
            request, folder, lambda done, total: progress.update(task, completed=done, total=total)
        )
    for shown in book_tables(tables):
        console.print(shown)
    console.print(f"Book written to [bold]{folder}[/bold]")


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
    with spinner(f"Reading {data}") as step:
        book = validate_book(data, rate, rejects, enforce=False, step=step)
    console.print(counts_table(book))
    console.print(f"Rejected rows: {rejects}")
    book.enforce()


def features(
    data: Path = typer.Option(
        None,
        "--data",
        help="Folder with the canonical tables (.parquet or .csv). Default: $CREDITRISK_HOME/book.",
    ),
    as_of: list[datetime] = typer.Option(
        None,
        "--as-of",
        help="As-of date (YYYY-MM-DD); repeat for several snapshots.",
        formats=["%Y-%m-%d"],
    ),
    start: datetime = typer.Option(
        None, "--from", help="First as-of date of a series.", formats=["%Y-%m-%d"]
    ),
    end: datetime = typer.Option(
        None, "--to", help="Last as-of date of a series (inclusive).", formats=["%Y-%m-%d"]
    ),
    every: int = typer.Option(
        None, "--every", min=1, help="Months between as-of dates from --from to --to (3)."
    ),
    horizon: int = typer.Option(
        None,
        "--horizon",
        min=1,
        help="Default horizon in months for the label. Default: $CREDITRISK_HORIZON_MONTHS or 12.",
    ),
    out: Path = typer.Option(
        None,
        "--out",
        help="Parquet file to write. Default: $CREDITRISK_HOME/snapshots/snapshots.parquet.",
    ),
    validate: bool = typer.Option(
        True,
        "--validate/--no-validate",
        help="Validate the book against the data contract first (rejects are quarantined).",
    ),
    dask_address: str = DASK_OPTION,
) -> None:
    settings = get_settings()
    data = data or settings.book_dir
    out = out or settings.snapshots_dir / "snapshots.parquet"
    horizon = horizon or settings.horizon_months
    dates = as_of_dates(
        as_of or [],
        pd.Timestamp(start) if start else None,
        pd.Timestamp(end) if end else None,
        every,
    )
    if as_flow(dask_address):  # the build-features flow (see `pipelines.cli.flows.as_flow`)
        built = features_flow(settings, data, dates, out, horizon, validate, dask_address)
    else:
        if validate:
            with spinner(f"Reading {data}") as step:
                book = validate_book(
                    data, settings.max_reject_rate, settings.rejects_dir / "rejects.csv", step=step
                )
            tables = book.tables
        else:
            tables = read_typed_book(data)
        with bar("Building snapshots", len(dates)) as progress:
            task = progress.task_ids[0]
            built = build_and_write_snapshots(
                tables,
                dates,
                horizon,
                out,
                {"source": str(data)},
                lambda d: progress.update(task, advance=1, description=f"Built {d:%Y-%m-%d}"),
            )
    console.print(snapshots_table(built.summary, built.seconds))
    frame = built.frame
    console.print(
        f"{len(frame):,} rows over {frame[TIME].nunique()} as-of dates, {built.n_features} "
        f"features, {frame[LABEL].notna().sum():,} labelled; catalog {CATALOG_VERSION}"
    )
    console.print(f"Snapshots: {out}", soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add generate, validate and features to the creditrisk CLI."""
    app.command("generate", help=GENERATE_HELP)(generate)
    app.command("validate", help=VALIDATE_HELP)(validate)
    app.command("features", help=FEATURES_HELP)(features)
