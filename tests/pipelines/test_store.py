"""Results store on SQLite and PostgreSQL: migrations, warning lifecycle, overrides, audit."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from pipelines.errors import Conflict
from pipelines.store import queries, upgrade
from pipelines.store.lifecycle import (
    TransitionError,
    acknowledge,
    events_of,
    observations_of,
    resolve,
    sync_warnings,
)
from pipelines.store.runs import write_scored_run
from pipelines.store.tables import EarlyWarning
from pipelines.store.testing import StoreUnavailable, temporary_store
from pipelines.usecases.reproduce import reproduce_run
from tests.pipelines.conftest import BACKENDS


def test_migrations_create_every_table_and_are_idempotent(engine):
    upgrade(engine)
    names = set(sa.inspect(engine).get_table_names())
    assert {"score_runs", "scores", "policy_decisions", "overrides", "warnings",
            "warning_events", "audit_log", "alembic_version", "warning_observations",
            "decision_configs", "scored_snapshots"} <= names  # fmt: skip


def day(d: int) -> dt.date:
    return dt.date(2024, d, 1)


def warn(rows: list[tuple]) -> pd.DataFrame:
    """(customer, level, signals[, evidence JSON]) -> a roll_up-like frame."""
    return pd.DataFrame(
        {
            "customer_id": [r[0] for r in rows],
            "level": [r[1] for r in rows],
            "signals": [r[2] for r in rows],
            "evidence": [r[3] if len(r) > 3 else "{}" for r in rows],
            "measures": ["[]"] * len(rows),
        }
    )


def sync(engine, rows, as_of, scored=("A", "B", "C")):
    with engine.begin() as conn:
        return sync_warnings(conn, warn(rows), pd.Series(list(scored)), as_of, 1, "runner")


def active(engine) -> dict[str, tuple[str, str, str]]:
    w = queries.read_warnings(engine)
    return {r.customer_id: (r.level, r.latest_level, r.status) for r in w.itertuples()}


def test_rerun_over_the_same_data_does_not_duplicate(engine):
    rows = [("A", "amber", "legal_action"), ("B", "watch", "utilisation_high")]
    assert sync(engine, rows, day(3))["opened"] == 2
    assert sync(engine, rows, day(3))["opened"] == 0
    assert sync(engine, rows, day(4))["opened"] == 0
    assert len(queries.read_warnings(engine, status=None)) == 2


def test_escalation_reopens_and_lower_level_is_held(engine):
    sync(engine, [("A", "amber", "legal_action")], day(3))
    wid = int(queries.read_warnings(engine)["id"][0])
    acknowledge(engine, wid, "ann", "called the customer")
    sync(engine, [("A", "red", "legal_action,pd_jump")], day(4))
    assert active(engine) == {"A": ("red", "red", "open")}
    sync(engine, [("A", "watch", "utilisation_high")], day(5))
    assert active(engine) == {"A": ("red", "watch", "open")}
    sync(engine, [("A", "watch", "utilisation_high")], day(6))
    events = events_of(engine, wid)["event"].tolist()
    assert events == ["opened", "acknowledged", "escalated", "held"]


def test_data_that_clears_resolves_but_older_data_changes_nothing(engine):
    sync(engine, [("A", "amber", "legal_action")], day(4))
    sync(engine, [], day(3))  # an older as-of is not newer evidence
    assert active(engine) == {"A": ("amber", "amber", "open")}
    sync(engine, [], day(5), scored=("B",))  # A not scored: nothing known about A
    assert active(engine) == {"A": ("amber", "amber", "open")}
    assert sync(engine, [], day(5))["cleared"] == 1
    assert active(engine) == {}
    stored = queries.read_warnings(engine, status=("resolved",))
    assert stored["resolved_by"].tolist() == ["runner"]
    assert stored["resolution_note"][0] == "cleared by data as of 2024-05-01"


def test_resolution_lowers_the_level_and_a_rerun_does_not_reopen(engine):
    sync(engine, [("A", "red", "new_delinquency_30")], day(3))
    wid = int(queries.read_warnings(engine)["id"][0])
    resolve(engine, wid, "bob", "paid in full")
    assert sync(engine, [("A", "red", "new_delinquency_30")], day(3))["opened"] == 0
    assert active(engine) == {}
    assert sync(engine, [("A", "watch", "utilisation_high")], day(3))["opened"] == 1
    assert active(engine) == {"A": ("watch", "watch", "open")}


def test_a_later_run_that_still_flags_opens_a_new_warning_after_resolution(engine):
    sync(engine, [("A", "red", "new_delinquency_30")], day(3))
    resolve(engine, int(queries.read_warnings(engine)["id"][0]), "bob", "restructured")
    assert sync(engine, [("A", "red", "new_delinquency_30")], day(4))["opened"] == 1


def test_acknowledge_and_resolve_need_user_and_note_and_are_audited(engine):
    sync(engine, [("A", "amber", "legal_action")], day(3))
    wid = int(queries.read_warnings(engine)["id"][0])
    with pytest.raises(ValueError, match="user is required"):
        acknowledge(engine, wid, " ", "note")
    with pytest.raises(ValueError, match="note is required"):
        resolve(engine, wid, "ann", "")
    with pytest.raises(LookupError, match="no warning with id 999"):
        acknowledge(engine, 999, "ann", "x")
    acknowledge(engine, wid, "ann", "looking")
    with pytest.raises(ValueError, match="only open warnings can be acknowledged"):
        acknowledge(engine, wid, "ann", "again")
    resolve(engine, wid, "bob", "collateral received")
    log = queries.read_audit(engine)
    assert log[["who", "action", "what"]].values.tolist() == [
        ["bob", "warning_resolved", f"warning:{wid}"],
        ["ann", "warning_acknowledged", f"warning:{wid}"],
    ]


def test_at_most_one_active_warning_per_customer(engine):
    sync(engine, [("A", "amber", "legal_action")], day(3))
    row = queries.read_warnings(engine).drop(columns="id").iloc[0].to_dict()
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(EarlyWarning.__table__).values(**row))


def test_override_needs_user_and_reason_and_is_recorded(engine):
    with pytest.raises(ValueError, match="reason is required"):
        queries.record_override(engine, "A", 5000, "ann", "")
    with pytest.raises(ValueError, match="user is required"):
        queries.record_override(engine, "A", 5000, "", "strong guarantor")
    with pytest.raises(ValueError, match=">= 0"):
        queries.record_override(engine, "A", -1, "ann", "strong guarantor")
    with pytest.raises(LookupError, match="no policy decision"):
        queries.record_override(engine, "A", 5000, "ann", "strong guarantor")
    scored = pd.DataFrame(
        {"customer_id": ["A"], "pd": [0.01], "score": [700], "grade": ["R4"], "reasons": ["[]"]}
    )
    decisions = scored[["customer_id"]].assign(
        recommended_limit=2000.0,
        term_days=60,
        conditions="none",
        approval_level="automatic",
        binding_rule="cap",
    )
    run = write_scored_run(engine, scored, decisions, None, "m", "1", day(3), "runner")
    out = queries.record_override(engine, "A", 5000, "ann", "strong guarantor", term_days=30)
    assert (out["original_limit"], out["run_id"]) == (2000.0, run.run_id)
    stored = queries.read_overrides(engine, "A")
    assert stored[["override_limit", "user", "reason", "term_days"]].values.tolist() == [
        [5000.0, "ann", "strong guarantor", 30]
    ]
    audit = queries.read_audit(engine, action="override")
    assert audit["what"].tolist() == [f"override:{out['id']}"]
    assert audit["details"][0]["reason"] == "strong guarantor"


LAWSUIT = '{"legal_action": {"lawsuits_12m": 1.0}}'
FULL = '{"utilisation_high": {"utilisation_latest": 0.95}}'
FULLER = '{"utilisation_high": {"utilisation_latest": 0.99}}'


def test_a_held_warning_carries_the_latest_run_signals_and_values(engine):
    sync(engine, [("A", "amber", "legal_action", LAWSUIT)], day(3))
    sync(engine, [("A", "watch", "utilisation_high", FULL)], day(4))
    (row,) = queries.read_warnings(engine).to_dict("records")
    assert (row["level"], row["latest_level"], row["last_as_of"]) == ("amber", "watch", day(4))
    assert (row["signals"], json.loads(row["evidence"])) == ("utilisation_high", json.loads(FULL))
    assert row["dedupe_key"] == "A|watch|utilisation_high"


def test_each_run_records_what_it_found_for_each_active_warning(engine):
    sync(engine, [("A", "amber", "legal_action", LAWSUIT), ("B", "watch", "utilisation_high")],
         day(3))  # fmt: skip
    sync(engine, [("A", "watch", "utilisation_high", FULL)], day(4))
    sync(engine, [("A", "watch", "utilisation_high", FULLER)], day(5))
    sync(engine, [("A", "watch", "utilisation_high", FULLER)], day(5))  # a rerun: another run
    sync(engine, [], day(2))  # older data: not an observation of these warnings
    sync(engine, [], day(6))
    wid = int(queries.read_warnings(engine, status=None, customer_id="A")["id"][0])
    runs = observations_of(engine, wid)
    seen = [(r.as_of, r.action, r.level, r.warning_level, r.signals, json.loads(r.evidence))
            for r in runs.itertuples()]  # fmt: skip
    assert seen == [
        (day(3), "opened", "amber", "amber", "legal_action", json.loads(LAWSUIT)),
        (day(4), "held", "watch", "amber", "utilisation_high", json.loads(FULL)),
        (day(5), "held", "watch", "amber", "utilisation_high", json.loads(FULLER)),
        (day(5), "held", "watch", "amber", "utilisation_high", json.loads(FULLER)),
        (day(6), "cleared", "green", "amber", "", {}),
    ]
    assert runs["run_id"].tolist() == [1] * 5
    b = int(queries.read_warnings(engine, status=None, customer_id="B")["id"][0])
    assert observations_of(engine, b)["action"].tolist() == ["opened", "cleared"]


DEFAULTED = '{"in_default": {"defaulted_on": "2024-04-01"}}'


def test_a_customer_in_default_closes_its_warning_to_escalation(engine):
    sync(engine, [("A", "amber", "legal_action", LAWSUIT)], day(3))
    wid = int(queries.read_warnings(engine)["id"][0])
    counts = sync(engine, [("A", "defaulted", "in_default", DEFAULTED),
                           ("B", "defaulted", "in_default", DEFAULTED)], day(4))  # fmt: skip
    assert (counts["defaulted"], counts["opened"]) == (1, 0)  # B had no warning: none opened
    assert active(engine) == {}
    (row,) = queries.read_warnings(engine, status=("defaulted",)).to_dict("records")
    assert (row["id"], row["level"], row["latest_level"]) == (wid, "amber", "defaulted")
    assert (row["signals"], row["last_as_of"]) == ("in_default", day(4))
    assert json.loads(row["measures"]) == ["hand_to_collections"]
    sync(engine, [("A", "red", "legal_action,pd_jump")], day(5))  # no escalation, no new one
    sync(engine, [], day(6))  # nor clearing
    assert queries.read_warnings(engine, status=None)[["id", "status"]].values.tolist() == [
        [wid, "defaulted"]
    ]
    assert observations_of(engine, wid)["action"].tolist() == ["opened", "defaulted"]
    assert events_of(engine, wid)["event"].tolist() == ["opened", "defaulted"]
    with pytest.raises(TransitionError, match=r"warning \d+ is defaulted; only open"):
        acknowledge(engine, wid, "ann", "called")
    resolve(engine, wid, "bob", "written off by collections")
    assert sync(engine, [("A", "defaulted", "in_default", DEFAULTED)], day(7))["opened"] == 0
    assert queries.open_warnings_by_level(engine) == {"watch": 0, "amber": 0, "red": 0}


@pytest.fixture(params=BACKENDS)
def bare(request, tmp_path):
    """An empty store of either backend with no migration applied."""
    try:
        with temporary_store(request.param, tmp_path, migrate=False) as engine:
            yield engine
    except StoreUnavailable as exc:
        pytest.skip(f"{exc}; start it or set CREDITRISK_TEST_POSTGRES_URL")


def test_a_0002_store_upgrades_to_traced_runs_keeping_what_it_holds(bare):
    upgrade(bare, "0002")
    with bare.begin() as conn:
        conn.execute(sa.text(
            "insert into score_runs (as_of, model_name, model_version, started_at, status, "
            "n_customers, created_by) values ('2024-03-01', 'm', '1', '2024-03-02', "
            "'succeeded', 1, 'runner')"
        ))  # fmt: skip
        old = conn.execute(sa.text("select id from score_runs")).scalar_one()
        conn.execute(sa.text(
            "insert into policy_decisions values (:r, 'A', 2000, 60, 'none', 'automatic', 'cap')"
        ), {"r": old})  # fmt: skip
    upgrade(bare)
    with bare.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == "0005"
    assert queries.read_decisions(bare, old)[["customer_id", "inputs"]].values.tolist() == [
        ["A", None]
    ]
    assert queries.list_runs(bare)["snapshot_sha256"].isna().all()
    scored = pd.DataFrame({"customer_id": ["A"], "pd": [0.01], "score": [700], "grade": ["R4"],
                           "reasons": ["[]"]})  # fmt: skip
    new = write_scored_run(bare, scored, None, warn([("A", "red", "legal_action")]), "m", "1",
                           day(6), "runner")  # fmt: skip
    wid = int(queries.read_warnings(bare)["id"][0])
    assert observations_of(bare, wid)["run_id"].tolist() == [new.run_id]
    with pytest.raises(Conflict, match="before runs recorded their configuration"):
        reproduce_run(bare, "sqlite:///unused.db", old)


def test_a_writer_that_read_first_is_not_refused_after_another_commit(tmp_path):
    """On SQLite a deferred transaction that read, then wrote after another connection's commit,
    failed at once with "database is locked"; `writing` holds the write lock from its start, so
    the other writer waits its turn and both rows land."""
    import threading

    from sqlalchemy import text

    from pipelines.store.db import make_engine, writing

    engine = make_engine(f"sqlite:///{tmp_path / 'locks.db'}")
    with writing(engine) as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    has_read, errors = threading.Event(), []

    def read_then_write():
        try:
            with writing(engine) as conn:
                conn.execute(text("SELECT count(*) FROM t")).scalar()
                has_read.set()
                threading.Event().wait(0.5)  # the other writer commits here, if it can
                conn.execute(text("INSERT INTO t VALUES (1)"))
        except Exception as exc:
            errors.append(exc)
            has_read.set()

    first = threading.Thread(target=read_then_write)
    first.start()
    assert has_read.wait(30)
    with writing(engine) as conn:
        conn.execute(text("INSERT INTO t VALUES (2)"))
    first.join(30)
    assert not errors, errors
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT v FROM t")).scalars()) == [1, 2]
    engine.dispose()


def test_one_customers_history_is_the_batch_history_of_it(engine):
    """`score_history_rows` (the driver's cursor, online) reads what `read_score_history` reads
    for one customer: the months before, oldest first, dates as dates, on either backend."""
    for d, (pd_a, pd_b) in enumerate([(0.01, 0.02), (0.015, 0.03), (0.02, 0.05)], start=1):
        scored = pd.DataFrame({"customer_id": ["A", "B"], "pd": [pd_a, pd_b], "score": [700, 650],
                               "grade": ["R3", f"R{3 + d}"], "reasons": ["[]", "[]"]})  # fmt: skip
        write_scored_run(engine, scored, None, None, "m", "1", day(d), "runner")
    write_scored_run(engine, scored, None, None, "other", "1", day(2), "runner")
    batch = queries.read_score_history(engine, "m", before=day(3), months=12)
    for cid in ("A", "B", "nobody"):
        rows = queries.score_history_rows(engine, "m", day(3), day(1), cid)
        mine = batch[batch["customer_id"] == cid].sort_values("as_of")
        want = [(pd.Timestamp(a).date(), p, g) for a, p, g in mine[["as_of", "pd", "grade"]].values]
        assert rows == want and all(type(r[0]) is dt.date for r in rows)
    assert queries.score_history_rows(engine, "m", day(3), day(2), "B") == [(day(2), 0.03, "R5")]


def test_a_store_without_its_tables_fails_the_history_as_the_store_away(tmp_path):
    """The driver's own error on the online history read is the Core's, so the typed errors
    (503 "the results store is away" in the service) still name it."""
    from pipelines.errors import Unavailable, as_typed

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(Unavailable), as_typed():
        queries.score_history_rows(engine, "m", day(3), day(1), "A")
