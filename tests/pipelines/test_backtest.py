"""Backtest of the warning rules and the calibration: figures recomputed by hand on tiny frames,
the engine's levels, and the whole path (registered model, out-of-time dates, the command) on a
small synthetic book."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from features.labels import LABEL
from models.master_scale import MasterScale
from pipelines.decisions.backtest import (
    LEVEL,
    backtest,
    goal_table,
    goals_of,
    level_table,
    outcomes,
    warn_dates,
)
from pipelines.decisions.early_warning import (
    DEFAULT_PATH,
    LEVELS,
    RANK,
    evaluate_signals,
    load_rules,
    parse_rules,
    roll_up,
)
from pipelines.decisions.warning_calibration import (
    Bands,
    candidates,
    cautious_margin,
    level_ranks,
    propose,
    rules_yaml,
)
from tests.conftest import assert_clean_error, run_cli

# the small-book tests share one trained model: keep them on one worker
pytestmark = pytest.mark.xdist_group("warning-backtest")
T1, T2 = pd.Timestamp("2024-01-01"), pd.Timestamp("2024-04-01")
ENGINE_RULES = load_rules(Path(__file__).with_name("engine_rules.yaml"))  # not the shipped ones


def _frame(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["customer_id", "as_of", "level", LABEL, "defaulted_on"])


# customer, as_of, level, label, default date: 10 customer-dates, 4 of them defaults
ROWS = [
    ("A", T1, "red", 1.0, pd.Timestamp("2024-02-01")),  # 1 month after T1
    ("B", T1, "amber", 1.0, pd.Timestamp("2024-09-01")),  # 8 months after T1, 5 after T2
    ("B", T2, "red", 1.0, pd.Timestamp("2024-09-01")),
    ("C", T1, "green", 0.0, pd.NaT),
    ("C", T2, "green", 0.0, pd.NaT),
    ("D", T1, "watch", 0.0, pd.NaT),
    ("D", T2, "green", 1.0, pd.Timestamp("2024-07-01")),  # exactly 3 months after T2
    ("E", T1, "green", 0.0, pd.NaT),
    ("E", T2, "watch", 0.0, pd.NaT),
    ("F", T2, "amber", 0.0, pd.NaT),
]


@pytest.fixture
def tiny():
    rows = _frame(ROWS)
    warnings = rows[["customer_id", "as_of", LEVEL]]
    signals = pd.DataFrame(
        [("A", T1, "s_red", "red"), ("B", T1, "s_amber", "amber"), ("B", T2, "s_red", "red"),
         ("D", T1, "s_watch", "watch"), ("E", T2, "s_watch", "watch"),
         ("F", T2, "s_amber", "amber"), ("B", T2, "s_amber", "amber")],
        columns=["customer_id", "as_of", "signal", "severity"],
    )  # fmt: skip
    dates = rows.dropna(subset=["defaulted_on"]).groupby("customer_id")["defaulted_on"].first()
    return warnings, signals, outcomes(rows, dates)


def test_outcomes_months_to_default_and_the_next_quarter(tiny):
    *_, outcome = tiny
    by = outcome.set_index(["customer_id", "as_of"])
    assert by.loc[("A", T1), "months_to_default"] == 1
    assert by.loc[("B", T1), "months_to_default"] == 8
    assert by.loc[("D", T2), "months_to_default"] == 3
    # (as_of, as_of + 3 months]: the end is in, like the label's horizon
    assert list(outcome.loc[outcome["default_3m"], "customer_id"]) == ["A", "D"]


def test_backtest_figures_recompute_by_hand(tiny):
    result = backtest(*tiny)
    levels = result.levels
    assert result.rows == 10 and result.defaults == 4
    assert list(levels.index) == list(LEVELS)
    assert levels["rows"].tolist() == [4, 2, 2, 2]
    assert levels["defaults"].tolist() == [1, 0, 1, 2]
    assert levels.loc["green", "default_rate"] == pytest.approx(1 / 4)
    assert levels.loc["red", "lift"] == pytest.approx((2 / 2) / (4 / 10))
    assert levels.loc["amber", "share"] == pytest.approx(0.2)
    # the next quarter's defaulters: A (red at T1) and D (green at T2)
    assert levels["defaults_3m"].tolist() == [1, 0, 0, 1]
    assert result.capture["capture_quarter"] == pytest.approx(0.5)
    assert result.capture["green_quarter"] == pytest.approx(0.5)
    # defaults within 12 months: A red, B amber, B red, D green -> 3 of 4 flagged
    assert result.capture["capture_12m"] == pytest.approx(0.75)
    # first flag before default: A 1 month ahead, B 8 months ahead (T1); D never flagged
    assert result.lead_months.sort_index().tolist() == [1, 8]
    assert result.capture["median_months_ahead"] == pytest.approx(4.5)
    assert result.capture["defaulters_flagged"] == pytest.approx(2 / 3)
    lead = result.capture_by_lead
    assert lead.index.tolist() == ["0-3 months", "3-6 months", "6-9 months"]
    assert lead["defaulters"].tolist() == [2, 1, 1]  # A and D; B at T2; B at T1
    assert lead["flagged"].tolist() == [0.5, 1.0, 1.0]
    signals = result.signals
    assert signals.loc["s_red", "rows"] == 2 and signals.loc["s_red", "defaults"] == 2
    assert signals.loc["s_amber", "default_rate"] == pytest.approx(2 / 3)
    assert signals.loc["s_watch", "capture"] == 0
    assert signals.loc["s_red", "capture_3m"] == pytest.approx(0.5)


def test_goal_table_checks_each_goal(tiny):
    goals = goals_of(backtest(*tiny)).set_index("goal")
    assert np.isnan(goals.loc["amber / watch default rate", "value"])  # watch has no default
    assert not goals.loc["amber / watch default rate", "met"]
    assert goals.loc["red / green default rate", "value"] == pytest.approx(1 / 0.25)
    assert not goals.loc["red / green default rate", "met"]
    assert goals.loc["book at amber or red (at most)", "value"] == pytest.approx(0.4)
    assert not goals.loc["book at amber or red (at most)", "met"]
    met = pd.DataFrame(
        {"rows": [800, 100, 60, 40], "defaults": [8, 3, 6, 16], "defaults_3m": 0, "share": 0.0},
        index=list(LEVELS),
    ).assign(default_rate=lambda t: t.defaults / t.rows, share=lambda t: t.rows / 1000)
    assert goal_table(met, 0.6)["met"].all()
    assert not goal_table(met, 0.59)["met"].all()


def test_backtest_refuses_unmatured_labels(tiny):
    warnings, signals, outcome = tiny
    outcome.loc[0, LABEL] = np.nan
    with pytest.raises(ValueError, match="matured"):
        backtest(warnings, signals, outcome)


def _scored(pds: dict[pd.Timestamp, list[float]]) -> pd.DataFrame:
    scale = MasterScale.load()
    return pd.concat(
        pd.DataFrame(
            {"customer_id": ["X", "Y"], "as_of": as_of, "pd": p, "grade": scale.grade_of(p)}
        )
        for as_of, p in pds.items()
    ).reset_index(drop=True)


def test_warn_dates_compare_each_date_with_the_runs_before_it():
    rules = ENGINE_RULES
    t0 = pd.Timestamp("2023-10-01")
    scored = _scored({t0: [0.01, 0.01], T1: [0.05, 0.01], T2: [0.05, 0.2]})
    warnings, signals = warn_dates(scored, rules, dates=[T1, T2])
    jumps = signals[signals["signal"] == "pd_jump"]
    assert list(zip(jumps["customer_id"], jumps["as_of"], strict=True)) == [("X", T1), ("Y", T2)]
    assert len(warnings) == 4 and set(warnings["as_of"]) == {T1, T2}
    # a history window shorter than the gap between runs leaves nothing to compare with
    _, none = warn_dates(scored, rules, dates=[T2], history_months=2)
    assert "pd_jump" not in set(none["signal"])


def test_level_ranks_equal_the_engines_roll_up():
    rng = np.random.default_rng(7)
    rules = ENGINE_RULES
    n = 300
    current = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "as_of": T1,
            "utilisation_latest": rng.uniform(0.5, 1.0, n),
            "interest_coverage": rng.uniform(0, 4, n),
            "lawsuits_12m": rng.integers(0, 2, n),
            "days_past_due_current": rng.choice([0, 30, 60], n),
            "months_30dpd_6m": rng.integers(0, 3, n),
        }
    )
    signals = evaluate_signals(current, None, rules)
    levels = roll_up(signals, rules, population=current).set_index("customer_id")["level"]
    names = [r.name for r in rules.rules]
    fired = np.array(
        [current["customer_id"].isin(signals.loc[signals["signal"] == s, "customer_id"])
         for s in names]
    )  # fmt: skip
    ranks = level_ranks(fired, [RANK[r.severity] for r in rules.rules], rules.escalation)
    expected = levels.reindex(current["customer_id"]).map(RANK).to_numpy()
    assert (ranks == expected).all()


def test_severity_by_lift_band_and_cautious_margin():
    bands = Bands(red=8, amber=3, watch=1.5)
    assert [bands.severity(x) for x in (9, 8, 3, 2.9, 1.5, 1.2)] == [
        "red", "red", "amber", "watch", "watch", "dropped"
    ]  # fmt: skip
    rates = np.array([0.01, 0.02, 0.04, 0.16])
    big = np.array([80_000, 10_000, 6_000, 4_000])
    assert cautious_margin(big, big * rates, (700, 1000)) >= 1
    # the same rates on thin levels cannot be told apart from luck
    thin = np.array([800, 100, 60, 40])
    assert cautious_margin(thin, thin * rates, (7, 10)) < 1


def test_candidates_stay_from_half_to_twice_the_current_thresholds():
    rules = {r.name: r for r in ENGINE_RULES.rules}
    fit = pd.DataFrame({"utilisation_latest": np.linspace(0, 1.2, 101)})
    values = [c.when[0].value for c in candidates(rules["utilisation_high"], fit)]
    assert values[0] == 0.9 and min(values) == 0.45 and max(values) == 1.1
    jumps = candidates(rules["pd_jump"], fit)
    assert {c.relative for c in jumps} == {0.25, 0.34, 0.4, 0.5, 0.62, 0.75, 1.0}
    notches = {c.notches for c in candidates(rules["downgrade"], fit)}
    assert notches == {1, 2, 3}


GROUPS = {  # share of the book, 12-month default rate, share of the defaults in the next quarter
    "red": (0.02, 0.30, 0.6),
    "amber": (0.04, 0.10, 0.4),
    "watch": (0.06, 0.04, 0.05),
    "green": (0.88, 0.01, 0.05),
}
START = """
levels: {green: {measures: []}, watch: {measures: []}, amber: {measures: []},
         red: {measures: [hand_to_collections]}}
rules:
  - name: utilisation_high
    severity: watch
    when: [{feature: utilisation_latest, op: ">=", value: 0.9}]
  - name: interest_coverage_low
    severity: red
    when: [{feature: interest_coverage, op: "<", value: 1.0}]
  - name: legal_action
    severity: amber
    when: [{feature: lawsuits_12m, op: ">=", value: 1}]
  - name: leverage_up
    severity: amber
    when: [{feature: leverage_change_1y, op: ">=", value: 0.1}]
  - name: complaint_spike
    severity: amber
    when: [{feature: complaints_12m, op: ">=", value: 3}]
  - name: stale_statements
    severity: watch
    when: [{feature: statement_age_days, op: ">", value: 456}]
"""


def _book_rows(n: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One risk group per customer; high utilisation marks the red group, low interest cover
    the amber one, a lawsuit the watch one; a rise in leverage says nothing, complaints and stale
    statements show too few defaulters to tell."""
    rng = np.random.default_rng(seed)
    names = list(GROUPS)
    group = rng.choice(names, size=n, p=[g[0] for g in GROUPS.values()])
    rate = pd.Series({k: v[1] for k, v in GROUPS.items()})[group].to_numpy()
    soon = pd.Series({k: v[2] for k, v in GROUPS.items()})[group].to_numpy()
    label = (rng.random(n) < rate).astype(float)
    months = np.where(rng.random(n) < soon, 2, 8)
    scored = pd.DataFrame(
        {
            "customer_id": [f"C{i}" for i in range(n)],
            "as_of": T1,
            "pd": 0.02,
            "grade": "R5",
            "utilisation_latest": np.where(group == "red", 0.95, rng.uniform(0, 0.8, n)),
            "interest_coverage": np.where(group == "amber", 0.5, rng.uniform(2, 6, n)),
            "lawsuits_12m": (group == "watch").astype(float),
            "leverage_change_1y": rng.uniform(-0.2, 0.3, n),
            # green customers: complaints from 2 % (a dozen defaulters), stale statements 0.1 %
            "complaints_12m": np.where((group == "green") & (rng.random(n) < 0.02), 3, 0),
            "statement_age_days": np.where((group == "green") & (rng.random(n) < 1e-3), 500, 90),
            LABEL: label,
        }
    )
    when = T1 + pd.to_timedelta(months * 30.5, unit="D")
    dates = pd.Series(when, index=scored["customer_id"])[label == 1]
    return scored.drop(columns=LABEL), outcomes(scored, dates)


def test_propose_ranks_by_lift_and_writes_a_valid_rules_file():
    scored, outcome = _book_rows(60_000)
    proposal = propose(scored, outcome, parse_rules(START), history_months=12, folds=2)
    proposed = proposal.choices.set_index("rule")["proposed"].to_dict()
    assert proposed == {
        "utilisation_high": "red",
        "interest_coverage_low": "amber",
        "legal_action": "watch",
        "leverage_up": "dropped",  # lift about 1
        "complaint_spike": "dropped",  # 2 % of the book, too few defaulters to show its worth
        "stale_statements": "watch",  # too rare to tell: kept as it is
    }
    assert proposal.margin >= 1 and proposal.fit_goals["met"].all()
    assert proposal.held_out["met"].all() and set(proposal.held_out["fold"]) == {0, 1}
    text = rules_yaml(proposal, ["proposed for review", ""])
    assert text.startswith("# proposed for review\n#\n")
    reread = parse_rules(text)
    assert reread == proposal.rules
    kept = ["utilisation_high", "interest_coverage_low", "legal_action", "stale_statements"]
    assert [r.name for r in reread.rules] == kept


def test_level_table_of_a_frame_without_some_levels():
    joined = pd.DataFrame(
        {LEVEL: ["green", "green", "red"], LABEL: [0.0, 0.0, 1.0], "default_3m": [False] * 3}
    )
    table = level_table(joined)
    assert table.loc["watch", "rows"] == 0 and table.loc["watch", "share"] == 0
    assert json.dumps(table["rows"].tolist()) == "[2, 0, 0, 1]"


@pytest.fixture(scope="module")
def small_home(tmp_path_factory):
    """A 1,500-customer book, its training snapshots and a registered model, as `creditrisk run`
    makes them (generate, validate, snapshots, train and register) under one home."""
    from pipelines.settings import Settings
    from pipelines.usecases.book import GenerateRequest, generate_book, validate_book
    from pipelines.usecases.snapshots import SnapshotPlan, build_and_write_snapshots
    from pipelines.usecases.training import TrainRequest, train_and_register

    home = tmp_path_factory.mktemp("backtest") / "home"
    # Pinned: an earlier test of the worker may have left MLFLOW_TRACKING_URI set; the CLI
    # subprocesses (without it) use the home's database.
    settings = Settings(
        home=home, mlflow_tracking_uri=f"sqlite:///{(home / 'mlflow.db').resolve()}"
    )
    book = GenerateRequest(customers=1_500, months=48, seed=42)
    generate_book(book, settings.book_dir)
    tables = validate_book(settings.book_dir, 0.05, settings.rejects_dir / "rejects.csv")
    plan = SnapshotPlan.for_book(tables.observed_until, pd.Timestamp(book.start), 12)
    path = settings.snapshots_dir / "training.parquet"
    build_and_write_snapshots(tables.tables, plan.training, 12, path)
    trained = train_and_register(TrainRequest(snapshots=path, trained_by="test"), settings)
    return settings, str(trained.tracked.version)


def _request(settings, version):
    from pipelines.usecases.warning_backtest import BacktestRequest

    return BacktestRequest(
        settings.model_name,
        settings.tracking_uri,
        settings.snapshots_dir / "training.parquet",
        settings.book_dir,
        version,
    )


def test_small_book_backtest_is_out_of_time_and_recomputes(small_home):
    from features.io import read_snapshots
    from pipelines.usecases.warning_backtest import backtest_rules, load_backtest_data

    settings, version = small_home
    data = load_backtest_data(_request(settings, version))
    snapshots, _ = read_snapshots(settings.snapshots_dir / "training.parquet")
    later = pd.to_datetime(snapshots["as_of"]) > data.trained_until
    assert data.dates and min(data.dates) > data.trained_until
    assert data.dates == sorted(pd.to_datetime(snapshots.loc[later, "as_of"].unique()))
    assert len(data.outcome) == int(later.sum()) and data.outcome[LABEL].notna().all()
    # the runs before the first out-of-time date are scored too: the PD rules compare with them
    assert pd.to_datetime(data.scored["as_of"]).min() < min(data.dates)
    rules, scale = ENGINE_RULES, MasterScale.load()
    result = backtest_rules(data, rules, scale)
    assert result.rows == len(data.outcome) and result.defaults == data.outcome[LABEL].sum()
    assert result.levels["share"].sum() == pytest.approx(1.0)
    assert set(result.signals["severity"]) <= {"watch", "amber", "red"}
    # by hand: the engine's warnings of each date joined with the labels
    levels = []
    for as_of in data.dates:
        current = data.scored[pd.to_datetime(data.scored["as_of"]) == as_of]
        before = data.scored[
            (pd.to_datetime(data.scored["as_of"]) < as_of)
            & (pd.to_datetime(data.scored["as_of"]) >= as_of - pd.DateOffset(months=12))
        ]
        history = before[["customer_id", "as_of", "pd", "grade"]]
        fired = evaluate_signals(current, history, rules, scale)
        levels.append(roll_up(fired, rules, population=current))
    joined = pd.concat(levels).assign(as_of=lambda f: pd.to_datetime(f["as_of"]))
    joined = joined.merge(data.outcome, on=["customer_id", "as_of"])
    by_hand = joined.groupby("level")[LABEL].agg(["size", "mean"]).reindex(list(LEVELS))
    assert result.levels["rows"].tolist() == by_hand["size"].fillna(0).astype(int).tolist()
    np.testing.assert_allclose(
        result.levels["default_rate"].dropna(), by_hand["mean"].dropna(), rtol=1e-12
    )
    flagged = joined["level"].isin(["amber", "red"])
    assert result.capture["capture_12m"] == pytest.approx(flagged[joined[LABEL] == 1].mean())


def test_calibrate_command_writes_a_proposal_and_leaves_the_live_rules(small_home, tmp_path):
    settings, version = small_home
    live = DEFAULT_PATH.read_bytes()
    result = run_cli("warnings", "calibrate", "--version", version, home=settings.home)
    assert result.returncode == 0, result.stdout + result.stderr
    for fragment in ("out of time", "Levels: now | proposed", "Goals", "proposal written"):
        assert fragment in result.stdout
    proposed = settings.home / "warning_rules.proposed.yaml"
    assert parse_rules(proposed.read_text()).rules
    assert DEFAULT_PATH.read_bytes() == live
    target = tmp_path / "rules.yaml"
    again = run_cli("warnings", "calibrate", "--version", version, "--write", str(target),
                    home=settings.home)  # fmt: skip
    assert again.returncode == 0 and target.read_text() == proposed.read_text()


def test_calibrate_says_when_no_model_is_registered(cli):
    assert_clean_error(cli("warnings", "calibrate"), 2, "no champion or challenger")
