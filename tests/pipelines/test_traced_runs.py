"""Scoring runs over a small synthetic book with a real model in MLflow: customers in default
are graded D and handed to collections, and every stored run reproduces exactly from what it
recorded (configuration texts, snapshot, model version), while a changed record is found."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa

from features.labels import default_dates, observed_until
from features.snapshots import DEFAULTED_ON, LABEL, build_snapshot, build_snapshots
from features.synthetic import generate_book
from models.registry import load_scorer
from models.tracking import connect, log_training
from models.training import train_from_snapshots
from pipelines.store import queries
from pipelines.store.db import open_store
from pipelines.store.lifecycle import ACTIVE, observations_of
from pipelines.store.runs import write_scored_runs
from pipelines.usecases.reproduce import reproduce_run
from pipelines.usecases.review import show_warning
from pipelines.usecases.scoring import DecisionConfig, ScoringRequest, decide_dates, store_dates
from tests.conftest import assert_clean_error

pytestmark = pytest.mark.xdist_group("traced-runs")

MODEL = "creditrisk-traced-test"
START = pd.Timestamp("2021-01-01")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A 1,500-customer book, its two latest quarters to score, and a model in MLflow."""
    tables = generate_book(1_500, 36, start=f"{START:%Y-%m-%d}", seed=3)
    observed = observed_until(tables)
    training = build_snapshots(tables, [START + pd.DateOffset(months=m) for m in (15, 18, 21, 24)])
    scoring_dates = [observed - pd.DateOffset(months=3), observed]
    scoring = build_snapshots(tables, scoring_dates, with_defaulted=True)
    root = tmp_path_factory.mktemp("mlflow-traced")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracked = log_training(
        train_from_snapshots(training, n_estimators=30),
        experiment="traced-test",
        model_name=MODEL,
        dataset="traced-test",
        trained_by="alice",
        tracking_uri=uri,
        artifact_root=root / "mlartifacts",
    )
    scorer = load_scorer(connect(uri), MODEL, tracked.version)
    return SimpleNamespace(tables=tables, scoring=scoring, dates=scoring_dates, uri=uri,
                           version=tracked.version, scorer=scorer)  # fmt: skip


def score(engine, book, config: DecisionConfig | None = None, snapshots=None):
    """Score and store the book's scoring dates (or ``snapshots``): the dates and runs."""
    request = ScoringRequest(MODEL, book.version, book.uri, "unused", "runner",
                             config or DecisionConfig.load())  # fmt: skip
    frame = book.scoring if snapshots is None else snapshots
    dates = decide_dates(frame, book.scorer, engine, request)
    return dates, write_scored_runs(engine, dates, MODEL, book.version, "runner")


def in_default_at(book, as_of: pd.Timestamp) -> set[str]:
    dates = default_dates(book.tables)
    return set(dates.index[dates <= as_of])


def test_scoring_snapshots_add_the_customers_in_default_and_training_ones_do_not(book):
    as_of = book.dates[-1]
    plain = build_snapshot(book.tables, as_of)
    full = build_snapshot(book.tables, as_of, with_defaulted=True)
    defaulted = full[full[DEFAULTED_ON].notna()]
    assert set(defaulted["customer_id"]) == in_default_at(book, as_of) != set()
    assert defaulted[LABEL].isna().all()
    assert not set(plain["customer_id"]) & in_default_at(book, as_of)
    since = default_dates(book.tables).reindex(defaulted["customer_id"]).to_numpy()
    assert (defaulted[DEFAULTED_ON].to_numpy() == since).all()
    performing = full[full[DEFAULTED_ON].isna()].drop(columns=DEFAULTED_ON)
    pd.testing.assert_frame_equal(performing, plain)


def test_customers_in_default_get_grade_d_the_d_rule_and_their_warnings_close(engine, book):
    dates, runs = score(engine, book)
    before, after = in_default_at(book, book.dates[0]), in_default_at(book, book.dates[1])
    latest = dates[-1]
    scored = latest.scored.set_index("customer_id")
    d = scored[scored["grade"] == "D"]
    assert set(d.index) == after and (d["pd"] == 1.0).all()
    since = default_dates(book.tables)
    for customer, reasons in d["reasons"].items():
        (reason,) = json.loads(reasons)
        assert reason["text"] == f"in default since {since[customer]:%Y-%m-%d}"
    decisions = latest.decisions.set_index("customer_id").loc[d.index]
    assert (decisions["recommended_limit"] == 0).all() and (decisions["term_days"] == 0).all()
    assert set(decisions["conditions"]) == {"collections"}
    assert "D" not in set(scored.loc[~scored.index.isin(after), "grade"])
    assert queries.grade_counts(engine, runs[-1].run_id)["D"] == len(after)

    moved = queries.read_warnings(engine, status=("defaulted",))
    assert not moved.empty and set(moved["customer_id"]) <= after - before
    for warning_id in moved["id"]:
        history = show_warning(engine, int(warning_id)).runs
        assert history["action"].tolist()[-1] == "defaulted"
        assert history["as_of"].tolist()[-1] == book.dates[1].date()
    assert not set(queries.read_warnings(engine, status=ACTIVE)["customer_id"]) & after
    assert queries.read_watchlist(engine)["grade"].ne("D").all()

    migration = queries.run_migration(engine, runs[0].run_id, runs[1].run_id)
    assert migration.counts["D"].sum() == len(after - before)
    assert migration.counts.loc["D"].sum() == 0


def test_a_stored_run_reproduces_exactly_and_a_changed_record_is_found(engine, book):
    config = DecisionConfig.load()
    _, runs = score(engine, book, config)
    run_id = runs[-1].run_id
    found = reproduce_run(engine, book.uri, run_id)
    assert found.matches, found.differences
    assert found.n_customers == len(book.scoring[book.scoring["as_of"] == book.dates[1]])
    assert found.checks["item"].tolist() == [
        "credit_policy", "warning_rules", "master_scale", "snapshot"
    ]  # fmt: skip

    # a later run of the date under a tighter policy: it reproduces too, and keeps its text
    tighter = config.texts["credit_policy"].replace("cap: 2000000", "cap: 20000")
    assert tighter != config.texts["credit_policy"]
    other = DecisionConfig.parse({**config.texts, "credit_policy": tighter})
    _, (rerun,) = score(engine, book, other, book.scoring[book.scoring["as_of"] == book.dates[1]])
    assert reproduce_run(engine, book.uri, rerun.run_id).matches
    hashes = queries.list_runs(engine, current_only=False).set_index("id")["policy_sha256"]
    # the first run made to name the tighter policy: its decisions no longer follow
    with engine.begin() as conn:
        conn.execute(
            sa.text("update score_runs set policy_sha256 = :h where id = :r"),
            {"h": hashes[rerun.run_id], "r": run_id},
        )
    swapped = reproduce_run(engine, book.uri, run_id)
    assert swapped.compared and not swapped.matches
    assert swapped.differences["column"].tolist() == ["recommended_limit", "binding_rule"]

    # the stored policy text itself changed: its hash gives it away
    with engine.begin() as conn:
        conn.execute(
            sa.text("update score_runs set policy_sha256 = :h where id = :r"),
            {"h": hashes[run_id], "r": run_id},
        )
        conn.execute(
            sa.text("update decision_configs set text = :t where sha256 = :h"),
            {"t": tighter, "h": hashes[run_id]},
        )
    tampered = reproduce_run(engine, book.uri, run_id)
    assert not tampered.compared and not tampered.matches
    bad = tampered.checks.set_index("item")
    assert not bad.loc["credit_policy", "ok"] and bad.drop(index="credit_policy")["ok"].all()


def test_a_changed_decision_is_found_and_the_command_says_so(tmp_path, cli, book):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    engine = open_store(url)
    _, runs = score(engine, book)
    run_id = str(runs[-1].run_id)
    env = {"CREDITRISK_MLFLOW_TRACKING_URI": book.uri}
    done = cli("decisions", "reproduce", run_id, "--database-url", url, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"run {run_id} reproduces exactly" in done.stdout
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update policy_decisions set recommended_limit = recommended_limit + 1000 "
                "where run_id = :r and customer_id = (select min(customer_id) from "
                "policy_decisions where run_id = :r and recommended_limit > 0)"
            ),
            {"r": int(run_id)},
        )
    engine.dispose()
    changed = cli("decisions", "reproduce", run_id, "--database-url", url, env=env)
    assert_clean_error(changed, 1, f"run {run_id} does not reproduce", "recommended_limit")
    assert "differences" in changed.stdout


def test_an_open_warning_carries_what_the_latest_run_found(engine, book):
    score(engine, book)
    warnings = queries.read_warnings(engine)
    held = warnings[warnings["first_as_of"] == book.dates[0].date()]
    assert not held.empty
    for warning in held.to_dict("records"):
        runs = observations_of(engine, warning["id"])
        assert runs["as_of"].tolist() == [d.date() for d in book.dates]
        latest = runs.iloc[-1]
        assert (warning["signals"], json.loads(warning["evidence"])) == (
            latest["signals"], json.loads(latest["evidence"])
        )  # fmt: skip
        assert warning["latest_level"] == latest["level"]


def test_the_run_summary_lists_grades_best_first_and_the_default_grade_last(tmp_path, book):
    config = DecisionConfig.load()
    url = f"sqlite:///{tmp_path / 'results.db'}"
    request = ScoringRequest(MODEL, book.version, book.uri, url, "runner", config)
    engine = open_store(url)
    dates = decide_dates(book.scoring, book.scorer, engine, request)
    engine.dispose()
    for outcome in store_dates(dates, request):
        listed = outcome.policy["grade"].tolist()
        assert listed == [g for g in config.scale.grades if g in listed] and listed[-1] == "D"
