"""Results-store write throughput: `write_scored_run` vs a bare bulk insert of the same rows.

Writes N scored customers (PD, score, grade, top-5 reasons JSON), their policy decisions and
rolled-up warnings to a fresh SQLite file and a fresh PostgreSQL schema, and prints customers/s
beside a bare insert of the same rows into equivalent bare tables (sqlite3 executemany;
psycopg COPY), medians of `--repeat` runs. Goal: store >= 0.5 x bare.

    .venv/bin/python benchmarks/store.py --n 1000000
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg

from models.master_scale import MasterScale
from pipelines.decisions.early_warning import evaluate_signals, load_rules, roll_up
from pipelines.decisions.policy import decide, load_policy
from pipelines.store.lifecycle import dedupe_key
from pipelines.store.runs import DECISION_COLUMNS, SCORE_COLUMNS, write_scored_run
from pipelines.store.testing import POSTGRES_TEST_URL, postgres_available, temporary_store

FEATURES = [
    "days_past_due_current",
    "utilisation_latest",
    "payment_ratio_3m",
    "leverage",
    "interest_coverage",
    "lawsuits_12m",
    "statement_age_days",
]
WARNING_COLUMNS = [
    "customer_id",
    "level",
    "latest_level",
    "signals",
    "dedupe_key",
    "status",
    "first_as_of",
    "last_as_of",
    "evidence",
    "measures",
]


def book(n: int, seed: int = 0) -> pd.DataFrame:
    """A synthetic scored book: PDs, grades, reasons from a pool, snapshot features."""
    rng = np.random.default_rng(seed)
    pd_ = np.clip(rng.lognormal(np.log(0.01), 1.3, n), 0.0003, 0.999)
    pool = [
        json.dumps(
            [
                {
                    "feature": f,
                    "text": f"{f.replace('_', ' ')} is high",
                    "value": round(float(v), 3),
                    "contribution": round(0.5 / (k + 1), 4),
                }
                for k, (f, v) in enumerate(zip(FEATURES[:5], rng.uniform(0, 100, 5), strict=True))
            ]
        )
        for _ in range(997)
    ]
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:08d}" for i in range(n)],
            "as_of": pd.Timestamp("2024-06-01"),
            "pd": pd_,
            "score": (600 + 20 / np.log(2) * np.log((1 - pd_) / pd_ / 50)).round().astype(int),
            "grade": MasterScale.load().grade_of(pd_),
            "reasons": [pool[i % len(pool)] for i in range(n)],
            "revenue_latest": rng.lognormal(15, 1.5, n),
            "credit_limit_latest": rng.lognormal(12, 1, n),
            "utilisation_latest": rng.beta(2, 5, n),
            "interest_coverage": rng.lognormal(1.5, 0.8, n),
            "lawsuits_12m": rng.poisson(0.03, n),
        }
    )


def prepare(n: int):
    scored = book(n)
    decisions = decide(scored, load_policy())
    rules = load_rules()
    warnings = roll_up(evaluate_signals(scored, None, rules), rules)
    return scored, decisions, warnings


def bare_rows(scored, decisions, warnings):
    """The same rows the store writes, as tuples (run id 1), prepared outside the timing."""
    score_rows = list(
        zip([1] * len(scored), *(scored[c].tolist() for c in SCORE_COLUMNS), strict=True)
    )
    decision_rows = list(
        zip([1] * len(decisions), *(decisions[c].tolist() for c in DECISION_COLUMNS), strict=True)
    )
    w = warnings[warnings["level"] != "green"]
    key = dedupe_key(w["customer_id"], w["level"], w["signals"])
    warning_rows = list(
        zip(
            w["customer_id"],
            w["level"],
            w["level"],
            w["signals"],
            key,
            ["open"] * len(w),
            ["2024-06-01"] * len(w),
            ["2024-06-01"] * len(w),
            w["evidence"],
            w["measures"],
            strict=True,
        )
    )
    return score_rows, decision_rows, warning_rows


BARE_DDL = [
    "CREATE TABLE scores_bare (run_id INTEGER, customer_id VARCHAR(64), pd FLOAT, score INTEGER,"
    " grade VARCHAR(8), reasons {json}, PRIMARY KEY (run_id, customer_id))",
    "CREATE TABLE decisions_bare (run_id INTEGER, customer_id VARCHAR(64), recommended_limit "
    "FLOAT, term_days INTEGER, conditions VARCHAR(100), approval_level VARCHAR(40), binding_rule "
    "VARCHAR(40), PRIMARY KEY (run_id, customer_id))",
    "CREATE TABLE warnings_bare (id {serial}, customer_id VARCHAR(64), level VARCHAR(10), "
    "latest_level VARCHAR(10), signals TEXT, dedupe_key TEXT, status VARCHAR(20), first_as_of "
    "DATE, last_as_of DATE, evidence {json}, measures {json})",
]


def bare_sqlite(path: Path, rows) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
        conn.execute(f"PRAGMA {pragma}")
    for ddl in BARE_DDL:
        conn.execute(ddl.format(json="TEXT", serial="INTEGER PRIMARY KEY AUTOINCREMENT"))
    start = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO scores_bare VALUES (?,?,?,?,?,?)", rows[0])
    conn.executemany("INSERT INTO decisions_bare VALUES (?,?,?,?,?,?,?)", rows[1])
    conn.executemany(
        f"INSERT INTO warnings_bare ({', '.join(WARNING_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(WARNING_COLUMNS))})",
        rows[2],
    )
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bare_postgres(rows) -> float:
    url = POSTGRES_TEST_URL.replace("postgresql+psycopg", "postgresql")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        with psycopg.connect(url, options=f"-csearch_path={schema}") as conn:
            for ddl in BARE_DDL:
                conn.execute(ddl.format(json="JSONB", serial="SERIAL PRIMARY KEY"))
            conn.commit()
            start = time.perf_counter()
            with conn.cursor() as cur:
                for table, columns, data in (
                    ("scores_bare", "", rows[0]),
                    ("decisions_bare", "", rows[1]),
                    ("warnings_bare", f"({', '.join(WARNING_COLUMNS)})", rows[2]),
                ):
                    with cur.copy(f"COPY {table} {columns} FROM STDIN") as copy:
                        for row in data:
                            copy.write_row(row)
            conn.commit()
            return time.perf_counter() - start
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def store_write(kind: str, folder: Path, data, method: str = "auto") -> float:
    scored, decisions, warnings = data
    with temporary_store(kind, folder) as engine:
        start = time.perf_counter()
        write_scored_run(
            engine,
            scored,
            decisions,
            warnings,
            "creditrisk-pd",
            "1",
            "2024-06-01",
            "benchmark",
            method=method,
        )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="scored customers per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--methods", default="auto", help="store insert paths, e.g. auto,core")
    args = parser.parse_args()
    t0 = time.perf_counter()
    data = prepare(args.n)
    rows = bare_rows(*data)
    n_warn = len(rows[2])
    print(
        f"prepared {args.n:,} customers ({n_warn:,} warnings) in {time.perf_counter() - t0:.1f} s"
    )
    print(f"{'backend':<11} {'path':<22} {'median s':>9} {'customers/s':>12} {'x bare':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for kind in args.backends.split(","):
            if kind == "postgresql" and (why := postgres_available()):
                print(f"{kind:<11} skipped: {why}")
                continue
            bares, stores = [], {m: [] for m in args.methods.split(",")}
            for i in range(args.repeat):  # interleaved, so load on a shared machine hits both
                bares.append(
                    bare_sqlite(folder / f"bare-{i}.db", rows)
                    if kind == "sqlite"
                    else bare_postgres(rows)
                )
                for method, times in stores.items():
                    times.append(store_write(kind, folder, data, method))
            bare = statistics.median(bares)
            label = "bare " + ("executemany" if kind == "sqlite" else "COPY")
            print(f"{kind:<11} {label:<22} {bare:>9.2f} {args.n / bare:>12,.0f} {1.0:>7.2f}")
            for method, times in stores.items():
                took = statistics.median(times)
                print(
                    f"{kind:<11} {'write_scored_run/' + method:<22} {took:>9.2f} "
                    f"{args.n / took:>12,.0f} {bare / took:>7.2f}"
                )


if __name__ == "__main__":
    main()
