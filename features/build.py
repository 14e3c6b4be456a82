"""Point-in-time features of every performing customer at one as-of date.

A customer's features depend only on its own rows plus a ``BookContext`` (industry default rates
and category levels) computed once from the whole book, so a build per partition of customers,
given the same context, equals the whole build.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from features.catalog import CATALOG, unknown_features
from features.customer import category_levels, customer_features
from features.events import event_features
from features.financial import financial_features
from features.labels import default_dates, performing_population
from features.market import RATE, industry_default_rates, market_features
from features.repayment import repayment_features

ID = "customer_id"
TIME = "as_of"


@dataclass(frozen=True)
class BookContext:
    """The small broadcast tables every partition needs: computed from the whole book."""

    as_of: pd.Timestamp
    industry_default_rates: pd.DataFrame
    category_levels: dict[str, list[str]]

    @cached_property
    def industry_rates(self) -> dict[str, float]:
        """The industry default rates by industry (one customer's lookup)."""
        return self.industry_default_rates[RATE].astype(float).to_dict()


def book_context(
    tables: dict[str, pd.DataFrame], as_of: pd.Timestamp | str, dates: pd.Series | None = None
) -> BookContext:
    """Broadcast tables of the whole book at ``as_of`` (pass to each partition's build)."""
    as_of = pd.Timestamp(as_of)
    dates = default_dates(tables) if dates is None else dates
    customers = tables["customers"]
    return BookContext(
        as_of, industry_default_rates(customers, dates, as_of), category_levels(customers)
    )


def build_features(
    tables: dict[str, pd.DataFrame],
    as_of: pd.Timestamp | str,
    context: BookContext | None = None,
    dates: pd.Series | None = None,
) -> pd.DataFrame:
    """customer_id, as_of and every applicable catalog feature for the performing customers.

    Families apply when their table is present (financial: financial_statements, events: events).
    """
    as_of = pd.Timestamp(as_of)
    dates = default_dates(tables) if dates is None else dates
    context = book_context(tables, as_of, dates) if context is None else context
    if context.as_of != as_of:
        raise ValueError(f"context is for {context.as_of.date()}, not {as_of.date()}")
    customers = performing_population(tables["customers"], as_of, dates).reset_index(drop=True)
    ids = customers[ID].astype("str")
    parts = [
        pd.DataFrame({ID: ids, TIME: pd.Series(as_of, index=ids.index, dtype="datetime64[ns]")}),
        customer_features(customers, as_of, context.category_levels),
        repayment_features(tables["repayments"], ids, as_of),
    ]
    if tables.get("financial_statements") is not None:
        parts.append(financial_features(tables["financial_statements"], ids, as_of))
    if tables.get("events") is not None:
        parts.append(event_features(tables["events"], ids, as_of))
    parts.append(market_features(customers, context.industry_default_rates))
    out = pd.concat(parts, axis=1)
    unknown = unknown_features(out.columns[2:])
    assert not unknown, f"features not in the catalog: {unknown}; add them to features/catalog.py"
    return out[[ID, TIME, *[c for c in CATALOG if c in out.columns]]]
