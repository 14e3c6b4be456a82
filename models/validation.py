"""Validation statistics for PD models (the Basel / ECB set), as pure functions on arrays.

Discrimination: AUC with a bootstrap confidence interval, Gini, KS. Calibration: Brier, log loss,
expected calibration error and table, Jeffreys and binomial tests with traffic lights,
Hosmer-Lemeshow. Stability: PSI with verdicts, rating migration matrix.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

GREEN, YELLOW, RED = "green", "yellow", "red"
LIGHT_YELLOW_AT = 0.95
LIGHT_RED_AT = 0.999
PSI_STABLE_BELOW = 0.10
PSI_INVESTIGATE_BELOW = 0.25
MISSING = "<missing>"
HOSMER_LEMESHOW_MIN_GROUPS = 3
_BOOT_CHUNK_CELLS = 4_000_000
_MULTINOMIAL_RATIO = 5  # multinomial draws cost about 5 row draws per group


class AUCResult(NamedTuple):
    auc: float
    lower: float
    upper: float


class _UnderestimationTest(NamedTuple):
    """A one-sided test that a PD is not underestimated, with its traffic light."""

    defaults: int
    n: int
    pd: float
    p_value: float
    confidence: float
    light: str

    @classmethod
    def of(cls, defaults: int, n: int, pd: float, p_value: float):
        """The result for a p-value: confidence = 1 - p_value sets the light."""
        confidence = 1.0 - p_value
        return cls(int(defaults), int(n), float(pd), p_value, confidence, traffic_light(confidence))


class JeffreysResult(_UnderestimationTest):
    __slots__ = ()


class BinomialResult(_UnderestimationTest):
    __slots__ = ()


class HosmerLemeshowResult(NamedTuple):
    statistic: float
    dof: int
    p_value: float


@dataclass(frozen=True)
class MigrationResult:
    """Rating migration between two runs: counts and row-normalised rates (rows: before)."""

    counts: pd.DataFrame
    rates: pd.DataFrame
    upgrade_share: float
    downgrade_share: float
    stable_share: float
    n: int
    n_excluded: int


def is_binary(y: ArrayLike) -> bool:
    """Every value is 0 or 1 (1 = default): no missing label, no other code."""
    return bool(np.isin(np.asarray(y, dtype=float), (0.0, 1.0)).all())


def binary_labels(y: ArrayLike) -> np.ndarray:
    """Default labels as a flat float array of 0/1; missing (unmatured) or other values refused."""
    arr = np.asarray(y, dtype=float).ravel()
    if np.isnan(arr).any():
        raise ValueError("labels contain NaN; keep only matured rows (drop unmatured ones first)")
    if not is_binary(arr):
        raise ValueError("labels must be 0/1 (1 = default, as default_flag); got other values")
    return arr


def _scores(y: ArrayLike, p: ArrayLike, probability: bool = True) -> tuple[np.ndarray, np.ndarray]:
    yy = binary_labels(y)
    pp = np.asarray(p, dtype=float).ravel()
    if yy.shape != pp.shape:
        raise ValueError(f"labels and predictions differ in length: {yy.size} vs {pp.size}")
    if yy.size == 0:
        raise ValueError("no rows given")
    if not np.isfinite(pp).all():
        raise ValueError("predictions contain NaN or infinite values")
    if probability and ((pp < 0) | (pp > 1)).any():
        raise ValueError("predictions must be probabilities in [0, 1]; pass calibrated PDs")
    return yy, pp


def _both_classes(y: np.ndarray) -> None:
    if y.min() == y.max():
        raise ValueError("need both defaults and non-defaults to measure discrimination")


def _auc_from_weights(pos_w: np.ndarray, neg_w: np.ndarray) -> np.ndarray:
    """AUC from per-score-group weights sorted by ascending score (ties count one half)."""
    neg_below = np.cumsum(neg_w, axis=-1) - neg_w
    num = np.sum(pos_w * (neg_below + 0.5 * neg_w), axis=-1)
    return num / (pos_w.sum(axis=-1) * neg_w.sum(axis=-1))


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve by the rank (Mann-Whitney) formula; ties count one half."""
    yy, pp = _scores(y, p, probability=False)
    _both_classes(yy)
    _, group = np.unique(pp, return_inverse=True)
    return float(_auc_from_weights(np.bincount(group, yy), np.bincount(group, 1.0 - yy)))


def _class_run_groups(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Group id per row: distinct scores, with runs of scores held by one class merged.

    Merging keeps the AUC exact (a run of non-defaults ranks identically against every default)
    and makes the bootstrap's per-group counts small.
    """
    _, group = np.unique(p, return_inverse=True)
    pos, neg = np.bincount(group, y), np.bincount(group, 1.0 - y)
    kind = np.where(neg == 0, 1, np.where(pos == 0, 0, 2))
    start = np.ones(kind.size, dtype=bool)
    start[1:] = (kind[1:] != kind[:-1]) | (kind[1:] == 2)
    return (np.cumsum(start) - 1).astype(np.int32)[group]


def auc_with_ci(
    y: ArrayLike, p: ArrayLike, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> AUCResult:
    """AUC with a percentile bootstrap (1 - alpha) interval.

    The bootstrap is stratified (defaults and non-defaults resampled separately, as pROC does),
    vectorised: each replicate's AUC comes from resampled counts per score group.
    """
    yy, pp = _scores(y, p, probability=False)
    _both_classes(yy)
    group = _class_run_groups(pp, yy)
    n_groups = int(group.max()) + 1
    point = float(_auc_from_weights(np.bincount(group, yy), np.bincount(group, 1.0 - yy)))
    if n_boot <= 0:
        return AUCResult(point, float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOT_CHUNK_CELLS // max(yy.size, n_groups))  # replicates at a time
    pos = _resampled_counts(group[yy == 1], n_groups, n_boot, chunk, rng)
    neg = _resampled_counts(group[yy == 0], n_groups, n_boot, chunk, rng)
    boots = [_auc_from_weights(p, n) for p, n in zip(pos, neg, strict=True)]
    lower, upper = np.quantile(np.concatenate(boots), [alpha / 2, 1 - alpha / 2])
    return AUCResult(point, float(lower), float(upper))


def _resampled_counts(
    groups: np.ndarray, n_groups: int, n_boot: int, chunk: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Per-group counts of ``n_boot`` resamples (with replacement) of ``groups``, ``chunk``
    replicates at a time: multinomial draws over the groups present when they are few (cost per
    group), otherwise row draws counted per group (cost per row)."""
    present, freq = np.unique(groups, return_counts=True)
    few = present.size * _MULTINOMIAL_RATIO < groups.size
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        if few:
            counts = np.zeros((b, n_groups))
            counts[:, present] = rng.multinomial(groups.size, freq / groups.size, size=b)
            yield counts
        else:
            draws = groups[rng.integers(0, groups.size, size=(b, groups.size))]
            draws += (np.arange(b, dtype=draws.dtype) * n_groups)[:, None]
            yield np.bincount(draws.ravel(), minlength=b * n_groups).reshape(b, n_groups)


def gini(auc: float) -> float:
    """Gini (accuracy ratio / Somers' D) = 2 AUC - 1."""
    return 2.0 * auc - 1.0


def ks_statistic(y: ArrayLike, p: ArrayLike) -> float:
    """Kolmogorov-Smirnov: the largest gap between the score CDFs of defaults and non-defaults."""
    yy, pp = _scores(y, p, probability=False)
    _both_classes(yy)
    _, group = np.unique(pp, return_inverse=True)
    cdf_bad = np.cumsum(np.bincount(group, yy)) / yy.sum()
    cdf_good = np.cumsum(np.bincount(group, 1.0 - yy)) / (yy.size - yy.sum())
    return float(np.max(np.abs(cdf_bad - cdf_good)))


def brier_score(y: ArrayLike, p: ArrayLike) -> float:
    """Mean squared difference between PD and outcome."""
    yy, pp = _scores(y, p)
    return float(np.mean((pp - yy) ** 2))


def log_loss(y: ArrayLike, p: ArrayLike, eps: float = 1e-15) -> float:
    """Mean negative log-likelihood of the outcomes under the PDs (clipped to [eps, 1 - eps])."""
    yy, pp = _scores(y, p)
    pp = np.clip(pp, eps, 1 - eps)
    return float(-np.mean(yy * np.log(pp) + (1 - yy) * np.log(1 - pp)))


def _bin_ids(p: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    """Consecutive bin ids 0..k-1: quantile bins (tied PDs stay together) or uniform ones."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    if strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    elif strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    else:
        raise ValueError(f"strategy must be 'quantile' or 'uniform', got {strategy!r}")
    raw = np.searchsorted(edges[1:-1], p, side="right")
    return np.unique(raw, return_inverse=True)[1]


def calibration_table(
    y: ArrayLike, p: ArrayLike, n_bins: int = 10, strategy: str = "quantile"
) -> pd.DataFrame:
    """Per PD bin: pd_min, pd_max, n, defaults, pd_mean, default_rate and gap (rate - mean PD)."""
    yy, pp = _scores(y, p)
    ids = _bin_ids(pp, n_bins, strategy)
    table = (
        pd.DataFrame({"bin": ids, "p": pp, "y": yy})
        .groupby("bin", sort=True)
        .agg(
            pd_min=("p", "min"),
            pd_max=("p", "max"),
            n=("y", "size"),
            defaults=("y", "sum"),
            pd_mean=("p", "mean"),
        )
        .reset_index()
    )
    table["defaults"] = table["defaults"].astype(np.int64)
    table["default_rate"] = table["defaults"] / table["n"]
    table["gap"] = table["default_rate"] - table["pd_mean"]
    return table


def expected_calibration_error(
    y: ArrayLike, p: ArrayLike, n_bins: int = 10, strategy: str = "quantile"
) -> float:
    """Count-weighted mean |default rate - mean PD| over PD bins."""
    table = calibration_table(y, p, n_bins, strategy)
    return float(np.sum(table["n"] * table["gap"].abs()) / table["n"].sum())


def traffic_light(confidence: ArrayLike) -> np.ndarray | str:
    """Light for the confidence that a PD is underestimated: green < 95 %, yellow < 99.9 %, red."""
    c = np.asarray(confidence, dtype=float)
    light = np.where(c < LIGHT_YELLOW_AT, GREEN, np.where(c < LIGHT_RED_AT, YELLOW, RED))
    light = light.astype(object)
    return str(light) if light.ndim == 0 else light


def _check_counts(defaults: int, n: int, pd_: float) -> None:
    if n <= 0 or not 0 <= defaults <= n:
        raise ValueError(f"need 0 <= defaults <= n and n > 0, got defaults={defaults}, n={n}")
    if not 0 <= pd_ <= 1:
        raise ValueError(f"pd must lie in [0, 1], got {pd_}")


def _jeffreys_p_value(defaults, n, pd_mean):
    """Jeffreys posterior Beta(d + 1/2, n - d + 1/2) CDF at the PD (scalars or arrays)."""
    return stats.beta.cdf(pd_mean, defaults + 0.5, n - defaults + 0.5)


def jeffreys_test(defaults: int, n: int, pd_mean: float) -> JeffreysResult:
    """ECB Jeffreys test that a grade's PD is not underestimated.

    With a Jeffreys prior the posterior of the default rate is Beta(d + 1/2, n - d + 1/2).
    p_value = posterior CDF at the PD (the chance the true rate is at most the PD);
    confidence = 1 - p_value (the chance the PD is underestimated) sets the traffic light.
    """
    _check_counts(defaults, n, pd_mean)
    return JeffreysResult.of(defaults, n, pd_mean, float(_jeffreys_p_value(defaults, n, pd_mean)))


def jeffreys_interval(defaults: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Equal-tailed ``level`` interval of the Jeffreys posterior Beta(d + 1/2, n - d + 1/2) of a
    default rate; ``defaults`` may be an expected count (n times a mean PD)."""
    if n <= 0 or not 0 <= defaults <= n:
        raise ValueError(f"need 0 <= defaults <= n and n > 0, got defaults={defaults}, n={n}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    tail = (1 - level) / 2
    a, b = defaults + 0.5, n - defaults + 0.5
    return float(stats.beta.ppf(tail, a, b)), float(stats.beta.ppf(1 - tail, a, b))


def binomial_test(defaults: int, n: int, pd: float) -> BinomialResult:
    """One-sided exact binomial test of H0 "true default rate <= pd" (PD not underestimated)."""
    _check_counts(defaults, n, pd)
    p_value = float(stats.binomtest(int(defaults), int(n), pd, alternative="greater").pvalue)
    return BinomialResult.of(defaults, n, pd, p_value)


def jeffreys_by_grade(
    frame: pd.DataFrame,
    grade_col: str = "grade",
    pd_col: str = "pd",
    y_col: str = "y",
    grades: list[str] | None = None,
) -> pd.DataFrame:
    """Jeffreys test per grade: grade, n, defaults, pd_mean, default_rate, p_value, confidence,
    light. Rows follow `grades` (e.g. `MasterScale.grades`) when given, else rising mean PD;
    grades without observations are left out."""
    missing = [c for c in (grade_col, pd_col, y_col) if c not in frame.columns]
    if missing:
        raise KeyError(f"jeffreys_by_grade needs columns {missing}; pass grade_col/pd_col/y_col")
    y = binary_labels(frame[y_col])
    data = pd.DataFrame(
        {"grade": frame[grade_col].to_numpy(dtype=object), "pd": frame[pd_col].to_numpy(float)}
    )
    data["y"] = y
    table = data.groupby("grade", sort=False).agg(
        n=("y", "size"), defaults=("y", "sum"), pd_mean=("pd", "mean")
    )
    if grades is not None:
        unknown = sorted(set(table.index) - set(grades))
        if unknown:
            raise ValueError(f"grades {unknown} are not in the given grade list {grades}")
        table = table.reindex([g for g in grades if g in table.index])
    else:
        table = table.sort_values("pd_mean", kind="stable")
    table = table.reset_index().rename(columns={"index": "grade"})
    table["n"] = table["n"].astype(np.int64)
    table["defaults"] = table["defaults"].astype(np.int64)
    table["default_rate"] = table["defaults"] / table["n"]
    d, n = table["defaults"].to_numpy(), table["n"].to_numpy()
    table["p_value"] = _jeffreys_p_value(d, n, table["pd_mean"].to_numpy())
    table["confidence"] = 1.0 - table["p_value"]
    table["light"] = traffic_light(table["confidence"].to_numpy())
    return table


def pd_groups(p: ArrayLike, n_groups: int = 10) -> int:
    """How many quantile PD groups Hosmer-Lemeshow forms (tied PDs stay together)."""
    pp = np.asarray(p, dtype=float).ravel()
    return int(_bin_ids(pp, n_groups, "quantile").max()) + 1 if pp.size else 0


def hosmer_lemeshow(y: ArrayLike, p: ArrayLike, n_groups: int = 10) -> HosmerLemeshowResult:
    """Hosmer-Lemeshow goodness of fit over quantile groups of PD; chi-square with G - 2 dof."""
    yy, pp = _scores(y, p)
    ids = _bin_ids(pp, n_groups, "quantile")
    k = int(ids.max()) + 1
    if k < HOSMER_LEMESHOW_MIN_GROUPS:
        raise ValueError(
            f"Hosmer-Lemeshow needs at least {HOSMER_LEMESHOW_MIN_GROUPS} distinct PD groups, "
            f"got {k}"
        )
    n = np.bincount(ids, minlength=k).astype(float)
    observed = np.bincount(ids, yy, minlength=k)
    expected = np.bincount(ids, pp, minlength=k)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = (observed - expected) ** 2 / (expected * (1.0 - expected / n))
    statistic = float(np.sum(np.nan_to_num(terms, nan=0.0, posinf=0.0)))
    dof = k - 2
    return HosmerLemeshowResult(statistic, dof, float(stats.chi2.sf(statistic, dof)))


def _psi_frame(e_counts: np.ndarray, a_counts: np.ndarray, smoothing: float) -> pd.DataFrame:
    if e_counts.sum() == 0 or a_counts.sum() == 0:
        raise ValueError("PSI needs at least one expected and one actual value")
    k = e_counts.size
    e_share = (e_counts + smoothing) / (e_counts.sum() + smoothing * k)
    a_share = (a_counts + smoothing) / (a_counts.sum() + smoothing * k)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = (a_share - e_share) * np.log(a_share / e_share)
    term = np.where(a_share == e_share, 0.0, term)
    return pd.DataFrame(
        {
            "expected_n": e_counts.astype(np.int64),
            "actual_n": a_counts.astype(np.int64),
            "expected_share": e_share,
            "actual_share": a_share,
            "psi": term,
        }
    )


def psi_table(
    expected: ArrayLike, actual: ArrayLike, bins: int | ArrayLike = 10, smoothing: float = 0.5
) -> pd.DataFrame:
    """Per-bin PSI terms (a - e) ln(a / e); see `psi`."""
    e = np.asarray(expected, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    e_ok, a_ok = e[~np.isnan(e)], a[~np.isnan(a)]
    if np.ndim(bins) == 0:
        if e_ok.size == 0:
            raise ValueError("the expected sample has no non-missing values to set PSI bins on")
        edges = np.unique(np.quantile(e_ok, np.linspace(0, 1, int(bins) + 1)))
    else:
        edges = np.asarray(bins, dtype=float)
        if edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bin edges must be at least two strictly increasing numbers")
    inner = edges[1:-1]
    k = inner.size + 1
    e_counts = np.bincount(np.searchsorted(inner, e_ok, side="right"), minlength=k)
    a_counts = np.bincount(np.searchsorted(inner, a_ok, side="right"), minlength=k)
    lower = np.concatenate([[-np.inf], inner])
    upper = np.concatenate([inner, [np.inf]])
    labels = [f"[{lo:.6g}, {hi:.6g})" for lo, hi in zip(lower, upper, strict=True)]
    if e_ok.size < e.size or a_ok.size < a.size:
        e_counts = np.append(e_counts, e.size - e_ok.size)
        a_counts = np.append(a_counts, a.size - a_ok.size)
        labels.append(MISSING)
    table = _psi_frame(e_counts, a_counts, smoothing)
    table.insert(0, "bin", labels)
    return table


def psi(
    expected: ArrayLike, actual: ArrayLike, bins: int | ArrayLike = 10, smoothing: float = 0.5
) -> float:
    """Population stability index of `actual` against `expected`: sum (a - e) ln(a / e).

    `bins` is a bin count (quantile edges of `expected`, open-ended outer bins) or explicit
    edges (values outside fall into the end bins). Missing values get a bin of their own.
    `smoothing` is a pseudo-count added to every bin so that empty bins give a finite PSI.
    """
    return float(psi_table(expected, actual, bins, smoothing)["psi"].sum())


def psi_categorical(expected: ArrayLike, actual: ArrayLike, smoothing: float = 0.5) -> float:
    """PSI over the union of categories of both samples; missing values are one category."""
    e = pd.Series(np.asarray(expected, dtype=object).ravel()).astype(object)
    a = pd.Series(np.asarray(actual, dtype=object).ravel()).astype(object)
    e, a = e.where(e.notna(), MISSING).astype(str), a.where(a.notna(), MISSING).astype(str)
    cats = sorted(set(e) | set(a))
    e_counts = e.value_counts().reindex(cats, fill_value=0).to_numpy()
    a_counts = a.value_counts().reindex(cats, fill_value=0).to_numpy()
    return float(_psi_frame(e_counts, a_counts, smoothing)["psi"].sum())


def psi_verdict(value: float) -> str:
    """'stable' below 0.10, 'investigate' below 0.25, else 'shift'."""
    if value is None or np.isnan(value):
        raise ValueError("PSI is NaN; compute it on non-empty samples")
    if value < PSI_STABLE_BELOW:
        return "stable"
    return "investigate" if value < PSI_INVESTIGATE_BELOW else "shift"


def migration_matrix(
    grades_before: ArrayLike, grades_after: ArrayLike, grades: list[str]
) -> MigrationResult:
    """Counts and row-normalised rates of moves between grades (`grades` best to worst).

    Pairs where either grade is missing (new or exited customers) are excluded and counted in
    `n_excluded`. Rows of grades with no customers before have NaN rates.
    """
    before = pd.Series(np.asarray(grades_before, dtype=object).ravel())
    after = pd.Series(np.asarray(grades_after, dtype=object).ravel())
    if before.size != after.size:
        raise ValueError(f"grade arrays differ in length: {before.size} vs {after.size}")
    keep = before.notna() & after.notna()
    before, after = before[keep], after[keep]
    unknown = sorted((set(before) | set(after)) - set(grades))
    if unknown:
        raise ValueError(f"grades {unknown} are not in the grade list {grades}")
    b = pd.Categorical(before, categories=grades).codes
    a = pd.Categorical(after, categories=grades).codes
    k = len(grades)
    counts_arr = np.bincount(b.astype(np.int64) * k + a, minlength=k * k).reshape(k, k)
    counts = pd.DataFrame(counts_arr, index=pd.Index(grades, name="before"),
                          columns=pd.Index(grades, name="after"))  # fmt: skip
    row_totals = counts_arr.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = pd.DataFrame(counts_arr / row_totals, index=counts.index, columns=counts.columns)
    n = int(counts_arr.sum())
    share = (lambda m: float(m.sum() / n)) if n else (lambda m: float("nan"))
    return MigrationResult(
        counts=counts,
        rates=rates,
        upgrade_share=share(a < b),
        downgrade_share=share(a > b),
        stable_share=share(a == b),
        n=n,
        n_excluded=int((~keep).sum()),
    )


def summary_metrics(y: ArrayLike, p: ArrayLike, n_boot: int = 200, seed: int = 0) -> dict:
    """Headline metrics of calibrated PDs: auc (+ CI), gini, ks, brier, log_loss, ece."""
    result = auc_with_ci(y, p, n_boot=n_boot, seed=seed)
    return {
        "auc": result.auc,
        "auc_lower": result.lower,
        "auc_upper": result.upper,
        "gini": gini(result.auc),
        "ks": ks_statistic(y, p),
        "brier": brier_score(y, p),
        "log_loss": log_loss(y, p),
        "ece": expected_calibration_error(y, p),
    }
