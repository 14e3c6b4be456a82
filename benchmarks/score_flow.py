"""End-to-end `score` flow at 1M customers, store write included: single process vs local Dask.

Runs `pipelines.flows.score.score_flow` under Prefect (an ephemeral API started once, not timed)
on a 1M-customer scoring snapshot file (one as-of date) with a champion from a throwaway MLflow
SQLite registry, into a fresh results store per run (SQLite; PostgreSQL optional), once in the
process and once on a local 2-worker `distributed.LocalCluster` (one thread each). Prints wall
seconds, customers/s, the phases seen through the flow's steps (reading the snapshot and finding
the current runs, scoring and deciding, writing the store) and the Dask/single ratio, medians of
`--repeat` runs (single and Dask alternate). On 2 cores Dask is expected to be slower: the
ratio is its overhead. Home and snapshot are cached under benchmarks/.data/score_flow/.

    .venv/bin/python benchmarks/score_flow.py [--n 1000000] [--repeat 2] [--backends sqlite]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.settings import quiet_environment

quiet_environment()  # before MLflow and Prefect are imported
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# prefect-dask ships each partition inside the task graph; Dask warns on every submit
warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.io import write_snapshots  # noqa: E402
from features.snapshots import ID  # noqa: E402
from pipelines.settings import Settings  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data" / "score_flow"
BOOK_CUSTOMERS = 1_500
PHASES = ("prepare", "score", "store")


def champion_home(home: Path) -> Settings:
    """A home with a 1,500-customer book and a promoted champion (as tests/pipelines/test_flows.py),
    made once and reused."""
    settings = Settings(home=home)
    done = home / "champion.ok"
    if done.exists():
        return settings
    from models.registry import Gates
    from pipelines.usecases.book import GenerateRequest, generate_book, validate_book
    from pipelines.usecases.promotion import promote
    from pipelines.usecases.snapshots import SnapshotPlan, build_and_write_snapshots
    from pipelines.usecases.training import TrainRequest, train_and_register

    book = GenerateRequest(customers=BOOK_CUSTOMERS, months=42, seed=7, truth=False)
    generate_book(book, settings.book_dir)
    validated = validate_book(settings.book_dir, 0.05, settings.rejects_dir / "rejects.csv")
    plan = SnapshotPlan.for_book(validated.observed_until, pd.Timestamp(book.start), 12)
    path = settings.snapshots_dir / "training.parquet"
    build_and_write_snapshots(validated.tables, plan.training, 12, path)
    trained = train_and_register(TrainRequest(snapshots=path, trained_by="alice"), settings)
    tracked = trained.tracked
    gates = Gates(min_auc=0.55, allow_red_jeffreys=True)
    decision = promote(settings.tracking_uri, tracked.model_name, tracked.version, "bob", gates)
    if not decision.promoted:
        raise SystemExit(f"the benchmark champion was not promoted: {decision.reasons}")
    done.write_text("ok\n")
    return settings


def scoring_file(settings: Settings, n: int, seed: int = 0) -> tuple[Path, pd.Timestamp]:
    """The book's last observed month (customers in default included) resampled to ``n`` rows
    with new unique customer ids, written once as a snapshot file."""
    from features.labels import observed_until
    from pipelines.usecases.book import read_typed_book
    from pipelines.usecases.snapshots import scoring_snapshots

    path = DATA / f"scoring-{n}.parquet"
    tables = read_typed_book(settings.book_dir)
    as_of = observed_until(tables)
    if path.exists():
        return path, as_of
    small = scoring_snapshots(tables, [as_of], 12)
    rows = np.random.default_rng(seed).integers(0, len(small), n)
    big = small.iloc[np.sort(rows)].reset_index(drop=True)  # customers in default stay last
    big[ID] = pd.array([f"B{i:08d}" for i in range(n)], dtype=small[ID].dtype)
    write_snapshots(big, path)
    return path, as_of


def timed_flow(settings: Settings, path: Path, as_of, address: str | None) -> dict[str, float]:
    """One score flow run: wall seconds and its phases, split where the flow reports its steps."""
    from pipelines.flows.score import score_flow

    marks: list[tuple[float, str]] = []
    started = time.perf_counter()
    result = score_flow(
        settings,
        as_of=[as_of.date()],
        snapshots=path,
        validate_first=False,
        dask_address=address,
        step=lambda message: marks.append((time.perf_counter(), message)),
    )
    ended = time.perf_counter()
    if len(result.runs) != 1:
        raise SystemExit(f"expected one new run, got {result}")
    at = {m.split(" ")[0]: t for t, m in marks}  # finding, scoring, writing
    return {
        "wall": ended - started,
        "prepare": at["scoring"] - started,
        "score": at["writing"] - at["scoring"],
        "store": ended - at["writing"],
    }


def fresh_store(kind: str, folder: Path, stack: ExitStack) -> str:
    """The URL of an empty results store: a new SQLite file or a new PostgreSQL schema."""
    if kind == "sqlite":
        return f"sqlite:///{folder / f'results-{uuid.uuid4().hex[:8]}.db'}"
    from pipelines.store.testing import POSTGRES_TEST_URL, schema_url, temporary_schema

    return schema_url(stack.enter_context(temporary_schema()), POSTGRES_TEST_URL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="customers scored per run")
    parser.add_argument("--repeat", type=int, default=2, help="runs per figure (median)")
    parser.add_argument("--backends", default="sqlite", help="sqlite,postgresql")
    parser.add_argument("--modes", default="single,dask", help="single process and/or dask")
    args = parser.parse_args()

    t0 = time.perf_counter()
    base = champion_home(DATA / "home")
    path, as_of = scoring_file(base, args.n)
    print(f"prepared champion and {args.n:,}-customer snapshot in {time.perf_counter() - t0:.1f} s")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())

    from distributed import LocalCluster
    from prefect.testing.utilities import prefect_test_harness

    from pipelines.store.testing import postgres_available

    with (
        prefect_test_harness(server_startup_timeout=120),
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            worker_dashboard_address=None,
        ) as cluster,
        tempfile.TemporaryDirectory() as tmp,
    ):
        modes = {
            name: address
            for key, name, address in (
                ("single", "single process", None),
                ("dask", "dask 2x1", cluster.scheduler_address),
            )
            if key in args.modes.split(",")
        }
        rows = []
        for kind in args.backends.split(","):
            if kind == "postgresql" and (why := postgres_available()):
                print(f"{kind}: skipped: {why}")
                continue
            runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
            for i in range(args.repeat):  # alternated, so load on a shared machine hits both
                for mode, address in modes.items():
                    with ExitStack() as stack:
                        url = fresh_store(kind, Path(tmp), stack)
                        settings = Settings(home=base.home, database_url=url)
                        took = timed_flow(settings, path, as_of, address)
                    runs[mode].append(took)
                    print(
                        f"  {kind} {mode} run {i + 1}: "
                        + ", ".join(f"{k} {v:.1f} s" for k, v in took.items())
                    )
            rows.append((kind, runs))

    print(f"\n{args.n:,} customers, one as-of date, medians of {args.repeat}")
    print(
        f"{'store':<10} {'mode':<15} {'wall s':>7} {'rows/s':>9} "
        + " ".join(f"{p + ' s':>9}" for p in PHASES)
        + f" {'x single':>9}"
    )
    for kind, runs in rows:
        first = runs[next(iter(runs))]  # the single process when it ran
        single = statistics.median(r["wall"] for r in first)
        for mode, taken in runs.items():
            med = {k: statistics.median(r[k] for r in taken) for k in taken[0]}
            print(
                f"{kind:<10} {mode:<15} {med['wall']:>7.1f} {args.n / med['wall']:>9,.0f} "
                + " ".join(f"{med[p]:>9.1f}" for p in PHASES)
                + f" {med['wall'] / single:>9.2f}"
            )
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
