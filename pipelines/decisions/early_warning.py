"""Early-warning engine: configured indicator rules raise signals, signals roll up to a level.

Pure and vectorised. `evaluate_signals(current, history, rules)` returns one row per fired signal
(severity and the evidence values that fired it); `roll_up(signals, rules)` gives one warning per
customer with its level (green < watch < amber < red) and the recommended measures. Columns
missing from the frame count as missing values; skipped rules are listed in ``attrs["skipped"]``.
On load a condition naming neither a catalog feature nor a scored column is refused with its line.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from features.catalog import CATALOG
from features.customer import months_before
from models.values import number_of
from models.yaml_config import (
    LineIndex,
    Problem,
    dotted,
    line_of,
    parse_yaml_mapping,
    read_yaml_text,
)
from pipelines.decisions.policy import PolicyError, pydantic_problems

log = logging.getLogger(__name__)

DEFAULT_PATH = Path(__file__).with_name("warning_rules.yaml")
LEVELS = ("green", "watch", "amber", "red")
RANK = {level: i for i, level in enumerate(LEVELS)}
MEASURES = (
    "increase_review_frequency",
    "reduce_limit",
    "shorten_term",
    "require_collateral",
    "hand_to_collections",
)
SIGNAL_COLUMNS = ["customer_id", "as_of", "signal", "kind", "severity", "evidence", "description"]
WARNING_COLUMNS = ["customer_id", "as_of", "level", "signals", "n_signals", "measures", "evidence"]
TOLERANCE = 1e-9
# Columns of the scored frame a condition may read besides the catalog features: the scorer's
# outputs (models.scorer.OUTPUT_COLUMNS less the reasons text; not imported, it loads LightGBM).
SCORED_COLUMNS = ("pd", "score", "grade")

Level = Literal["green", "watch", "amber", "red"]
Severity = Literal["watch", "amber", "red"]
Measure = Literal[
    "increase_review_frequency",
    "reduce_limit",
    "shorten_term",
    "require_collateral",
    "hand_to_collections",
]


class RulesError(PolicyError):
    """The warning rules file is invalid; the message names the line and the problem."""

    what = "warning rules"


class Condition(BaseModel):
    """feature <op> value, or feature <op> other * factor + offset (another feature)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    feature: str
    op: Literal[">", ">=", "<", "<=", "==", "!="]
    value: float | None = None
    other: str | None = None
    factor: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _one_threshold(self) -> Condition:
        if (self.value is None) == (self.other is None):
            raise ValueError("give exactly one of 'value' (a number) or 'other' (a feature name)")
        return self

    def text(self) -> str:
        if self.other is None:
            return f"{self.feature} {self.op} {self.value:g}"
        rhs = self.other if self.factor == 1 else f"{self.factor:g} * {self.other}"
        return f"{self.feature} {self.op} {rhs}" + (f" {self.offset:+g}" if self.offset else "")


class Rule(BaseModel):
    """One indicator: a condition rule over features, a PD increase or a downgrade."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str = Field(pattern=r"^[a-z0-9_]+$")
    kind: Literal["condition", "pd_increase", "downgrade"] = "condition"
    severity: Severity
    description: str = ""
    when: list[Condition] = Field(default_factory=list)
    match: Literal["all", "any"] = "all"
    relative: float | None = Field(default=None, ge=0)
    absolute: float | None = Field(default=None, ge=0)
    notches: int | None = Field(default=None, ge=1)
    months: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _kind_fields(self) -> Rule:
        needs = {
            "condition": ("when",),
            "pd_increase": ("relative", "absolute"),
            "downgrade": ("notches", "months"),
        }[self.kind]
        missing = [f for f in needs if getattr(self, f) in (None, [])]
        if missing:
            raise ValueError(f"a {self.kind} rule needs {', '.join(needs)}")
        return self


class LevelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measures: list[Measure] = Field(default_factory=list)


class Escalation(BaseModel):
    """`count` or more signals of severity `at_least` or above lift the level to `to`."""

    model_config = ConfigDict(extra="forbid")
    at_least: Severity
    count: int = Field(ge=2)
    to: Severity


class WarningRules(BaseModel):
    """A validated rule set; build with `load_rules` or `parse_rules`."""

    model_config = ConfigDict(extra="forbid")
    version: int | str = 1
    levels: dict[Level, LevelSpec]
    escalation: list[Escalation] = Field(default_factory=list)
    rules: list[Rule] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> WarningRules:
        missing = [lv for lv in LEVELS if lv not in self.levels]
        if missing:
            raise ValueError(f"levels {missing} need an entry (measures may be empty)")
        names = [r.name for r in self.rules]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"rule names must be unique; repeated: {dupes}")
        return self

    def measures_of(self, level: str) -> list[str]:
        return list(self.levels[level].measures)


def parse_rules(text: str, source: str = "<rules>") -> WarningRules:
    """Validate warning-rules YAML; errors name the line and the problem.

    Every feature a condition names must be a catalog feature or a scored column (pd, grade).
    """
    data, index = parse_yaml_mapping(
        text, source, RulesError, "expected a mapping with 'levels' and 'rules'"
    )
    try:
        rules = WarningRules.model_validate(data)
    except ValidationError as err:
        raise RulesError(source, pydantic_problems(err, index, "rules file")) from None
    problems = _unknown_feature_problems(rules, index)
    if problems:
        raise RulesError(source, problems)
    return rules


def _unknown_feature_problems(rules: WarningRules, index: LineIndex) -> list[Problem]:
    """A condition on a name that no snapshot or score holds would never fire: refuse it."""
    problems = []
    for i, rule in enumerate(rules.rules):
        for j, cond in enumerate(rule.when):
            for key in ("feature", "other"):
                name = getattr(cond, key)
                if name is None or name in CATALOG or name in SCORED_COLUMNS:
                    continue
                loc = ("rules", i, "when", j, key)
                problems.append((line_of(index, loc), _unknown_feature(loc, name)))
    return problems


def _unknown_feature(loc: tuple, name: str) -> str:
    close = difflib.get_close_matches(name, [*CATALOG, *SCORED_COLUMNS], n=1)
    guess = f" (did you mean {close[0]!r}?)" if close else ""
    return (
        f"{dotted(loc)}: unknown feature {name!r}{guess}; name a feature of the "
        f"catalog (features/catalog.py) or a scored column ({', '.join(SCORED_COLUMNS)})"
    )


def load_rules(path: str | Path | None = None) -> WarningRules:
    """Load and validate warning rules (default: pipelines/warning_rules.yaml)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    return parse_rules(read_yaml_text(path, RulesError, "rules"), source=str(path))


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


_COMPARISONS = {  # (x, y, tol): a margin of tol either way reads as equal
    ">": lambda x, y, tol: x > y + tol,
    ">=": lambda x, y, tol: x >= y - tol,
    "<": lambda x, y, tol: x < y - tol,
    "<=": lambda x, y, tol: x <= y + tol,
    "==": lambda x, y, tol: np.abs(x - y) <= tol,
    "!=": lambda x, y, tol: np.abs(x - y) > tol,
}


def _compare(x: np.ndarray, op: str, y: np.ndarray | float) -> np.ndarray:
    tol = TOLERANCE * np.maximum(1.0, np.abs(y))
    with np.errstate(invalid="ignore"):
        result = _COMPARISONS[op](x, y, tol)
    return result & ~np.isnan(x) & ~np.isnan(y)


def _compare_one(x: float, op: str, y: float) -> bool:
    """`_compare` of one value (numpy costs microseconds per call on arrays of one)."""
    if math.isnan(x) or math.isnan(y):
        return False
    return bool(_COMPARISONS[op](x, y, TOLERANCE * max(1.0, abs(y))))


def _clean(value: float) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _evidence(columns: dict[str, np.ndarray], fired: np.ndarray) -> list[str]:
    names = list(columns)
    values = zip(*(columns[n][fired].tolist() for n in names), strict=True)
    return [json.dumps(dict(zip(names, map(_clean, row), strict=True))) for row in values]


def _frame(
    current: pd.DataFrame, rule: Rule, fired: np.ndarray, evidence: list[str]
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": current["customer_id"].to_numpy()[fired],
            "as_of": current["as_of"].to_numpy()[fired],
            "signal": rule.name,
            "kind": rule.kind,
            "severity": rule.severity,
            "evidence": evidence,
            "description": rule.description or f" {rule.match} ".join(c.text() for c in rule.when),
        }
    )


def _condition_rule(current: pd.DataFrame, rule: Rule, skipped: dict) -> pd.DataFrame:
    missing = [
        c for cond in rule.when for c in (cond.feature, cond.other) if c and c not in current
    ]
    if missing:
        skipped[rule.name] = f"columns {sorted(set(missing))} missing; treated as missing values"
    fired, evidence = _conditions(rule, lambda column: _numeric(current, column))
    return _frame(current, rule, fired, _evidence(evidence, fired))


def _operands(rule: Rule, values, evidence: dict):
    """(operator, value, right-hand side) of each condition of ``rule``, the values it reads
    kept in ``evidence`` by column."""
    for cond in rule.when:
        x = values(cond.feature)
        evidence[cond.feature] = x
        if cond.other is None:
            yield cond.op, x, cond.value
            continue
        other = values(cond.other)
        evidence[cond.other] = other
        yield cond.op, x, other * cond.factor + cond.offset


def _conditions(rule: Rule, values) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Which rows a condition rule fires for and the values it read (its evidence), given
    ``values(column)``: a column as floats."""
    evidence = {}
    masks = [_compare(x, op, rhs) for op, x, rhs in _operands(rule, values, evidence)]
    fired = np.logical_and.reduce(masks) if rule.match == "all" else np.logical_or.reduce(masks)
    return fired, evidence


def _conditions_one(rule: Rule, values) -> tuple[bool, str]:
    """`_conditions` of one customer (``values(column)``: a float) with its evidence text, as
    `_evidence` writes it."""
    evidence = {}
    hits = [_compare_one(x, op, rhs) for op, x, rhs in _operands(rule, values, evidence)]
    fired = all(hits) if rule.match == "all" else any(hits)
    return fired, json.dumps({name: _clean(value) for name, value in evidence.items()})


def _as_ns(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).astype("datetime64[ns]")


def _previous_run(current: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """For each current row, the latest history row of the customer strictly before its as_of."""
    left = current[["customer_id", "as_of"]].assign(
        customer_id=current["customer_id"].astype("str"),
        as_of=_as_ns(current["as_of"]),
        _row=np.arange(len(current)),
    )
    right = history[["customer_id", "as_of", "pd", "grade"]].assign(
        customer_id=history["customer_id"].astype("str"), as_of=_as_ns(history["as_of"])
    )
    right = right.rename(columns={"as_of": "prev_as_of", "pd": "prev_pd", "grade": "prev_grade"})
    merged = pd.merge_asof(
        left.sort_values("as_of"),
        right.sort_values("prev_as_of"),
        left_on="as_of",
        right_on="prev_as_of",
        by="customer_id",
        allow_exact_matches=False,
    )
    return merged.sort_values("_row").reset_index(drop=True)


def _pd_increase(current: pd.DataFrame, history: pd.DataFrame, rule: Rule) -> pd.DataFrame:
    prev = _previous_run(current, history)
    pd_now = _numeric(current, "pd")
    pd_prev = prev["prev_pd"].to_numpy(dtype=float, na_value=np.nan)
    fired, ev = _pd_jump(pd_now, pd_prev, rule)
    prev_as_of = prev["prev_as_of"].dt.strftime("%Y-%m-%d").to_numpy()[fired]
    return _frame(current, rule, fired, _jump_evidence(ev, fired, prev_as_of))


def _pd_jump(
    pd_now: np.ndarray, pd_prev: np.ndarray, rule: Rule
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = pd_now / pd_prev - 1.0
    fired = _compare(pd_now - pd_prev, ">=", rule.absolute) & _compare(rel, ">=", rule.relative)
    return fired, {"pd": pd_now, "previous_pd": pd_prev, "relative_change": rel}


def _jump_evidence(ev: dict[str, np.ndarray], fired: np.ndarray, prev_as_of) -> list[str]:
    evidence = _evidence(ev, fired)
    return [
        e[:-1] + f', "previous_as_of": "{d}"}}' for e, d in zip(evidence, prev_as_of, strict=True)
    ]


def _downgrade(current: pd.DataFrame, history: pd.DataFrame, rule: Rule, scale) -> pd.DataFrame:
    now = current[["customer_id", "as_of", "grade"]].assign(
        as_of=_as_ns(current["as_of"]), _row=np.arange(len(current))
    )
    now = now[now["grade"].isin(scale.grades)]
    hist = history[["customer_id", "as_of", "grade"]].assign(as_of=_as_ns(history["as_of"]))
    hist = hist[hist["grade"].isin(scale.grades)]
    earliest = now["as_of"].min() - pd.DateOffset(months=rule.months)
    hist = hist[hist["as_of"] >= earliest].rename(columns={"as_of": "h_as_of", "grade": "h_grade"})
    pairs = now.merge(hist, on="customer_id")
    start = pairs["as_of"] - pd.DateOffset(months=rule.months)
    pairs = pairs[(pairs["h_as_of"] >= start) & (pairs["h_as_of"] < pairs["as_of"])]
    fired = np.zeros(len(current), dtype=bool)
    if pairs.empty:
        return _frame(current, rule, fired, [])
    pairs = pairs.assign(h_pos=scale.positions(pairs["h_grade"].to_numpy()))
    best = pairs.sort_values(["h_pos", "h_as_of"]).drop_duplicates("_row")
    notches = scale.positions(best["grade"].to_numpy()) - best["h_pos"].to_numpy()
    best = best[notches >= rule.notches].assign(notches=notches[notches >= rule.notches])
    fired[best["_row"].to_numpy()] = True
    best = best.sort_values("_row")
    evidence = [
        _downgrade_evidence(f, t, n, s)
        for f, t, n, s in zip(
            best["h_grade"], best["grade"], best["notches"],
            best["h_as_of"].dt.strftime("%Y-%m-%d"), strict=True,
        )
    ]  # fmt: skip
    return _frame(current, rule, fired, evidence)


def _downgrade_evidence(before: str, after: str, notches, since: str) -> str:
    return json.dumps({"from_grade": before, "to_grade": after, "notches": int(notches),
                       "since": since})  # fmt: skip


def evaluate_signals(
    current: pd.DataFrame,
    history: pd.DataFrame | None,
    rules: WarningRules,
    scale=None,
) -> pd.DataFrame:
    """One row per fired signal: customer_id, as_of, signal, kind, severity, evidence (JSON).

    `current` is the scored frame (customer_id, as_of, pd, grade, features); `history` holds
    earlier runs (customer_id, as_of, pd, grade) and may be None or empty on a first run, when
    rules over score history fire for nobody.
    """
    for column in ("customer_id", "as_of"):
        if column not in current:
            raise KeyError(f"evaluate_signals needs a {column!r} column in the scored frame")
    current = current.reset_index(drop=True)
    has_history = history is not None and not history.empty
    skipped: dict[str, str] = {}
    parts = []
    for rule in rules.rules:
        if rule.kind == "condition":
            parts.append(_condition_rule(current, rule, skipped))
            continue
        needed = "pd" if rule.kind == "pd_increase" else "grade"
        if not has_history or needed not in current:
            skipped[rule.name] = f"no score history or no {needed!r} column; the rule cannot fire"
            continue
        if rule.kind == "pd_increase":
            parts.append(_pd_increase(current, history, rule))
        else:
            if scale is None:
                from models.master_scale import MasterScale

                scale = MasterScale.load()
            parts.append(_downgrade(current, history, rule, scale))
    parts = [p for p in parts if not p.empty]
    signals = (
        pd.concat(parts, ignore_index=True)
        if parts
        else pd.DataFrame({c: pd.Series(dtype=object) for c in SIGNAL_COLUMNS})
    )
    signals.attrs["skipped"] = skipped
    if skipped:
        log.info("early-warning rules skipped or partly evaluated: %s", skipped)
    return signals


def roll_up(
    signals: pd.DataFrame, rules: WarningRules, population: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One warning per customer: level (highest severity, then escalation), signals, measures.

    `population` (customer_id, as_of) adds a green row for every customer without a signal.
    """
    if signals.empty:
        out = pd.DataFrame({c: pd.Series(dtype=object) for c in WARNING_COLUMNS})
    else:
        frame = signals.assign(_rank=signals["severity"].map(RANK).astype(int))
        frame = frame.sort_values(["customer_id", "signal"])
        frame["_pair"] = '"' + frame["signal"] + '": ' + frame["evidence"]
        grouped = frame.groupby("customer_id", sort=True)
        out = grouped.agg(
            as_of=("as_of", "max"),
            rank=("_rank", "max"),
            signals=("signal", ",".join),
            n_signals=("signal", "size"),
            evidence=("_pair", _evidence_object),
        ).reset_index()
        for rule in rules.escalation:
            counts = (frame["_rank"] >= RANK[rule.at_least]).groupby(frame["customer_id"]).sum()
            lift = counts.reindex(out["customer_id"]).to_numpy() >= rule.count
            out["rank"] = np.where(lift, np.maximum(out["rank"], RANK[rule.to]), out["rank"])
        out["level"] = np.asarray(LEVELS, dtype=object)[out["rank"].to_numpy()]
        out = out.drop(columns="rank")
    if population is not None:
        extra = population.loc[~population["customer_id"].isin(out["customer_id"]),
                               ["customer_id", "as_of"]]  # fmt: skip
        green = extra.assign(level="green", signals="", n_signals=0, evidence="{}")
        out = pd.concat([out, green], ignore_index=True) if not out.empty else green
    measures = {lv: json.dumps(rules.measures_of(lv)) for lv in LEVELS}
    out["measures"] = out["level"].map(measures)
    out["n_signals"] = out["n_signals"].astype(np.int64)
    return out[WARNING_COLUMNS].reset_index(drop=True)


def _evidence_object(pairs) -> str:
    """The signals' evidence as one JSON object: '"signal": evidence' texts, signal order."""
    return "{" + ", ".join(pairs) + "}"


def warning_row(
    current: Mapping[str, Any], history: Sequence[tuple[Any, float, str]], rules: WarningRules,
    scale=None,
) -> dict[str, Any]:  # fmt: skip
    """`roll_up(evaluate_signals(...), population=...)`'s row for one scored customer:
    ``current`` its features, pd, grade, customer_id and as_of by name, ``history`` its earlier
    runs as (as_of, pd, grade), oldest first. Same kernels, same JSON texts."""
    as_of = pd.Timestamp(current["as_of"])
    history = [(pd.Timestamp(when), pd_, grade) for when, pd_, grade in history]
    fired = []  # (signal, severity rank, evidence text)
    for rule in rules.rules:
        if rule.kind == "condition":
            hit, evidence = _conditions_one(rule, lambda column: number_of(current.get(column)))
            if hit:
                fired.append((rule.name, RANK[rule.severity], evidence))
            continue
        needed = "pd" if rule.kind == "pd_increase" else "grade"
        if not history or needed not in current:
            continue
        if rule.kind == "pd_increase":
            earlier = [h for h in history if h[0] < as_of]
            if not earlier:
                continue
            when, before, _ = max(earlier, key=lambda h: h[0])
            pd_prev = np.nan if before is None else float(before)
            pd_now = np.array([number_of(current.get("pd"))])
            hit, ev = _pd_jump(pd_now, np.array([pd_prev]), rule)
            if hit[0]:
                since = [f"{when:%Y-%m-%d}"]
                fired.append((rule.name, RANK[rule.severity], _jump_evidence(ev, hit, since)[0]))
            continue
        if scale is None:
            from models.master_scale import MasterScale

            scale = MasterScale.load()
        found = _worst_grade(current.get("grade"), history, as_of, rule, scale)
        if found is not None:
            fired.append((rule.name, RANK[rule.severity], found))
    fired.sort(key=lambda f: f[0])
    rank = max((f[1] for f in fired), default=0)
    for up in rules.escalation:
        if sum(f[1] >= RANK[up.at_least] for f in fired) >= up.count:
            rank = max(rank, RANK[up.to])
    level = LEVELS[rank]
    return {
        "customer_id": current.get("customer_id"),
        "as_of": current.get("as_of"),
        "level": level,
        "signals": ",".join(f[0] for f in fired),
        "n_signals": len(fired),
        "measures": json.dumps(rules.measures_of(level)),
        "evidence": _evidence_object(f'"{f[0]}": {f[2]}' for f in fired),
    }


def _worst_grade(grade, history, as_of: pd.Timestamp, rule: Rule, scale) -> str | None:
    """One customer's downgrade evidence (`_downgrade`), None if the rule does not fire: its best
    grade of the runs within the rule's months before ``as_of`` (the earliest of ties), when
    ``grade`` is at least the rule's notches below it (``history``: as_of as Timestamps)."""
    grades = scale.grades
    if grade not in grades:
        return None
    start = months_before(as_of, rule.months)
    best = None  # (position, as_of, grade)
    for when, _, before in history:
        if before in grades and start <= when < as_of:
            key = (grades.index(before), when, before)
            best = key if best is None or key[:2] < best[:2] else best
    if best is None:
        return None
    notches = grades.index(grade) - best[0]
    if notches < rule.notches:
        return None
    return _downgrade_evidence(best[2], grade, notches, f"{best[1]:%Y-%m-%d}")


def warnings_by_level(warnings: pd.DataFrame) -> pd.Series:
    """Count of customers per level, every level listed (for run summaries)."""
    return warnings["level"].value_counts().reindex(list(LEVELS), fill_value=0)
