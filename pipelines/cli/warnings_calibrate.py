"""``creditrisk warnings calibrate``: propose early-warning rules from an out-of-time backtest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from models.master_scale import MasterScale
from pipelines.cli.render import console, spinner, table
from pipelines.decisions.backtest import Backtest, capture_view, goals_of, goals_view, levels_view
from pipelines.decisions.early_warning import DEFAULT_PATH, load_rules
from pipelines.errors import as_typed
from pipelines.settings import get_settings

PROPOSED = "warning_rules.proposed.yaml"
CALIBRATE_HELP = f"""Propose warning-rule thresholds and severities from a backtest, for review.

Scores the matured snapshots after the model's training window (out of time) with the registered
model, raises the warnings of each as-of date against the runs before it, and measures every
level and signal: share of the book, 12-month default rate, lift, capture. Each rule's severity
is set by the band of its lift and its thresholds are searched from half to twice the current
ones, to meet the goals of the warning levels and flag as many defaulters as they allow. Prints
the backtest of the current and the proposed rules side by side and writes the proposal to
CREDITRISK_HOME/{PROPOSED}; the live rules change only with --write PATH.
"""


def _side_by_side(current: Backtest, proposed: Backtest) -> pd.DataFrame:
    left, right = levels_view(current), levels_view(proposed)
    columns = ["share", "default rate 12 m", "lift", "of next quarter's defaulters"]
    out = left[["level"]].copy()
    for name in columns:
        out[f"{name} (now)"] = left[name]
        out[f"{name} (proposed)"] = right[name]
    return out


def _goals(current: Backtest, proposed: Backtest) -> pd.DataFrame:
    now, new = goals_view(goals_of(current)), goals_view(goals_of(proposed))
    return pd.DataFrame(
        {
            "goal": now["goal"],
            "target": now["target"],
            "now": now["value"] + " " + now["met"],
            "proposed": new["value"] + " " + new["met"],
        }
    )


def _held_out(held_out: pd.DataFrame) -> str:
    if held_out.empty:
        return "no held-out check (one fold)"
    met = held_out.groupby("fold")["met"].all()
    failed = held_out.loc[~held_out["met"], "goal"].unique()
    verdict = "every goal met" if met.all() else f"missed: {', '.join(failed)}"
    return f"the same search fitted without each of {len(met)} folds of customers: {verdict}"


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to the ``warnings`` command group."""

    @app.command("calibrate", help=CALIBRATE_HELP)
    def warnings_calibrate(
        model: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
        version: Annotated[
            str | None, typer.Option(help="Model version (default: champion, else challenger).")
        ] = None,
        snapshots: Annotated[
            Path | None,
            typer.Option(help="Matured snapshots (default: the main job's training snapshots)."),
        ] = None,
        book: Annotated[
            Path | None, typer.Option(help="Book folder, for default dates (default: the job's).")
        ] = None,
        rules: Annotated[
            Path | None, typer.Option(help="Rules to start from (default: the shipped rules).")
        ] = None,
        write: Annotated[
            Path | None,
            typer.Option(
                "--write",
                help=f"Write the proposal here (may be the live rules, {DEFAULT_PATH.name}).",
            ),
        ] = None,
    ) -> None:
        from pipelines.usecases.warning_backtest import (
            BacktestRequest,
            calibrate_rules,
            load_backtest_data,
            write_proposal,
        )

        settings = get_settings()
        request = BacktestRequest(
            model_name=model or settings.model_name,
            tracking_uri=settings.tracking_uri,
            snapshots=snapshots or settings.snapshots_dir / "training.parquet",
            book=book or settings.book_dir,
            version=version,
        )
        with as_typed():
            current_rules, scale = load_rules(rules), MasterScale.load()
        with spinner("scoring the matured snapshots"):
            data = load_backtest_data(request)
        with spinner("backtesting candidate thresholds and searching"):
            calibrated = calibrate_rules(data, current_rules, scale)
        dates = data.dates
        result = calibrated.proposed
        console.print(
            f"{data.model}, out of time: {len(dates)} as-of dates {dates[0]:%Y-%m-%d} to "
            f"{dates[-1]:%Y-%m-%d} (trained until {data.trained_until:%Y-%m-%d}), "
            f"{result.rows:,} customer-dates, default rate {result.default_rate:.2%}"
        )
        choices = calibrated.proposal.choices.assign(
            lift=lambda c: c["lift"].map(lambda x: f"{x:.2f}"),
            share=lambda c: c["share"].map(lambda x: f"{x:.1%}"),
        )
        columns = ["rule", "severity", "thresholds", "proposed", "proposed_thresholds"]
        title = "Rules: now -> proposed (lift and share of the proposed thresholds)"
        console.print(table(choices, title, [*columns, "lift", "share", "note"]))
        console.print(table(_side_by_side(calibrated.current, result), "Levels: now | proposed"))
        console.print(table(capture_view(result), "Proposed: defaulters flagged amber or red"))
        console.print(table(_goals(calibrated.current, result), "Goals"))
        console.print(_held_out(calibrated.proposal.held_out))
        path = write or settings.home / PROPOSED
        write_proposal(calibrated, data, path, "creditrisk warnings calibrate")
        live = path.resolve() == DEFAULT_PATH.resolve()
        console.print(f"{'live rules replaced' if live else 'proposal written'}: {path}")
