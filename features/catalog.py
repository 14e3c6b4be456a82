"""The feature catalog: one registry of every feature a snapshot can hold.

Training reads monotone constraints from it, reason codes read their texts from it, and
``build_features`` refuses to emit a column that is not in it. It also says what a missing value
means (`reason_rules`): a feature the customer's segment never has (retail customers file no
statements), a record the customer lacks as a whole (`SOURCES`: no statement on file, a
repayment history shorter than a window), or no such event ever (days since the last lawsuit).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from functools import partial

from features.customer import SEGMENTS

FAMILIES = ("repayment", "financial", "customer", "events", "market")
WINDOWS = (3, 6, 12, 24)
DPD_THRESHOLDS = (30, 60, 90)
UTILISATION_SPIKE = 0.20
SEGMENT = "segment"  # the feature that holds the customer's segment
COMPANIES = ("corporate", "sme")  # the segments that file financial statements
IF_MISSING = ("unknown", "none")


@dataclass(frozen=True)
class Source:
    """A record some features are computed from, which a customer may lack as a whole.

    Where a customer lacks it (every feature of the source missing), the features' contributions
    make one reason with ``text``; ``within`` names a wider source whose reason takes this one's
    place when the customer lacks that too (no statement at all, not only no prior-year one).
    """

    name: str
    text: str
    within: str | None = None


def _sources() -> list[Source]:
    out = [
        Source("statement", "No financial statement on file"),
        Source(
            "prior_year_statement",
            "No financial statement of about a year before the latest one on file",
            "statement",
        ),
        Source("repayments", "No closed repayment month on file"),
    ]
    within = "repayments"
    for w in WINDOWS:
        out.append(
            Source(
                f"repayments_{w}m",
                f"Repayment record incomplete over the last {w} closed months "
                "(a shorter history or gaps)",
                within,
            )
        )
        within = f"repayments_{w}m"
    return out


SOURCES: dict[str, Source] = {s.name: s for s in _sources()}


@dataclass(frozen=True)
class Feature:
    """One feature: its name, family, reason-code text, unit and risk direction, and what a
    missing value means.

    direction: +1 risk rises with the value, -1 risk falls with it, 0 unknown or categorical.
    segments: the customer segments that can have the feature (the others never do).
    source: the record in `SOURCES` it is computed from, when a customer can lack that record.
    if_missing: "unknown" (a missing value may be a reason, said to be missing) or "none" (it
    means no such event ever happened: never a reason).
    """

    name: str
    family: str
    description: str
    unit: str
    direction: int
    segments: tuple[str, ...] = SEGMENTS
    source: str | None = None
    if_missing: str = "unknown"

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"feature {self.name}: family must be one of {FAMILIES}")
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"feature {self.name}: direction must be -1, 0 or +1")
        if not self.segments or not set(self.segments) <= set(SEGMENTS):
            raise ValueError(f"feature {self.name}: segments must be some of {SEGMENTS}")
        if self.source is not None and self.source not in SOURCES:
            raise ValueError(f"feature {self.name}: source must be one of {list(SOURCES)}")
        if self.if_missing not in IF_MISSING:
            raise ValueError(f"feature {self.name}: if_missing must be one of {IF_MISSING}")


def _repayment_feature(source: str, name: str, description: str, unit: str, direction: int):
    return Feature(name, "repayment", description, unit, direction, source=source)


def _repayment() -> list[Feature]:
    out = []
    for w in WINDOWS:  # a window the customer's months do not fill is missing: its own source
        window = partial(_repayment_feature, f"repayments_{w}m")
        out.append(
            window(
                f"days_past_due_max_{w}m",
                f"Highest days past due in the last {w} closed months",
                "days",
                1,
            )
        )
        for t in DPD_THRESHOLDS:
            out.append(
                window(
                    f"months_{t}dpd_{w}m",
                    f"Months {t} or more days past due in the last {w} closed months",
                    "months",
                    1,
                )
            )
        out += [
            window(
                f"payment_ratio_{w}m",
                f"Share of amounts due that was paid in the last {w} closed months",
                "ratio",
                -1,
            ),
            window(
                f"utilisation_mean_{w}m",
                f"Average use of the credit limit (balance / limit) over the last {w} months",
                "ratio",
                1,
            ),
            window(
                f"utilisation_trend_{w}m",
                f"Rise in credit limit use: latest month minus the {w}-month average",
                "ratio",
                1,
            ),
            window(
                f"utilisation_spikes_{w}m",
                f"Months in the last {w} where limit use jumped by more than "
                f"{UTILISATION_SPIKE:.0%} points",
                "months",
                1,
            ),
            window(
                f"balance_growth_{w}m",
                f"Growth of the outstanding balance over the last {w} months",
                "ratio",
                1,
            ),
        ]
    latest = partial(_repayment_feature, "repayments")
    out += [
        latest("days_past_due_current", "Days past due in the latest closed month", "days", 1),
        latest(
            "months_since_30dpd",
            "Months since the customer was last 30 or more days past due "
            "(capped at the months on record, at most 24)",
            "months",
            -1,
        ),
        latest(
            "utilisation_latest",
            "Use of the credit limit (balance / limit) in the latest closed month",
            "ratio",
            1,
        ),
        latest("credit_limit_latest", "Credit limit in the latest closed month", "currency", 0),
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


def _statement_feature(source: str, name: str, description: str, unit: str, direction: int):
    return Feature(name, "financial", description, unit, direction, COMPANIES, source)


def _financial() -> list[Feature]:
    latest = partial(_statement_feature, "statement")
    prior = partial(_statement_feature, "prior_year_statement")
    out = [latest(n, f"{d} (latest statement)", "ratio", s) for n, (d, s) in _RATIOS.items()]
    out += [
        prior(f"{n}_change_1y", f"Change on the prior year of {d[0].lower()}{d[1:]}", "ratio", s)
        for n, (d, s) in _RATIOS.items()
    ]
    out += [
        prior("revenue_growth_1y", "Revenue growth on the statement one year earlier", "ratio", -1),
        latest("log_total_assets", "Company size: log of total assets", "log currency", -1),
        latest(
            "statement_age_days",
            "Age of the latest published financial statement (days since period end)",
            "days",
            1,
        ),
        latest(
            "revenue_latest",
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
        Feature("company_age_years", "customer", "Age of the company", "years", -1, COMPANIES),
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
    ]


def _days_since() -> list[Feature]:
    """Days since the last event of a kind: missing where there was none, so never a reason."""
    last = {
        "lawsuit": "lawsuit or enforcement",
        "complaint": "complaint",
        "negative_news": "negative news",
    }
    return [
        Feature(
            f"days_since_{k}", "events", f"Days since the last {t}", "days", -1, if_missing="none"
        )
        for k, t in last.items()
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
    f.name: f
    for f in _repayment() + _financial() + _customer() + _events() + _days_since() + _market()
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


@dataclass(frozen=True)
class ReasonRules:
    """What a missing value of each feature means, for reason codes (from the catalog).

    segments: feature -> the segments that have it (only features some segment never has);
    sources: feature -> the record it comes from; texts and within: each source's reason text and
    wider source; silent: features whose missing value means no such event.
    """

    segment: str = SEGMENT
    segments: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    within: dict[str, str] = field(default_factory=dict)
    silent: frozenset[str] = frozenset()


def reason_rules(columns: Iterable[str]) -> ReasonRules:
    """The catalog's rules for missing values of ``columns`` (columns not in it have none)."""
    features = [CATALOG[c] for c in columns if c in CATALOG]
    sources = {f.name: f.source for f in features if f.source is not None}
    used, pending = set(), set(sources.values())
    while pending:
        name = pending.pop()
        used.add(name)
        if SOURCES[name].within is not None:
            pending.add(SOURCES[name].within)
    return ReasonRules(
        segments={f.name: f.segments for f in features if set(f.segments) != set(SEGMENTS)},
        sources=sources,
        texts={s: SOURCES[s].text for s in sorted(used)},
        within={s: SOURCES[s].within for s in sorted(used) if SOURCES[s].within is not None},
        silent=frozenset(f.name for f in features if f.if_missing == "none"),
    )
