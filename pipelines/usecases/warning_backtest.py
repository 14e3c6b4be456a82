"""Use case: backtest the early-warning rules with a registered model on matured snapshots, out
of time, and propose calibrated rules for review (`creditrisk warnings calibrate`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from features.io import read_book, read_snapshots
from features.labels import LABEL, default_dates
from features.snapshots import DEFAULTED_ON, ID, TIME
from models.master_scale import MasterScale
from models.registry import CHALLENGER, CHAMPION, alias_version, load_scorer
from models.tracking import connect
from pipelines.decisions.backtest import Backtest, backtest, outcomes, warn_dates
from pipelines.decisions.early_warning import WarningRules
from pipelines.decisions.warning_calibration import Proposal, propose, rules_yaml
from pipelines.errors import BadInput, NotFound, as_typed
from pipelines.usecases.scoring import HISTORY_MONTHS

DATA_SUMMARY = "tables/data_summary.csv"  # the training run's parts and their as-of dates
FIT_PARTS = ("train", "valid", "calib")


@dataclass(frozen=True)
class BacktestRequest:
    """Which registered model scores, and the matured snapshots and book it is backtested on."""

    model_name: str
    tracking_uri: str
    snapshots: Path
    book: Path
    version: str | None = None  # default: the champion, else the challenger


@dataclass(frozen=True)
class BacktestData:
    """Scored snapshots (the out-of-time dates and the runs before them) and their outcomes."""

    scored: pd.DataFrame
    outcome: pd.DataFrame  # the out-of-time dates only
    model: str
    trained_until: pd.Timestamp

    @property
    def dates(self) -> list[pd.Timestamp]:
        return sorted(pd.to_datetime(self.outcome[TIME].unique()))


@dataclass(frozen=True)
class Calibrated:
    """The backtest of the rules in force, the proposal, and the backtest of the proposed rules."""

    current: Backtest
    proposal: Proposal
    proposed: Backtest


def _version(client, request: BacktestRequest) -> str:
    if request.version:
        return str(request.version)
    for alias in (CHAMPION, CHALLENGER):
        if found := alias_version(client, request.model_name, alias):
            return found
    raise NotFound(
        f"model {request.model_name!r} has no champion or challenger version",
        field="--model",
        hint="train one (`creditrisk run` or `creditrisk train`), or give --version",
    )


def _trained_until(client, name: str, version: str) -> pd.Timestamp:
    """The last as-of date the model was fitted, early-stopped or calibrated on."""
    run_id = client.get_model_version(name, version).run_id
    try:
        path = client.download_artifacts(run_id, DATA_SUMMARY)
    except (MlflowException, OSError) as exc:
        raise BadInput(
            f"{name} v{version} has no record of its training dates ({DATA_SUMMARY})",
            field="--version",
            hint="backtest a model trained on snapshots (`creditrisk train --snapshots`)",
        ) from exc
    parts = pd.read_csv(path)
    if "to" not in parts:
        raise BadInput(
            f"{name} v{version} was not trained out of time (no as-of dates)",
            field="--version",
            hint="backtest a model trained on snapshots with as-of dates",
        )
    return pd.Timestamp(pd.to_datetime(parts.loc[parts["part"].isin(FIT_PARTS), "to"]).max())


def _matured(snapshots: pd.DataFrame, source: Path) -> pd.DataFrame:
    missing = [c for c in (ID, TIME, LABEL) if c not in snapshots]
    if missing:
        raise BadInput(
            f"not feature snapshots: the columns {missing} are missing",
            source=str(source),
            hint="give the snapshots the model was trained on (`creditrisk features`)",
        )
    if DEFAULTED_ON in snapshots:  # customers already in default are not warned
        snapshots = snapshots[snapshots[DEFAULTED_ON].isna()].drop(columns=DEFAULTED_ON)
    return snapshots.assign(**{TIME: pd.to_datetime(snapshots[TIME])})


def load_backtest_data(request: BacktestRequest) -> BacktestData:
    """Score the matured snapshots after the model's training window (and the runs of the
    `HISTORY_MONTHS` before them, that PD rises and downgrades compare with), in date order."""
    with as_typed():
        client = connect(request.tracking_uri)
        version = _version(client, request)
        until = _trained_until(client, request.model_name, version)
        snapshots, _ = read_snapshots(request.snapshots)
        tables = read_book(request.book)
        scorer = load_scorer(client, request.model_name, version)
    snapshots = _matured(snapshots, request.snapshots)
    labelled = snapshots[LABEL].notna()
    later = snapshots[TIME] > until
    test_dates = sorted(snapshots.loc[labelled & later, TIME].unique())
    if not test_dates:
        raise BadInput(
            f"no matured as-of date after the training window of {request.model_name} "
            f"v{version} (which ends {until:%Y-%m-%d})",
            source=str(request.snapshots),
            hint="give snapshots with labelled dates after the model's training window",
        )
    start = pd.Timestamp(test_dates[0]) - pd.DateOffset(months=HISTORY_MONTHS)
    needed = snapshots[(snapshots[TIME] >= start) & (snapshots[TIME] <= test_dates[-1])]
    needed = needed.sort_values(TIME, kind="stable").reset_index(drop=True)
    scores = scorer.score_frame(needed.drop(columns=[LABEL]), reasons=False)
    scored = pd.concat([needed, scores.drop(columns=[ID])], axis=1)
    outcome = outcomes(scored[scored[TIME].isin(test_dates)], default_dates(tables))
    return BacktestData(scored, outcome, f"{request.model_name} v{version}", until)


def backtest_rules(data: BacktestData, rules: WarningRules, scale: MasterScale) -> Backtest:
    """The backtest of ``rules`` on the out-of-time dates."""
    warnings, signals = warn_dates(data.scored, rules, scale, data.dates, HISTORY_MONTHS)
    return backtest(warnings, signals, data.outcome)


def backtest_model(request: BacktestRequest, rules: WarningRules, scale: MasterScale) -> Backtest:
    """Load the matured snapshots scored by the request's model and backtest ``rules`` on them."""
    return backtest_rules(load_backtest_data(request), rules, scale)


def calibrate_rules(data: BacktestData, rules: WarningRules, scale: MasterScale) -> Calibrated:
    """Propose rules from the out-of-time backtest and backtest them beside the current ones."""
    proposal = propose(data.scored, data.outcome, rules, scale, HISTORY_MONTHS)
    return Calibrated(
        backtest_rules(data, rules, scale), proposal, backtest_rules(data, proposal.rules, scale)
    )


def write_proposal(calibrated: Calibrated, data: BacktestData, path: Path, command: str) -> Path:
    """Write the proposed rules file, headed by where it came from and its figures."""
    result, dates = calibrated.proposed, data.dates
    bands = calibrated.proposal.bands
    header = [
        f"Early-warning rules proposed by `{command}` for review.",
        f"Backtest of {data.model} on {len(dates)} out-of-time as-of dates "
        f"({dates[0]:%Y-%m-%d} to {dates[-1]:%Y-%m-%d}; trained until "
        f"{data.trained_until:%Y-%m-%d}): {result.rows:,} customer-dates, "
        f"{result.defaults:,} defaults within 12 months.",
        "Default rate (12 months) by level: "
        + ", ".join(
            f"{level} {row.default_rate:.1%} ({row.share:.1%} of the book)"
            for level, row in result.levels.iterrows()
        )
        + ".",
        f"Defaulters of the next quarter at amber or red: {result.capture['capture_quarter']:.1%}.",
        f"Severity bands (lift over the book's default rate): red >= {bands.red:g}, "
        f"amber >= {bands.amber:g}, watch >= {bands.watch:g}; below, a rule is dropped.",
        "Comparisons are inclusive where the operator says so; a condition on a missing value "
        "does not fire.",
        "",
    ]
    text = rules_yaml(calibrated.proposal, header)
    with as_typed():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return path
