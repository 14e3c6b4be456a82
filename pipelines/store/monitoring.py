"""Monitoring history in the results store: one row per monitoring and its report's tables in
long form (`monitoring_metrics`), and the warning level of each customer in a stored run.

A table goes in as one header row per column (``row_index`` -1, the column's kind as the
verdict: number, integer, bool, date or text) and one row per cell: numbers in ``value``, text in
``verdict``. `tables_from_long` reads them back as the same columns, kinds and row order.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, insert, select

from pipelines.store.bulk import fast_insert
from pipelines.store.db import writing
from pipelines.store.tables import (
    EarlyWarning,
    MonitoringMetric,
    MonitoringRecord,
    WarningObservation,
    _utcnow,
)

MONITORING, METRICS = MonitoringRecord.__table__, MonitoringMetric.__table__
W, OBS = EarlyWarning.__table__, WarningObservation.__table__
METRIC_COLUMNS = ["monitoring_id", "section", "row_index", "key", "name", "value", "verdict"]
HEADER = -1
KINDS = ("number", "integer", "bool", "date", "text")
MAX_KEY, MAX_NAME, MAX_SECTION = 200, 100, 40


def _kind(values: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(values):
        return "bool"
    if pd.api.types.is_integer_dtype(values):
        return "integer"
    if pd.api.types.is_numeric_dtype(values):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "date"
    return "text"


def _cell(value: Any, kind: str) -> tuple[float | None, str | None]:
    """(value, verdict) of one cell: numbers in value (not finite: None, their text aside)."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None, None
    if kind in ("number", "integer", "bool"):
        number = float(value)
        if math.isnan(number):
            return None, None
        return (number, None) if math.isfinite(number) else (None, str(number))
    if kind == "date":
        return None, pd.Timestamp(value).date().isoformat()
    if isinstance(value, float) and math.isnan(value):
        return None, None
    return None, str(value)


def long_form(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The tables as metric rows: section, row_index, key (the row's first cell), name, value,
    verdict; a header row per column keeps the columns, their order and kinds."""
    rows = []
    for section, frame in tables.items():
        frame = frame.reset_index(drop=True)
        kinds = {c: _kind(frame[c]) for c in frame.columns}
        rows += [(section, HEADER, "", str(c), None, kinds[c]) for c in frame.columns]
        first = frame.columns[0] if len(frame.columns) else None
        for r, record in enumerate(frame.itertuples(index=False, name=None)):
            key = str(record[0])[:MAX_KEY] if first is not None else ""
            for column, value in zip(frame.columns, record, strict=True):
                rows.append((section, r, key, str(column), *_cell(value, kinds[column])))
    return pd.DataFrame(rows, columns=METRIC_COLUMNS[1:])


def _column(values: pd.DataFrame, kind: str) -> pd.Series:
    if kind == "integer":
        number = values["value"]
        return number.astype("int64") if number.notna().all() else number.astype("Int64")
    if kind == "bool":
        return values["value"].map(lambda v: None if pd.isna(v) else bool(v)).astype(object)
    if kind == "number":
        text = values["verdict"].map(lambda t: float(t) if t in ("inf", "-inf") else np.nan)
        return values["value"].astype(float).fillna(text)
    if kind == "date":
        return pd.to_datetime(values["verdict"])
    return values["verdict"].astype(object)


def tables_from_long(metrics: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The tables `long_form` wrote, in the order of their sections' first rows."""
    out = {}
    for section in dict.fromkeys(metrics["section"]):
        part = metrics[metrics["section"] == section]
        header = part[part["row_index"] == HEADER]
        cells = part[part["row_index"] != HEADER]
        n_rows = int(cells["row_index"].max()) + 1 if len(cells) else 0
        columns = {}
        for name, kind in zip(header["name"], header["verdict"], strict=True):
            values = cells[cells["name"] == name].set_index("row_index").reindex(range(n_rows))
            columns[name] = _column(values, kind).reset_index(drop=True)
        out[section] = pd.DataFrame(columns, index=range(n_rows))
    return out


def write_monitoring(
    engine: Engine, record: dict[str, Any], tables: dict[str, pd.DataFrame]
) -> int:
    """Insert one monitoring (``record``: the `MonitoringRecord` columns; verdicts, alerts and
    notes as Python objects) with its tables, in one transaction; returns its id."""
    values = {**record, "created_at": record.get("created_at") or _utcnow()}
    for column in ("verdicts", "alerts", "notes"):
        values[column] = json.dumps(values[column])
    metrics = long_form(tables)
    with writing(engine) as conn:
        monitoring_id = conn.execute(
            insert(MONITORING).values(**values).returning(MONITORING.c.id)
        ).scalar_one()
        rows = [
            (monitoring_id, s[:MAX_SECTION], int(r), k, n[:MAX_NAME], _number(v), _text(t))
            for s, r, k, n, v, t in metrics.itertuples(index=False, name=None)
        ]
        fast_insert(conn, METRICS, METRIC_COLUMNS, rows)
    return int(monitoring_id)


def _number(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _text(value: Any) -> str | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _record(row) -> dict[str, Any]:
    found = dict(row)
    for column in ("verdicts", "alerts", "notes"):
        found[column] = json.loads(found[column]) if found[column] else None
    return found


def find_by_job(engine: Engine, job_id: str) -> int | None:
    """The id of the monitoring job ``job_id`` wrote, if any."""
    with engine.connect() as conn:
        return conn.execute(select(MONITORING.c.id).where(MONITORING.c.job_id == job_id)).scalar()


def read_monitoring(
    engine: Engine, monitoring_id: int
) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """One monitoring's record and its metric rows (in the order written), or None."""
    with engine.connect() as conn:
        row = (
            conn.execute(select(MONITORING).where(MONITORING.c.id == monitoring_id))
            .mappings()
            .first()
        )
        if row is None:
            return None
        result = conn.execute(
            select(*(METRICS.c[c] for c in METRIC_COLUMNS[1:]))
            .where(METRICS.c.monitoring_id == monitoring_id)
            .order_by(METRICS.c.id)
        )
        metrics = pd.DataFrame(result.all(), columns=METRIC_COLUMNS[1:])
    return _record(row), metrics


def list_monitoring(engine: Engine, model_name: str | None = None) -> pd.DataFrame:
    """Every monitoring, newest first: id, model, version, run, as_of, previous run, when, who,
    job, alert count, verdicts (JSON text)."""
    columns = [
        "id",
        "model_name",
        "model_version",
        "run_id",
        "as_of",
        "previous_run_id",
        "created_at",
        "created_by",
        "job_id",
        "n_alerts",
        "verdicts",
    ]
    stmt = select(*(MONITORING.c[c] for c in columns))
    if model_name:
        stmt = stmt.where(MONITORING.c.model_name == model_name)
    with engine.connect() as conn:
        rows = conn.execute(stmt.order_by(MONITORING.c.id.desc())).all()
    return pd.DataFrame(rows, columns=columns)


def run_warning_levels(engine: Engine, run_id: int) -> pd.DataFrame:
    """customer_id and the level of each customer's warning right after run ``run_id``: the
    warning's level as the run left it (a held level stays), green where the run cleared it.
    Customers the run did not observe had no active warning: green (not listed here)."""
    stmt = (
        select(W.c.customer_id, OBS.c.action, OBS.c.warning_level)
        .join(W, W.c.id == OBS.c.warning_id)
        .where(OBS.c.run_id == run_id)
        .order_by(OBS.c.id)
    )
    with engine.connect() as conn:
        found = pd.DataFrame(conn.execute(stmt).all(), columns=["customer_id", "action", "level"])
    found["level"] = found["level"].where(found["action"] != "cleared", "green")
    found = found.drop_duplicates("customer_id", keep="last")
    return found[["customer_id", "level"]].astype({"customer_id": str}).reset_index(drop=True)
