"""What produced a run, kept by content: the configuration texts and the snapshot it scored.

A configuration's hash is the sha256 of its text's UTF-8 bytes (line ends as ``\\n``); a
snapshot's is the sha256 of its Parquet bytes. Each is stored once per hash, in the run's
transaction, and the run row names the hashes, so a stored decision can be recomputed from
exactly what made it and a changed copy is found by its hash.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Connection, Engine, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from pipelines.store.tables import DecisionConfigText, RunRecord, ScoredSnapshot, _utcnow

CONFIGS, SNAPSHOTS, RUNS = (
    DecisionConfigText.__table__,
    ScoredSnapshot.__table__,
    RunRecord.__table__,
)
# kind of configuration -> the run column naming its hash
CONFIG_KINDS = {
    "credit_policy": "policy_sha256",
    "warning_rules": "rules_sha256",
    "master_scale": "scale_sha256",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canonical_text(text: str) -> str:
    """The text as hashed and stored: line ends as ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def text_sha256(text: str) -> str:
    return sha256(canonical_text(text).encode("utf-8"))


def snapshot_bytes(frame: pd.DataFrame) -> bytes:
    """The snapshot as Parquet bytes: the same frame gives the same bytes (and hash)."""
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink, compression="zstd")
    return sink.getvalue()


def snapshot_frame(data: bytes) -> pd.DataFrame:
    return pq.read_table(io.BytesIO(data)).to_pandas()


@dataclass(frozen=True)
class RunTrace:
    """A run's configuration texts by kind (see `CONFIG_KINDS`) and its snapshot's bytes."""

    configs: Mapping[str, str]
    snapshot: bytes
    n_rows: int

    def hashes(self) -> dict[str, str]:
        """The run columns that name what produced it: policy_sha256, ..., snapshot_sha256."""
        unknown = sorted(set(self.configs) - set(CONFIG_KINDS))
        missing = sorted(set(CONFIG_KINDS) - set(self.configs))
        if unknown or missing:
            raise ValueError(f"configs need kinds {sorted(CONFIG_KINDS)}; unknown {unknown}, "
                             f"missing {missing}")  # fmt: skip
        found = {CONFIG_KINDS[kind]: text_sha256(text) for kind, text in self.configs.items()}
        return found | {"snapshot_sha256": sha256(self.snapshot)}


def _insert_missing(conn: Connection, table: Table, row: dict) -> None:
    """Insert ``row`` unless a row with its sha256 is there (a concurrent writer's too)."""
    dialect = {"postgresql": postgresql, "sqlite": sqlite}[conn.dialect.name]
    conn.execute(
        dialect.insert(table).values(**row).on_conflict_do_nothing(index_elements=["sha256"])
    )


def store_trace(conn: Connection, trace: RunTrace) -> dict[str, str]:
    """Keep the trace's texts and snapshot (once per hash); returns the run's hash columns."""
    hashes, now = trace.hashes(), _utcnow()
    for kind, text in trace.configs.items():
        row = {"sha256": hashes[CONFIG_KINDS[kind]], "kind": kind, "text": canonical_text(text)}
        _insert_missing(conn, CONFIGS, row | {"stored_at": now})
    snapshot = {"sha256": hashes["snapshot_sha256"], "n_rows": trace.n_rows, "data": trace.snapshot}
    _insert_missing(conn, SNAPSHOTS, snapshot | {"stored_at": now})
    return hashes


@dataclass(frozen=True)
class StoredTrace:
    """A run (its row) and what the store holds under the hashes it names (None if nothing)."""

    run: dict
    hashes: dict[str, str | None]
    configs: dict[str, str | None]
    snapshot: bytes | None


def read_trace(engine: Engine, run_id: int) -> StoredTrace | None:
    """The trace of run ``run_id`` (None when there is no such run)."""
    with engine.connect() as conn:
        run = conn.execute(select(RUNS).where(RUNS.c.id == run_id)).mappings().first()
        if run is None:
            return None
        hashes = {c: run[c] for c in (*CONFIG_KINDS.values(), "snapshot_sha256")}
        texts = dict(
            conn.execute(
                select(CONFIGS.c.sha256, CONFIGS.c.text).where(
                    CONFIGS.c.sha256.in_([h for h in hashes.values() if h])
                )
            ).all()
        )
        snapshot = conn.execute(
            select(SNAPSHOTS.c.data).where(SNAPSHOTS.c.sha256 == hashes["snapshot_sha256"])
        ).scalar()
    configs = {kind: texts.get(hashes[column]) for kind, column in CONFIG_KINDS.items()}
    return StoredTrace(dict(run), hashes, configs, None if snapshot is None else bytes(snapshot))
