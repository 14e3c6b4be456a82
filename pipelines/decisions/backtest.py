"""Backtest of the early-warning rules on matured snapshots: are the warnings worth acting on?

Pure. `warn_dates` raises the warnings of each as-of date against the PDs and grades of the dates
before it, in date order, as the scoring use case does. `outcomes` says who defaulted within the
horizon (the snapshot label) and within the next quarter. `backtest` reports, per level and per
signal, the share of the book, the default rate and the lift; the capture (the share of
defaulters at amber or red: of the horizon's, of the next quarter's, by months before default)
and how many months ahead of default a defaulter was first flagged. `goal_table` checks the
figures against the goals of the warning levels.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.labels import LABEL
from pipelines.decisions.early_warning import LEVELS, WarningRules, evaluate_signals, roll_up

ID, TIME, LEVEL = "customer_id", "as_of", "level"
DEFAULTED_ON = "defaulted_on"
NEXT_QUARTER = "default_3m"
MONTHS_TO_DEFAULT = "months_to_default"
QUARTER_MONTHS = 3
FLAGGED = ("amber", "red")
HISTORY = [ID, TIME, "pd", "grade"]


@dataclass(frozen=True)
class Goals:
    """The goals of the warning levels on an out-of-time backtest."""

    level_ratio: float = 1.5  # each level's default rate at least this times the one below
    red_over_green: float = 8.0
    capture_quarter: float = 0.60  # defaulters of the next quarter flagged amber or red
    max_flagged_share: float = 0.15  # of the book at amber or red


@dataclass(frozen=True)
class Backtest:
    """Per level and per signal figures of a backtest, its capture and the lead times."""

    levels: pd.DataFrame
    signals: pd.DataFrame
    capture: dict[str, float]
    capture_by_lead: pd.DataFrame
    lead_months: pd.Series  # per defaulter flagged within the horizon before its default
    dates: list[pd.Timestamp]
    rows: int
    defaults: int

    @property
    def default_rate(self) -> float:
        return self.defaults / self.rows if self.rows else float("nan")

    @property
    def flagged_share(self) -> float:
        return float(self.levels.loc[list(FLAGGED), "share"].sum())


def _keys(frame: pd.DataFrame) -> dict[str, pd.Series]:
    return {ID: frame[ID].astype(str), TIME: pd.to_datetime(frame[TIME]).astype("datetime64[ns]")}


def signals_by_date(
    scored: pd.DataFrame,
    rules: WarningRules,
    scale=None,
    dates: list | None = None,
    history_months: int = 12,
):
    """(current rows, fired signals) of each date of ``dates`` (default: every date), in order.

    ``scored`` holds the scored rows of every date (customer_id, as_of, pd, grade, features);
    each date is warned against the rows of the ``history_months`` before it, as a scoring run
    is against the stored runs.
    """
    when = pd.to_datetime(scored[TIME])
    chosen = sorted(pd.Timestamp(d) for d in (when.unique() if dates is None else dates))
    for as_of in chosen:
        current = scored[(when == as_of).to_numpy()]
        start = as_of - pd.DateOffset(months=history_months)
        history = scored.loc[((when >= start) & (when < as_of)).to_numpy(), HISTORY]
        yield current, evaluate_signals(current, history, rules, scale)


def warn_dates(
    scored: pd.DataFrame,
    rules: WarningRules,
    scale=None,
    dates: list | None = None,
    history_months: int = 12,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Warnings (one row per customer and date) and fired signals of each date of ``dates``."""
    warnings, signals = [], []
    for current, fired in signals_by_date(scored, rules, scale, dates, history_months):
        warnings.append(roll_up(fired, rules, population=current))
        signals.append(fired[[ID, TIME, "signal", "severity"]])
    return pd.concat(warnings, ignore_index=True), pd.concat(signals, ignore_index=True)


def outcomes(snapshots: pd.DataFrame, default_dates: pd.Series) -> pd.DataFrame:
    """customer_id, as_of, the horizon's label, the default date, months from as_of to it, and
    default within the next quarter; ``default_dates`` as `features.labels.default_dates`."""
    frame = snapshots[[ID, TIME, LABEL]].assign(**_keys(snapshots)).reset_index(drop=True)
    defaulted = frame[ID].map(default_dates).astype("datetime64[ns]")
    end = frame[TIME] + pd.DateOffset(months=QUARTER_MONTHS)
    frame[DEFAULTED_ON] = defaulted
    frame[MONTHS_TO_DEFAULT] = months_between(frame[TIME], defaulted)
    frame[NEXT_QUARTER] = ((defaulted > frame[TIME]) & (defaulted <= end)).to_numpy()
    return frame


def months_between(start: pd.Series, end: pd.Series) -> pd.Series:
    """Calendar months from ``start`` to ``end`` (whole months, plus days as a share of 31)."""
    whole = (end.dt.year - start.dt.year) * 12 + (end.dt.month - start.dt.month)
    return whole + (end.dt.day - start.dt.day) / 31


def with_levels(warnings: pd.DataFrame, outcome: pd.DataFrame) -> pd.DataFrame:
    """The outcome rows of the warned dates with each row's level; labels must be matured."""
    levels = warnings[[ID, TIME, LEVEL]].assign(**_keys(warnings))
    joined = outcome.merge(levels, on=[ID, TIME], how="inner", validate="one_to_one")
    if joined[LABEL].isna().any():
        raise ValueError("the backtest needs matured snapshots: some labels are missing")
    return joined


def _rates(frame: pd.DataFrame, by: str, rows: int, rate: float) -> pd.DataFrame:
    out = frame.groupby(by).agg(
        rows=(LABEL, "size"), defaults=(LABEL, "sum"), defaults_3m=(NEXT_QUARTER, "sum")
    )
    out["share"] = out["rows"] / rows
    out["default_rate"] = out["defaults"] / out["rows"]
    out["lift"] = out["default_rate"] / rate
    out["default_rate_3m"] = out["defaults_3m"] / out["rows"]
    return out


def level_table(joined: pd.DataFrame) -> pd.DataFrame:
    """Per level: rows, share of the book, defaults, default rate, lift, the next quarter's
    default rate and the share of the next quarter's defaulters at that level."""
    rows, rate = len(joined), joined[LABEL].mean()
    out = _rates(joined, LEVEL, rows, rate).reindex(list(LEVELS))
    counts = ["rows", "defaults", "defaults_3m"]
    out[counts] = out[counts].fillna(0).astype("int64")
    out["share"] = out["share"].fillna(0.0)
    out["of_defaulters_3m"] = out["defaults_3m"] / max(int(joined[NEXT_QUARTER].sum()), 1)
    return out


def capture_by_lead(joined: pd.DataFrame, step: int = QUARTER_MONTHS) -> pd.DataFrame:
    """Defaulters by months from the run to their default (0-3, 3-6, ...), the share flagged."""
    hit = joined[joined[LABEL] == 1]
    edges = np.arange(0, hit[MONTHS_TO_DEFAULT].max() + step, step) if len(hit) else [0, step]
    bucket = pd.cut(hit[MONTHS_TO_DEFAULT], edges, right=True)
    flagged = hit[LEVEL].isin(FLAGGED)
    out = flagged.groupby(bucket, observed=True).agg(defaulters="size", flagged="mean")
    out["defaulters"] = out["defaulters"].astype("int64")
    out.index = [f"{int(b.left)}-{int(b.right)} months" for b in out.index]
    return out


def _lead_months(joined: pd.DataFrame) -> pd.Series:
    """Months from a defaulter's first amber or red flag (within the horizon) to its default."""
    hit = joined[(joined[LABEL] == 1) & joined[LEVEL].isin(FLAGGED)]
    return hit.groupby(ID)[MONTHS_TO_DEFAULT].max().rename("months_ahead")


def signal_table(signals: pd.DataFrame, joined: pd.DataFrame) -> pd.DataFrame:
    """Per signal: severity, rows, share of the book, default rate, lift and capture."""
    rows, defaults = len(joined), joined[LABEL].sum()
    fired = signals[[ID, TIME, "signal", "severity"]].assign(**_keys(signals))
    fired = fired.merge(joined[[ID, TIME, LABEL, NEXT_QUARTER]], on=[ID, TIME])
    out = _rates(fired, "signal", rows, defaults / rows)
    out.insert(0, "severity", fired.groupby("signal")["severity"].first())
    out["capture"] = out["defaults"] / max(defaults, 1)
    out["capture_3m"] = out["defaults_3m"] / max(int(joined[NEXT_QUARTER].sum()), 1)
    return out.astype({"defaults": "int64", "defaults_3m": "int64"}).sort_values(
        "lift", ascending=False
    )


def capture_of(joined: pd.DataFrame) -> dict[str, float]:
    """Shares of defaulters at amber or red: of the horizon's, of the next quarter's; customers
    flagged before default and the median months between the first flag and the default."""
    flagged = joined[LEVEL].isin(FLAGGED)
    defaulted, quarter = joined[LABEL] == 1, joined[NEXT_QUARTER]
    lead = _lead_months(joined)
    return {
        "capture_12m": float(flagged[defaulted].mean()),
        "capture_quarter": float(flagged[quarter].mean()),
        "green_quarter": float((joined[LEVEL] == "green")[quarter].mean()),
        "defaulters_flagged": len(lead) / max(joined.loc[defaulted, ID].nunique(), 1),
        "median_months_ahead": float(lead.median()) if len(lead) else float("nan"),
    }


def backtest(warnings: pd.DataFrame, signals: pd.DataFrame, outcome: pd.DataFrame) -> Backtest:
    """The backtest of warnings (`warn_dates`) against their outcomes (`outcomes`)."""
    joined = with_levels(warnings, outcome)
    return Backtest(
        levels=level_table(joined),
        signals=signal_table(signals, joined),
        capture=capture_of(joined),
        capture_by_lead=capture_by_lead(joined),
        lead_months=_lead_months(joined),
        dates=sorted(pd.to_datetime(joined[TIME].unique())),
        rows=len(joined),
        defaults=int(joined[LABEL].sum()),
    )


def goal_table(
    levels: pd.DataFrame, capture_quarter: float, goals: Goals = Goals()
) -> pd.DataFrame:
    """Each goal with its target, the figure of a backtest (`level_table`, `capture_of`) and
    whether it is met."""
    rates = levels["default_rate"]

    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else float("nan")

    rows = [
        (f"{above} / {below} default rate", goals.level_ratio, ratio(rates[above], rates[below]))
        for below, above in itertools.pairwise(LEVELS)
    ]
    rows.append(("red / green default rate", goals.red_over_green, ratio(rates.red, rates.green)))
    rows.append(("next quarter's defaulters at amber or red", goals.capture_quarter,
                 capture_quarter))  # fmt: skip
    out = pd.DataFrame(rows, columns=["goal", "target", "value"])
    out["met"] = out["value"] >= out["target"]
    flagged = float(levels.loc[list(FLAGGED), "share"].sum())
    limit = goals.max_flagged_share
    out.loc[len(out)] = ("book at amber or red (at most)", limit, flagged, flagged <= limit)
    return out


def goals_of(result: Backtest, goals: Goals = Goals()) -> pd.DataFrame:
    """`goal_table` of a backtest."""
    return goal_table(result.levels, result.capture["capture_quarter"], goals)


def _pct(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.1%}"


def levels_view(result: Backtest) -> pd.DataFrame:
    """The level table as text: share of the book, default rates (12 and 3 months), lift."""
    levels = result.levels
    return pd.DataFrame(
        {
            "level": levels.index,
            "customers": [f"{n:,}" for n in levels["rows"]],
            "share": levels["share"].map(_pct).to_numpy(),
            "default rate 12 m": levels["default_rate"].map(_pct).to_numpy(),
            "lift": levels["lift"].map(lambda x: "" if pd.isna(x) else f"{x:.2f}").to_numpy(),
            "default rate 3 m": levels["default_rate_3m"].map(_pct).to_numpy(),
            "of next quarter's defaulters": levels["of_defaulters_3m"].map(_pct).to_numpy(),
        }
    )


def signals_view(result: Backtest) -> pd.DataFrame:
    """The signal table as text, highest lift first."""
    s = result.signals
    return pd.DataFrame(
        {
            "signal": s.index,
            "severity": s["severity"].to_numpy(),
            "share": s["share"].map(_pct).to_numpy(),
            "default rate 12 m": s["default_rate"].map(_pct).to_numpy(),
            "lift": s["lift"].map(lambda x: f"{x:.2f}").to_numpy(),
            "of defaulters (12 m)": s["capture"].map(_pct).to_numpy(),
            "of next quarter's": s["capture_3m"].map(_pct).to_numpy(),
        }
    )


def capture_view(result: Backtest) -> pd.DataFrame:
    """Defaulters flagged amber or red by months from the run to the default, then in sum."""
    lead = result.capture_by_lead
    rows = [
        (when, f"{n:,}", _pct(share))
        for when, n, share in zip(lead.index, lead["defaulters"], lead["flagged"], strict=True)
    ]
    c = result.capture
    rows.append(("within 12 months", f"{result.defaults:,}", _pct(c["capture_12m"])))
    return pd.DataFrame(rows, columns=["default after the run", "defaulters", "amber or red"])


def goals_view(goals: pd.DataFrame) -> pd.DataFrame:
    """A goal table (`goal_table`) as text."""

    def figure(goal: str, value: float) -> str:
        return _pct(value) if "defaulters" in goal or "book" in goal else f"{value:.2f}"

    return pd.DataFrame(
        {
            "goal": goals["goal"],
            "target": [figure(g, t) for g, t in zip(goals["goal"], goals["target"], strict=True)],
            "value": [figure(g, v) for g, v in zip(goals["goal"], goals["value"], strict=True)],
            "met": goals["met"].map({True: "yes", False: "NO"}),
        }
    )
