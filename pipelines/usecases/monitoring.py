"""Use case: monitor the champion on a scoring run (the source's 信用监控): stability against the
training reference, rating migration since the previous run, backtests on matured cohorts, the
early-warning backtest, expected figures for cohorts not matured yet, and model-level alerts.

The reference is the champion's out-of-time test rows (logged with its training run) scored by
the champion: the population, PDs, grades and outcomes at approval. The current population is the
run's stored scores and the snapshot it scored. Outcomes come from the book's defaults (or 90 days
past due). Each call is stored (one `monitoring_runs` row and its tables in long form, so
`load_report` draws any past report again) and logged as metrics on the champion's MLflow run.

Alerts (a gate breached; `MonitoringReport.ok` is False):
- score PSI at or above 0.25 (a shift; the promotion gate `Gates.max_psi`);
- a grade red in the Jeffreys test (PD underestimated at 99.9 %) on the latest matured cohort, or
  the whole cohort red in the binomial test;
- AUC of the latest matured cohort below the floor (`MonitorRequest.min_auc`, by default the
  promotion gate `Gates.min_auc`), or significantly below the AUC at approval (the ECB test,
  p-value below `MonitorRequest.alpha`, 0.05);
- the AUC the monitored run's PDs imply below the floor.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.entities import Metric
from sqlalchemy import Engine

from features.io import read_book
from features.labels import LABEL, default_date_of, default_dates, label_of, observed_until
from features.snapshots import DEFAULTED_ON
from models import validation as v
from models.master_scale import MasterScale, herfindahl, normalised_herfindahl
from models.monitoring import (
    STABILITY_ALPHA,
    auc_drop_test,
    expected_auc,
    expected_default_rate,
    feature_psi,
    matrix_weighted_bandwidth,
    migration_z_tests,
)
from models.monitoring_plots import calibration_by_grade_png, score_distribution_png
from models.registry import CHAMPION, TARGET_TAG, TEST_FRAME_ARTIFACT, Gates, alias_version
from models.registry import load_scorer as registry_scorer
from models.tracking import connect
from pipelines.decisions.backtest import (
    FLAGGED,
    ID,
    LEVEL,
    TIME,
    capture_by_lead,
    capture_of,
    goal_table,
    level_table,
    outcomes,
    with_levels,
)
from pipelines.decisions.early_warning import LEVELS
from pipelines.decisions.ratings import migration
from pipelines.errors import BadInput, NotFound, as_typed
from pipelines.signals import deferred
from pipelines.store.db import open_store
from pipelines.store.monitoring import (
    find_by_job,
    list_monitoring,
    read_monitoring,
    run_warning_levels,
    tables_from_long,
    write_monitoring,
)
from pipelines.store.queries import list_runs, read_scores
from pipelines.store.trace import read_trace, snapshot_frame

PSI_BINS = 10
TOP_FEATURES = 5
EXPECTED_RUNS = 12  # unmatured cohorts shown with their expected figures
METRIC_PREFIX = "monitoring_"
NOT_MATURED, NO_PREVIOUS, NOT_COMPUTED = "not matured", "no previous run", "not computed"


@dataclass(frozen=True)
class MonitorRequest:
    """Which model and scoring run to monitor, where the results and the book are, who runs it."""

    model_name: str
    tracking_uri: str
    results_url: str
    book_dir: Path | None  # book whose `defaults` table gives realised outcomes
    user: str = "creditrisk-monitor"
    run_id: int | None = None  # scoring run to monitor; None = latest current run
    horizon_months: int = 12
    job_id: str | None = None  # a rerun of the job finds its monitoring instead of adding one
    min_auc: float | None = None  # the AUC floor; None = the promotion gate's minimum
    alpha: float = STABILITY_ALPHA  # significance of the AUC drop and migration tests
    n_boot: int = 200  # bootstrap replicates of the AUC intervals

    @property
    def auc_floor(self) -> float:
        return Gates().min_auc if self.min_auc is None else float(self.min_auc)


@dataclass(frozen=True)
class MonitoringReport:
    """One monitoring: verdicts per check, alerts (gates breached), notes (what could not be
    computed and why), the report's tables by section and its figures as PNG bytes."""

    monitoring_id: int
    model_name: str
    model_version: str
    run_id: int
    as_of: pd.Timestamp
    previous_run_id: int | None
    verdicts: dict[str, str]
    alerts: list[str]
    notes: list[str]
    tables: dict[str, pd.DataFrame] = field(repr=False)
    figures: dict[str, bytes] = field(repr=False)

    @property
    def ok(self) -> bool:
        """No gate breached."""
        return not self.alerts

    @property
    def metrics(self) -> dict[str, float]:
        """The headline figures (the `summary` table) by name; missing ones left out."""
        summary = self.tables.get("summary")
        if summary is None:
            return {}
        return {
            m: float(x)
            for m, x in zip(summary["metric"], summary["value"], strict=True)
            if pd.notna(x)
        }

    def markdown(self) -> str:
        """The whole report for a person (a Prefect markdown artifact, the MLflow report)."""
        return report_markdown(self)


@dataclass(frozen=True)
class _Reference:
    """The champion's out-of-time test rows at approval: raw features, scores, outcomes."""

    features: pd.DataFrame
    scored: pd.DataFrame
    y: np.ndarray
    scale: MasterScale
    columns: list[str]


@dataclass
class _Findings:
    """What the checks found, gathered section by section."""

    summary: list[tuple[str, float, str]] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    verdicts: dict[str, str] = field(default_factory=dict)
    alerts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def metric(self, name: str, value: float | None, verdict: str = "") -> None:
        self.summary.append((name, np.nan if value is None else float(value), verdict))

    def attempt(self, what: str, check: Callable[[], None]) -> None:
        """Run one check; a value it cannot compute becomes a note, and the others still run."""
        try:
            check()
        except (ValueError, KeyError) as exc:
            self.notes.append(f"{what} not computed: {exc}")
            self.verdicts.setdefault(what, NOT_COMPUTED)


# ---------------------------------------------------------------------------------------------
# inputs


@contextmanager
def _store(results_url: str) -> Iterator[Engine]:
    with as_typed():
        engine = open_store(results_url, create=False)
    try:
        yield engine
    finally:
        engine.dispose()


def champion_version(client, model_name: str) -> str:
    """The champion's version, or `NotFound`."""
    with as_typed():
        version = alias_version(client, model_name, CHAMPION)
    if version is None:
        raise NotFound(
            f"model {model_name!r} has no champion to monitor",
            field="--model",
            hint="train and promote one (`creditrisk run`, or `creditrisk train` then `promote`)",
        )
    return version


def monitored_runs(
    runs: pd.DataFrame, model_name: str, run_id: int | None
) -> tuple[dict, dict | None]:
    """The run to monitor (``run_id``, else the latest current one) and the current run of the
    model before it by as-of date (None for the first); `NotFound` when there is none."""
    if runs.empty:
        raise NotFound(
            f"model {model_name!r} has no scoring run to monitor",
            field="--model",
            hint="score a book first (`creditrisk run`)",
        )
    if run_id is None:
        run = runs.iloc[0].to_dict()
    else:
        chosen = runs[runs["id"] == int(run_id)]
        if chosen.empty:
            raise NotFound(
                f"no scoring run {run_id} of model {model_name!r}",
                field="--run-id",
                hint="list runs with `creditrisk ratings runs`",
            )
        run = chosen.iloc[0].to_dict()
    current = runs[runs["status"] == "succeeded"]
    before = current[current["as_of"] < run["as_of"]]
    return run, (before.iloc[0].to_dict() if len(before) else None)


def load_reference(client, model_name: str, version: str) -> _Reference:
    """The champion's out-of-time test rows, scored by the champion (PD, score, grade)."""
    with as_typed():
        mv = client.get_model_version(model_name, version)
        target = mv.tags.get(TARGET_TAG)
        if not mv.run_id or not target:
            raise BadInput(
                f"champion {model_name} v{version} has no training run or target tag",
                field="--model",
                hint="register versions through `creditrisk train`",
            )
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(mv.run_id, TEST_FRAME_ARTIFACT, tmp)
            frame = pd.read_parquet(path)
            scorer = registry_scorer(client, model_name, version, tmp)
    features = frame.drop(columns=[target])
    scored = scorer.score_frame(features, reasons=False)
    y = frame[target].to_numpy(dtype=float)
    return _Reference(features, scored, y, scorer.master_scale, list(scorer.input_columns))


def _performing(scores: pd.DataFrame, scale: MasterScale) -> pd.DataFrame:
    return scores[scores["grade"] != scale.default_grade].reset_index(drop=True)


def _snapshot(engine: Engine, run_id: int) -> pd.DataFrame | None:
    """The performing rows of the snapshot the run scored (None when it kept none)."""
    trace = read_trace(engine, run_id)
    if trace is None or trace.snapshot is None:
        return None
    frame = snapshot_frame(trace.snapshot)
    if DEFAULTED_ON in frame:
        frame = frame[frame[DEFAULTED_ON].isna()]
    return frame.reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# checks


def check_stability(
    found: _Findings, reference: _Reference, current: pd.DataFrame, snapshot: pd.DataFrame | None
) -> None:
    """Score PSI against the reference, and per-feature PSI (CSI) on the scored snapshot."""
    table = v.psi_table(reference.scored["score"], current["score"], bins=PSI_BINS)
    value = float(table["psi"].sum())
    verdict = v.psi_verdict(value)
    found.tables["score_psi"] = table
    found.metric("score_psi", value, verdict)
    found.verdicts["score_psi"] = verdict
    if verdict == "shift":
        found.alerts.append(
            f"score PSI {value:.3f} is at or above {v.PSI_INVESTIGATE_BELOW:.2f}: the scored "
            "population has shifted from the training reference"
        )
    if snapshot is None:
        found.notes.append(
            "the run kept no scored snapshot (written before traced runs): feature PSI not computed"
        )
        found.verdicts["csi"] = NOT_COMPUTED
        return
    csi = feature_psi(reference.features, snapshot, reference.columns, bins=PSI_BINS)
    found.tables["csi"] = csi
    if csi.empty:
        found.verdicts["csi"] = NOT_COMPUTED
        return
    worst = csi.iloc[0]
    found.metric("csi_max", worst["psi"], worst["verdict"])
    found.verdicts["csi"] = worst["verdict"]
    moved = csi[csi["verdict"] != "stable"].head(TOP_FEATURES)
    if len(moved):
        found.notes.append(
            "features that moved most: "
            + ", ".join(
                f"{f} (PSI {p:.3f}, {w})"
                for f, p, w in zip(moved["feature"], moved["psi"], moved["verdict"], strict=True)
            )
        )


def check_migration(
    found: _Findings,
    current: pd.DataFrame,
    previous: pd.DataFrame | None,
    scale: MasterScale,
    alpha: float,
) -> None:
    """Rating migration since the previous run: shares, MWB and the stability z-tests."""
    if previous is None:
        found.notes.append(
            "first run of the model: no previous run to compare ratings with "
            "(migration not computed)"
        )
        found.verdicts["migration"] = NO_PREVIOUS
        return
    moved = migration(previous, current, scale)
    found.tables["migration"] = moved.counts.reset_index().rename_axis(columns=None)
    performing = scale.performing_grades
    counts = moved.counts.loc[performing, performing].to_numpy()
    bandwidth = matrix_weighted_bandwidth(counts)
    z_tests = migration_z_tests(counts, performing, alpha)
    found.tables["migration_z"] = z_tests
    violations = int(z_tests["violation"].sum())
    verdict = "stable" if violations == 0 else "investigate"
    for name, value in (
        ("upgrade_share", moved.upgrade_share),
        ("downgrade_share", moved.downgrade_share),
        ("stable_share", moved.stable_share),
        ("migrated_n", moved.n),
        ("mwb_upper", bandwidth.upper),
        ("mwb_lower", bandwidth.lower),
    ):
        found.metric(name, value)
    found.metric("migration_violations", violations, verdict)
    found.verdicts["migration"] = verdict


def check_concentration(found: _Findings, reference: _Reference, current: pd.DataFrame) -> None:
    """Grade concentration (Herfindahl) now and at approval."""
    scale = reference.scale
    now = scale.grade_distribution(current["grade"])
    then = scale.grade_distribution(reference.scored["grade"])
    performing = now["grade"].isin(scale.performing_grades)
    found.tables["concentration"] = pd.DataFrame(
        {
            "grade": now["grade"],
            "n": now["n"],
            "share": now["share"],
            "approval_n": then["n"],
            "approval_share": then["share"],
        }
    )[performing.to_numpy()]
    hhi, hhi_then = herfindahl(current["grade"]), herfindahl(reference.scored["grade"])
    verdict = "higher" if hhi > hhi_then else "not higher"
    found.metric("hhi", hhi, verdict)
    found.metric("hhi_approval", hhi_then)
    found.metric("hhi_normalised", normalised_herfindahl(current["grade"], len(scale.performing)))
    found.verdicts["concentration"] = verdict


@dataclass(frozen=True)
class _Book:
    dates: pd.Series
    until: pd.Timestamp


def read_outcomes(book_dir: Path) -> _Book:
    """Each customer's default date and the last observed month close of the book."""
    with as_typed():
        tables = read_book(book_dir)
    return _Book(default_dates(tables), observed_until(tables))


def cohort(
    engine: Engine, run: dict, book: _Book, horizon: int, scale: MasterScale
) -> pd.DataFrame:
    """A matured run's performing customers: PD, grade, the horizon's outcome and default date."""
    scores = _performing(read_scores(engine, int(run["id"])), scale)
    as_of = pd.Timestamp(run["as_of"])
    defaulted = default_date_of(scores["customer_id"].astype(str), book.dates)
    return scores.assign(
        **{
            TIME: as_of,
            LABEL: label_of(defaulted, as_of, horizon, book.until),
            DEFAULTED_ON: defaulted,
            "customer_id": scores["customer_id"].astype(str),
        }
    )


def _cohort_row(frame: pd.DataFrame, run: dict, auc_initial: float, n_boot: int) -> dict:
    y, p = frame[LABEL].to_numpy(), frame["pd"].to_numpy()
    row = {
        "as_of": pd.Timestamp(run["as_of"]),
        "run_id": int(run["id"]),
        "model_version": str(run["model_version"]),
        "n": len(frame),
        "defaults": int(y.sum()),
        "default_rate": float(y.mean()),
        "pd_mean": float(p.mean()),
        "auc": np.nan,
        "auc_lower": np.nan,
        "auc_upper": np.nan,
        "ecb_statistic": np.nan,
        "ecb_p_value": np.nan,
    }
    if min(y.sum(), len(y) - y.sum()) >= 2:
        result = v.auc_with_ci(y, p, n_boot=n_boot)
        row.update(auc=result.auc, auc_lower=result.lower, auc_upper=result.upper)
        if np.isfinite(auc_initial):
            test = auc_drop_test(auc_initial, y, p)
            row.update(ecb_statistic=test.statistic, ecb_p_value=test.p_value)
    return row


def _approval_auc(reference: _Reference) -> float:
    y = reference.y
    if min(y.sum(), len(y) - y.sum()) < 1:
        return float("nan")
    return v.auc(y, reference.scored["pd"])


def check_backtest(
    found: _Findings,
    cohorts: list[tuple[dict, pd.DataFrame]],
    reference: _Reference,
    request: MonitorRequest,
) -> None:
    """AUC per matured cohort with the ECB test against approval; the latest cohort's AUC and
    calibration per grade (Jeffreys, binomial) beside the same figures at approval."""
    auc_initial = _approval_auc(reference)
    rows = [_cohort_row(frame, run, auc_initial, request.n_boot) for run, frame in cohorts]
    table = pd.DataFrame(rows)
    found.tables["backtest"] = table
    latest_run, latest = cohorts[-1]
    last = table.iloc[-1]
    when = f"{pd.Timestamp(latest_run['as_of']):%Y-%m-%d}"
    found.metric("auc_approval", auc_initial)
    found.metric("default_rate", last["default_rate"])
    found.metric("pd_mean", last["pd_mean"])
    _auc_verdict(found, last, auc_initial, when, request)
    found.attempt("calibration", lambda: _calibration(found, latest, reference, when))


def _auc_verdict(
    found: _Findings, last: pd.Series, auc_initial: float, when: str, request: MonitorRequest
) -> None:
    if pd.isna(last["auc"]):
        found.notes.append(
            f"the cohort of {when} has fewer than two defaults or non-defaults: "
            "its AUC is not computed"
        )
        found.verdicts["auc"] = NOT_COMPUTED
        return
    floor, auc_now, p_value = request.auc_floor, float(last["auc"]), last["ecb_p_value"]
    dropped = pd.notna(p_value) and p_value < request.alpha
    verdict = "red" if auc_now < floor else ("yellow" if dropped else "green")
    found.metric("auc", auc_now, verdict)
    found.metric("auc_lower", last["auc_lower"])
    found.metric("auc_upper", last["auc_upper"])
    found.metric("auc_ecb_p_value", p_value, "drop" if dropped else "no drop")
    found.verdicts["auc"] = verdict
    if auc_now < floor:
        found.alerts.append(
            f"AUC {auc_now:.3f} of the cohort of {when} is below the floor {floor:.2f}"
        )
    if dropped:
        found.alerts.append(
            f"AUC dropped significantly from {auc_initial:.3f} at approval to {auc_now:.3f} "
            f"(cohort of {when}; ECB test p = {p_value:.3g} < {request.alpha:g})"
        )


def _calibration(found: _Findings, latest: pd.DataFrame, reference: _Reference, when: str) -> None:
    scale = reference.scale
    now = v.jeffreys_by_grade(latest, y_col=LABEL, grades=scale.performing_grades)
    approval = pd.DataFrame(
        {"grade": reference.scored["grade"], "pd": reference.scored["pd"], "y": reference.y}
    )
    approval = approval[approval["grade"].isin(scale.performing_grades)]
    then = v.jeffreys_by_grade(approval, grades=scale.performing_grades)
    then = then[["grade", "n", "default_rate", "light"]].rename(
        columns={
            "n": "approval_n",
            "default_rate": "approval_default_rate",
            "light": "approval_light",
        }
    )
    table = now.drop(columns=["confidence"]).merge(then, on="grade", how="left")
    found.tables["calibration"] = table
    red = table.loc[table["light"] == v.RED, "grade"].tolist()
    worst = v.RED if red else (v.YELLOW if (table["light"] == v.YELLOW).any() else v.GREEN)
    found.metric("jeffreys_red", len(red), worst)
    found.verdicts["calibration"] = worst
    if red:
        found.alerts.append(
            f"grade(s) {', '.join(red)} red in the Jeffreys test (cohort of "
            f"{when}): their PD is underestimated"
        )
    book = v.binomial_test(int(latest[LABEL].sum()), len(latest), float(latest["pd"].mean()))
    found.metric("binomial_p_value", book.p_value, book.light)
    if len(approval):
        at = v.binomial_test(int(approval["y"].sum()), len(approval), float(approval["pd"].mean()))
        found.metric("binomial_p_value_approval", at.p_value, at.light)
    found.verdicts["binomial"] = book.light
    if book.light == v.RED:
        found.alerts.append(
            f"the cohort of {when} defaulted at {latest[LABEL].mean():.2%} against "
            f"a mean PD of {latest['pd'].mean():.2%}: binomial test red"
        )


def check_warnings(
    found: _Findings, engine: Engine, cohorts: list[tuple[dict, pd.DataFrame]], book: _Book
) -> None:
    """The early-warning backtest on the matured cohorts: default rates per level, the share of
    defaulters flagged amber or red and how many months ahead."""
    warned, outcome = [], []
    for run, frame in cohorts:
        levels = run_warning_levels(engine, int(run["id"])).set_index("customer_id")["level"]
        level = frame["customer_id"].map(levels).fillna("green")
        level = level.where(level.isin(LEVELS), "green")
        warned.append(frame[[ID, TIME]].assign(**{LEVEL: level.to_numpy()}))
        outcome.append(frame[[ID, TIME, LABEL]])
    joined = with_levels(pd.concat(warned), outcomes(pd.concat(outcome), book.dates))
    levels = level_table(joined)
    found.tables["warning_levels"] = levels.rename_axis(LEVEL).reset_index()
    lead = capture_by_lead(joined)
    found.tables["warning_lead"] = lead.rename_axis("months_before_default").reset_index()
    capture = capture_of(joined)
    for name in ("capture_12m", "capture_quarter", "median_months_ahead"):
        found.metric(f"warning_{name}", capture[name])
    found.metric("warning_flagged_share", float(levels.loc[list(FLAGGED), "share"].sum()))
    goals = goal_table(levels, capture["capture_quarter"])
    missed = int((~goals["met"]).sum())
    verdict = "goals met" if missed == 0 else f"{missed} of {len(goals)} goals missed"
    found.verdicts["warnings"] = verdict
    found.metric("warning_goals_missed", missed, verdict)


def check_expected(
    found: _Findings,
    engine: Engine,
    run: dict,
    runs: pd.DataFrame,
    last_realised: pd.Series | None,
    scale: MasterScale,
    floor: float,
) -> None:
    """The AUC and default rate the PDs imply, for the monitored run and the cohorts whose
    outcomes have not matured, beside the last realised figures."""
    rows = []
    for later in runs.itertuples(index=False):
        p = _performing(read_scores(engine, int(later.id)), scale)["pd"].to_numpy()
        if p.size < 2:
            continue
        rows.append(
            {
                "as_of": pd.Timestamp(later.as_of),
                "run_id": int(later.id),
                "kind": "expected",
                "n": int(p.size),
                "default_rate": expected_default_rate(p),
                "auc": expected_auc(p),
            }
        )
    if last_realised is not None:
        rows.append(
            {
                "as_of": last_realised["as_of"],
                "run_id": int(last_realised["run_id"]),
                "kind": "realised",
                "n": int(last_realised["n"]),
                "default_rate": float(last_realised["default_rate"]),
                "auc": float(last_realised["auc"]),
            }
        )
    table = pd.DataFrame(rows, columns=["as_of", "run_id", "kind", "n", "default_rate", "auc"])
    found.tables["expected"] = table.sort_values(["as_of", "kind"], ignore_index=True)
    mine = table[(table["run_id"] == int(run["id"])) & (table["kind"] == "expected")]
    if mine.empty:
        found.verdicts["expected_auc"] = NOT_COMPUTED
        return
    value = float(mine["auc"].iloc[0])
    verdict = "green" if value >= floor else "red"
    found.metric("expected_auc", value, verdict)
    found.metric("expected_default_rate", float(mine["default_rate"].iloc[0]))
    found.verdicts["expected_auc"] = verdict
    if value < floor:
        found.alerts.append(
            f"the PDs of run {run['id']} imply an AUC of {value:.3f}, below the floor {floor:.2f}"
        )


# ---------------------------------------------------------------------------------------------
# the use case


def _matured(runs: pd.DataFrame, run: dict, book: _Book, horizon: int) -> pd.DataFrame:
    """Current runs up to the monitored one whose horizon has passed, oldest first."""
    current = runs[(runs["status"] == "succeeded") & (runs["as_of"] <= run["as_of"])]
    ends = pd.to_datetime(current["as_of"]) + pd.DateOffset(months=horizon)
    return current[(ends <= book.until).to_numpy()].sort_values("as_of", kind="stable")


def _unmatured(runs: pd.DataFrame, run: dict, matured: pd.DataFrame) -> pd.DataFrame:
    """The monitored run and the current runs after the last matured one, up to it."""
    current = runs[(runs["status"] == "succeeded") & (runs["as_of"] <= run["as_of"])]
    later = current[~current["id"].isin(matured["id"])].head(EXPECTED_RUNS)
    if int(run["id"]) not in set(later["id"]):
        later = pd.concat([pd.DataFrame([run]), later.head(EXPECTED_RUNS - 1)])
    return later.sort_values("as_of", kind="stable")


def _check_outcomes(
    found: _Findings,
    engine: Engine,
    run: dict,
    runs: pd.DataFrame,
    reference: _Reference,
    request: MonitorRequest,
) -> pd.DataFrame:
    """Backtests on the matured cohorts (when a book is given); returns the matured runs."""
    none = runs.iloc[0:0]
    if request.book_dir is None:
        found.notes.append("no book given: backtests on matured cohorts not computed")
        for what in ("auc", "calibration", "warnings"):
            found.verdicts[what] = NOT_COMPUTED
        return none
    book = read_outcomes(Path(request.book_dir))
    matured = _matured(runs, run, book, request.horizon_months)
    if matured.empty:
        found.notes.append(
            f"no matured cohort: the book is observed until {book.until:%Y-%m-%d}, and no stored "
            f"run up to this one is dated {request.horizon_months} months before that; "
            "backtests not computed (expected figures below)"
        )
        for what in ("auc", "calibration", "warnings"):
            found.verdicts[what] = NOT_MATURED
        return none
    scale = reference.scale
    cohorts = [
        (r, cohort(engine, r, book, request.horizon_months, scale))
        for r in matured.to_dict("records")
    ]
    found.attempt("auc", lambda: check_backtest(found, cohorts, reference, request))
    found.attempt("warnings", lambda: check_warnings(found, engine, cohorts, book))
    return matured


def _compute(
    engine: Engine,
    request: MonitorRequest,
    reference: _Reference,
    run: dict,
    previous: dict | None,
    runs: pd.DataFrame,
) -> _Findings:
    found = _Findings()
    scale = reference.scale
    scores = read_scores(engine, int(run["id"]))
    current = _performing(scores, scale)
    if current.empty:
        raise BadInput(f"run {run['id']} scored no performing customer", field="--run")
    snapshot = _snapshot(engine, int(run["id"]))
    found.attempt("score_psi", lambda: check_stability(found, reference, current, snapshot))
    before = None if previous is None else read_scores(engine, int(previous["id"]))
    found.attempt("migration", lambda: check_migration(found, scores, before, scale, request.alpha))
    found.attempt("concentration", lambda: check_concentration(found, reference, current))
    matured = _check_outcomes(found, engine, run, runs, reference, request)
    backtest = found.tables.get("backtest")
    realised = None
    if backtest is not None and backtest["auc"].notna().any():
        realised = backtest[backtest["auc"].notna()].iloc[-1]
    found.attempt(
        "expected_auc",
        lambda: check_expected(
            found, engine, run, _unmatured(runs, run, matured), realised, scale, request.auc_floor
        ),
    )
    found.metric("n_alerts", len(found.alerts), "ok" if not found.alerts else "alert")
    return found


def figures_of(tables: dict[str, pd.DataFrame]) -> dict[str, bytes]:
    """The report's figures, drawn from its tables (what is there to draw)."""
    figures = {}
    if "score_psi" in tables:
        figures["score_distribution"] = score_distribution_png(tables["score_psi"])
    if "calibration" in tables and len(tables["calibration"]):
        figures["calibration_by_grade"] = calibration_by_grade_png(tables["calibration"])
    return figures


def _report(record: dict, tables: dict[str, pd.DataFrame]) -> MonitoringReport:
    return MonitoringReport(
        monitoring_id=int(record["id"]),
        model_name=record["model_name"],
        model_version=str(record["model_version"]),
        run_id=int(record["run_id"]),
        as_of=pd.Timestamp(record["as_of"]),
        previous_run_id=None
        if record["previous_run_id"] is None
        else int(record["previous_run_id"]),
        verdicts=dict(record["verdicts"] or {}),
        alerts=list(record["alerts"] or []),
        notes=list(record["notes"] or []),
        tables=tables,
        figures=figures_of(tables),
    )


def _log_mlflow(client, report: MonitoringReport) -> None:
    """The headline figures as metrics of the champion's training run (step: the monitoring id,
    timestamp: the run's as-of date), the report and figures as its artifacts."""
    with as_typed():
        run_id = client.get_model_version(report.model_name, report.model_version).run_id
        when = int(report.as_of.tz_localize(UTC).timestamp() * 1000)
        metrics = [
            Metric(f"{METRIC_PREFIX}{name}", value, when, report.monitoring_id)
            for name, value in report.metrics.items()
            if np.isfinite(value)
        ]
        client.log_batch(run_id, metrics=metrics)
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "report.md").write_text(report.markdown(), encoding="utf-8")
            for name, png in report.figures.items():
                (folder / f"{name}.png").write_bytes(png)
            client.log_artifacts(run_id, tmp, f"monitoring/{report.monitoring_id}")


def _check_request(request: MonitorRequest) -> None:
    if not 1 <= request.horizon_months <= 120:
        raise BadInput(f"{request.horizon_months} is not a horizon of 1 to 120 months",
                       field="horizon_months")  # fmt: skip
    if not 0 < request.alpha < 1:
        raise BadInput(f"{request.alpha} is not a significance level in (0, 1)", field="alpha")
    if not 0 <= request.auc_floor <= 1:
        raise BadInput(f"{request.auc_floor} is not an AUC floor in [0, 1]", field="min_auc")


def monitor(request: MonitorRequest) -> MonitoringReport:
    """Monitor the champion on a scoring run; store the report and log it to MLflow.

    `NotFound` when the model has no champion or no scoring run (or the store does not exist).
    No matured cohort, or no previous run, is said in the notes; everything else is reported.
    A rerun of ``job_id`` returns the monitoring it stored.
    """
    _check_request(request)
    with as_typed():
        client = connect(request.tracking_uri)
    version = champion_version(client, request.model_name)
    with _store(request.results_url) as engine:
        if request.job_id and (done := find_by_job(engine, request.job_id)) is not None:
            return _load(engine, done)
        runs = list_runs(engine, request.model_name, current_only=request.run_id is None)
        run, previous = monitored_runs(runs, request.model_name, request.run_id)
        reference = load_reference(client, request.model_name, version)
        found = _compute(engine, request, reference, run, previous, runs)
        if str(run["model_version"]) != version:
            found.notes.append(
                f"run {run['id']} was scored by v{run['model_version']}; the champion is v{version}"
            )
        tables = {
            "summary": pd.DataFrame(found.summary, columns=["metric", "value", "verdict"]),
            **found.tables,
        }
        record = {
            "model_name": request.model_name,
            "model_version": version,
            "run_id": int(run["id"]),
            "as_of": pd.Timestamp(run["as_of"]).date(),
            "previous_run_id": None if previous is None else int(previous["id"]),
            "created_by": request.user,
            "job_id": request.job_id,
            "n_alerts": len(found.alerts),
            "verdicts": found.verdicts,
            "alerts": found.alerts,
            "notes": found.notes,
        }
        with as_typed(), deferred():
            monitoring_id = write_monitoring(engine, record, tables)
    report = _report({**record, "id": monitoring_id}, tables)
    with deferred():
        _log_mlflow(client, report)
    return report


def _load(engine: Engine, monitoring_id: int) -> MonitoringReport:
    with as_typed():
        found = read_monitoring(engine, monitoring_id)
    if found is None:
        raise NotFound(
            f"no monitoring with id {monitoring_id}",
            field="ID",
            hint="list them with `creditrisk monitoring history`",
        )
    record, metrics = found
    return _report(record, tables_from_long(metrics))


def load_report(results_url: str, monitoring_id: int) -> MonitoringReport:
    """A stored monitoring as it was reported (tables and figures drawn again)."""
    with _store(results_url) as engine:
        return _load(engine, monitoring_id)


def monitoring_history(results_url: str, model_name: str | None = None) -> pd.DataFrame:
    """Every monitoring (of ``model_name``, else all), newest first, a column per verdict."""
    with _store(results_url) as engine, as_typed():
        history = list_monitoring(engine, model_name)
    verdicts = pd.json_normalize([_json(text) for text in history["verdicts"]])
    out = history.drop(columns="verdicts").reset_index(drop=True)
    return pd.concat([out, verdicts.reset_index(drop=True)], axis=1) if len(out) else out


def _json(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


# ---------------------------------------------------------------------------------------------
# the report for a person


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, pd.Timestamp):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, float | np.floating):
        return f"{value:.4g}"
    return str(value)


def markdown_table(frame: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A GitHub-flavoured markdown table of ``frame`` (numbers to 4 significant digits)."""
    columns = [c for c in (columns or list(frame.columns)) if c in frame.columns]
    lines = ["| " + " | ".join(map(str, columns)) + " |", "|" + "---|" * len(columns)]
    for row in frame[columns].itertuples(index=False, name=None):
        lines.append("| " + " | ".join(_fmt(x).replace("|", "/") for x in row) + " |")
    return "\n".join(lines)


SECTIONS = (
    ("score_psi", "Score distribution against the training reference (PSI)", None),
    ("csi", "Features that moved most (CSI)", 10),
    ("migration", "Rating migration since the previous run (rows: before)", None),
    ("migration_z", "Migration stability z-tests: violations", None),
    ("concentration", "Grade concentration now and at approval", None),
    ("backtest", "Backtest of matured cohorts (AUC, ECB test against approval)", None),
    ("calibration", "Calibration by grade, latest matured cohort, beside approval", None),
    ("warning_levels", "Early warnings on matured cohorts: default rate by level", None),
    ("warning_lead", "Defaulters flagged amber or red, by months before default", None),
    ("expected", "Expected (from PDs) beside realised figures", None),
)


def report_markdown(report: MonitoringReport) -> str:
    """The monitoring report as markdown: headline, alerts, notes, then every section."""
    lines = [
        f"# Monitoring {report.model_name} v{report.model_version}",
        f"Run {report.run_id} as of {report.as_of:%Y-%m-%d}"
        + ("" if report.previous_run_id is None else f", against run {report.previous_run_id}")
        + f" (monitoring {report.monitoring_id}).",
        "",
        "## Alerts",
        *([f"- **{a}**" for a in report.alerts] or ["No alert: every gate holds."]),
        "",
        "## Verdicts",
        markdown_table(pd.DataFrame(list(report.verdicts.items()), columns=["check", "verdict"])),
    ]
    if report.notes:
        lines += ["", "## Notes", *[f"- {n}" for n in report.notes]]
    if "summary" in report.tables:
        lines += ["", "## Figures", markdown_table(report.tables["summary"])]
    for key, title, head in SECTIONS:
        table = report.tables.get(key)
        if table is None:
            continue
        if key == "migration_z":
            table = table[table["violation"].astype(bool)]
            if table.empty:
                continue
        lines += ["", f"## {title}", markdown_table(table.head(head) if head else table)]
    return "\n".join(lines) + "\n"
