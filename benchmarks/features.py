"""Feature build benchmark: one snapshot of a synthetic book beside the same repayment features
as one DuckDB SQL query over the same Parquet files, in one run.

    .venv/bin/python benchmarks/features.py --customers 1000000 --months 24

Prints the median of --repeats runs, rows per second, peak RSS per phase (VmHWM, reset between
phases), the ratio ours / DuckDB and whether both give the same repayment features.

    .venv/bin/python benchmarks/features.py --partitioned --months 24 [--dask-address local]

The partitioned path at --sizes customers: the book generated and written in chunks of --chunk
customers (one part folder each, cached under benchmarks/.data/), then the features built part
by part with the whole book's context and written per part. Each size's generation and build
run in a fresh process (peak RSS: its VmHWM, plus the Dask workers'); prints the time per phase,
rows per second and the scaling exponent log(t_last / t_first) / log(n_last / n_first).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.build import book_context, build_features
from features.catalog import DPD_THRESHOLDS, UTILISATION_SPIKE, WINDOWS
from features.io import book_parts, read_book, read_context_tables, write_book, write_book_part
from features.partition import build_partitioned, chunk_ranges
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


def duckdb_sql(folder: Path, as_of: pd.Timestamp, source: str | None = None) -> str:
    """The repayment features as one SQL query (same definitions as features.repayment), over
    ``folder``'s repayments file or the Parquet files ``source`` names (a glob)."""
    source = source or str(folder / "repayments.parquet")
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
  FROM read_parquet('{source}')
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


def duckdb_repayment(
    folder: Path, as_of: pd.Timestamp, threads: int, source: str | None = None
) -> pd.DataFrame:
    with duckdb.connect(config={"threads": threads}) as con:
        con.execute("SET enable_progress_bar = false")
        return con.sql(duckdb_sql(folder, as_of, source)).df()


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


# --- the partitioned path: a book written in customer chunks, features built part by part ---


def live_peak_gb(pid: int | str = "self") -> float:
    """VmHWM of one process (GB), NaN when it cannot be read."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def in_child(fn, *args):
    """Run ``fn(*args)`` in a fresh process, so each phase's peak RSS is its own."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(fn, *args).result()


def parts_folder(customers: int, months: int, seed: int, chunk: int) -> Path:
    return DATA / f"parts_{customers}_{months}_{seed}_{chunk}"


def generate_parts(customers: int, months: int, seed: int, chunk: int) -> dict:
    """Write the book chunk by chunk (in a child process); seconds and peak RSS."""
    from features.synthetic import generate_book_chunk

    folder = parts_folder(customers, months, seed, chunk)
    t0 = time.perf_counter()
    rows: dict[str, int] = {}
    for i, (first, n) in enumerate(chunk_ranges(customers, chunk)):
        tables = generate_book_chunk(first, n, customers, months=months, start=START, seed=seed)
        write_book_part(tables, folder, i)
        for name, frame in tables.items():
            rows[name] = rows.get(name, 0) + len(frame)
        del tables
    record = {
        "seconds": time.perf_counter() - t0,
        "peak_gb": live_peak_gb(),
        "rows": rows,
        "load": os.getloadavg()[0],
        "on": time.strftime("%Y-%m-%d %H:%M"),
    }
    (folder / "generation.json").write_text(json.dumps(record, indent=1))
    return record


def book_of_parts(customers: int, months: int, seed: int, chunk: int) -> tuple[Path, dict]:
    """The cached chunked book, generated first when absent (its generation record)."""
    folder = parts_folder(customers, months, seed, chunk)
    record = folder / "generation.json"
    if record.exists():
        return folder, json.loads(record.read_text()) | {"cached": True}
    shutil.rmtree(folder, ignore_errors=True)
    return folder, in_child(generate_parts, customers, months, seed, chunk)


def build_part(part: Path, context, out: Path) -> dict:
    """Read one part, build its features with the whole book's context, write them: seconds."""
    t0 = time.perf_counter()
    tables = read_book(part)
    t1 = time.perf_counter()
    (features,) = build_partitioned([tables], context)
    del tables
    t2 = time.perf_counter()
    features.to_parquet(out / f"{part.name}.parquet", index=False)
    t3 = time.perf_counter()
    return {"rows": len(features), "read": t1 - t0, "build": t2 - t1, "write": t3 - t2}


def worker_peak_gb() -> float:
    return live_peak_gb()


def build_parts(folder: Path, as_of: pd.Timestamp, dask_address: str | None) -> dict:
    """The partitioned build (in a child process): context from the whole book, then each part
    alone, here or on a Dask cluster, written to ``folder/features_<as_of>/``; wall and CPU
    seconds (the process's and its workers'), the phases' sums, peak RSS."""
    out = folder / f"features_{as_of:%Y%m%d}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    with contextlib.ExitStack() as stack:
        client = None
        if dask_address:
            from distributed import Client, LocalCluster

            if dask_address == "local":
                cluster = LocalCluster(
                    n_workers=2, threads_per_worker=1, dashboard_address=None, memory_limit=0
                )
                dask_address = stack.enter_context(cluster).scheduler_address
            client = stack.enter_context(Client(dask_address))
            client.run(reset_peak)
        reset_peak()
        t0, cpu0 = time.perf_counter(), time.process_time()
        workers0 = sum(client.run(time.process_time).values()) if client is not None else 0.0
        context = book_context(read_context_tables(folder), as_of)
        t_context = time.perf_counter() - t0
        parts = book_parts(folder)
        if client is None:
            done = [build_part(part, context, out) for part in parts]
        else:
            shared = client.scatter(context, broadcast=True)
            done = client.gather([client.submit(build_part, p, shared, out) for p in parts])
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        workers = sum(client.run(worker_peak_gb).values()) if client is not None else 0.0
        if client is not None:
            cpu += sum(client.run(time.process_time).values()) - workers0
    sums = {k: sum(d[k] for d in done) for k in ("rows", "read", "build", "write")}
    size = sum(f.stat().st_size for f in out.iterdir()) / 1024**3
    return sums | {
        "wall": wall,
        "cpu": cpu,
        "context": t_context,
        "parts": len(parts),
        "peak_gb": live_peak_gb() + workers,
        "features_gb": size,
        "load": os.getloadavg()[0],
    }


def duckdb_parts(folder: Path, as_of: pd.Timestamp, threads: int) -> dict:
    """The repayment features as one DuckDB query over every part (in a child process), and
    their largest difference from ours (the partitioned build's output)."""
    reset_peak()
    t0 = time.perf_counter()
    sql = duckdb_repayment(folder, as_of, threads, str(folder / "part-*" / "repayments.parquet"))
    seconds, peak = time.perf_counter() - t0, live_peak_gb()
    ours = pd.read_parquet(folder / f"features_{as_of:%Y%m%d}", columns=list(sql.columns))
    diff = compare(ours, sql)
    return {"wall": seconds, "peak_gb": peak, "features": sql.shape[1] - 1, "diff": diff}


def partitioned_main(args: argparse.Namespace) -> None:
    """Generate (once, cached) and build each size through the partitioned path; the exponent."""
    as_of = as_of_for(args.months)
    where = f"dask {args.dask_address}" if args.dask_address else "one process"
    print(f"partitioned path: {args.chunk:,} customers per part, as_of {as_of.date()}, {where}")
    print(f"cores {os.cpu_count()}; load {os.getloadavg()}")
    results = []
    for n in args.sizes:
        folder, gen = book_of_parts(n, args.months, args.seed, args.chunk)
        cached = ""
        if "cached" in gen:
            cached = f" (cached: generated {gen['on']} at load {gen['load']:.1f})"
        print(
            f"\n{n:,} customers: generated in {gen['seconds']:.1f} s, peak RSS "
            f"{gen['peak_gb']:.2f} GB{cached}; rows {gen['rows']}",
            flush=True,
        )
        runs = []
        for _ in range(args.repeats):
            run = in_child(build_parts, folder, as_of, args.dask_address)
            runs.append(run)
            print(
                f"  build {run['wall']:.1f} s, CPU {run['cpu']:.1f} s ({run['parts']} parts: "
                f"context {run['context']:.1f} s, read {run['read']:.1f}, build "
                f"{run['build']:.1f}, write {run['write']:.1f}); {run['rows']:,} rows, "
                f"{run['rows'] / run['wall']:,.0f} rows/s; peak RSS {run['peak_gb']:.2f} GB; "
                f"load {run['load']:.1f}",
                flush=True,
            )
        median = {k: statistics.median(r[k] for r in runs) for k in ("wall", "cpu")}
        summary = median | {"rows": runs[0]["rows"], "peak_gb": max(r["peak_gb"] for r in runs)}
        if n <= args.duckdb_upto:
            sql = in_child(duckdb_parts, folder, as_of, args.threads)
            print(
                f"  duckdb SQL, {sql['features']} repayment features over the parts: "
                f"{sql['wall']:.1f} s, peak RSS {sql['peak_gb']:.2f} GB; ours (all families) / "
                f"duckdb {median['wall'] / sql['wall']:.2f}; max relative difference "
                f"{sql['diff']:.1e}",
                flush=True,
            )
        shutil.rmtree(folder / f"features_{as_of:%Y%m%d}", ignore_errors=True)
        results.append((n, gen, summary))
    print(f"\nload average after: {os.getloadavg()}; medians of {args.repeats} builds")
    head = ("customers", 11), ("generate s", 12), ("gen GB", 8), ("build s", 9), ("CPU s", 8)
    print("".join(f"{h:>{w}}" for h, w in head) + f"{'rows/s':>10}{'peak GB':>9}")
    for n, gen, run in results:
        print(
            f"{n:>11,}{gen['seconds']:>12.1f}{gen['peak_gb']:>8.2f}{run['wall']:>9.1f}"
            f"{run['cpu']:>8.1f}{run['rows'] / run['wall']:>10,.0f}{run['peak_gb']:>9.2f}"
        )
    (n0, _, r0), (n1, _, r1) = results[0], results[-1]
    if n1 > n0:
        wall, cpu = (np.log(r1[k] / r0[k]) / np.log(n1 / n0) for k in ("wall", "cpu"))
        print(f"scaling exponent {n0:,} -> {n1:,}: wall {wall:.3f}, CPU {cpu:.3f} (goal <= 1.1)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument(
        "--partitioned",
        action="store_true",
        help="the partitioned path at --sizes (book in chunks, features part by part)",
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000, 10_000_000])
    parser.add_argument("--chunk", type=int, default=500_000, help="customers per part")
    parser.add_argument(
        "--duckdb-upto", type=int, default=1_000_000, help="DuckDB beside ours up to this size"
    )
    parser.add_argument(
        "--dask-address", help="build the parts on this Dask scheduler ('local': 2 workers)"
    )
    args = parser.parse_args()
    if args.partitioned:
        partitioned_main(args)
        return

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
