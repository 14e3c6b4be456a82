"""``creditrisk features``: point-in-time feature and label snapshots of a book, as Parquet."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import pandas as pd
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from features.catalog import CATALOG_VERSION
from features.io import read_book, write_snapshots
from features.schemas import ContractError, RejectRateExceeded
from features.snapshots import LABEL, TIME, as_of_range, build_snapshots, snapshot_summary
from pipelines.settings import get_settings


def as_of_dates(
    as_of: list[datetime] | None,
    start: datetime | None,
    end: datetime | None,
    every: int | None,
) -> list[pd.Timestamp]:
    """The as-of dates from --as-of, or from --from/--to/--every; an error says which to give."""
    dates = [pd.Timestamp(d) for d in as_of or []]
    if start is not None or end is not None or every is not None:
        if start is None or end is None:
            raise typer.BadParameter("--every needs both --from and --to")
        dates += as_of_range(start, end, every or 3)
    if not dates:
        raise typer.BadParameter(
            "give at least one --as-of DATE, or --from DATE --to DATE [--every MONTHS]"
        )
    return sorted(set(dates))


def summary_table(snapshots: pd.DataFrame, seconds: dict[pd.Timestamp, float]) -> Table:
    """Rows, labelled rows and default rate per as-of date."""
    table = Table(title="Feature snapshots")
    for name in ("as_of", "rows", "labelled", "default rate", "seconds"):
        table.add_column(name, justify="left" if name == "as_of" else "right")
    for as_of, row in snapshot_summary(snapshots).iterrows():
        rate = "immature" if row["labelled"] == 0 else f"{row['default_rate']:.2%}"
        table.add_row(
            f"{as_of:%Y-%m-%d}",
            f"{int(row['rows']):,}",
            f"{int(row['labelled']):,}",
            rate,
            f"{seconds.get(as_of, float('nan')):.1f}",
        )
    return table


def snapshot_book(
    data: Path,
    dates: list[pd.Timestamp],
    horizon_months: int,
    validate: bool,
    max_reject_rate: float,
    rejects: Path,
    console: Console,
) -> tuple[pd.DataFrame, dict[pd.Timestamp, float]]:
    """Read (and validate) the book, then build one snapshot per date with a progress bar."""
    if validate:
        from pipelines.cli_data_validate import validate_book

        tables = validate_book(data, max_reject_rate, rejects, console).accepted
    else:
        tables = read_book(data)
    seconds: dict[pd.Timestamp, float] = {}
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("Building snapshots", total=len(dates))
        started = time.perf_counter()

        def done(as_of: pd.Timestamp, frame: pd.DataFrame) -> None:
            nonlocal started
            seconds[as_of] = time.perf_counter() - started
            started = time.perf_counter()
            progress.update(task, advance=1, description=f"Built {as_of:%Y-%m-%d}")

        snapshots = build_snapshots(tables, dates, horizon_months, progress=done)
    return snapshots, seconds


def register(app: typer.Typer) -> None:
    """Add ``creditrisk features`` to the app."""

    @app.command("features")
    def features(
        data: Path = typer.Option(
            None,
            "--data",
            help="Folder with the canonical tables (.parquet or .csv). "
            "Default: $CREDITRISK_HOME/book.",
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
            help="Default horizon in months for the label. Default: $CREDITRISK_HORIZON_MONTHS "
            "or 12.",
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
    ) -> None:
        """Build point-in-time feature snapshots with default labels (one row per customer and
        as-of date) and write them as Parquet with the catalog version.

        Features use only what was known on the as-of date: statements by publication date, \
        closed repayment months, past events. The label says whether the customer defaulted \
        within the horizon after it; it is empty when the horizon has not been observed yet. \
        Customers already in default are left out.
        """
        settings = get_settings()
        data = data or settings.book_dir
        out = out or settings.snapshots_dir / "snapshots.parquet"
        horizon = horizon or settings.horizon_months
        console = Console()
        dates = as_of_dates(as_of, start, end, every)
        try:
            snapshots, seconds = snapshot_book(
                data,
                dates,
                horizon,
                validate,
                settings.max_reject_rate,
                settings.rejects_dir / "rejects.csv",
                console,
            )
        except (ContractError, FileNotFoundError, RejectRateExceeded, ValueError) as err:
            console.print(f"[red]Cannot build features from {data}: {err}[/red]", highlight=False)
            raise typer.Exit(2) from None
        metadata = {
            "as_of": [f"{d:%Y-%m-%d}" for d in dates],
            "horizon_months": horizon,
            "source": str(data),
        }
        write_snapshots(snapshots, out, metadata)
        n_features = snapshots.shape[1] - 3
        console.print(summary_table(snapshots, seconds))
        labelled = snapshots[LABEL].notna()
        console.print(
            f"{len(snapshots):,} rows over {snapshots[TIME].nunique()} as-of dates, "
            f"{n_features} features, {labelled.sum():,} labelled; catalog {CATALOG_VERSION}"
        )
        console.print(f"Snapshots: {out}", soft_wrap=True)
