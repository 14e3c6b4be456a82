"""Monitoring commands: `creditrisk monitoring history` and `creditrisk monitoring show ID`;
`print_report` (from `monitoring_render`) renders a report, as the `monitor` command does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.markup import escape

from pipelines.cli.monitoring_render import as_text, print_report
from pipelines.cli.render import console, table
from pipelines.settings import get_settings

__all__ = ["print_report", "register"]

DB_HELP = "Results store URL (default: CREDITRISK_DATABASE_URL, else .creditrisk/results.db)."
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
HISTORY_COLUMNS = [
    "id",
    "as_of",
    "model_name",
    "model_version",
    "run_id",
    "n_alerts",
    "score_psi",
    "migration",
    "auc",
    "calibration",
    "expected_auc",
    "created_at",
]

monitoring_app = typer.Typer(
    help="Monitoring history: list the monitorings of a model, show one report again.",
    no_args_is_help=True,
)


def _url(database_url: str | None) -> str:
    return database_url or get_settings().results_url


@monitoring_app.command("history")
def history(
    model: Annotated[
        str | None, typer.Option(help="Only this model (default: every model).")
    ] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 20,
    database_url: DatabaseUrl = None,
) -> None:
    """List the stored monitorings, newest first, with their verdicts."""
    from pipelines.usecases.monitoring import monitoring_history

    frame = monitoring_history(_url(database_url), model)
    if frame.empty:
        console.print("no monitoring stored yet: run `creditrisk monitor`")
        return
    frame = frame.assign(
        created_at=pd.to_datetime(frame["created_at"]).dt.strftime("%Y-%m-%d %H:%M")
    )
    columns = [c for c in HISTORY_COLUMNS if c in frame.columns]
    console.print(table(as_text(frame.head(limit)), f"{len(frame)} monitorings", columns))


@monitoring_app.command("show")
def show(
    monitoring_id: Annotated[int, typer.Argument(help="Monitoring id (see `monitoring history`).")],
    out: Annotated[
        Path | None,
        typer.Option(help="Also write the report (report.md) and its figures to this folder."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a stored monitoring report again: verdicts, alerts, notes, figures and tables."""
    from pipelines.usecases.monitoring import load_report

    report = load_report(_url(database_url), monitoring_id)
    print_report(report)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(report.markdown(), encoding="utf-8")
        for name, png in report.figures.items():
            (out / f"{name}.png").write_bytes(png)
        console.print(f"report and {len(report.figures)} figures written to {escape(str(out))}")


def register(app: typer.Typer) -> None:
    """Add the `monitoring` command group to the CLI."""
    app.add_typer(monitoring_app, name="monitoring")
