"""Request and response bodies of the scoring API: strict pydantic models, the data contract's
columns and constraints (features/schemas.py) as types, with examples that work as sent."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

MAX_STATEMENTS, MAX_REPAYMENTS, MAX_EVENTS, MAX_DEFAULTS = 200, 600, 500, 20


def _iso_date(value: Any) -> dt.date:
    """A calendar date written YYYY-MM-DD (JSON has no date type; numbers are refused)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a date written YYYY-MM-DD") from None
    if not 1678 <= day.year <= 2261:
        raise ValueError("must be a date from 1678 to 2261")
    return day


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Amount = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Signed = Annotated[float, Field(allow_inf_nan=False)]


class Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


class Customer(Strict):
    customer_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    segment: Literal["corporate", "sme", "retail"]
    industry: Text
    region: Text
    onboarded_on: IsoDate
    founded_on: IsoDate | None = None

    @field_validator("founded_on")
    @classmethod
    def _founded_first(cls, value: dt.date | None, info: ValidationInfo) -> dt.date | None:
        onboarded = info.data.get("onboarded_on")
        if value is not None and onboarded is not None and value > onboarded:
            raise ValueError("founded_on is after onboarded_on")
        return value


class Statement(Strict):
    period_end: IsoDate
    published_on: IsoDate
    revenue: Amount | None = None
    ebit: Signed | None = None
    interest_expense: Amount | None = None
    net_income: Signed | None = None
    total_assets: Amount | None = None
    total_liabilities: Amount | None = None
    current_assets: Amount | None = None
    current_liabilities: Amount | None = None
    cash: Amount | None = None
    equity: Signed | None = None
    inventory: Amount | None = None

    @field_validator("published_on")
    @classmethod
    def _published_after_period(cls, value: dt.date, info: ValidationInfo) -> dt.date:
        period_end = info.data.get("period_end")
        if period_end is not None and value < period_end:
            raise ValueError("published_on is before period_end: a statement is published after")
        return value


class Repayment(Strict):
    month: IsoDate
    credit_limit: Amount
    balance: Signed
    amount_due: Amount | None = None
    amount_paid: Amount
    days_past_due: Annotated[int, Field(ge=0, le=100_000)]

    @field_validator("month")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError("month must be the first day of the month (e.g. 2023-01-01)")
        return value


class Event(Strict):
    occurred_on: IsoDate
    type: Literal["lawsuit", "enforcement", "complaint", "negative_news", "restructuring"]
    severity: Annotated[int, Field(ge=1, le=3)]


class Default(Strict):
    defaulted_on: IsoDate
    reason: Annotated[str, StringConstraints(max_length=200)] | None = None


def _unique(rows: list, key, what: str) -> list:
    """The rows, when no two share a key."""
    seen = set()
    for row in rows:
        k = key(row)
        if k in seen:
            raise ValueError(f"two {what} share the key {k}: send each once")
        seen.add(k)
    return rows


class CustomerData(Strict):
    """One customer's raw data: attributes, financial statements, repayment months, events."""

    customer: Customer
    financial_statements: Annotated[list[Statement], Field(max_length=MAX_STATEMENTS)] = []
    repayments: Annotated[list[Repayment], Field(max_length=MAX_REPAYMENTS)] = []
    events: Annotated[list[Event], Field(max_length=MAX_EVENTS)] = []
    defaults: Annotated[list[Default], Field(max_length=MAX_DEFAULTS)] = []

    @field_validator("repayments")
    @classmethod
    def _months_once(cls, rows: list[Repayment]) -> list[Repayment]:
        return _unique(rows, lambda r: str(r.month), "repayments")

    @field_validator("financial_statements")
    @classmethod
    def _statements_once(cls, rows: list[Statement]) -> list[Statement]:
        return _unique(rows, lambda s: f"{s.period_end}/{s.published_on}", "financial_statements")

    @field_validator("defaults")
    @classmethod
    def _defaults_once(cls, rows: list[Default]) -> list[Default]:
        return _unique(rows, lambda d: str(d.defaulted_on), "defaults")


EXAMPLE_CUSTOMER = {
    "customer": {
        "customer_id": "C0001234",
        "segment": "sme",
        "industry": "manufacturing",
        "region": "east",
        "onboarded_on": "2019-04-01",
        "founded_on": "2011-06-15",
    },
    "financial_statements": [
        {
            "period_end": "2023-12-31",
            "published_on": "2024-03-20",
            "revenue": 5_200_000.0,
            "ebit": 410_000.0,
            "interest_expense": 95_000.0,
            "net_income": 240_000.0,
            "total_assets": 4_100_000.0,
            "total_liabilities": 2_600_000.0,
            "current_assets": 1_900_000.0,
            "current_liabilities": 1_300_000.0,
            "cash": 350_000.0,
            "equity": 1_500_000.0,
            "inventory": 600_000.0,
        }
    ],
    "repayments": [
        {
            "month": f"2024-{m:02d}-01",
            "credit_limit": 500_000.0,
            "balance": 310_000.0 + 5_000 * m,
            "amount_due": 42_000.0,
            "amount_paid": 42_000.0 if m != 4 else 20_000.0,
            "days_past_due": 0 if m != 4 else 12,
        }
        for m in range(1, 7)
    ],
    "events": [{"occurred_on": "2024-02-10", "type": "complaint", "severity": 1}],
    "defaults": [],
}


class ScoreRequest(CustomerData):
    """Score one customer from raw data at an as-of date."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"as_of": "2024-07-01", **EXAMPLE_CUSTOMER}]}
    )
    as_of: IsoDate


class BatchRequest(Strict):
    """Score several customers from raw data at one as-of date."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"as_of": "2024-07-01", "customers": [EXAMPLE_CUSTOMER]}]}
    )
    as_of: IsoDate
    customers: Annotated[list[CustomerData], Field(min_length=1)]

    @field_validator("customers")
    @classmethod
    def _distinct(cls, rows: list[CustomerData]) -> list[CustomerData]:
        return _unique(rows, lambda c: c.customer.customer_id, "customers")


class FeatureRequest(Strict):
    """Score one customer from a ready feature row (the model's inputs by name)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2024-07-01",
                    "customer_id": "C0001234",
                    "features": {"days_past_due_max_3m": 12.0, "segment": "sme", "leverage": 0.63},
                }
            ]
        }
    )
    as_of: IsoDate
    customer_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    features: Annotated[
        dict[
            Annotated[str, StringConstraints(max_length=100)],
            Annotated[float, Field(allow_inf_nan=False)]
            | Annotated[str, StringConstraints(max_length=100)]
            | None,
        ],
        Field(max_length=500),
    ]


class Note(Strict):
    """What was done about a warning, in words (kept with the warning and in the audit log)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"note": "called the CFO"}]})
    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


class OverrideRequest(Strict):
    """A manual limit (and term) against the customer's latest stored decision, and why."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"limit": 250000.0, "term_days": 90, "reason": "collateral pledged"}]
        }
    )
    limit: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
    term_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]


# responses -------------------------------------------------------------------------------------


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelRef(Out):
    name: str
    version: str


class Reason(Out):
    feature: str
    text: str
    value: Any = None
    contribution: float | None = None


class Policy(Out):
    recommended_limit: float
    term_days: int
    conditions: str
    approval_level: str
    binding_rule: str
    inputs: dict[str, Any]


class Warning(Out):
    level: str
    signals: list[str]
    evidence: dict[str, Any]
    measures: list[str]


class Decision(Out):
    customer_id: str
    as_of: dt.date
    pd: float
    score: int
    grade: str
    in_default_since: dt.date | None
    policy: Policy
    reasons: list[Reason]
    warning: Warning


class ScoreResponse(Decision):
    model: ModelRef
    request_id: str


class BatchResponse(Out):
    model: ModelRef
    request_id: str
    decisions: list[Decision]


class ErrorItem(Out):
    loc: list[str | int]
    reason: str


class ErrorBody(Out):
    kind: str
    reason: str
    hint: str | None = None
    errors: list[ErrorItem] = []
    request_id: str


class ErrorResponse(Out):
    error: ErrorBody


class StoredScore(Out):
    as_of: dt.date
    run_id: int
    model_version: str
    pd: float
    score: int
    grade: str
    reasons: list[Reason]
    policy: Policy | None


class StoredWarning(Out):
    id: int
    customer_id: str
    level: str
    latest_level: str
    status: str
    signals: list[str]
    first_as_of: dt.date
    last_as_of: dt.date
    evidence: dict[str, Any]
    measures: list[str]
    acknowledged_by: str | None
    acknowledge_note: str | None
    resolved_by: str | None
    resolution_note: str | None


class GradePoint(Out):
    as_of: dt.date
    grade: str
    pd: float


class CustomerView(Out):
    customer_id: str
    latest: StoredScore
    warnings: list[StoredWarning]
    grade_history: list[GradePoint]


class WarningList(Out):
    warnings: list[StoredWarning]


class ModelCard(Out):
    name: str
    version: str
    loaded_from: str
    trained_by: str | None
    trained_at: str | None
    approved_by: str | None
    approved_at: str | None
    metrics: dict[str, float]
    features: list[str]
    trees: int | None


class MonitoringView(Out):
    id: int
    as_of: dt.date
    model_version: str
    created_at: str
    verdicts: dict[str, Any]
    alerts: list[Any]
    notes: list[Any]


class Health(Out):
    status: str


class Ready(Out):
    status: Literal["ready", "degraded", "unavailable"]
    model: ModelRef | None
    reasons: list[str]
    checked_at: str | None


class OverrideRecorded(Out):
    override_id: int
    customer_id: str
    run_id: int
    original_limit: float | None
    override_limit: float
    term_days: int | None
    user: str
    reason: str
