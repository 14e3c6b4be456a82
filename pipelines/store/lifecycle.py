"""Warning lifecycle in the store: open -> acknowledged -> resolved, or -> defaulted.

Rules (applied by `sync_warnings` for a run at as-of date T over the customers it scored):

- At most one warning per customer is not resolved; a unique index enforces it. Open and
  acknowledged warnings are active: runs change them. A defaulted one no run changes any more.
- Dedupe key = customer | level the data gave | sorted signal names. A rerun over the same data
  finds the same active warning (or a resolved one with the same key and last_as_of >= T) and
  adds nothing.
- Data older than an active warning (T < last_as_of) changes nothing.
- Every run that changes an active warning records what it found in `warning_observations`:
  the level its data gave, the signals that fired and their values, and the action taken. The
  warning's signals and evidence are always those of the latest run.
- A higher level escalates the active warning in place (status back to open, event `escalated`).
- The same level refreshes signals, evidence and last_as_of (event `updated` if the signals moved).
- A lower but not green level never lowers the warning: the level is held, `latest_level`
  records what the data says (event `held`). Only two things lower a level:
  a user's resolution (`resolve`), or data that clears it: a run at T >= last_as_of in which the
  customer has no signal at all (green) resolves it (event `cleared`, resolved_by = run user).
- A customer in default at T (warning level ``defaulted`` in the run) moves its active warning
  to status ``defaulted`` (event `defaulted`, measures: hand to collections): closed to
  escalation, refresh and clearing, it can only be resolved by a person. No warning is opened
  for a customer in default.
- After a resolution, a later run (T > last_as_of of the resolved warning) that still flags the
  customer opens a new warning.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.sql import bindparam

from pipelines.decisions.early_warning import RANK
from pipelines.store.bulk import fast_insert
from pipelines.store.db import writing
from pipelines.store.tables import (
    AuditLog,
    EarlyWarning,
    WarningEvent,
    WarningObservation,
    _utcnow,
)

W = EarlyWarning.__table__
E = WarningEvent.__table__
OBS = WarningObservation.__table__
ACTIVE = ("open", "acknowledged")
DEFAULTED = "defaulted"
COLLECTIONS = json.dumps(["hand_to_collections"])  # the measures of a defaulted warning
STATUSES = (*ACTIVE, DEFAULTED, "resolved")
FLAGGED = ("watch", "amber", "red")


class TransitionError(ValueError):
    """The warning's status does not allow the transition (acknowledging a resolved one, say)."""


def audit(conn: Connection, who: str, action: str, what: str, details: dict | None = None) -> None:
    """Append one audit-log entry inside the caller's transaction."""
    conn.execute(
        insert(AuditLog.__table__).values(
            at=_utcnow(), who=who, action=action, what=what, details=details or {}
        )
    )


def _require(value: str | None, what: str) -> str:
    if value is None or not str(value).strip():
        raise ValueError(f"{what} is required (a non-empty string)")
    return str(value).strip()


def dedupe_key(customer_id: pd.Series, level: pd.Series, signals: pd.Series) -> pd.Series:
    return customer_id.astype(str) + "|" + level.astype(str) + "|" + signals.astype(str)


def _events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(E), rows)


def _refresh(
    conn: Connection,
    rows: pd.DataFrame,
    logged: pd.DataFrame,
    event: str,
    base: dict[str, Any],
    values: dict[str, Any],
    note: str | None = None,
) -> None:
    """Store the run's latest level, signals, key and evidence on ``rows``' warnings.

    ``values`` sets further columns (the binds ``n_level`` and ``n_measures`` carry the run's
    level and measures); an ``event`` is logged for each of the ``logged`` rows, noted with its
    signals or ``note`` (formatted with the run's ``level``).
    """
    if rows.empty:
        return
    conn.execute(
        update(W)
        .where(W.c.id == bindparam("w_id"))
        .values(
            latest_level=bindparam("n_level"),
            signals=bindparam("n_signals"),
            dedupe_key=bindparam("n_key"),
            evidence=bindparam("n_evidence"),
            **values,
        ),
        [
            {
                "w_id": int(r.id),
                "n_level": r.level,
                "n_signals": r.signals,
                "n_key": r.key,
                "n_evidence": r.evidence,
                "n_measures": r.measures,
            }
            for r in rows.itertuples()
        ],
    )
    _events(
        conn,
        [
            {
                **base,
                "warning_id": int(r.id),
                "event": event,
                "from_level": r.a_level,
                "to_level": r.level,
                "note": r.signals if note is None else note.format(level=r.level),
            }
            for r in logged.itertuples()
        ],
    )


ACTIONS = ("opened", "escalated", "updated", "held", "cleared", "kept", "defaulted")
OPENED_COLUMNS = [
    "customer_id",
    "level",
    "latest_level",
    "signals",
    "dedupe_key",
    "status",
    "first_as_of",
    "last_as_of",
    "last_run_id",
    "evidence",
    "measures",
    "opened_at",
    "updated_at",
]
EVENT_COLUMNS = ["warning_id", "event", "from_level", "to_level", "as_of", "user", "note", "at"]
OBSERVATION_COLUMNS = ["warning_id", "run_id", "as_of", "action", "level", "warning_level",
                       "signals", "evidence", "at"]  # fmt: skip


def _flagged(warnings: pd.DataFrame) -> pd.DataFrame:
    """The run's warnings that are not green (flagged or defaulted) with their dedupe key."""
    new = warnings.loc[
        warnings["level"] != "green", ["customer_id", "level", "signals", "evidence", "measures"]
    ].astype(object)
    return new.assign(key=dedupe_key(new["customer_id"], new["level"], new["signals"]))


def _active(conn: Connection, scored_ids: pd.Series, as_of: dt.date) -> pd.DataFrame:
    """Active warnings of the scored customers that this run's date may change."""
    active = pd.DataFrame(
        conn.execute(
            select(
                W.c.id, W.c.customer_id, W.c.level, W.c.latest_level, W.c.signals, W.c.last_as_of
            ).where(W.c.status.in_(ACTIVE))
        ).all(),
        columns=["id", "customer_id", "a_level", "a_latest", "a_signals", "a_last"],
    ).astype({"customer_id": object})
    return active[active["customer_id"].isin(scored_ids) & (active["a_last"] <= as_of)]


def _actions(both: pd.DataFrame) -> np.ndarray:
    """What the run does to each active warning it may change (see the module's rules)."""
    rank_new, rank_old = (both[c].map(RANK).astype(float) for c in ("level", "a_level"))
    return np.select(
        [
            both["level"].isna(),
            both["level"] == DEFAULTED,
            rank_new > rank_old,
            rank_new < rank_old,
            both["signals"] != both["a_signals"],
        ],
        ["cleared", "defaulted", "escalated", "held", "updated"],
        "kept",
    )


def _clear(conn, cleared: pd.DataFrame, as_of, user, now, base, stamp) -> None:
    """Resolve the warnings of customers with no signal in this run (event `cleared`)."""
    if cleared.empty:
        return
    conn.execute(
        update(W)
        .where(W.c.id == bindparam("w_id"))
        .values(
            status="resolved",
            latest_level="green",
            resolved_by=user,
            resolved_at=now,
            resolution_note=f"cleared by data as of {as_of}",
            **stamp,
        ),
        [{"w_id": int(i)} for i in cleared["id"]],
    )
    _events(
        conn,
        [
            {
                **base,
                "warning_id": int(i),
                "event": "cleared",
                "from_level": lv,
                "to_level": "green",
                "note": "no signal in this run",
            }
            for i, lv in zip(cleared["id"], cleared["a_level"], strict=True)
        ],
    )


def _change(conn, both: pd.DataFrame, action: np.ndarray, base, stamp) -> None:
    """Escalate, refresh, hold or close as defaulted the active warnings the run flags again."""
    up, held, defaulted = (both[action == a] for a in ("escalated", "held", DEFAULTED))
    same = both[np.isin(action, ("updated", "kept"))]
    measures = {"measures": bindparam("n_measures")}
    reopen = {"level": bindparam("n_level"), **measures, "status": "open"}
    _refresh(conn, up, up, "escalated", base, {**reopen, **stamp})
    _refresh(conn, same, both[action == "updated"], "updated", base, stamp)
    moved = held[(held["level"] != held["a_latest"]) | (held["signals"] != held["a_signals"])]
    _refresh(conn, held, moved, "held", base, stamp, note="data says {level}; level held")
    closed = {"measures": COLLECTIONS, "status": DEFAULTED, **stamp}
    note = "in default; handed to collections, no further escalation"
    _refresh(conn, defaulted, defaulted, DEFAULTED, base, closed, note=note)


def _open(conn, new: pd.DataFrame, as_of, run_id, user, now, method: str) -> pd.DataFrame:
    """Open warnings for flagged customers with no warning that is not resolved, unless a rerun
    already handled the same key (a resolved warning with the same key and last_as_of >= as_of);
    returns the opened rows with their warning id."""
    blocked = set(conn.execute(select(W.c.customer_id).where(W.c.status != "resolved")).scalars())
    fresh = new[new["level"].isin(FLAGGED) & ~new["customer_id"].isin(blocked)]
    if not fresh.empty:
        handled = set(
            conn.execute(
                select(W.c.dedupe_key).where(W.c.status == "resolved", W.c.last_as_of >= as_of)
            ).scalars()
        )
        fresh = fresh[~fresh["key"].isin(handled)]
    if fresh.empty:
        return fresh.assign(id=pd.Series(dtype=np.int64))
    n, level = len(fresh), fresh["level"].tolist()
    rows = zip(
        fresh["customer_id"].tolist(),
        level,
        level,
        fresh["signals"].tolist(),
        fresh["key"].tolist(),
        ["open"] * n,
        [as_of] * n,
        [as_of] * n,
        [run_id] * n,
        fresh["evidence"].tolist(),
        fresh["measures"].tolist(),
        [now] * n,
        [now] * n,
        strict=True,
    )
    fast_insert(conn, W, OPENED_COLUMNS, list(rows), method)
    opened = pd.DataFrame(
        conn.execute(
            select(W.c.id, W.c.customer_id).where(
                W.c.status == "open", W.c.opened_at == now, W.c.first_as_of == as_of
            )
        ).all(),
        columns=["id", "customer_id"],
    ).merge(fresh, on="customer_id")
    events = [(int(i), "opened", None, lv, as_of, user, None, now)
              for i, lv in zip(opened["id"], opened["level"], strict=True)]  # fmt: skip
    fast_insert(conn, E, EVENT_COLUMNS, events, method)
    return opened


def _observe(conn, seen: pd.DataFrame, as_of, run_id, now, method: str) -> None:
    """One observation per warning the run changed: what its data gave and what was done."""
    if seen.empty:
        return
    n = len(seen)
    rows = zip(
        seen["id"].astype(int).tolist(),
        [run_id] * n,
        [as_of] * n,
        seen["action"].tolist(),
        seen["level"].fillna("green").tolist(),
        seen["warning_level"].tolist(),
        seen["signals"].fillna("").tolist(),
        seen["evidence"].fillna("{}").tolist(),
        [now] * n,
        strict=True,
    )
    fast_insert(conn, OBS, OBSERVATION_COLUMNS, list(rows), method)


def sync_warnings(
    conn: Connection,
    warnings: pd.DataFrame,
    scored_ids: pd.Series,
    as_of: dt.date,
    run_id: int | None,
    user: str,
    method: str = "auto",
) -> dict[str, int]:
    """Apply a run's rolled-up warnings to the stored lifecycle; returns counts per action."""
    now = _utcnow()
    new = _flagged(warnings)
    both = _active(conn, scored_ids, as_of).merge(new, on="customer_id", how="left")
    action = _actions(both)
    base = {"as_of": as_of, "user": user, "at": now}
    stamp = {"last_as_of": as_of, "last_run_id": run_id, "updated_at": now}
    _clear(conn, both[action == "cleared"], as_of, user, now, base, stamp)
    _change(conn, both, action, base, stamp)
    opened = _open(conn, new, as_of, run_id, user, now, method)
    raised = np.isin(action, ("escalated", "updated", "kept"))
    seen = pd.concat(
        [
            both.assign(action=action, warning_level=both["level"].where(raised, both["a_level"])),
            opened.assign(action="opened", warning_level=opened["level"]),
        ],
        ignore_index=True,
    )
    _observe(conn, seen, as_of, run_id, now, method)
    counts = seen["action"].value_counts()
    return {a: int(counts.get(a, 0)) for a in ACTIONS}


def _transition(
    engine: Engine, warning_id: int, user: str, note: str, event: str, allowed: tuple[str, ...]
) -> dict[str, Any]:
    user, note = _require(user, "user"), _require(note, "note")
    now = _utcnow()
    with writing(engine) as conn:
        row = conn.execute(select(W).where(W.c.id == warning_id)).mappings().first()
        if row is None:
            raise LookupError(f"no warning with id {warning_id}; list them with `warnings list`")
        if row["status"] not in allowed:
            raise TransitionError(
                f"warning {warning_id} is {row['status']}; only {' or '.join(allowed)} warnings "
                f"can be {event}"
            )
        values = (
            {
                "status": "acknowledged",
                "acknowledged_by": user,
                "acknowledged_at": now,
                "acknowledge_note": note,
            }
            if event == "acknowledged"
            else {
                "status": "resolved",
                "resolved_by": user,
                "resolved_at": now,
                "resolution_note": note,
            }
        )
        conn.execute(update(W).where(W.c.id == warning_id).values(updated_at=now, **values))
        conn.execute(
            insert(E).values(
                warning_id=warning_id,
                event=event,
                from_level=row["level"],
                to_level=row["level"],
                as_of=row["last_as_of"],
                user=user,
                note=note,
                at=now,
            )
        )
        audit(
            conn,
            user,
            f"warning_{event}",
            f"warning:{warning_id}",
            {"customer_id": row["customer_id"], "level": row["level"], "note": note},
        )
    return {**dict(row), **values}


def acknowledge(engine: Engine, warning_id: int, user: str, note: str) -> dict[str, Any]:
    """Mark an open warning acknowledged by `user` with a note; audited."""
    return _transition(engine, warning_id, user, note, "acknowledged", ("open",))


def resolve(engine: Engine, warning_id: int, user: str, note: str) -> dict[str, Any]:
    """Resolve an open, acknowledged or defaulted warning (the only manual way to lower a level
    or to close a customer's collections case); audited."""
    return _transition(engine, warning_id, user, note, "resolved", (*ACTIVE, DEFAULTED))


def events_of(engine: Engine, warning_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = conn.execute(select(E).where(E.c.warning_id == warning_id).order_by(E.c.id))
        return pd.DataFrame(rows.mappings().all())


def observations_of(engine: Engine, warning_id: int) -> pd.DataFrame:
    """The warning's history of runs, oldest first: as_of, run, action, levels, signals, values."""
    stmt = select(OBS).where(OBS.c.warning_id == warning_id).order_by(OBS.c.as_of, OBS.c.id)
    with engine.connect() as conn:
        result = conn.execute(stmt)
        return pd.DataFrame(result.all(), columns=list(result.keys()))


__all__ = [
    "TransitionError",
    "acknowledge",
    "audit",
    "dedupe_key",
    "events_of",
    "observations_of",
    "resolve",
    "sync_warnings",
]
