"""Credit policy: per grade a limit rule, a term, conditions and an approval level.

The policy is YAML validated on load (`models.yaml_config` refuses duplicate keys and numbers
that are not finite, pydantic the rest); every problem names the line and what to fix.
`decide` applies it to a scored frame, vectorised: the recommended limit is the smallest of the
cap, revenue x multiple and current limit x multiple (missing inputs are skipped), rounded down
to the policy's step (`round_limit`), and `binding_rule` says which one bound.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.values import number_of
from models.yaml_config import (
    ConfigError,
    LineIndex,
    Problem,
    dotted,
    line_of,
    parse_yaml_mapping,
    read_yaml_text,
)

DEFAULT_PATH = Path(__file__).with_name("credit_policy.yaml")
CONDITIONS = ("collateral", "guarantee", "prepayment", "collections", "none")
APPROVAL_LEVELS = ("automatic", "credit_manager", "credit_committee")
LIMIT_INPUTS = {
    "revenue_multiple": "revenue_latest",
    "current_limit_multiple": "credit_limit_latest",
}
BINDING_ORDER = ("cap", "revenue_multiple", "current_limit_multiple")

Condition = Literal["collateral", "guarantee", "prepayment", "collections", "none"]
Approval = Literal["automatic", "credit_manager", "credit_committee"]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class PolicyError(ConfigError):
    """The credit policy file is invalid; `problems` lists (line, message) pairs."""

    what = "credit policy"


class LimitRule(BaseModel):
    """Cap in currency, and optional multiples of revenue and of the current credit limit."""

    model_config = ConfigDict(extra="forbid")
    cap: NonNegative
    revenue_multiple: NonNegative | None = None
    current_limit_multiple: NonNegative | None = None


class GradeRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    grades: list[str] = Field(min_length=1)
    limit: LimitRule
    term_days: int = Field(ge=0)
    conditions: list[Condition] = Field(min_length=1)
    approval: Approval


class CreditPolicy(BaseModel):
    """A validated credit policy; build with `load_policy` or `parse_policy`."""

    model_config = ConfigDict(extra="forbid")
    version: str | int = 1
    name: str = "credit policy"
    round_limit_to: NonNegative = 0
    rules: list[GradeRule] = Field(min_length=1)

    def rule_of(self, grade: str) -> GradeRule:
        for rule in self.rules:
            if grade in rule.grades:
                return rule
        raise KeyError(f"grade {grade!r} has no rule in the credit policy")


def pydantic_problems(err: ValidationError, index: LineIndex, what: str) -> list[Problem]:
    """(line, message) per pydantic error; ``what`` names the file's root in messages."""
    problems = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("function")))
        where = dotted(loc) or what
        msg = e["msg"]
        if e["type"] == "literal_error" and "conditions" in loc:
            msg = f"unknown condition {e['input']!r}; use one of {', '.join(CONDITIONS)}"
        elif e["type"] == "literal_error" and "approval" in loc:
            msg = f"unknown approval level {e['input']!r}; use one of {', '.join(APPROVAL_LEVELS)}"
        elif (e["type"] == "greater_than_equal" and loc[-1] in ("cap", "term_days")) or (
            e["type"] == "greater_than_equal" and str(loc[-1]).endswith("multiple")
        ):
            msg = f"negative {loc[-1]} {e['input']!r}; limits, multiples and terms must be >= 0"
        elif e["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}; check the spelling"
        elif e["type"] == "finite_number":
            msg = f"not a finite number ({e['input']!r}); give a number"
        problems.append((line_of(index, loc), f"{where}: {msg}"))
    return problems


def _grade_problems(policy: CreditPolicy, grades: Sequence[str], index: LineIndex) -> list[Problem]:
    problems, seen = [], {}
    for i, rule in enumerate(policy.rules):
        for j, grade in enumerate(rule.grades):
            line = line_of(index, ("rules", i, "grades", j))
            if grade not in grades:
                problems.append(
                    (line, f"unknown grade {grade!r}; the master scale has {list(grades)}")
                )
            elif grade in seen:
                problems.append(
                    (
                        line,
                        f"overlapping grades: {grade} is also in rule #{seen[grade] + 1} "
                        f"(line {line_of(index, ('rules', seen[grade]))}); "
                        "list each grade in exactly one rule",
                    )
                )
            else:
                seen[grade] = i
    missing = [g for g in grades if g not in seen]
    if missing:
        problems.append(
            (
                line_of(index, ("rules",)),
                f"missing grade(s) {missing}: every grade of the "
                "master scale needs a rule (add them to a rule's grades)",
            )
        )
    return problems


def parse_policy(
    text: str, grades: Sequence[str] | None = None, source: str = "<policy>"
) -> CreditPolicy:
    """Validate policy YAML text against the grade list (default: the master scale's grades)."""
    if grades is None:
        from models.master_scale import MasterScale

        grades = MasterScale.load().grades
    data, index = parse_yaml_mapping(
        text, source, PolicyError, "expected a mapping with 'rules' (a list of grade rules)"
    )
    try:
        policy = CreditPolicy.model_validate(data)
    except ValidationError as err:
        raise PolicyError(source, pydantic_problems(err, index, "policy")) from None
    problems = _grade_problems(policy, list(grades), index)
    if problems:
        raise PolicyError(source, problems)
    return policy


def load_policy(
    path: str | Path | None = None, grades: Sequence[str] | None = None
) -> CreditPolicy:
    """Load and validate a credit policy file (default: pipelines/credit_policy.yaml)."""
    path = Path(path) if path is not None else DEFAULT_PATH
    return parse_policy(read_yaml_text(path, PolicyError, "policy"), grades, source=str(path))


def policy_table(policy: CreditPolicy) -> pd.DataFrame:
    """One row per grade: cap, multiples, term, conditions, approval (for display and joins)."""
    rows = []
    for rule in policy.rules:
        for grade in rule.grades:
            rows.append(
                {
                    "grade": grade,
                    "cap": rule.limit.cap,
                    "revenue_multiple": rule.limit.revenue_multiple,
                    "current_limit_multiple": rule.limit.current_limit_multiple,
                    "term_days": rule.term_days,
                    "conditions": ",".join(rule.conditions),
                    "approval_level": rule.approval,
                }
            )
    return pd.DataFrame(rows).astype({"revenue_multiple": float, "current_limit_multiple": float})


def round_limit(limit: np.ndarray, step: float) -> np.ndarray:
    """Limits rounded down to a multiple of ``step``; one below a step is kept as computed.

    Rounding never gives a limit the rule does not: rounding a positive limit below one step
    down would give a performing customer nothing, rounding it up would exceed the cap or
    multiple that bound it. So a zero limit comes only from the rule: a cap of 0 or an input
    of 0 (revenue, current limit), which `binding_rule` names.
    """
    if not step:
        return limit
    rounded = np.floor(limit / step + 1e-9) * step
    return np.where(rounded > 0, rounded, limit)


def bound_limits(
    caps: np.ndarray, multiples: list[np.ndarray], bases: list[np.ndarray], step: float
) -> tuple[np.ndarray, np.ndarray]:
    """The recommended limit of each row and which candidate bound it (index in
    `BINDING_ORDER`): the smallest of the cap and each base (`LIMIT_INPUTS`' order) x its
    multiple; missing ones skipped, negatives counted as 0; rounded by `round_limit`."""
    candidates = np.full((len(caps), len(BINDING_ORDER)), np.inf)
    candidates[:, 0] = caps
    for k, (multiple, base) in enumerate(zip(multiples, bases, strict=True), start=1):
        value = np.clip(base, 0, None) * multiple
        candidates[:, k] = np.where(np.isnan(value), np.inf, value)
    which = np.argmin(candidates, axis=1)
    return round_limit(candidates[np.arange(len(caps)), which], step), which


def decide_row(row: Mapping[str, Any], policy: CreditPolicy) -> dict[str, Any]:
    """`decide` for one scored customer (its features, grade and ids by name), with the
    ``inputs`` it read (`inputs_text`): the batch's row, by the same kernel."""
    grade = row["grade"]
    try:
        rule = policy.rule_of(grade)
    except KeyError:
        raise KeyError(
            f"grades [{grade!r}] have no rule in policy {policy.name!r}; add them to it"
        ) from None
    bases = [number_of(row.get(column)) for column in LIMIT_INPUTS.values()]
    multiples = [getattr(rule.limit, multiple) for multiple in LIMIT_INPUTS]
    limit, which = bound_limits(
        np.array([rule.limit.cap], dtype=float),
        [np.array([np.nan if m is None else m], dtype=float) for m in multiples],
        [np.array([b]) for b in bases],
        policy.round_limit_to,
    )
    return {
        "customer_id": row.get("customer_id"),
        "as_of": row.get("as_of"),
        "recommended_limit": float(limit[0]),
        "term_days": int(rule.term_days),
        "conditions": ",".join(rule.conditions),
        "approval_level": rule.approval,
        "binding_rule": BINDING_ORDER[int(which[0])],
        "inputs": inputs_text(grade, bases),
    }


def inputs_text(grade: str, limits: Sequence[float | None]) -> str:
    """What `decide` read for one customer as JSON: the grade and the limit inputs
    (`LIMIT_INPUTS`' order; null where missing or not finite)."""
    clean = [v if v is not None and math.isfinite(v) else None for v in limits]
    return json.dumps(dict(zip(["grade", *LIMIT_INPUTS.values()], [grade, *clean], strict=True)))


def decide(scored: pd.DataFrame, policy: CreditPolicy) -> pd.DataFrame:
    """Recommended limit, term, conditions, approval level and binding rule per scored customer.

    Candidates: the grade's cap, revenue_latest x revenue_multiple, credit_limit_latest x
    current_limit_multiple; missing inputs or multiples are skipped, negatives count as 0, the
    smallest binds (ties go to the earlier of cap, revenue_multiple, current_limit_multiple) and
    is rounded down to ``round_limit_to`` (`round_limit`: never to 0, never above the rule).
    """
    if "grade" not in scored:
        raise KeyError("decide needs a 'grade' column; score the customers first")
    table = policy_table(policy).set_index("grade")
    grade = scored["grade"].astype(object)
    unknown = sorted({str(g) for g in grade[~grade.isin(table.index)].unique()})
    if unknown:
        raise KeyError(f"grades {unknown} have no rule in policy {policy.name!r}; add them to it")
    rule = table.reindex(grade.to_numpy())
    bases = [
        pd.to_numeric(scored[column], errors="coerce").to_numpy(dtype=float)
        if column in scored
        else np.full(len(scored), np.nan)
        for column in LIMIT_INPUTS.values()
    ]
    multiples = [rule[multiple].to_numpy(dtype=float) for multiple in LIMIT_INPUTS]
    caps = rule["cap"].to_numpy(dtype=float)
    limit, which = bound_limits(caps, multiples, bases, policy.round_limit_to)
    out = pd.DataFrame(
        {
            "customer_id": scored["customer_id"].to_numpy() if "customer_id" in scored else None,
            "recommended_limit": limit,
            "term_days": rule["term_days"].to_numpy(dtype=np.int64),
            "conditions": rule["conditions"].to_numpy(),
            "approval_level": rule["approval_level"].to_numpy(),
            "binding_rule": np.asarray(BINDING_ORDER, dtype=object)[which],
        },
        index=scored.index,
    )
    if "as_of" in scored:
        out.insert(1, "as_of", scored["as_of"].to_numpy())
    return out


def policy_summary(decisions: pd.DataFrame, grades: pd.Series) -> pd.DataFrame:
    """Per grade: customers, total and median recommended limit, term, approval level."""
    frame = decisions.assign(grade=grades.to_numpy())
    return (
        frame.groupby("grade", observed=True)
        .agg(
            customers=("recommended_limit", "size"),
            total_limit=("recommended_limit", "sum"),
            median_limit=("recommended_limit", "median"),
            term_days=("term_days", "first"),
            conditions=("conditions", "first"),
            approval_level=("approval_level", "first"),
        )
        .reset_index()
    )
