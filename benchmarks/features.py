"""Feature build benchmark: one snapshot of a synthetic book beside the same repayment features
as one DuckDB SQL query over the same Parquet files, in one run.

    .venv/bin/python benchmarks/features.py --customers 1000000 --months 24

Prints the median of --repeats runs, rows per second, peak RSS per phase (VmHWM, reset between
phases), the ratio ours / DuckDB and whether both give the same repayment features.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.build import build_features
from features.catalog import DPD_THRESHOLDS, UTILISATION_SPIKE, WINDOWS
from features.io import read_book, write_book
from features.repayment import SPAN, last_closed_month, repayment_features

DATA = Path(__file__).resolve().parent / ".data"
START = "2021-01-01"


def reset_peak() -> None:
    """Reset this process's peak RSS (Linux: write 5 to clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_gb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024**2
    return float("nan")


def book_folder(customers: int, months: int, seed: int) -> Path:
    """Generate the book once per size and keep its Parquet files in benchmarks/.data/."""
    folder = DATA / f"book_{customers}_{months}_{seed}"
    if (folder / "repayments.parquet").exists():
        print(f"reusing {folder}")
        return folder
    from features.synthetic import generate_book

    t0 = time.perf_counter()
    tables = generate_book(customers, months=months, start=START, seed=seed)
    write_book(tables, folder)
    print(f"generated {folder} in {time.perf_counter() - t0:.1f} s")
    return folder


def as_of_for(months: int) -> pd.Timestamp:
    """The as-of date when all ``months`` generated months have closed."""
    return pd.Timestamp(START) + pd.DateOffset(months=months)


def duckdb_sql(folder: Path, as_of: pd.Timestamp) -> str:
    """The repayment features as one SQL query (same definitions as features.repayment)."""
    last = last_closed_month(as_of)
    first_day = (pd.Timestamp(as_of) - pd.DateOffset(months=SPAN)).strftime("%Y-%m-%d")
    last_day = (pd.Timestamp(as_of) - pd.DateOffset(months=1)).strftime("%Y-%m-%d")
    cols = []
    for w in WINDOWS:
        win = f"age < {w}"
        full = f"count(*) FILTER ({win}) = {w}"
        util_mean = f"avg(util) FILTER ({win})"
        paid, due = f"sum(amount_paid) FILTER ({win})", f"sum(amount_due) FILTER ({win})"
        balance_last = "max(balance) FILTER (age = 0)"
        balance_first = f"max(balance) FILTER (age = {w - 1})"

        def guard(expr: str, full: str = full) -> str:
            return f"CASE WHEN {full} THEN {expr} END"

        cols.append(f"{guard(f'max(dpd) FILTER ({win})')} AS days_past_due_max_{w}m")
        for t in DPD_THRESHOLDS:
            cols.append(f"{guard(f'count(*) FILTER ({win} AND dpd >= {t})')} AS months_{t}dpd_{w}m")
        cols += [
            f"{guard(f'{paid} / nullif({due}, 0)')} AS payment_ratio_{w}m",
            f"{guard(util_mean)} AS utilisation_mean_{w}m",
            f"{guard(f'max(util) FILTER (age = 0) - {util_mean}')} AS utilisation_trend_{w}m",
            f"{guard(f'count(*) FILTER (age <= {w - 2} AND jump > {UTILISATION_SPIKE})')}"
            f" AS utilisation_spikes_{w}m",
            f"{guard(f'{balance_last} / nullif({balance_first}, 0) - 1')} AS balance_growth_{w}m",
        ]
    cols += [
        "arg_min(dpd, age) AS days_past_due_current",
        "coalesce(min(age) FILTER (dpd >= 30), max(age) + 1) AS months_since_30dpd",
        "arg_min(util, age) AS utilisation_latest",
        "arg_min(credit_limit, age) AS credit_limit_latest",
    ]
    select = ",\n  ".join(cols)
    return f"""
WITH r AS (
  SELECT customer_id,
         {last} - ((year(month) - 1970) * 12 + month(month) - 1) AS age,
         days_past_due::DOUBLE AS dpd, credit_limit::DOUBLE AS credit_limit,
         balance::DOUBLE AS balance, amount_due::DOUBLE AS amount_due,
         amount_paid::DOUBLE AS amount_paid,
         CASE WHEN credit_limit > 0 THEN balance::DOUBLE / credit_limit END AS util
  FROM read_parquet('{folder / "repayments.parquet"}')
  WHERE month >= DATE '{first_day}' AND month <= DATE '{last_day}'
), d AS (
  SELECT *,
    CASE WHEN lag(age) OVER w = age + 1 THEN util - lag(util) OVER w END AS jump
  FROM r WINDOW w AS (PARTITION BY customer_id ORDER BY age DESC)
)
SELECT customer_id,
  {select}
FROM d GROUP BY customer_id"""


def ours_full(folder: Path, as_of: pd.Timestamp) -> pd.DataFrame:
    return build_features(read_book(folder), as_of)


def ours_repayment(folder: Path, as_of: pd.Timestamp) -> pd.DataFrame:
    ids = pd.read_parquet(folder / "customers.parquet", columns=["customer_id"])["customer_id"]
    repayments = pd.read_parquet(folder / "repayments.parquet")
    return repayment_features(repayments, ids, as_of).assign(customer_id=ids)


def duckdb_repayment(folder: Path, as_of: pd.Timestamp, threads: int) -> pd.DataFrame:
    with duckdb.connect(config={"threads": threads}) as con:
        con.execute("SET enable_progress_bar = false")
        return con.sql(duckdb_sql(folder, as_of)).df()


def timed(name: str, fn, repeats: int) -> tuple[float, float, pd.DataFrame]:
    seconds, peaks, out = [], [], None
    for _ in range(repeats):
        out = None
        reset_peak()
        t0 = time.perf_counter()
        out = fn()
        seconds.append(time.perf_counter() - t0)
        peaks.append(peak_gb())
        print(f"  {name}: {seconds[-1]:.2f} s, peak RSS {peaks[-1]:.2f} GB", flush=True)
    return statistics.median(seconds), max(peaks), out


def compare(ours: pd.DataFrame, sql: pd.DataFrame) -> float:
    """Largest absolute difference over the shared repayment features (NaN must agree)."""
    merged = ours.merge(sql, on="customer_id", suffixes=("", "_sql"))
    worst = 0.0
    for col in [c for c in sql.columns if c != "customer_id"]:
        a = merged[col].to_numpy(float)
        b = merged[f"{col}_sql"].to_numpy(float)
        if not np.array_equal(np.isnan(a), np.isnan(b)):
            print(f"  NaN pattern differs in {col}")
            worst = float("inf")
        both = ~np.isnan(a) & ~np.isnan(b)
        if both.any():
            worst = max(worst, float(np.max(np.abs(a[both] - b[both]) / (1 + np.abs(b[both])))))
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    args = parser.parse_args()

    folder = book_folder(args.customers, args.months, args.seed)
    as_of = as_of_for(args.months)
    rows = {
        p.stem: len(pd.read_parquet(p, columns=["customer_id"])) for p in folder.glob("*.parquet")
    }
    print(
        f"book {folder.name}: {rows}; as_of {as_of.date()}; cores {os.cpu_count()}; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    full_s, full_gb, full = timed(
        "ours, all families", lambda: ours_full(folder, as_of), args.repeats
    )
    rep_s, rep_gb, rep = timed(
        "ours, repayment", lambda: ours_repayment(folder, as_of), args.repeats
    )
    sql_s, sql_gb, sql = timed(
        "duckdb, repayment", lambda: duckdb_repayment(folder, as_of, args.threads), args.repeats
    )
    n = args.customers
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    print(f"{'what':<32}{'median s':>10}{'customers/s':>14}{'peak GB':>9}")
    for name, s, gb in [
        (f"ours, all families ({full.shape[1] - 2} features)", full_s, full_gb),
        (f"ours, repayment ({rep.shape[1] - 1} features)", rep_s, rep_gb),
        (f"duckdb SQL, repayment ({sql.shape[1] - 1})", sql_s, sql_gb),
    ]:
        print(f"{name:<32}{s:>10.2f}{n / s:>14,.0f}{gb:>9.2f}")
    print(
        f"ratio ours/duckdb (repayment): {rep_s / sql_s:.2f}; all families/duckdb: "
        f"{full_s / sql_s:.2f}"
    )
    print(f"max relative difference ours vs duckdb: {compare(rep, sql):.2e}")


if __name__ == "__main__":
    main()
