"""Model quality on the real datasets: 5-fold stratified CV AUC, our models beside three peers.

Same folds (fixed seed) for every model in one run. Ours: champion (TablePreparer +
LGBMPDClassifier, the library defaults: cross-fitted, age held monotone) and scorecard
(TablePreparer keeping codes + WOEScorecard). Peers: plain logistic regression (median-imputed,
standardised), optbinning's Scorecard with its defaults, LightGBM library defaults with early
stopping on an internal stratified 15 % split. Every model sees the same columns: ids and
protected attributes (sex, marital status, ...) are left out, as the project's models must; age
stays, as Regulation B allows in a scoring system that never gives the elderly a negative value
(ours hold it monotone; the peers use it freely). Two extra lines, labelled: the champion without
age, and with every protected attribute.

    .venv/bin/python benchmarks/model_quality.py [--datasets DIR] [--folds 5] [--sample N]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from models.lgbm import LGBMPDClassifier  # noqa: E402
from models.prepare import TablePreparer, infer_roles  # noqa: E402
from models.scorecard import WOEScorecard  # noqa: E402
from models.split import SEED, stratified_kfold  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
TABLES = {
    "taiwan": ("taiwan_credit_default/UCI_Credit_Card.csv", "default.payment.next.month"),
    "gmsc": ("give_me_some_credit/cs-training.csv.gz", "SeriousDlqin2yrs"),
}
GOALS = {"taiwan": {"champion": 0.785, "scorecard": 0.766}, "gmsc": {"champion": 0.866}}
LEAKAGE_ABOVE = {"taiwan": 0.80}
PEER_VALID_SHARE = 0.15

Fit = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], np.ndarray]


def load(name: str, datasets: Path = DATASETS, sample: int | None = None, seed: int = SEED):
    """(X, y) of a dataset; a stratified sample of `sample` rows when given."""
    path, target = TABLES[name]
    df = pd.read_csv(datasets / path)
    if sample is not None and sample < len(df):
        df, _ = train_test_split(df, train_size=sample, random_state=seed, stratify=df[target])
        df = df.sort_index()
    return df.drop(columns=[target]).reset_index(drop=True), df[target].to_numpy()


def model_columns(X: pd.DataFrame) -> list[str]:
    """Columns every model may use: not ids, not protected attributes."""
    roles = infer_roles(X, None)
    dropped = set(roles["id"]) | {c for c, why in roles["dropped"].items() if "protected" in why}
    return [c for c in X.columns if c not in dropped]


def champion(X, y, X_test, **preparer):
    prep = TablePreparer(**preparer).fit(X)
    model = LGBMPDClassifier(monotone_constraints=prep.monotone_ or None)
    model.fit(prep.transform(X), y)
    return model.predict_proba(prep.transform(X_test))[:, 1]


def champion_without_age(X, y, X_test):
    return champion(X, y, X_test, allow_age=False)


def champion_with_protected(X, y, X_test):
    return champion(X, y, X_test, drop_protected=False)


def scorecard(X, y, X_test):
    prep = TablePreparer(sentinels_to_nan=False).fit(X)
    model = WOEScorecard(monotone=prep.monotone_).fit(prep.transform(X), y)
    return model.predict_proba(prep.transform(X_test))[:, 1]


def logistic(X, y, X_test):
    text = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    numbers = [c for c in X.columns if c not in text]
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numbers),
            ("cat", OneHotEncoder(handle_unknown="ignore"), text),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(X, y)
    return model.predict_proba(X_test)[:, 1]


def optbinning_scorecard(X, y, X_test):
    from optbinning import BinningProcess, Scorecard

    bp = BinningProcess(list(X.columns))
    model = Scorecard(binning_process=bp, estimator=LogisticRegression()).fit(X, y)
    return model.predict_proba(X_test)[:, 1]


def lightgbm_defaults(X, y, X_test):
    """LGBMClassifier defaults; n_estimators raised to 5000 so early stopping decides."""
    tr, va = train_test_split(
        np.arange(len(y)), test_size=PEER_VALID_SHARE, random_state=SEED, stratify=y
    )
    model = lgb.LGBMClassifier(n_estimators=5000, random_state=SEED, verbose=-1)
    model.fit(
        X.iloc[tr],
        y[tr],
        eval_X=X.iloc[va],
        eval_y=y[va],
        callbacks=[lgb.early_stopping(100, verbose=False)],
    )
    return model.predict_proba(X_test)[:, 1]


MODELS: dict[str, tuple[Fit, bool]] = {
    # name: (fit-and-predict, sees protected attributes)
    "champion": (champion, False),
    "scorecard": (scorecard, False),
    "logistic": (logistic, False),
    "optbinning_scorecard": (optbinning_scorecard, False),
    "lightgbm_defaults": (lightgbm_defaults, False),
    "champion_without_age": (champion_without_age, False),
    "champion_with_protected": (champion_with_protected, True),
}
PEERS = ("logistic", "optbinning_scorecard", "lightgbm_defaults")


def cross_validate(
    X: pd.DataFrame,
    y: np.ndarray,
    models: dict[str, tuple[Fit, bool]] = MODELS,
    n_splits: int = 5,
    seed: int = SEED,
) -> pd.DataFrame:
    """AUC per (model, fold) on the same stratified folds, plus seconds per fit."""
    allowed = model_columns(X)
    rows = []
    for fold, (tr, te) in enumerate(stratified_kfold(y, n_splits, seed)):
        for name, (fit, sees_protected) in models.items():
            cols = list(X.columns) if sees_protected else allowed
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                p = fit(X.iloc[tr][cols], y[tr], X.iloc[te][cols])
            seconds = time.perf_counter() - start
            rows.append(
                {"model": name, "fold": fold, "auc": roc_auc_score(y[te], p), "seconds": seconds}
            )
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    out = results.groupby("model", sort=False).agg(
        auc_mean=("auc", "mean"), auc_sd=("auc", "std"), seconds=("seconds", "sum")
    )
    return out


def verdicts(name: str, summary: pd.DataFrame) -> list[str]:
    """Goal checks as printable lines."""
    lines = []
    champ = summary.loc["champion", "auc_mean"]
    peers = [p for p in PEERS if p in summary.index]
    if peers:
        best = summary.loc[peers, "auc_mean"].idxmax()
        ok = champ >= summary.loc[best, "auc_mean"]
        best_auc = summary.loc[best, "auc_mean"]
        lines.append(f"champion >= best peer ({best} {best_auc:.4f}): {'PASS' if ok else 'FAIL'}")
    for model, goal in GOALS.get(name, {}).items():
        if model in summary.index:
            got = summary.loc[model, "auc_mean"]
            lines.append(f"{model} >= {goal}: {'PASS' if got >= goal else 'FAIL'} ({got:.4f})")
    limit = LEAKAGE_ABOVE.get(name)
    if limit is not None and champ > limit:
        lines.append(f"champion above {limit}: suspect leakage")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DATASETS)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=None, help="stratified sample of rows")
    parser.add_argument("--only", nargs="*", default=list(TABLES), help="datasets to run")
    args = parser.parse_args(argv)
    if not args.datasets.is_dir():
        sys.exit(f"datasets not found at {args.datasets}; pass --datasets DIR")
    started = time.perf_counter()
    for name in args.only:
        X, y = load(name, args.datasets, args.sample)
        print(
            f"\n== {name}: {len(y)} rows, {y.mean():.2%} default, {args.folds}-fold CV, seed {SEED}"
        )
        print(f"   columns used: {', '.join(model_columns(X))}")
        summary = summarise(cross_validate(X, y, n_splits=args.folds))
        for model, row in summary.iterrows():
            tag = {
                "champion_with_protected": "  (protected attributes IN; not a project model)",
                "champion_without_age": "  (age left out: stricter than Regulation B)",
            }.get(model, "")
            print(
                f"   {model:<24} AUC {row.auc_mean:.4f} ± {row.auc_sd:.4f}"
                f"   fit+predict {row.seconds:6.1f} s{tag}"
            )
        for line in verdicts(name, summary):
            print(f"   {line}")
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
