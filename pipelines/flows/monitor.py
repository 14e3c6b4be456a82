"""The monitor flow: monitor the champion's latest scoring run and publish the report as Prefect
artifacts (a markdown report and one table per section) that a person reads in the Prefect UI.

The figures are written as PNG files under CREDITRISK_HOME/monitoring/<id>/ and named in the
markdown (the UI does not serve files; open them from there).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from pipelines.flows.tasks import plain
from pipelines.settings import Settings, get_settings

MAX_TABLE_ROWS = 200


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def write_figures(report, folder: Path) -> dict[str, Path]:
    """The report's figures as PNG files in ``folder``, by name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, png in report.figures.items():
        path = folder / f"{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}.png"
        path.write_bytes(png)
        paths[name] = path.resolve()
    return paths


def table_rows(frame: pd.DataFrame) -> list[dict]:
    """A frame as JSON-ready rows for a table artifact: index kept, numbers rounded, missing
    values blank."""
    shown = frame.head(MAX_TABLE_ROWS)
    if not isinstance(shown.index, pd.RangeIndex):
        shown = shown.reset_index()
    rows = []
    for record in shown.to_dict(orient="records"):
        rows.append({str(k): _cell(v) for k, v in record.items()})
    return rows


def _cell(value):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, int | str | bool):
        return value
    return str(value)


def report_markdown(report, figures: dict[str, Path]) -> str:
    """The report's markdown with the figure files named at its end."""
    lines = [report.markdown()]
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"- {name}: `{path}` ([open]({path.as_uri()}))" for name, path in figures.items()]
    return "\n".join(lines)


@plain(name="publish-monitoring-artifacts")
def artifacts_task(report, folder: Path) -> list[str]:
    """A markdown artifact of the whole report and a table artifact per section; their keys."""
    figures = write_figures(report, folder)
    model = artifact_key(report.model_name)
    key = artifact_key("monitoring", model)
    title = f"Monitoring {report.model_name} v{report.model_version}, run {report.run_id}"
    create_markdown_artifact(report_markdown(report, figures), key=key, description=title)
    keys = [key]
    for name, frame in report.tables.items():
        if frame is None or frame.empty:
            continue
        table_key = artifact_key("monitoring", model, name)
        create_table_artifact(table_rows(frame), key=table_key, description=f"{title}: {name}")
        keys.append(table_key)
    return keys


@plain(name="monitor")
def monitor_task(request):
    """Compute the report, store it with its history and log it to the champion's MLflow run
    (not retried: it writes to the store and MLflow in turn)."""
    from pipelines.usecases import monitoring

    return monitoring.monitor(request)


@flow(name="monitor")
def monitor_flow(
    settings: Settings | None = None,
    model_name: str | None = None,
    run_id: int | None = None,
    book_dir: Path | None = None,
    horizon: int | None = None,
    user: str = "creditrisk-monitor",
    job_id: str | None = None,
):
    """Monitor the champion and its latest scoring run (or ``run_id``): score and feature PSI,
    migration, backtests on matured cohorts, alerts; stored, logged and published as artifacts.
    Returns the `MonitoringReport`."""
    from pipelines.usecases.monitoring import MonitorRequest

    settings = settings or get_settings()
    book = book_dir or settings.book_dir
    request = MonitorRequest(
        model_name=model_name or settings.model_name,
        tracking_uri=settings.tracking_uri,
        results_url=settings.results_url,
        book_dir=book if book.exists() else None,
        user=user,
        run_id=run_id,
        horizon_months=horizon or settings.horizon_months,
        job_id=job_id,
    )
    report = monitor_task(request)
    artifacts_task(report, settings.home / "monitoring" / str(report.monitoring_id))
    return report
