"""write_scored_run: one transaction, replace on rerun, nothing left by a killed write."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

import pipelines.store.runs as batch
from models.master_scale import DEFAULT_PATH as SCALE_PATH
from pipelines.decisions.early_warning import DEFAULT_PATH as RULES_PATH
from pipelines.decisions.early_warning import evaluate_signals, load_rules, roll_up
from pipelines.decisions.policy import DEFAULT_PATH as POLICY_PATH
from pipelines.decisions.policy import decide, load_policy
from pipelines.store import queries
from pipelines.store.runs import write_scored_run
from pipelines.store.trace import RunTrace, read_trace, snapshot_bytes, snapshot_frame
from pipelines.usecases.scoring import DecisionConfig, policy_inputs

REASONS = json.dumps(
    [{"feature": "days_past_due_current", "text": "late", "value": 45, "contribution": 0.7}]
)


def scored_frame(as_of="2024-06-01") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "as_of": pd.Timestamp(as_of),
            "pd": [0.0005, 0.05, 0.3],
            "score": [780, 650, 560],
            "grade": ["R1", "R6", "R8"],
            "reasons": ["[]", REASONS, None],
            "revenue_latest": [1e6, 2e6, None],
            "credit_limit_latest": [1e5, 1e5, 5e4],
            "utilisation_latest": [0.2, 0.95, 0.99],
            "lawsuits_12m": [0, 0, 2],
        }
    )


def outputs(scored):
    rules = load_rules(Path(__file__).with_name("engine_rules.yaml"))  # not the shipped ones
    decisions = decide(scored, load_policy())
    warnings = roll_up(evaluate_signals(scored, None, rules), rules, population=scored)
    return decisions, warnings


def write(engine, scored, **kw):
    decisions, warnings = outputs(scored)
    return write_scored_run(
        engine,
        scored,
        decisions,
        warnings,
        "creditrisk-pd",
        "3",
        scored["as_of"][0],
        "runner",
        **kw,
    )


def stored(engine, run_id):
    scores = queries.read_scores(engine, run_id).sort_values("customer_id")
    decisions = queries.read_decisions(engine, run_id).sort_values("customer_id")
    return scores.drop(columns="run_id").to_dict("records"), decisions.drop(
        columns="run_id"
    ).to_dict("records")


def test_write_round_trips_scores_decisions_and_warnings(engine):
    out = write(engine, scored_frame())
    scores, decisions = stored(engine, out.run_id)
    assert [s["grade"] for s in scores] == ["R1", "R6", "R8"]
    assert json.loads(scores[1]["reasons"])[0]["feature"] == "days_past_due_current"
    assert pd.isna(scores[2]["reasons"])
    assert [d["recommended_limit"] for d in decisions] == [150000.0, 80000.0, 25000.0]
    assert out.warnings["opened"] == 2
    assert queries.open_warnings_by_level(engine) == {"watch": 1, "amber": 1, "red": 0}
    runs = queries.list_runs(engine)
    assert runs[["status", "n_customers", "created_by"]].values.tolist() == [
        ["succeeded", 3, "runner"]
    ]
    assert runs["finished_at"].notna().all()


def test_rerun_supersedes_the_run_and_keeps_it_as_history(engine):
    first = write(engine, scored_frame())
    before = stored(engine, first.run_id)
    second = write(engine, scored_frame())
    assert second.superseded_run_id == first.run_id and second.run_id != first.run_id
    assert stored(engine, second.run_id) == before
    assert queries.list_runs(engine)["id"].tolist() == [second.run_id]
    history = queries.list_runs(engine, current_only=False).set_index("id")
    assert history.loc[first.run_id, "status"] == "superseded"
    assert history.loc[first.run_id, "superseded_by"] == second.run_id
    assert stored(engine, first.run_id) == before
    assert second.warnings["opened"] == 0
    assert len(queries.read_warnings(engine, status=None)) == 2
    actions = queries.read_audit(engine)["action"].tolist()
    assert actions == ["run_written", "run_written"]


@pytest.mark.parametrize("fail_in", ["decisions", "warnings"])
def test_a_killed_write_leaves_nothing(engine, monkeypatch, fail_in):
    write(engine, scored_frame("2024-05-01"))
    kept = stored(engine, queries.latest_run_ids(engine)[0])

    def boom(*args, **kwargs):
        raise RuntimeError("killed")

    real_bulk = batch.bulk_insert

    def bulk(conn, table, *args, **kwargs):
        if table.name == "policy_decisions":
            boom()
        return real_bulk(conn, table, *args, **kwargs)

    monkeypatch.setattr(
        batch,
        "bulk_insert" if fail_in == "decisions" else "sync_warnings",
        bulk if fail_in == "decisions" else boom,
    )
    with pytest.raises(RuntimeError, match="killed"):
        write(engine, scored_frame("2024-05-01"))  # a rerun that would replace the first
    with pytest.raises(RuntimeError, match="killed"):
        write(engine, scored_frame("2024-06-01"))
    runs = queries.list_runs(engine)
    assert runs["as_of"].astype(str).tolist() == ["2024-05-01"]
    assert stored(engine, int(runs["id"][0])) == kept
    with engine.connect() as conn:
        n_scores = conn.execute(sa.text("select count(*) from scores")).scalar()
    assert n_scores == 3
    assert queries.read_audit(engine)["action"].tolist()[:2] == ["run_failed", "run_failed"]


@pytest.mark.parametrize("method", ["driver", "core"])
def test_insert_methods_store_the_same_rows(engine, method):
    auto = write(engine, scored_frame())
    expected = stored(engine, auto.run_id)
    other = write(engine, scored_frame(), method=method)
    assert stored(engine, other.run_id) == expected


def test_refuses_duplicate_customers_and_missing_user(engine):
    scored = scored_frame()
    decisions, warnings = outputs(scored)

    def write_as(frame, user="runner"):
        return write_scored_run(engine, frame, decisions, warnings, "m", "1", "2024-06-01", user)

    with pytest.raises(ValueError, match="duplicate customer_id"):
        write_as(pd.concat([scored, scored]))
    with pytest.raises(ValueError, match="user is required"):
        write_as(scored, user="")
    with pytest.raises(KeyError, match="lacks columns"):
        write_as(scored.drop(columns="reasons"))


def stage(engine, scored, job_id="job-1", version="4"):
    decisions, warnings = outputs(scored)
    date = batch.ScoredDate(scored["as_of"][0].date(), scored, decisions, warnings)
    return batch.write_scored_runs(
        engine, [date], "creditrisk-pd", version, "runner", job_id=job_id, publish=False
    )


def test_staged_runs_are_invisible_until_published(engine):
    first = write(engine, scored_frame("2024-06-01"))
    (staged,) = stage(engine, scored_frame("2024-06-01"))
    assert queries.list_runs(engine)["id"].tolist() == [first.run_id]
    assert queries.read_warnings(engine)["last_run_id"].eq(first.run_id).all()
    assert batch.pending_versions(engine, "job-1") == [("creditrisk-pd", "4")]
    (published,) = batch.publish_runs(engine, "job-1", "runner")
    assert published.run_id == staged.run_id and published.superseded_run_id == first.run_id
    runs = queries.list_runs(engine)
    assert runs[["id", "model_version"]].values.tolist() == [[staged.run_id, "4"]]
    assert queries.read_warnings(engine)["last_run_id"].eq(staged.run_id).all()
    assert batch.pending_versions(engine, "job-1") == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from staged_warnings")).scalar() == 0


def test_discarded_runs_leave_no_rows(engine):
    first = write(engine, scored_frame("2024-06-01"))
    (staged,) = stage(engine, scored_frame("2024-06-01"), job_id="job-2")
    assert batch.discard_runs(engine, "job-2") == [staged.run_id]
    assert queries.list_runs(engine)["id"].tolist() == [first.run_id]
    assert queries.read_scores(engine, staged.run_id).empty
    with engine.connect() as conn:
        status = conn.execute(
            sa.text("select status from score_runs where id = :i"), {"i": staged.run_id}
        ).scalar()
    assert status == "discarded"


def test_several_dates_are_written_in_one_transaction(engine, monkeypatch):
    dates = []
    for as_of in ("2024-03-01", "2024-06-01"):
        scored = scored_frame(as_of)
        decisions, warnings = outputs(scored)
        dates.append(batch.ScoredDate(pd.Timestamp(as_of).date(), scored, decisions, warnings))
    real_sync = batch.sync_warnings
    calls = []

    def second_fails(conn, warnings, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real_sync(conn, warnings, *args, **kwargs)

    monkeypatch.setattr(batch, "sync_warnings", second_fails)
    with pytest.raises(RuntimeError, match="killed"):
        batch.write_scored_runs(engine, dates, "creditrisk-pd", "3", "runner")
    assert queries.list_runs(engine, current_only=False).empty
    assert queries.read_warnings(engine, status=None).empty


def traced(scored: pd.DataFrame) -> batch.ScoredDate:
    """A scored date with its decision inputs and trace (the shipped configs, this snapshot)."""
    decisions, warnings = outputs(scored)
    decisions = decisions.assign(inputs=policy_inputs(scored))
    trace = RunTrace(DecisionConfig.load().texts, snapshot_bytes(scored), len(scored))
    return batch.ScoredDate(scored["as_of"][0].date(), scored, decisions, warnings, trace)


def count(engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"select count(*) from {table}")).scalar()


def test_a_run_records_the_config_texts_and_snapshot_it_used_once_per_hash(engine):
    def write(as_of: str) -> batch.RunWritten:
        (run,) = batch.write_scored_runs(engine, [traced(scored_frame(as_of))], "m", "3", "r")
        return run

    first, second = write("2024-03-01"), write("2024-06-01")
    files = {
        "credit_policy": ("policy_sha256", POLICY_PATH),
        "warning_rules": ("rules_sha256", RULES_PATH),
        "master_scale": ("scale_sha256", SCALE_PATH),
    }
    trace = read_trace(engine, second.run_id)
    for kind, (column, path) in files.items():
        assert trace.configs[kind] == path.read_text()
        assert trace.hashes[column] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert count(engine, "decision_configs") == 3  # two runs, the same three texts
    assert count(engine, "scored_snapshots") == 2
    pd.testing.assert_frame_equal(snapshot_frame(trace.snapshot), scored_frame("2024-06-01"))
    assert trace.hashes["snapshot_sha256"] == hashlib.sha256(trace.snapshot).hexdigest()
    assert (
        read_trace(engine, first.run_id).hashes["snapshot_sha256"]
        != trace.hashes["snapshot_sha256"]
    )
    assert read_trace(engine, write("2024-06-01").run_id).hashes == trace.hashes
    assert count(engine, "scored_snapshots") == 2


def test_each_decision_keeps_the_inputs_the_policy_read(engine):
    (run,) = batch.write_scored_runs(engine, [traced(scored_frame())], "creditrisk-pd", "3", "r")
    stored = queries.read_decisions(engine, run.run_id).sort_values("customer_id")
    inputs = [json.loads(v) for v in stored["inputs"]]
    assert inputs == [
        {"grade": "R1", "revenue_latest": 1e6, "credit_limit_latest": 1e5},
        {"grade": "R6", "revenue_latest": 2e6, "credit_limit_latest": 1e5},
        {"grade": "R8", "revenue_latest": None, "credit_limit_latest": 5e4},
    ]
    # what the policy decides from the stored inputs alone is the stored decision
    again = decide(pd.DataFrame(inputs).assign(customer_id=stored["customer_id"].tolist()),
                   load_policy())  # fmt: skip
    assert again["recommended_limit"].tolist() == stored["recommended_limit"].tolist()


def test_a_discarded_run_takes_its_snapshot_unless_another_run_scored_it(engine):
    kept = batch.write_scored_runs(engine, [traced(scored_frame())], "creditrisk-pd", "3", "r")
    for job, as_of in (("job-3", "2024-06-01"), ("job-4", "2024-09-01")):
        batch.write_scored_runs(engine, [traced(scored_frame(as_of))], "creditrisk-pd", "4", "r",
                                job_id=job, publish=False)  # fmt: skip
        batch.discard_runs(engine, job)
    assert count(engine, "scored_snapshots") == 1
    assert read_trace(engine, kept[0].run_id).snapshot is not None
