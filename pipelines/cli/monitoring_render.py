"""Console rendering of a monitoring report: `print_report` (the `monitor` command and
`monitoring show` print with it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from rich.markup import escape

from pipelines.cli.render import console, table

if TYPE_CHECKING:
    from pipelines.usecases.monitoring import MonitoringReport

COLOURS = {
    "green": "green", "stable": "green", "ok": "green", "goals met": "green",
    "not higher": "green", "no drop": "green",
    "yellow": "yellow", "investigate": "yellow", "higher": "yellow",
    "red": "red", "shift": "red", "alert": "red", "drop": "red",
}  # fmt: skip
DETAIL = (  # section, title, columns, rows shown
    ("csi", "features that moved most (CSI)", ["feature", "kind", "psi", "verdict"], 5),
    ("backtest", "matured cohorts", ["as_of", "run_id", "n", "defaults", "default_rate", "pd_mean",
                                     "auc", "auc_lower", "auc_upper", "ecb_p_value"], None),
    ("calibration", "calibration by grade (latest matured cohort)",
     ["grade", "n", "defaults", "pd_mean", "default_rate", "light", "approval_default_rate",
      "approval_light"], None),
    ("warning_levels", "early warnings on matured cohorts",
     ["level", "rows", "share", "defaults", "default_rate", "lift"], None),
    ("expected", "expected from PDs beside realised", ["as_of", "run_id", "kind", "n",
                                                       "default_rate", "auc"], None),
)  # fmt: skip


def _coloured(verdict: object) -> str:
    text = "" if verdict is None or pd.isna(verdict) else str(verdict)
    colour = COLOURS.get(text)
    return f"[{colour}]{escape(text)}[/{colour}]" if colour else escape(text)


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers to 4 significant digits, dates as days, missing values blank."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if pd.api.types.is_float_dtype(values):
            out[column] = values.map(lambda x: "" if pd.isna(x) else f"{x:.4g}")
        elif pd.api.types.is_datetime64_any_dtype(values):
            out[column] = values.dt.strftime("%Y-%m-%d")
    return out.astype(object).where(out.notna(), "")


def print_report(report: MonitoringReport, detail: bool = True) -> None:
    """The report on the console: headline, verdicts, alerts, notes, then (``detail``) the
    figures and the main tables."""
    previous = "" if report.previous_run_id is None else f", against run {report.previous_run_id}"
    console.print(
        f"monitoring {report.monitoring_id}: {escape(report.model_name)} "
        f"v{report.model_version}, run {report.run_id} as of {report.as_of:%Y-%m-%d}{previous}",
        soft_wrap=True,
        highlight=False,
    )
    verdicts = table(pd.DataFrame(columns=["check", "verdict"]), "verdicts")
    for check, verdict in report.verdicts.items():
        verdicts.add_row(escape(check), _coloured(verdict))
    console.print(verdicts)
    for alert in report.alerts:
        console.print(f"[red]alert:[/red] {escape(alert)}", soft_wrap=True)
    if report.ok:
        console.print("[green]no alert[/green]: every gate holds")
    for note in report.notes:
        console.print(f"[yellow]note:[/yellow] {escape(note)}", soft_wrap=True)
    if not detail:
        return
    summary = report.tables.get("summary")
    if summary is not None:
        console.print(table(as_text(summary), "figures"))
    for section, title, columns, rows in DETAIL:
        frame = report.tables.get(section)
        if frame is None or frame.empty:
            continue
        frame = frame if rows is None else frame.head(rows)
        console.print(table(as_text(frame), title, [c for c in columns if c in frame.columns]))
