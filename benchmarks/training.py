"""Whole `creditrisk train` path vs bare `lightgbm.train` on the same matrix.

The whole path is what the train command runs on snapshots: preparation, out-of-time split,
LightGBM with early stopping, scorecard challenger, calibration, validation statistics, figures,
the HTML report and MLflow logging with registration. Bare is what a data scientist would run by
hand: `lightgbm.train` on the same prepared training rows with the same parameters, the same
validation rows (binned with the training set as reference) and the same early stopping, so it
stops after the same number of rounds (checked). Goal: whole <= 1.5 x bare. Whole and bare
alternate; medians over the repeats are printed (the machine is shared: use several repeats).

    .venv/bin/python benchmarks/training.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.settings import quiet_environment

quiet_environment()  # before MLflow and matplotlib are imported

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.catalog import CATALOG, CATEGORICAL  # noqa: E402
from models.split import make_split  # noqa: E402
from models.tracking import log_training  # noqa: E402
from models.training import train_from_snapshots  # noqa: E402

N_NUMERIC = 57
DATES = 12


def snapshot_matrix(rows: int, seed: int = 0) -> pd.DataFrame:
    """Snapshot-shaped rows: customer_id, as_of, 57 numeric catalog features, 3 categories and a
    default_flag driven by a latent risk that the features reflect in their catalog direction."""
    rng = np.random.default_rng(seed)
    numeric = [n for n in CATALOG if n not in CATEGORICAL][:N_NUMERIC]
    risk = rng.normal(size=rows).astype(np.float32)
    data: dict[str, object] = {
        "customer_id": np.char.add("C", np.arange(rows).astype(str)),
        "as_of": pd.date_range("2022-01-01", periods=DATES, freq="MS")[
            rng.integers(0, DATES, rows)
        ],
    }
    for i, name in enumerate(numeric):
        direction = CATALOG[name].direction or 1
        weight = 0.6 if i < 12 else 0.1
        x = direction * weight * risk + rng.normal(size=rows).astype(np.float32)
        x[rng.random(rows) < 0.05] = np.nan
        data[name] = x.astype(np.float64)
    for name, levels in zip(CATEGORICAL, (3, 12, 8), strict=True):
        data[name] = pd.Categorical.from_codes(
            rng.integers(0, levels, rows), [f"{name}_{k}" for k in range(levels)]
        )
    logit = -3.6 + 0.9 * risk
    data["default_flag"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(float)
    return pd.DataFrame(data)


def whole(frame: pd.DataFrame, root: Path):
    """The train command's path on a snapshot frame; returns (seconds, result)."""
    started = time.perf_counter()
    result = train_from_snapshots(frame)
    logging_started = time.perf_counter()
    log_training(
        result,
        experiment="benchmark-training",
        model_name="creditrisk-benchmark",
        dataset="benchmark",
        trained_by="benchmark",
        tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_root=root / "mlartifacts",
    )
    result.timings["mlflow_logging"] = time.perf_counter() - logging_started
    return time.perf_counter() - started, result


def bare_inputs(frame: pd.DataFrame, result) -> dict:
    """The whole path's prepared training and validation rows, parameters and round budget."""
    y = frame["default_flag"].to_numpy(dtype=float)
    split = make_split(y, time=frame["as_of"], seed=42)
    preparer, model = result.scorer.preparer, result.lgbm_model
    return {
        "X": preparer.transform(frame.iloc[split.train]),
        "y": y[split.train],
        "X_valid": preparer.transform(frame.iloc[split.valid]),
        "y_valid": y[split.valid],
        "params": model.lgb_params(model.feature_names_),
        "rounds": model.n_estimators,
        "early_stopping": model.early_stopping_rounds,
    }


def bare(inputs: dict) -> tuple[float, int]:
    """Seconds of plain `lightgbm.train` with early stopping; returns (seconds, best iteration)."""
    started = time.perf_counter()
    train = lgb.Dataset(inputs["X"], inputs["y"])
    valid = lgb.Dataset(inputs["X_valid"], inputs["y_valid"], reference=train)
    booster = lgb.train(
        inputs["params"],
        train,
        num_boost_round=inputs["rounds"],
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(inputs["early_stopping"], verbose=False)],
    )
    return time.perf_counter() - started, booster.best_iteration


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", "--repeats", dest="repeat", type=int, default=3)
    args = parser.parse_args()
    frame = snapshot_matrix(args.rows)
    print(f"rows {len(frame):,}, features {frame.shape[1] - 3}, load {os.getloadavg()[0]:.2f}")
    whole_times, bare_times, phases = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeat):
            seconds, result = whole(frame, Path(tmp))
            whole_times.append(seconds)
            phases.append(result.timings)
            inputs = bare_inputs(frame, result)
            bare_seconds, bare_best = bare(inputs)
            bare_times.append(bare_seconds)
            ours_best = result.lgbm_model.best_iteration_
            if bare_best != ours_best:
                raise RuntimeError(f"bare stopped at {bare_best} rounds, whole at {ours_best}")
            print(
                f"repeat {repeat + 1}: whole {whole_times[-1]:.1f}s, bare {bare_times[-1]:.1f}s "
                f"(best iteration {ours_best} of both, {len(inputs['X']):,} train rows), test AUC "
                f"{result.champion.metrics['auc']:.4f}, load {os.getloadavg()[0]:.2f}",
                flush=True,
            )
            print("  phases: " + ", ".join(f"{k} {t:.1f}s" for k, t in result.timings.items()))
    print("median phases: " + ", ".join(
        f"{k} {statistics.median(p.get(k, 0.0) for p in phases):.1f}s" for k in phases[0]
    ))  # fmt: skip
    w, b = statistics.median(whole_times), statistics.median(bare_times)
    print(f"median whole train path {w:.1f}s, bare lightgbm.train {b:.1f}s, ratio {w / b:.2f} "
          f"(goal <= 1.5)")  # fmt: skip


if __name__ == "__main__":
    main()
