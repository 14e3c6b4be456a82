"""The feature catalog: one registry of every feature a snapshot can hold.

Training reads monotone constraints from it, reason codes read their texts from it, and
``build_features`` refuses to emit a column that is not in it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

FAMILIES = ("repayment", "financial", "customer", "events", "market")
WINDOWS = (3, 6, 12, 24)
DPD_THRESHOLDS = (30, 60, 90)
UTILISATION_SPIKE = 0.20


@dataclass(frozen=True)
class Feature:
    """One feature: its name, family, reason-code text, unit and risk direction.

    direction: +1 risk rises with the value, -1 risk falls with it, 0 unknown or categorical.
    """

    name: str
    family: str
    description: str
    unit: str
    direction: int

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"feature {self.name}: family must be one of {FAMILIES}")
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"feature {self.name}: direction must be -1, 0 or +1")


def _repayment() -> list[Feature]:
    out = []
    for w in WINDOWS:
        out.append(
            Feature(
                f"days_past_due_max_{w}m",
                "repayment",
                f"Highest days past due in the last {w} closed months",
                "days",
                1,
            )
        )
        for t in DPD_THRESHOLDS:
            out.append(
                Feature(
                    f"months_{t}dpd_{w}m",
                    "repayment",
                    f"Months {t} or more days past due in the last {w} closed months",
                    "months",
                    1,
                )
            )
        out += [
            Feature(
                f"payment_ratio_{w}m",
                "repayment",
                f"Share of amounts due that was paid in the last {w} closed months",
                "ratio",
                -1,
            ),
            Feature(
                f"utilisation_mean_{w}m",
                "repayment",
                f"Average use of the credit limit (balance / limit) over the last {w} months",
                "ratio",
                1,
            ),
            Feature(
                f"utilisation_trend_{w}m",
                "repayment",
                f"Rise in credit limit use: latest month minus the {w}-month average",
                "ratio",
                1,
            ),
            Feature(
                f"utilisation_spikes_{w}m",
                "repayment",
                f"Months in the last {w} where limit use jumped by more than "
                f"{UTILISATION_SPIKE:.0%} points",
                "months",
                1,
            ),
            Feature(
                f"balance_growth_{w}m",
                "repayment",
                f"Growth of the outstanding balance over the last {w} months",
                "ratio",
                1,
            ),
        ]
    out += [
        Feature(
            "days_past_due_current",
            "repayment",
            "Days past due in the latest closed month",
            "days",
            1,
        ),
        Feature(
            "months_since_30dpd",
            "repayment",
            "Months since the customer was last 30 or more days past due "
            "(capped at the months on record, at most 24)",
            "months",
            -1,
        ),
        Feature(
            "utilisation_latest",
            "repayment",
            "Use of the credit limit (balance / limit) in the latest closed month",
            "ratio",
            1,
        ),
        Feature(
            "credit_limit_latest",
            "repayment",
            "Credit limit in the latest closed month",
            "currency",
            0,
        ),
    ]
    return out


_RATIOS = {
    "leverage": ("Debt load: total liabilities / total assets", 1),
    "current_ratio": ("Liquidity: current assets / current liabilities", -1),
    "quick_ratio": ("Liquidity without inventory: quick assets / current liabilities", -1),
    "interest_coverage": ("Interest cover: operating profit (EBIT) / interest expense", -1),
    "ebit_margin": ("Operating margin: EBIT / revenue", -1),
    "net_margin": ("Net margin: net income / revenue", -1),
    "return_on_assets": ("Return on assets: net income / total assets", -1),
}


def _financial() -> list[Feature]:
    out = [
        Feature(n, "financial", f"{d} (latest statement)", "ratio", s)
        for n, (d, s) in _RATIOS.items()
    ]
    out += [
        Feature(
            f"{n}_change_1y",
            "financial",
            f"Change on the prior year of {d[0].lower()}{d[1:]}",
            "ratio",
            s,
        )
        for n, (d, s) in _RATIOS.items()
    ]
    out += [
        Feature(
            "revenue_growth_1y",
            "financial",
            "Revenue growth on the statement one year earlier",
            "ratio",
            -1,
        ),
        Feature(
            "log_total_assets", "financial", "Company size: log of total assets", "log currency", -1
        ),
        Feature(
            "statement_age_days",
            "financial",
            "Age of the latest published financial statement (days since period end)",
            "days",
            1,
        ),
        Feature(
            "revenue_latest",
            "financial",
            "Revenue over the last twelve months in the latest statement",
            "currency",
            0,
        ),
    ]
    return out


def _customer() -> list[Feature]:
    return [
        Feature("segment", "customer", "Customer segment", "category", 0),
        Feature("industry", "customer", "Industry of the customer", "category", 0),
        Feature("region", "customer", "Region of the customer", "category", 0),
        Feature("tenure_months", "customer", "Months as a customer", "months", -1),
        Feature("company_age_years", "customer", "Age of the company", "years", -1),
    ]


def _events() -> list[Feature]:
    return [
        Feature(
            "lawsuits_12m",
            "events",
            "Lawsuits and enforcement actions in the last 12 months",
            "count",
            1,
        ),
        Feature(
            "complaints_12m", "events", "Customer complaints in the last 12 months", "count", 1
        ),
        Feature(
            "negative_news_12m", "events", "Negative news items in the last 12 months", "count", 1
        ),
        Feature("restructurings_12m", "events", "Restructurings in the last 12 months", "count", 1),
        Feature(
            "event_severity_12m",
            "events",
            "Adverse events in the last 12 months weighted by severity",
            "severity points",
            1,
        ),
        Feature(
            "days_since_lawsuit", "events", "Days since the last lawsuit or enforcement", "days", -1
        ),
        Feature("days_since_complaint", "events", "Days since the last complaint", "days", -1),
        Feature(
            "days_since_negative_news", "events", "Days since the last negative news", "days", -1
        ),
    ]


def _market() -> list[Feature]:
    return [
        Feature(
            "industry_default_rate_12m",
            "market",
            "Default rate of the customer's industry in the last 12 months",
            "rate",
            1,
        )
    ]


CATALOG: dict[str, Feature] = {
    f.name: f for f in _repayment() + _financial() + _customer() + _events() + _market()
}
CATEGORICAL = tuple(n for n, f in CATALOG.items() if f.unit == "category")


def catalog_version(catalog: dict[str, Feature]) -> str:
    """Short hash of the catalog contents: changes whenever a feature is added or edited."""
    payload = json.dumps([asdict(f) for f in catalog.values()], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


CATALOG_VERSION: str = catalog_version(CATALOG)


def features_of(family: str) -> list[str]:
    """Names of the catalog features of one family, in catalog order."""
    return [n for n, f in CATALOG.items() if f.family == family]


def unknown_features(columns: Iterable[str]) -> list[str]:
    """Columns that are not catalog features."""
    return [c for c in columns if c not in CATALOG]


def monotone_constraints(columns: Iterable[str], strict: bool = True) -> list[int]:
    """LightGBM monotone constraints (catalog directions) for ``columns`` in order.

    Unknown columns raise unless ``strict=False`` (flat tables), where they get 0.
    """
    columns = list(columns)
    missing = unknown_features(columns)
    if strict and missing:
        raise KeyError(
            f"not in the feature catalog: {missing}; add them to features/catalog.py "
            "or pass strict=False for flat tables"
        )
    return [CATALOG[c].direction if c in CATALOG else 0 for c in columns]


def reason_text(name: str) -> str:
    """Plain-language reason-code text of a feature (the column name, spaced, if unknown)."""
    feature = CATALOG.get(name)
    return feature.description if feature else name.replace("_", " ")
