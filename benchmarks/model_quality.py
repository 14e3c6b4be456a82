"""Model quality on the real datasets: 5-fold stratified CV AUC and fit time, ours beside peers.

Same folds (fixed seed) for every model in one run. Ours: champion, what `creditrisk train`
registers on a table without a time column, by the same code (`models.champion.fit_candidates`
on TablePreparer rows: LightGBM cross-fitted with age held monotone, the WOE scorecard, and the
choice between them and their logit blend on out-of-fold scores), and scorecard (TablePreparer
keeping codes + WOEScorecard). Peers: plain logistic regression (median-imputed, standardised),
optbinning's Scorecard with its defaults, LightGBM library defaults with early stopping on an
internal stratified 15 % split. Every model sees the same columns: ids and protected attributes
(sex, marital status, ...) are left out, as the project's models must; age stays, as Regulation B
allows in a scoring system that never gives the elderly a negative value (ours hold it monotone;
the peers use it freely). Extra lines, labelled: the champion without age, and with every
protected attribute; with --previous, the champion before the choice (LightGBM alone with the
earlier defaults), the figure to compare against.

Each line shows its fit time (fit and predict, summed over the folds) beside its AUC, and the
ratio to LightGBM's library defaults. Besides the two public tables in full, two small tables held
back from development: stratified samples of them drawn with a seed that no tuning used.

    .venv/bin/python benchmarks/model_quality.py [--datasets DIR] [--folds 5] [--sample N]
        [--only NAME ...] [--previous]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

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

from models.champion import fit_candidates  # noqa: E402
from models.lgbm import LGBMPDClassifier  # noqa: E402
from models.prepare import TablePreparer, infer_roles  # noqa: E402
from models.scorecard import WOEScorecard  # noqa: E402
from models.split import SEED, stratified_kfold  # noqa: E402

DATASETS = REPO.parent / "shared" / "datasets"
TAIWAN = ("taiwan_credit_default/UCI_Credit_Card.csv", "default.payment.next.month")
GMSC = ("give_me_some_credit/cs-training.csv.gz", "SeriousDlqin2yrs")
HELD_BACK_SEED = 20261  # the small tables' samples: a seed no tuning of ours ever used
TABLES = {  # name: (file, target, rows of the held-back sample or None for the whole table)
    "taiwan": (*TAIWAN, None),
    "gmsc": (*GMSC, None),
    "taiwan-small": (*TAIWAN, 2000),
    "gmsc-small": (*GMSC, 3000),
}
SMALL = ("taiwan-small", "gmsc-small")
GOALS = {"taiwan": {"champion": 0.785, "scorecard": 0.766}, "gmsc": {"champion": 0.866}}
LEAKAGE_ABOVE = {"taiwan": 0.80}
FIT_TIME_GOAL = 5.0  # champion fit time at most this many times LightGBM's defaults
PEER_VALID_SHARE = 0.15
PREVIOUS_DEFAULTS = {"learning_rate": 0.03, "early_stopping_rounds": 100, "cv_folds": 5}


class Fitted(NamedTuple):
    """A champion's test-fold scores, its choice and every candidate's scores."""

    scores: np.ndarray
    chosen: str
    weight: float
    candidates: dict[str, np.ndarray]


Fit = Callable[[pd.DataFrame, np.ndarray, pd.DataFrame], "np.ndarray | Fitted"]


def load(name: str, datasets: Path = DATASETS, sample: int | None = None, seed: int = SEED):
    """(X, y) of a dataset: a held-back table's own sample, else a stratified sample of `sample`
    rows when given."""
    path, target, held_back = TABLES[name]
    df = pd.read_csv(datasets / path)
    if held_back is not None:
        sample, seed = held_back, HELD_BACK_SEED
    if sample is not None and sample < len(df):
        df, _ = train_test_split(df, train_size=sample, random_state=seed, stratify=df[target])
        df = df.sort_index()
    return df.drop(columns=[target]).reset_index(drop=True), df[target].to_numpy()


def model_columns(X: pd.DataFrame) -> list[str]:
    """Columns every model may use: not ids, not protected attributes."""
    roles = infer_roles(X, None)
    dropped = set(roles["id"]) | {c for c, why in roles["dropped"].items() if "protected" in why}
    return [c for c in X.columns if c not in dropped]


def champion(X, y, X_test, **preparer) -> Fitted:
    """What `creditrisk train` fits on a table without a time column, by the same code."""
    prep = TablePreparer(**preparer).fit(X)
    candidates = fit_candidates(prep.transform(X), y, prep, monotone=prep.monotone_ or None)
    scores = candidates.log_odds(prep.transform(X_test))
    choice = candidates.choice
    return Fitted(scores[choice.chosen], choice.chosen, choice.weight, scores)


def previous_champion(X, y, X_test):
    """The champion before the choice: LightGBM alone, cross-fitted with the earlier defaults."""
    prep = TablePreparer().fit(X)
    model = LGBMPDClassifier(monotone_constraints=prep.monotone_ or None, **PREVIOUS_DEFAULTS)
    model.fit(prep.transform(X), y)
    return model.decision_function(prep.transform(X_test))


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
PREVIOUS: dict[str, tuple[Fit, bool]] = {"previous_champion": (previous_champion, False)}


def cross_validate(
    X: pd.DataFrame,
    y: np.ndarray,
    models: dict[str, tuple[Fit, bool]] = MODELS,
    n_splits: int = 5,
    seed: int = SEED,
) -> pd.DataFrame:
    """AUC per (model, fold) on the same stratified folds, plus seconds per fit (fit and
    predict); for a champion, also the candidate it chose and every candidate's AUC."""
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
            row = {"model": name, "fold": fold, "seconds": seconds}
            if isinstance(p, Fitted):
                row.update(chosen=p.chosen, weight=p.weight)
                row.update({f"auc_{c}": roc_auc_score(y[te], s) for c, s in p.candidates.items()})
                p = p.scores
            rows.append({**row, "auc": roc_auc_score(y[te], p)})
    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    """Per model: mean and sd of the AUC, total seconds and their ratio to LightGBM's defaults."""
    out = results.groupby("model", sort=False).agg(
        auc_mean=("auc", "mean"), auc_sd=("auc", "std"), seconds=("seconds", "sum")
    )
    if "lightgbm_defaults" in out.index:
        out["time_ratio"] = out["seconds"] / out.loc["lightgbm_defaults", "seconds"]
    return out


def choices(results: pd.DataFrame, model: str = "champion") -> str:
    """What a champion chose over the folds, and each candidate's mean AUC on the test folds."""
    rows = results[results["model"] == model]
    if "chosen" not in rows or rows["chosen"].isna().all():
        return ""
    picks = ", ".join(
        f"{name} in {n} of {len(rows)} folds" for name, n in rows["chosen"].value_counts().items()
    )
    figures = ", ".join(
        f"{c.removeprefix('auc_')} {rows[c].mean():.4f}"
        for c in rows.columns
        if c.startswith("auc_")
    )
    return f"chose {picks}; candidates on the test folds: {figures}"


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
    if "scorecard" in summary.index:
        card = summary.loc["scorecard", "auc_mean"]
        verdict = "PASS" if champ >= card else "FAIL"
        lines.append(f"champion >= our plain scorecard ({card:.4f}): {verdict}")
    if name not in SMALL and "time_ratio" in summary.columns:
        ratio = summary.loc["champion", "time_ratio"]
        verdict = "PASS" if ratio <= FIT_TIME_GOAL else "FAIL"
        lines.append(f"champion fit time <= {FIT_TIME_GOAL:g} x LightGBM defaults: {verdict} "
                     f"({ratio:.1f} x)")  # fmt: skip
    if "previous_champion" in summary.index:
        before = summary.loc["previous_champion", "auc_mean"]
        verdict = "PASS" if champ >= before - 0.001 else "FAIL"
        lines.append(f"champion >= previous champion - 0.001 ({before:.4f}): {verdict} "
                     f"({champ - before:+.4f})")  # fmt: skip
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
    parser.add_argument(
        "--previous", action="store_true", help="add the champion before the choice (slow)"
    )
    args = parser.parse_args(argv)
    if not args.datasets.is_dir():
        print(f"datasets not found at {args.datasets}: skipped (pass --datasets DIR)")
        return
    models = {**MODELS, **(PREVIOUS if args.previous else {})}
    started = time.perf_counter()
    for name in args.only:
        X, y = load(name, args.datasets, args.sample)
        print(
            f"\n== {name}: {len(y)} rows, {y.mean():.2%} default, {args.folds}-fold CV, seed {SEED}"
            f", load {os.getloadavg()[0]:.1f}"
        )
        print(f"   columns used: {', '.join(model_columns(X))}")
        results = cross_validate(X, y, models, n_splits=args.folds)
        summary = summarise(results)
        for model, row in summary.iterrows():
            tag = {
                "champion_with_protected": "  (protected attributes IN; not a project model)",
                "champion_without_age": "  (age left out: stricter than Regulation B)",
            }.get(model, "")
            ratio = f" ({row.time_ratio:4.1f} x defaults)" if "time_ratio" in row else ""
            print(
                f"   {model:<24} AUC {row.auc_mean:.4f} ± {row.auc_sd:.4f}"
                f"   fit+predict {row.seconds:6.1f} s{ratio}{tag}"
            )
        print(f"   champion {choices(results)}")
        for line in verdicts(name, summary):
            print(f"   {line}")
    print(f"\nwall time {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
