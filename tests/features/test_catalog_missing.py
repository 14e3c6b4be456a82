"""The catalog's missing-value metadata agrees with the features the synthetic book gives."""

from __future__ import annotations

import numpy as np
import pytest

from features.catalog import CATALOG, SOURCES, reason_rules
from features.snapshots import build_snapshot
from features.synthetic import generate_book


@pytest.fixture(scope="module")
def snapshot():
    tables = generate_book(n_customers=600, months=36, seed=3)
    return build_snapshot(tables, "2023-07-01")


def test_features_restricted_to_some_segments_are_missing_exactly_for_the_others(snapshot):
    rules = reason_rules(CATALOG)
    segment = snapshot["segment"].astype(str)
    assert rules.segments  # statement ratios and company age
    for name, segments in rules.segments.items():
        assert snapshot.loc[~segment.isin(segments), name].isna().all(), name
    companies = segment.isin(["corporate", "sme"])
    for name in CATALOG:
        if name not in rules.segments and snapshot.loc[companies, name].notna().any():
            assert snapshot.loc[~companies, name].notna().any() or name in rules.silent, (
                f"{name} is never there for retail customers: give it segments in the catalog"
            )


def test_a_sources_features_go_missing_together_and_wider_sources_cover_narrower(snapshot):
    rules = reason_rules(CATALOG)
    members: dict[str, list[str]] = {}
    for name, source in rules.sources.items():
        members.setdefault(source, []).append(name)
    assert set(members) == set(SOURCES)
    lacks = {s: snapshot[cols].isna().all(axis=1).to_numpy() for s, cols in members.items()}
    assert lacks["statement"].any() and lacks["repayments_24m"].any()
    for source, wider in rules.within.items():
        assert not (lacks[wider] & ~lacks[source]).any(), (source, wider)
    anchor = {"statement": "statement_age_days", "repayments": "days_past_due_current"}
    anchor |= {f"repayments_{w}m": f"days_past_due_max_{w}m" for w in (3, 6, 12, 24)}
    for source, feature in anchor.items():
        assert np.array_equal(snapshot[feature].isna().to_numpy(), lacks[source]), source
