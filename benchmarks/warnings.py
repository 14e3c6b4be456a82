"""Out-of-time backtest of the early-warning rules on the default book, against the goals.

The book, snapshots and model are those of `creditrisk run` (20,000 customers, 48 months, seed
42 by default): the book is generated and validated, quarterly training snapshots built, and the
model trained and registered under ``--home``, once; a later run reuses them while the options
and the sources of features/ and models/ are unchanged (``--retrain`` forces it). The warnings
are raised on the matured as-of dates after the model's training window, each against the runs
before it, and printed per level and per signal (share of the book, default rate, lift), with
the capture of defaulters and the goals.

    .venv/bin/python benchmarks/warnings.py [--customers 20000 --months 48 --seed 42]
        [--rules pipelines/decisions/warning_rules.yaml] [--home benchmarks/.data/warnings]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipelines.settings import quiet_environment  # noqa: E402

quiet_environment()  # before MLflow is imported

import pandas as pd  # noqa: E402

from models.master_scale import MasterScale  # noqa: E402
from pipelines.decisions.backtest import (  # noqa: E402
    capture_view,
    goals_of,
    goals_view,
    levels_view,
    signals_view,
)
from pipelines.decisions.early_warning import load_rules  # noqa: E402
from pipelines.settings import Settings  # noqa: E402
from pipelines.usecases.book import GenerateRequest, generate_book, validate_book  # noqa: E402
from pipelines.usecases.snapshots import SnapshotPlan, build_and_write_snapshots  # noqa: E402
from pipelines.usecases.training import TrainRequest, train_and_register  # noqa: E402
from pipelines.usecases.warning_backtest import (  # noqa: E402
    BacktestRequest,
    backtest_rules,
    load_backtest_data,
)

STAMP = "benchmark.json"


def source_hash() -> str:
    """Hash of the code that makes the book, the snapshots and the model."""
    digest = hashlib.sha256()
    for path in sorted([*ROOT.glob("features/**/*.py"), *ROOT.glob("models/*.py"),
                        *ROOT.glob("models/*.yaml")]):  # fmt: skip
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def prepare(settings: Settings, book: GenerateRequest, retrain: bool) -> str:
    """The registered model version trained on the book under ``settings.home`` (made if needed)."""
    key = {**book.__dict__, "sources": source_hash()}
    stamp = settings.home / STAMP
    if not retrain and stamp.exists():
        saved = json.loads(stamp.read_text())
        if saved.get("key") == key:
            return saved["version"]
    started = time.perf_counter()
    print(f"generating the book and training under {settings.home} (once) ...", flush=True)
    generate_book(book, settings.book_dir)
    validated = validate_book(
        settings.book_dir, settings.max_reject_rate, settings.rejects_dir / "rejects.csv"
    )
    plan = SnapshotPlan.for_book(
        validated.observed_until, pd.Timestamp(book.start), settings.horizon_months
    )
    path = settings.snapshots_dir / "training.parquet"
    build_and_write_snapshots(validated.tables, plan.training, settings.horizon_months, path)
    trained = train_and_register(TrainRequest(snapshots=path, trained_by="benchmark"), settings)
    version = str(trained.tracked.version)
    stamp.write_text(json.dumps({"key": key, "version": version}))
    print(f"  done in {time.perf_counter() - started:.0f} s", flush=True)
    return version


def show(title: str, frame: pd.DataFrame) -> None:
    print(f"\n{title}\n{frame.to_string(index=False)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rules", type=Path, default=None, help="default: the shipped rules")
    parser.add_argument("--home", type=Path, default=ROOT / "benchmarks" / ".data" / "warnings")
    parser.add_argument("--retrain", action="store_true")
    args = parser.parse_args()
    settings = Settings(home=args.home.resolve())
    settings.home.mkdir(parents=True, exist_ok=True)
    book = GenerateRequest(customers=args.customers, months=args.months, seed=args.seed)
    version = prepare(settings, book, args.retrain)
    request = BacktestRequest(
        settings.model_name,
        settings.tracking_uri,
        settings.snapshots_dir / "training.parquet",
        settings.book_dir,
        version,
    )
    data = load_backtest_data(request)
    rules = load_rules(args.rules)
    result = backtest_rules(data, rules, MasterScale.load())
    dates = data.dates
    print(
        f"\nbook: {args.customers:,} customers, {args.months} months, seed {args.seed}; model "
        f"{data.model} trained until {data.trained_until:%Y-%m-%d}; rules "
        f"{args.rules or 'pipelines/decisions/warning_rules.yaml'}\nout of time: "
        f"{', '.join(f'{d:%Y-%m-%d}' for d in dates)}: {result.rows:,} customer-dates, "
        f"{result.defaults:,} defaults within 12 months ({result.default_rate:.2%})"
    )
    show("Levels", levels_view(result))
    show("Signals", signals_view(result))
    show("Defaulters flagged amber or red, by months from the run to the default",
         capture_view(result))  # fmt: skip
    c = result.capture
    print(
        f"defaulters flagged amber or red before their default: {c['defaulters_flagged']:.1%} "
        f"of them, a median {c['median_months_ahead']:.1f} months ahead (first flag); "
        f"green a quarter before: {c['green_quarter']:.1%} of the next quarter's defaulters"
    )
    goals = goals_of(result)
    show("Goals", goals_view(goals))
    print(f"\nall goals met: {'yes' if goals['met'].all() else 'NO'}")
    print(
        f"propose rules: CREDITRISK_HOME={settings.home} creditrisk warnings calibrate "
        f"--version {version}"
    )


if __name__ == "__main__":
    main()
