"""Propose warning-rule thresholds and severities from a backtest, for review.

Pure. Every rule gets candidates: its numeric thresholds from half to twice the current ones (at
quantiles of the fit rows for a threshold of 0; a downgrade one notch either way, over 3, 6 or 12
months), its current ones first, so that a rule is tuned, not turned into another. Each candidate
runs through the warning engine itself and is measured on the fit rows: share of the book, lift
(its default rate over the book's), defaulters flagged. A rule's severity is the band of its lift
(`Bands`: red at least so many times the book's rate, then amber, then watch; below, dropped), so
a signal of customers who default more often is never ranked below one of customers who default
less. From the current thresholds, a local search takes, one change at a time (a rule's
threshold, a band floor, the escalation), the change that most improves the backtest of the
levels: first the goals, each met at the bound of a 90 % Jeffreys interval that makes it harder
(so a thin level cannot pass by luck), then the share of defaulters flagged amber or red, then
the rules left as they are. A new threshold may fire for at most 5 % of the book; a threshold
must flag 20 defaulters to be measured. A rule with none is dropped when it fires for 1 % of the
book or more (it had its chance to show it predicts default) and kept as it is when rarer. The
same search run without one fold of customers is checked on that fold.
"""

from __future__ import annotations

import itertools
import math
import operator
import zlib
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import yaml
from scipy.stats import beta

from features.catalog import CATALOG
from features.labels import LABEL
from pipelines.decisions.backtest import (
    ID,
    LEVEL,
    NEXT_QUARTER,
    TIME,
    Goals,
    capture_of,
    goal_table,
    level_table,
    signals_by_date,
)
from pipelines.decisions.early_warning import (
    LEVELS,
    RANK,
    Condition,
    Escalation,
    Rule,
    WarningRules,
)

QUANTILES = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
FACTORS = (0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0)
MONTHS = (3, 6, 12)
MIN_DEFAULTS = 20
CONFIDENCE = 0.9  # goals are to be met on the fit rows at the bounds of 90 % intervals
MAX_SIGNAL_SHARE = 0.05  # a warning is an exception: no signal fires for more of the book
SHARE_HEADROOM = 0.9  # and keep amber and red to 90 % of the ceiling on the book's share
MAX_STEPS = 100
FOLDS = 2
MIN_SHARE_TO_JUDGE = 0.01  # a rule firing this widely must show its defaulters, or is dropped
CURRENT = "__0"  # the suffix of each rule's first candidate: its current thresholds
SEVERITIES = ("red", "amber", "watch")
DROP = "dropped"
OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class Bands:
    """Lift floors of the severities: a signal whose customers default at least `red` times as
    often as the book's are red, at least `amber` times amber, at least `watch` times watch;
    below, it is dropped."""

    red: float = 6.0
    amber: float = 3.0
    watch: float = 1.5

    def severity(self, lift: float) -> str:
        for name in SEVERITIES:
            if lift >= getattr(self, name):
                return name
        return DROP

    def moves(self) -> list[Bands]:
        """The bands with one floor moved to another value of its grid (order kept)."""
        out = []
        for name, grid in FLOORS.items():
            for value in grid:
                moved = replace(self, **{name: value})
                if moved != self and moved.red > moved.amber > moved.watch:
                    out.append(moved)
        return out


FLOORS = {
    "red": (4.0, 5.0, 6.0, 8.0, 10.0, 12.0),
    "amber": (2.0, 2.5, 3.0, 4.0, 5.0, 6.0),
    "watch": (1.0, 1.25, 1.5, 2.0, 2.5),
}


@dataclass(frozen=True)
class State:
    """A candidate per rule, the bands and the escalation; rules too rare to measure keep a
    fixed severity."""

    candidates: dict[str, str]
    bands: Bands
    escalation: list[Escalation]
    fixed: dict[str, str]

    def severities(self, lift: dict[str, float]) -> dict[str, str]:
        """Each rule's severity: its fixed one, or the band of its candidate's lift."""
        return {
            rule: self.fixed.get(rule) or self.bands.severity(lift[candidate])
            for rule, candidate in self.candidates.items()
        }


@dataclass(frozen=True)
class Proposal:
    """Proposed rules and the figures behind every choice."""

    rules: WarningRules
    bands: Bands
    choices: pd.DataFrame  # per rule: current and proposed severity and thresholds, figures, note
    candidates: pd.DataFrame  # per candidate: rule, thresholds, rows, share, lift, capture
    fit_goals: pd.DataFrame
    margin: float  # the smallest goal margin on the fit rows at the intervals' bounds
    held_out: pd.DataFrame  # goals of the search fitted without a fold, on that fold


def _nice(value: float) -> float:
    """Two significant digits, so that thresholds read like ones a person would write."""
    return float(f"{value:.2g}") if value else 0.0


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _scaled(value: float, integral: bool) -> list[float]:
    """``value`` times each factor, rounded as a person would write it (integers stay integers)."""
    out = {_nice(value * f) for f in FACTORS}
    return sorted({float(round(v)) for v in out} if integral else out)


def _condition_grid(cond: Condition, fit: pd.DataFrame) -> list[Condition]:
    """The condition with its threshold from half to twice the current one (a threshold of 0:
    at quantiles of what it compares), none that every fit row or no fit row would meet."""
    key = "value" if cond.other is None else "offset"
    current = getattr(cond, key)
    if cond.op not in OPS:
        return [cond]
    x = _numeric(fit, cond.feature)
    if cond.other is not None:
        x = x - cond.factor * _numeric(fit, cond.other)
    x = x[np.isfinite(x)]
    if not len(x):
        return [cond]
    if current:
        integral = bool(np.all(x == np.round(x))) and float(current).is_integer()
        values = _scaled(current, integral)
    else:
        levels = np.asarray(QUANTILES) if cond.op in (">", ">=") else 1 - np.asarray(QUANTILES)
        values = [_nice(v) for v in np.quantile(x, levels)]
    kept = {v for v in values if 0 < OPS[cond.op](x, v).sum() < len(x)} | {current}
    return [cond.model_copy(update={key: v}) for v in sorted(kept)]


def candidates(rule: Rule, fit: pd.DataFrame, history_months: int = 12) -> list[Rule]:
    """The rule with each combination of candidate thresholds, the current ones first."""
    if rule.kind == "pd_increase":
        grid = [
            {"relative": r, "absolute": a}
            for r in _scaled(rule.relative, False)
            for a in _scaled(rule.absolute, False)
        ]
    elif rule.kind == "downgrade":
        notches = [n for n in (rule.notches - 1, rule.notches, rule.notches + 1) if n >= 1]
        months = [m for m in MONTHS if m <= history_months]
        grid = [{"notches": n, "months": m} for n in notches for m in months]
    else:
        combos = itertools.product(*(_condition_grid(c, fit) for c in rule.when))
        grid = [{"when": list(combo)} for combo in combos]
    out = [rule] + [rule.model_copy(update=g) for g in grid]
    seen, unique = set(), []
    for r in out:
        if (key := thresholds_text(r)) not in seen:
            seen.add(key)
            unique.append(r)
    return unique


def thresholds_text(rule: Rule) -> str:
    """The rule's thresholds in a few words."""
    if rule.kind == "pd_increase":
        return f"PD +{rule.relative:.0%} and +{rule.absolute * 100:g} points"
    if rule.kind == "downgrade":
        return f"{rule.notches}+ notches in {rule.months} months"
    return f" {rule.match} ".join(c.text() for c in rule.when)


def fire_matrix(
    scored: pd.DataFrame,
    rules: dict[str, Rule],
    keys: pd.DataFrame,
    levels: dict,
    scale=None,
    history_months: int = 12,
) -> pd.DataFrame:
    """Whether each rule (named by the dict's keys) fires on each row of ``keys`` (customer_id,
    as_of), through the warning engine: a boolean frame aligned with ``keys``."""
    named = [r.model_copy(update={"name": name}) for name, r in rules.items()]
    engine_rules = WarningRules(levels=levels, rules=named)
    dates = sorted(pd.to_datetime(keys[TIME]).unique())
    fired = [s for _, s in signals_by_date(scored, engine_rules, scale, dates, history_months)]
    signals = pd.concat(fired, ignore_index=True)
    position = pd.Series(
        np.arange(len(keys)),
        index=pd.MultiIndex.from_arrays(
            [keys[ID].astype(str), pd.to_datetime(keys[TIME]).astype("datetime64[ns]")]
        ),
    )
    rows = position.reindex(
        pd.MultiIndex.from_arrays(
            [signals[ID].astype(str), pd.to_datetime(signals[TIME]).astype("datetime64[ns]")]
        )
    ).to_numpy()
    matrix = np.zeros((len(keys), len(rules)), dtype=bool)
    columns = {name: j for j, name in enumerate(rules)}
    known = ~np.isnan(rows)
    matrix[rows[known].astype(int), signals["signal"].map(columns).to_numpy()[known]] = True
    return pd.DataFrame(matrix, columns=list(rules))


def candidate_table(matrix: pd.DataFrame, outcome: pd.DataFrame, owner: dict) -> pd.DataFrame:
    """Per candidate: its rule, rows fired, share of the book, defaults, lift and capture."""
    label = outcome[LABEL].to_numpy(dtype=float)
    fired = matrix.to_numpy()
    rows = fired.sum(axis=0)
    defaults = label @ fired
    rate = label.mean()
    with np.errstate(invalid="ignore", divide="ignore"):
        lift = np.where(rows > 0, defaults / np.maximum(rows, 1) / rate, np.nan)
    return pd.DataFrame(
        {
            "candidate": matrix.columns,
            "rule": [owner[c] for c in matrix.columns],
            "rows": rows,
            "share": rows / len(label),
            "defaults": defaults.astype(int),
            "lift": lift,
            "capture": defaults / max(label.sum(), 1),
        }
    )


def level_ranks(fired: np.ndarray, ranks: list[int], escalation: list[Escalation]) -> np.ndarray:
    """The level (rank) of each row from the rows each rule fires on (``fired``: rules x rows)
    and the rules' severity ranks, as `early_warning.roll_up` gives it."""
    if not len(ranks):
        return np.zeros(fired.shape[1], dtype=int)
    stack = fired * np.asarray(ranks)[:, None]
    rank = stack.max(axis=0)
    for rule in escalation:
        count = (stack >= RANK[rule.at_least]).sum(axis=0)
        rank = np.where(count >= rule.count, np.maximum(rank, RANK[rule.to]), rank)
    return rank


def _jeffreys(defaults, rows, q: float) -> np.ndarray:
    defaults, rows = np.asarray(defaults, dtype=float), np.asarray(rows, dtype=float)
    return beta.ppf(q, defaults + 0.5, rows - defaults + 0.5)


def cautious_margin(
    rows: np.ndarray,
    defaults: np.ndarray,
    quarter: tuple[int, int],
    goals: Goals = Goals(),
    confidence: float = CONFIDENCE,
) -> float:
    """The smallest margin of the goals (figure / target; target / figure for the ceiling) with
    each level's default rate (``rows``, ``defaults`` per level, green first) and the capture
    (flagged, defaulters of the next quarter) at the bound of its Jeffreys interval that makes
    the goal harder: at least 1 when every goal is met with that confidence."""
    q = (1 - confidence) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low, high = _jeffreys(defaults, rows, q), _jeffreys(defaults, rows, 1 - q)
        ratios = [low[k + 1] / high[k] / goals.level_ratio for k in range(len(LEVELS) - 1)]
        ratios.append(low[-1] / high[0] / goals.red_over_green)
        ratios.append(float(_jeffreys(*quarter, q)) / goals.capture_quarter)
        flagged = rows[RANK["amber"] :].sum() / rows.sum()
        ratios.append(goals.max_flagged_share * SHARE_HEADROOM / flagged)
    return float(np.nan_to_num(np.asarray(ratios, dtype=float), nan=0.0, posinf=1e9).min())


class _Search:
    """Levels and the score of the fit rows for a `State`."""

    def __init__(self, matrix: pd.DataFrame, outcome: pd.DataFrame, lift: dict, goals: Goals):
        self.fired = matrix.to_numpy().T
        self.columns = {c: j for j, c in enumerate(matrix.columns)}
        self.lift = lift
        self.label = outcome[LABEL].to_numpy(dtype=float)
        self.quarter = outcome[NEXT_QUARTER].to_numpy(dtype=bool)
        self.goals = goals

    def ranks(self, state: State) -> np.ndarray:
        chosen = [
            (self.columns[state.candidates[rule]], RANK[severity])
            for rule, severity in state.severities(self.lift).items()
            if severity != DROP
        ]
        rows = [j for j, _ in chosen]
        return level_ranks(self.fired[rows], [r for _, r in chosen], state.escalation)

    def score(self, state: State) -> tuple[float, float, int]:
        """(margin at the intervals' bounds, capped at 1; share of defaulters amber or red;
        rules left at their current thresholds)."""
        rank = self.ranks(state)
        rows = np.bincount(rank, minlength=len(LEVELS)).astype(float)
        defaults = np.bincount(rank, weights=self.label, minlength=len(LEVELS))
        flagged = rank >= RANK["amber"]
        quarter = (int(flagged[self.quarter].sum()), int(self.quarter.sum()))
        margin = cautious_margin(rows, defaults, quarter, self.goals)
        capture = float(self.label[flagged].sum() / max(self.label.sum(), 1))
        unchanged = sum(c.endswith(CURRENT) for c in state.candidates.values())
        return min(margin, 1.0), capture, unchanged


def _moves(state: State, options: dict[str, list[str]], escalations: list) -> list[State]:
    """Every state one change away: a rule's candidate, one band floor, or the escalation."""
    out = [
        replace(state, candidates=state.candidates | {rule: c})
        for rule, choices in options.items()
        for c in choices
        if c != state.candidates[rule]
    ]
    out += [replace(state, bands=b) for b in state.bands.moves()]
    return out + [replace(state, escalation=e) for e in escalations if e != state.escalation]


def search(
    matrix: pd.DataFrame,
    outcome: pd.DataFrame,
    lift: dict[str, float],
    start: State,
    options: dict[str, list[str]],
    escalations: list[list[Escalation]],
    goals: Goals = Goals(),
) -> tuple[State, tuple[float, float, int]]:
    """From ``start``, move to the best state one change away while that scores better."""
    scorer = _Search(matrix, outcome, lift, goals)
    state, best = start, scorer.score(start)
    for _ in range(MAX_STEPS):
        moves = _moves(state, options, escalations)
        scores = [scorer.score(m) for m in moves]
        if not moves or max(scores) <= best:
            break
        k = scores.index(max(scores))
        state, best = moves[k], scores[k]
    return state, best


def _rule_of(rule: Rule, candidate: Rule, severity: str) -> Rule:
    """The proposed rule: the candidate's thresholds at ``severity``, described anew if changed."""
    description = rule.description
    if thresholds_text(candidate) != thresholds_text(rule):
        description = describe(candidate)
    return candidate.model_copy(
        update={"name": rule.name, "severity": severity, "description": description}
    )


def describe(rule: Rule) -> str:
    """A plain description of a rule's thresholds (catalog texts for features)."""
    if rule.kind == "pd_increase":
        return (
            f"PD rose by {rule.relative:.0%} or more and by {rule.absolute * 100:g} points or "
            "more since the previous run"
        )
    if rule.kind == "downgrade":
        return f"Rating downgraded by {rule.notches} or more notches within {rule.months} months"

    def name(feature: str) -> str:
        return CATALOG[feature].description if feature in CATALOG else feature

    def text(c: Condition) -> str:
        if c.other is None:
            return f"{name(c.feature)} {c.op} {c.value:g}"
        rhs = name(c.other) if c.factor == 1 else f"{c.factor:g} x {name(c.other)}"
        return f"{name(c.feature)} {c.op} {rhs}" + (f" {c.offset:+g}" if c.offset else "")

    parts = [text(c) for c in rule.when]
    parts[1:] = [p[0].lower() + p[1:] for p in parts[1:]]
    return f" {'and' if rule.match == 'all' else 'or'} ".join(parts)


def _starts(table: pd.DataFrame, measurable: pd.DataFrame) -> list[dict[str, str]]:
    """Where the search starts: every rule at its current thresholds, and every measurable rule
    at its highest lift."""
    current = dict(table.groupby("rule", sort=False)["candidate"].first())
    sharpest = measurable.sort_values("lift").groupby("rule", sort=False)["candidate"].last()
    return [current, current | dict(sharpest)]


@dataclass(frozen=True)
class _Fitted:
    """A search's result on some rows: the state, its margin and the candidates' figures."""

    state: State
    margin: float
    table: pd.DataFrame

    @property
    def lift(self) -> dict[str, float]:
        return dict(zip(self.table["candidate"], self.table["lift"].fillna(0.0), strict=True))


def _fit(matrix, outcome, owner, rules: WarningRules, goals, min_defaults, max_share) -> _Fitted:
    """Measure every candidate on the rows given and search from each start; keep the best."""
    table = candidate_table(matrix, outcome, owner)
    current = table["candidate"].str.endswith(CURRENT)
    within = (table["share"] <= max_share) | current
    measurable = table[(table["defaults"] >= min_defaults) & within]
    options = {r: list(g["candidate"]) for r, g in measurable.groupby("rule", sort=False)}
    share = dict(zip(table["candidate"], table["share"], strict=True))
    fixed = {
        r.name: DROP if share[f"{r.name}{CURRENT}"] >= MIN_SHARE_TO_JUDGE else r.severity
        for r in rules.rules
        if r.name not in options
    }
    stronger = [Escalation(at_least="amber", count=2, to="red")]
    escalations = [rules.escalation, *(e for e in ([], stronger) if e != rules.escalation)]
    lift = dict(zip(table["candidate"], table["lift"].fillna(0.0), strict=True))
    results = [
        search(
            matrix,
            outcome,
            lift,
            State(start, Bands(), rules.escalation, fixed),
            options,
            escalations,
            goals,
        )
        for start in _starts(table, measurable)
    ]
    state, (margin, *_) = max(results, key=lambda result: result[1])
    return _Fitted(state, margin, table)


def _goals_on(fitted: _Fitted, matrix, outcome, goals: Goals) -> pd.DataFrame:
    """The goals met on ``outcome``'s rows by the levels of a fitted state."""
    ranks = _Search(matrix, outcome, fitted.lift, goals).ranks(fitted.state)
    joined = outcome.assign(**{LEVEL: np.asarray(LEVELS, dtype=object)[ranks]})
    return goal_table(level_table(joined), capture_of(joined)["capture_quarter"], goals)


def customer_folds(customer_ids: pd.Series, folds: int) -> np.ndarray:
    """A fold number per row from its customer id (stable: the same customer, the same fold)."""
    ids = customer_ids.astype(str)
    return np.fromiter((zlib.crc32(i.encode()) % folds for i in ids), dtype=int, count=len(ids))


def _note(fixed: str | None) -> str:
    if fixed is None:
        return ""
    if fixed == DROP:
        return (
            f"fires for {MIN_SHARE_TO_JUDGE:.0%}+ of the book but flags too few defaulters: dropped"
        )
    return "too rare to measure: kept as it is"


def propose(
    scored: pd.DataFrame,
    outcome: pd.DataFrame,
    rules: WarningRules,
    scale=None,
    history_months: int = 12,
    goals: Goals = Goals(),
    min_defaults: int = MIN_DEFAULTS,
    max_share: float = MAX_SIGNAL_SHARE,
    folds: int = FOLDS,
) -> Proposal:
    """Thresholds, severities and escalation proposed from the rows of ``outcome``
    (`backtest.outcomes` of the dates to fit on) and their ``scored`` rows (with the earlier dates
    the PD rules compare with). The same search run on all but one fold of customers is checked
    on the fold left out: `Proposal.held_out` says whether the procedure, not only its result,
    meets the goals on customers it has not seen."""
    outcome = outcome.reset_index(drop=True)
    fit = scored[pd.to_datetime(scored[TIME]).isin(pd.to_datetime(outcome[TIME]).unique())]
    named, owner = {}, {}
    for rule in rules.rules:
        for k, candidate in enumerate(candidates(rule, fit, history_months)):
            named[f"{rule.name}__{k}"], owner[f"{rule.name}__{k}"] = candidate, rule.name
    levels = {lv: spec.model_dump() for lv, spec in rules.levels.items()}
    matrix = fire_matrix(scored, named, outcome, levels, scale, history_months)
    fitted = _fit(matrix, outcome, owner, rules, goals, min_defaults, max_share)
    fold = customer_folds(outcome[ID], folds)
    held_out = []
    for k in range(folds if folds > 1 else 0):
        inside, outside = fold != k, fold == k
        part = _fit(matrix[inside], outcome[inside], owner, rules, goals, min_defaults, max_share)
        checked = _goals_on(part, matrix[outside], outcome[outside], goals)
        held_out.append(checked.assign(fold=k))
    state, lift = fitted.state, fitted.lift
    severities = state.severities(lift)
    table = fitted.table.assign(
        thresholds=lambda t: [thresholds_text(named[c]) for c in t["candidate"]]
    )
    figures = table.set_index("candidate")
    proposed, choices = [], []
    for rule in rules.rules:
        candidate, severity = state.candidates[rule.name], severities[rule.name]
        if severity != DROP:
            proposed.append(_rule_of(rule, named[candidate], severity))
        row = figures.loc[candidate]
        choices.append(
            {
                "rule": rule.name,
                "severity": rule.severity,
                "thresholds": thresholds_text(rule),
                "proposed": severity,
                "proposed_thresholds": row["thresholds"],
                "share": row["share"],
                "lift": row["lift"],
                "capture": row["capture"],
                "note": _note(state.fixed.get(rule.name)),
            }
        )
    update = {"rules": proposed, "escalation": state.escalation}
    new_rules = WarningRules.model_validate(rules.model_copy(update=update).model_dump())
    return Proposal(
        rules=new_rules,
        bands=state.bands,
        choices=pd.DataFrame(choices),
        candidates=table,
        fit_goals=_goals_on(fitted, matrix, outcome, goals),
        margin=fitted.margin,
        held_out=pd.concat(held_out, ignore_index=True) if held_out else pd.DataFrame(),
    )


def _figure(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def _inline(value) -> str:
    """One YAML value on one line (flow style); whole floats written as integers."""
    if isinstance(value, dict):
        value = {
            k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in value.items()
        }
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    text = yaml.safe_dump(value, default_flow_style=True, width=10**6, sort_keys=False)
    return text.removesuffix("\n...\n").strip()


def _condition(condition: dict) -> str:
    """A condition on one line, its operator in double quotes as the shipped file writes it."""
    parts = [
        f'{key}: "{value}"' if key == "op" else f"{key}: {_inline(value)}"
        for key, value in condition.items()
    ]
    return "{" + ", ".join(parts) + "}"


def _rule_lines(rule: Rule) -> list[str]:
    data = rule.model_dump(exclude_defaults=True)
    when = data.pop("when", [])
    lines = [f"  - name: {data.pop('name')}"]
    lines += [f"    {key}: {_inline(value)}" for key, value in data.items()]
    if when:
        lines += ["    when:", *(f"      - {_condition(c)}" for c in when)]
    return lines


def rules_yaml(proposal: Proposal, header: list[str]) -> str:
    """The proposed rules as a rules file, each rule with the figures that chose it."""
    rules = proposal.rules
    figures = proposal.choices.set_index("rule")
    lines = [f"# {line}".rstrip() for line in header]
    lines += [f"version: {_inline(rules.version)}", "levels:"]
    lines += [f"  {lv}: {_inline(spec.model_dump())}" for lv, spec in rules.levels.items()]
    lines.append("escalation:" + ("" if rules.escalation else " []"))
    lines += [f"  - {_inline(e.model_dump())}" for e in rules.escalation]
    lines.append("rules:")
    for rule in rules.rules:
        row = figures.loc[rule.name]
        lines.append(
            f"  # lift {_figure(row['lift'])}, {row['share']:.1%} of the book, "
            f"{row['capture']:.1%} of the defaulters"
        )
        lines += _rule_lines(rule)
    return "\n".join(lines) + "\n"
