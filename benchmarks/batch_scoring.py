"""Batch scoring with PD, grade, policy and top-5 reasons vs bare LightGBM `pred_contrib`.

    .venv/bin/python benchmarks/batch_scoring.py [--rows 1000000] [--repeats 3]

The model is the champion `creditrisk train` builds on the synthetic book (`--customers` x
`--months`, `models.training.train_from_snapshots` on the main job's quarterly snapshots), cached
under benchmarks/.data/. The scoring matrix is `--rows` customers resampled from the book's
latest scoring snapshot (performing customers, fresh ids). Printed, medians of `--repeats`, one
after the other in each repeat:

- bare: `booster.predict(X, pred_contrib=True)` on the prepared matrix of those rows;
- ours, TreeSHAP alone (first repeat only: the whole path holds it): `ReasonExplainer.explain`
  (contributions and raw scores) on the same X, checked against bare (largest difference of any
  contribution, raw scores bit for bit);
- ours, whole: `pipelines.usecases.scoring.decide_scores` on the raw snapshot rows, what the score
  flow runs before the store write: preparation, PD, score, grade, top-5 reasons JSON, credit
  policy (shipped policy) and the inputs it read.

`--before-rows` rows (once) time the whole path with `pred_contrib` reasons (``fast=False``), the
path before `models.treeshap`. Candidates (`--candidate-rows` rows): woodelf-explainer and
fasttreeshap-fixed (v1, v2), when installed, on the champion and, since neither takes categorical
splits, on a numeric-only variant (same parameters and rounds, categorical features dropped),
each checked against that model's `pred_contrib` to 1e-6.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.settings import quiet_environment

quiet_environment()  # before MLflow and matplotlib are imported

import lightgbm as lgb  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from features.labels import LABEL, observed_until  # noqa: E402
from features.schemas import validate_tables  # noqa: E402
from features.snapshots import build_snapshots  # noqa: E402
from features.synthetic import generate_book  # noqa: E402
from models.explain import ReasonExplainer  # noqa: E402
from models.training import train_from_snapshots  # noqa: E402
from pipelines.decisions.policy import load_policy  # noqa: E402
from pipelines.usecases.scoring import decide_scores, in_default  # noqa: E402
from pipelines.usecases.snapshots import SnapshotPlan  # noqa: E402

DATA = Path(__file__).resolve().parent / ".data"
TOLERANCE = 1e-6


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def champion(customers: int, months: int, seed: int, refresh: bool) -> dict:
    """The trained scorer, the latest scoring snapshot and a numeric-only variant booster
    (cached: training takes a minute)."""
    path = DATA / f"batch_scoring_{customers}x{months}_seed{seed}.pkl"
    if path.exists() and not refresh:
        return pickle.loads(path.read_bytes())
    started = time.perf_counter()
    start = "2021-01-01"
    tables = validate_tables(generate_book(customers, months, start, seed)).accepted
    plan = SnapshotPlan.for_book(observed_until(tables), pd.Timestamp(start), 12)
    training = build_snapshots(tables, plan.training, 12)
    scoring = build_snapshots(tables, plan.scoring[-1:], 12, with_defaulted=True)
    result = train_from_snapshots(training)
    model = result.lgbm_model
    X = result.scorer.prepare(training)
    categorical = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    numeric = [c for c in X.columns if c not in categorical]
    params = model.lgb_params(model.feature_names_)
    if "monotone_constraints" in params:
        keep = [i for i, c in enumerate(X.columns) if c in numeric]
        params["monotone_constraints"] = [params["monotone_constraints"][i] for i in keep]
    labelled = training[LABEL].notna().to_numpy()
    rounds = result.scorer._build()["booster"].num_trees()
    variant = lgb.train(
        params, lgb.Dataset(X.loc[labelled, numeric], training.loc[labelled, LABEL]), rounds
    )
    cached = {
        "scorer": result.scorer,
        "scoring": scoring,
        "variant": variant.model_to_string(),
        "chosen": result.choice.chosen,
        "seconds": time.perf_counter() - started,
    }
    DATA.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps(cached))
    return cached


def scoring_rows(snapshot: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """``rows`` performing customers drawn with replacement from the snapshot, fresh ids."""
    performing = snapshot[~in_default(snapshot)].drop(columns=[LABEL], errors="ignore")
    rng = np.random.default_rng(seed)
    frame = performing.iloc[rng.integers(0, len(performing), rows)].reset_index(drop=True)
    frame["customer_id"] = np.char.add("B", np.arange(rows).astype(str))
    return frame


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - started, out


def tree_shape(booster) -> str:
    """Trees, leaves per tree, deepest leaf and features of a booster."""
    trees = booster.dump_model()["tree_info"]

    def depth(node, d=0):
        if "split_index" not in node:
            return d
        return max(depth(node["left_child"], d + 1), depth(node["right_child"], d + 1))

    leaves = np.mean([t["num_leaves"] for t in trees])
    deepest = max(depth(t["tree_structure"]) for t in trees)
    return (f"{len(trees):,} trees, {leaves:.1f} leaves per tree, depth up to {deepest}, "
            f"{booster.num_feature()} features")  # fmt: skip


def candidates(booster, X: pd.DataFrame, label: str) -> list[tuple[str, float | None, str]]:
    """(name, rows/s, verdict) of each candidate on ``X`` against `pred_contrib` of ``booster``."""
    seconds, reference = timed(booster.predict, X, pred_contrib=True)
    out = [(f"{label}: bare pred_contrib", len(X) / seconds, "reference")]
    ours = ReasonExplainer(booster, list(X.columns))
    if ours.tables is not None:
        ours.explain(X.iloc[:10])  # compiled code loaded outside the timing
        seconds, (contrib, _) = timed(ours.explain, X)
        out.append(
            (f"{label}: ours (models.treeshap)", len(X) / seconds, verdict(contrib, reference))
        )
    runs = []
    try:
        from woodelf import WoodelfExplainer

        runs.append(
            ("woodelf-explainer", lambda: WoodelfExplainer(booster).shap_values(X, verbose=False))
        )
    except ImportError:
        out.append((f"{label}: woodelf-explainer", None, "not installed"))
    try:
        import fasttreeshap_fixed as fts

        for algorithm in ("v1", "v2"):
            runs.append((
                f"fasttreeshap-fixed {algorithm}",
                lambda a=algorithm: fts.TreeExplainer(booster, algorithm=a, n_jobs=-1).shap_values(
                    X, check_additivity=False
                ),
            ))  # fmt: skip
    except ImportError:
        out.append((f"{label}: fasttreeshap-fixed", None, "not installed"))
    for name, run in runs:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                seconds, values = timed(run)
        except Exception as err:  # a candidate that cannot take the model says why
            out.append((f"{label}: {name}", None, f"fails: {type(err).__name__}: {err}"[:90]))
            continue
        values = np.asarray(values)
        values = values[-1] if values.ndim == 3 else values  # binary: [class 0, class 1]
        out.append((f"{label}: {name}", len(X) / seconds, verdict(values, reference)))
    return out


def verdict(values: np.ndarray, reference: np.ndarray) -> str:
    """Largest difference from `pred_contrib` (features only, and bias when given), and the
    share of rows off by more than the tolerance."""
    p = reference.shape[1] - 1
    diff = np.abs(values[:, : reference.shape[1]] - reference[:, : values.shape[1]])
    rows_off = (diff[:, :p] > TOLERANCE).any(axis=1).mean()
    worst = diff.max()
    ok = "equal" if worst <= TOLERANCE else f"MISMATCH ({rows_off:.1%} of rows)"
    return f"{ok}, max |diff| {worst:.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", "--repeat", dest="repeats", type=int, default=3)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--months", type=int, default=48)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--before-rows", type=int, default=100_000)
    parser.add_argument("--candidate-rows", type=int, default=20_000)
    parser.add_argument("--refresh", action="store_true", help="retrain the cached model")
    args = parser.parse_args()

    model = champion(args.customers, args.months, args.seed, args.refresh)
    scorer = model["scorer"]
    runtime = scorer._build()
    booster, explainer = runtime["booster"], runtime["trees"]
    print(f"champion ({model['chosen']}, trained in {model['seconds']:.0f} s on the book of "
          f"{args.customers:,} customers x {args.months} months): {tree_shape(booster)}; "
          f"reasons by {explainer.method}; cores {os.cpu_count()}, {load()}")  # fmt: skip
    policy = load_policy()
    frame = scoring_rows(model["scoring"], args.rows)
    X = scorer.prepare(frame)
    scorer.score_frame(frame.iloc[:10])  # compiled code loaded outside the timing
    print(f"scoring matrix {len(X):,} x {X.shape[1]} ({len(model['scoring']):,} snapshot rows "
          f"resampled), {X.isna().to_numpy().mean():.1%} cells missing", flush=True)  # fmt: skip

    bare, alone, whole = [], [], []
    for repeat in range(args.repeats):
        seconds, reference = timed(booster.predict, X, pred_contrib=True)
        bare.append(seconds)
        if repeat == 0:  # once: it is inside the whole path anyway
            seconds, (contrib, raw) = timed(explainer.explain, X)
            alone.append(seconds)
            worst = np.abs(contrib - reference).max()
            exact = np.array_equal(raw, booster.predict(X, raw_score=True))
            check = f"contributions max |diff| {worst:.1e} vs pred_contrib, raw scores " + (
                "bit for bit" if exact else "DIFFER"
            )
            del contrib, raw
        del reference
        seconds, (scored, decisions) = timed(decide_scores, frame, scorer, policy)
        whole.append(seconds)
        assert len(scored) == len(decisions) == len(frame) and scored["reasons"].notna().all()
        del scored, decisions
        print(f"repeat {repeat + 1}: bare {bare[-1]:.1f} s, ours whole {whole[-1]:.1f} s"
              + (f", ours TreeSHAP alone {alone[0]:.1f} s" if repeat == 0 else "")
              + f"; {load()}", flush=True)  # fmt: skip
    print(check)

    rows = len(X)
    b, a, w = (statistics.median(t) for t in (bare, alone, whole))
    table = [
        ("bare LightGBM predict(pred_contrib=True)", b),
        ("ours: TreeSHAP alone (models.treeshap, + raw scores; repeat 1)", a),
        ("ours: whole (PD, score, grade, policy, top-5 reasons)", w),
    ]
    if args.before_rows:
        slow = ReasonExplainer(booster, scorer.feature_names, scorer.reason_texts.get,
                               scorer.top_k, rules=scorer.reason_rules, fast=False)  # fmt: skip
        runtime["explainer"] = runtime["trees"] = slow
        part = frame.iloc[: args.before_rows]
        seconds, _ = timed(decide_scores, part, scorer, policy)
        table.append((f"before: whole with pred_contrib reasons ({len(part):,} rows, once)",
                      seconds * rows / len(part)))  # fmt: skip
        runtime["explainer"] = runtime["trees"] = explainer
    print(f"\n{rows:,} customers, medians of {args.repeats} ({load()})")
    print(f"{'':<66}{'seconds':>9}{'rows/s':>10}{'vs bare':>9}")
    for name, seconds in table:
        print(f"{name:<66}{seconds:>9.1f}{rows / seconds:>10,.0f}{b / seconds:>8.2f}x")
    print(f"TreeSHAP per customer (wall, {os.cpu_count()} cores): pred_contrib "
          f"{b / rows * 1e6:.0f} µs, ours {a / rows * 1e6:.0f} µs; "
          f"ratio whole / bare rate {b / w:.2f} (goal >= 1)")  # fmt: skip

    n = min(args.candidate_rows, rows)
    print(f"\ncandidates on {n:,} rows (rows/s; checked against pred_contrib to {TOLERANCE:g})")
    variant = lgb.Booster(model_str=model["variant"])
    numeric = [c for c in X.columns if not isinstance(X[c].dtype, pd.CategoricalDtype)]
    found = candidates(booster, X.iloc[:n], "champion")
    found += candidates(variant, X.iloc[:n][numeric], "numeric-only variant")
    for name, rate, said in found:
        shown = f"{rate:>10,.0f}" if rate else f"{'-':>10}"
        print(f"{name:<52}{shown}  {said}")


if __name__ == "__main__":
    main()
