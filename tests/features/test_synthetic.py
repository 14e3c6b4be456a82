"""The synthetic book: contract, reproducibility, default dynamics, predictive signal, the truth
beside it and the thresholds and interactions of its risk."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from features import synthetic
from features.labels import build_labels, default_dates, performing_population
from features.schemas import EVENT_TYPES, SCHEMAS, SEGMENTS, TABLES
from features.synthetic import (
    DEFAULT_REASONS,
    generate_book,
    generate_book_with_truth,
    summarise_book,
)

START = pd.Timestamp("2021-01-01")
MONTHS = 48
COLUMNS = {name: list(schema.columns) for name, schema in SCHEMAS.items()}  # the contract
DATES = {"onboarded_on", "founded_on", "period_end", "published_on", "month", "occurred_on"}
DATES |= {"defaulted_on"}
CATEGORIES = {"segment": SEGMENTS, "type": EVENT_TYPES, "reason": DEFAULT_REASONS}


@pytest.fixture(scope="module")
def book() -> dict[str, pd.DataFrame]:
    return generate_book(n_customers=2_000, months=MONTHS, start=str(START.date()), seed=7)


def test_same_seed_gives_identical_frames_and_another_seed_differs(book):
    again = generate_book(n_customers=2_000, months=MONTHS, start=str(START.date()), seed=7)
    for name in TABLES:
        pd.testing.assert_frame_equal(book[name], again[name])
    other = generate_book(n_customers=2_000, months=MONTHS, start=str(START.date()), seed=8)
    assert not book["repayments"]["balance"].equals(other["repayments"]["balance"])


def test_tables_have_the_canonical_columns_and_compact_dtypes(book):
    assert list(book) == list(TABLES)
    for name, columns in COLUMNS.items():
        frame = book[name]
        assert list(frame.columns) == columns, name
        assert frame["customer_id"].dtype == pd.Series(["x"]).dtype, name
        for column in columns:
            dtype = frame[column].dtype
            if column in DATES:
                assert dtype == "datetime64[ns]", (name, column)
                assert (frame[column].dropna() == frame[column].dropna().dt.normalize()).all()
            elif column in CATEGORIES:
                assert list(dtype.categories) == list(CATEGORIES[column]), column
            elif column in ("industry", "region"):
                assert isinstance(dtype, pd.CategoricalDtype), column
            elif column not in ("customer_id", "days_past_due", "severity"):
                assert dtype == np.float32, (name, column)
    assert book["repayments"]["days_past_due"].dtype == np.int16
    assert book["customers"]["customer_id"].str.fullmatch(r"C\d{7}").all()
    assert book["customers"]["customer_id"].is_unique


def test_book_passes_the_data_contract_without_rejects(book):
    from features.schemas import validate_tables

    result = validate_tables(book)

    assert result.rejects.empty, result.rejects.head()
    assert (result.counts["rows_in"] == result.counts["accepted"]).all()


def test_segments_industries_and_regions_are_mixed(book):
    customers = book["customers"]
    shares = customers["segment"].value_counts(normalize=True)
    assert shares["retail"] > shares["sme"] > shares["corporate"] > 0.05
    assert customers["industry"].nunique() >= 10
    assert customers["region"].nunique() >= 6
    company = customers["segment"] != "retail"
    assert customers.loc[company, "founded_on"].notna().all()
    assert customers.loc[~company, "founded_on"].isna().all()
    assert (customers.loc[company, "founded_on"] < customers.loc[company, "onboarded_on"]).all()


def test_repayments_start_after_onboarding_and_run_without_gaps(book):
    repayments = book["repayments"].merge(book["customers"], on="customer_id")
    assert (repayments["month"] >= repayments["onboarded_on"]).all()
    assert (repayments["month"].dt.day == 1).all()
    assert repayments["month"].between(START, START + pd.DateOffset(months=MONTHS - 1)).all()
    span = repayments.groupby("customer_id")["month"].agg(["min", "max", "size"])
    months = (span["max"].dt.year - span["min"].dt.year) * 12 + span["max"].dt.month
    assert (months - span["min"].dt.month + 1 == span["size"]).all()
    onboarded_late = book["customers"].set_index("customer_id")["onboarded_on"] > START
    assert (span.loc[onboarded_late[onboarded_late].index, "min"] > START).all()
    assert onboarded_late.mean() > 0.1
    assert (book["repayments"][["credit_limit", "amount_due", "amount_paid"]] >= 0).all().all()


def test_statements_are_quarterly_published_after_period_end_and_only_for_companies(book):
    statements = book["financial_statements"]
    lag = (statements["published_on"] - statements["period_end"]).dt.days
    assert (lag >= 45).all()
    assert (statements["period_end"] + pd.offsets.MonthEnd(0) == statements["period_end"]).all()
    assert statements["period_end"].dt.month.isin([3, 6, 9, 12]).all()
    assert statements["published_on"].max() < START + pd.DateOffset(months=MONTHS)
    segment = statements["customer_id"].map(book["customers"].set_index("customer_id")["segment"])
    assert (segment != "retail").all()
    assert (statements["total_liabilities"] + statements["equity"]).sub(
        statements["total_assets"]
    ).abs().max() <= 2_000
    per_company = statements.groupby("customer_id").size()
    assert per_company.max() <= (MONTHS + 15) // 3 + 1
    assert per_company.median() >= 12


def test_default_rates_are_a_few_percent_and_higher_for_retail_than_corporate(book):
    rates = summarise_book(book)["segments"].set_index("segment")["annual_default_rate"]
    assert 0.015 < rates["all"] < 0.06
    assert rates["retail"] > rates["corporate"]
    assert rates["sme"] > rates["corporate"]


def test_90dpd_defaults_climb_through_30_and_60_days_and_stay_in_default(book):
    defaults = book["defaults"]
    rows = book["repayments"].merge(defaults, on="customer_id")
    default_month = rows["defaulted_on"].dt.to_period("M").dt.start_time
    rows = rows.assign(
        k=(rows["month"].dt.to_period("M") - default_month.dt.to_period("M")).map(lambda o: o.n)
    )
    late = rows[rows["reason"] == "90dpd"]
    by_k = late.pivot_table(index="customer_id", columns="k", values="days_past_due")
    defaulted = by_k[-1].notna()  # the first 90+ month closes the month before defaulted_on
    assert (by_k.loc[defaulted, -1] >= 90).all()
    lead = by_k.loc[defaulted, [-3, -2, -1]].dropna()
    assert len(lead) > 20
    assert ((lead[-2] >= 60) & (lead[-2] < 90)).all()
    assert ((lead[-3] >= 30) & (lead[-3] <= lead[-2])).all()
    after = late[late["k"] >= -1]
    assert (after["days_past_due"] >= 90).all()
    assert after.groupby("customer_id")["k"].max().max() <= 12
    bankrupt = rows[(rows["reason"] == "bankruptcy") & (rows["k"] >= 0)]
    assert (bankrupt["days_past_due"] >= 90).all()
    assert defaults["customer_id"].is_unique
    assert (defaults["reason"] == "bankruptcy").mean() < 0.15


def test_future_defaulters_look_worse_at_the_as_of_date(book):
    as_of = pd.Timestamp("2023-01-01")
    repayments = book["repayments"]
    known = repayments[
        (repayments["month"] < as_of) & (repayments["month"] >= as_of - pd.DateOffset(months=12))
    ]
    first_default = book["defaults"].set_index("customer_id")["defaulted_on"]
    features = known.groupby("customer_id").agg(
        dpd_max=("days_past_due", "max"),
        balance=("balance", "last"),
        limit=("credit_limit", "last"),
    )
    when = first_default.reindex(features.index)
    features = features[~(when <= as_of)]
    when = when.reindex(features.index)
    label = (when > as_of) & (when <= as_of + pd.DateOffset(months=12))
    assert 20 < label.sum() < 0.2 * len(label)
    utilisation = features["balance"] / features["limit"]
    assert features.loc[label, "dpd_max"].mean() > 2 * features.loc[~label, "dpd_max"].mean()
    assert utilisation[label].mean() > utilisation[~label].mean() + 0.05
    events = book["events"]
    recent = events[(events["occurred_on"] < as_of)]
    counts = recent.groupby("customer_id").size().reindex(features.index, fill_value=0)
    assert counts[label].mean() > 1.5 * counts[~label].mean()


def test_summarise_book_counts_performing_customer_years():
    month = pd.to_datetime(["2021-01-01", "2021-02-01", "2021-03-01", "2021-01-01"])
    tables = {
        "customers": pd.DataFrame(
            {"customer_id": ["C1", "C2"], "segment": pd.Categorical(["retail", "sme"], SEGMENTS)}
        ),
        "repayments": pd.DataFrame({"customer_id": ["C1", "C1", "C1", "C2"], "month": month}),
        "defaults": pd.DataFrame(
            {"customer_id": ["C1"], "defaulted_on": pd.to_datetime(["2021-03-01"])}
        ),
    }

    summary = summarise_book(tables)

    segments = summary["segments"].set_index("segment")
    # C1 performs in January only (February's 90+ month closes on 2021-03-01); C2 one month.
    assert segments.loc["retail", "customer_years"] == pytest.approx(1 / 12)
    assert segments.loc["retail", "annual_default_rate"] == pytest.approx(12.0)
    assert segments.loc["all", "defaults"] == 1
    assert segments.loc["all", "customer_years"] == pytest.approx(2 / 12)
    assert summary["rows"].set_index("table")["rows"].to_dict() == {
        "customers": 2,
        "repayments": 4,
        "defaults": 1,
    }


def test_progress_callback_reaches_the_total_and_small_books_work():
    calls = []
    tables = generate_book(n_customers=1, months=3, seed=1, on_month=lambda d, t: calls.append(d))
    assert calls == list(range(1, len(calls) + 1)) and len(calls) > 3
    assert len(tables["customers"]) == 1
    with pytest.raises(ValueError, match="at least 1"):
        generate_book(n_customers=0)


def test_generate_command_writes_parquet_and_prints_a_summary(tmp_path):

    from features.io import read_book
    from pipelines.cli import app

    out = tmp_path / "book"

    result = CliRunner().invoke(
        app, ["generate", "--customers", "300", "--months", "36", "--seed", "3", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert "annual default rate" in result.output
    tables = read_book(out)
    assert set(tables) == set(TABLES)
    expected = generate_book(300, 36, "2021-01-01", 3)["repayments"]
    assert len(tables["repayments"]) == len(expected)
    bad = CliRunner().invoke(app, ["generate", "--start", "not-a-date", "--out", str(out)])
    assert bad.exit_code != 0
    assert "YYYY-MM-DD" in bad.output


# --- the truth beside the book ---------------------------------------------------------------


@pytest.fixture(scope="module")
def with_truth():
    return generate_book_with_truth(n_customers=2_000, months=MONTHS, start="2021-01-01", seed=7)


def test_truth_leaves_the_book_unchanged_and_covers_the_performing_population(book, with_truth):
    for name in TABLES:
        pd.testing.assert_frame_equal(book[name], with_truth.tables[name])
    truth = with_truth.true_pd
    assert list(truth.columns) == ["customer_id", "as_of", "pd_12m"]
    dates = sorted(truth["as_of"].unique())
    assert dates == list(pd.date_range(START + pd.DateOffset(months=3), periods=16, freq="3MS"))
    assert (
        truth["pd_12m"].between(0, 1).all() and not truth.duplicated(["customer_id", "as_of"]).any()
    )
    defaulted = default_dates(book)
    for as_of in (dates[0], dates[7], dates[-1]):
        population = performing_population(book["customers"], as_of, defaulted)["customer_id"]
        assert set(truth.loc[truth["as_of"] == as_of, "customer_id"]) == set(population)


def test_true_pd_matches_the_outcomes_and_ranks_them_best(with_truth):
    """On matured as-of dates the mean true PD is the default rate up to sampling, and the true PD
    separates defaulters better than any single observable (days past due, say)."""
    tables, truth = with_truth.tables, with_truth.true_pd
    rows = []
    for as_of in pd.date_range("2022-01-01", "2023-10-01", freq="3MS"):
        labels = build_labels(tables, as_of).merge(
            truth[truth["as_of"] == as_of], on="customer_id", how="left"
        )
        rows.append(labels)
    labelled = pd.concat(rows, ignore_index=True)
    assert labelled["pd_12m"].notna().all()
    y, p = labelled["default_flag"].to_numpy(), labelled["pd_12m"].to_numpy()
    expected, sd = p.sum(), np.sqrt((p * (1 - p)).sum())
    assert abs(y.sum() - expected) < 4 * sd + 0.05 * expected  # serial correlation of dates
    assert roc_auc_score(y, p) > 0.85


def test_default_chain_is_exact_for_the_sampled_transitions():
    """Twelve months of `_next_states` on 400k customers with fixed hazards default as often as
    `_chain_step` propagates."""
    n, months = 400_000, 12
    h = synthetic._Hazards(
        *(np.full(n, v, dtype=np.float32) for v in (0.05, 0.3, 0.4, 0.2, 0.5, 0.01))
    )
    rng = np.random.default_rng(0)
    state = np.zeros(n, dtype=np.int8)
    state[: n // 4] = 1
    state[n // 4 : n // 3] = 2
    q = [(state == b).astype(np.float32) for b in range(3)]
    expected = np.zeros(n, dtype=np.float32)
    for _ in range(months):
        perf = state < 3
        state, _bankrupt = synthetic._next_states(
            rng.random((6, n), dtype=np.float32), state, perf, h
        )
        q, entered = synthetic._chain_step(q, h)
        expected += entered
    assert np.mean(state == 3) == pytest.approx(expected.mean(), abs=4e-3)
    assert expected[: n // 4].mean() > expected[n // 3 :].mean()


def test_truth_is_never_read_as_a_table_or_a_feature(tmp_path, with_truth):
    from features.build import build_features
    from features.io import read_book, read_truth, write_book, write_truth

    write_book(with_truth.tables, tmp_path)
    write_truth(with_truth.true_pd, tmp_path)

    tables = read_book(tmp_path)
    assert set(tables) == set(TABLES)
    features = build_features(tables, pd.Timestamp("2023-01-01"))
    assert "pd_12m" not in features.columns
    pd.testing.assert_frame_equal(read_truth(tmp_path), with_truth.true_pd)


# --- thresholds, interactions and segments ------------------------------------------------------


def _one_customer_risk(**changes):
    """The risk model for one customer whose latent parts are zero except ``changes``."""
    p = synthetic.BookParams()
    static = dict(
        base=0.0, util0=-0.6, payment0=-0.5, liquidity0=0.3, leverage0=0.2, company=1.0,
        industry=0, cyclical=1.0, segment_slope=1.0, limit_jump=0.3, miss_int=-6.0, bk_int=-10.0,
    )  # fmt: skip
    latent = dict(drift=0.0, util=0.0, liquidity=0.0, leverage=0.0, industry=0.0)
    shared = changes.pop("shared", 0.0)
    for key, value in changes.items():
        (static if key in static else latent)[key] = value
    s = synthetic._Static(**{k: np.array([v], dtype=np.float32) for k, v in static.items()})
    lat = synthetic._Latent(**{k: np.array([v], dtype=np.float32) for k, v in latent.items()})
    return float(synthetic._risk(s, lat, np.array([shared], dtype=np.float32), p).hazard_x[0])


def test_risk_has_thresholds_interactions_and_segment_behaviour():
    base = _one_customer_risk()
    # liquidity that runs out: a step at the floor, nothing much above it
    above, below = (_one_customer_risk(liquidity=v) for v in (-0.35, -0.65))
    assert below - above > 0.8 * synthetic.BookParams().liquidity_jump
    assert abs(_one_customer_risk(liquidity=0.2) - base) < 0.05
    # a covenant that bites: a step at the covenant leverage
    lev = np.log(0.76 / 0.24) - 0.2, np.log(0.84 / 0.16) - 0.2
    assert _one_customer_risk(leverage=lev[1]) - _one_customer_risk(leverage=lev[0]) > 0.6
    # leverage matters in cyclical industries, and more in a downturn
    high = np.log(0.7 / 0.3) - 0.2

    def leverage_effect(**kw):
        return _one_customer_risk(leverage=high, **kw) - _one_customer_risk(**kw)

    assert leverage_effect(cyclical=0.0) < 0.1 < leverage_effect(cyclical=1.0)
    assert leverage_effect(cyclical=1.0, shared=0.25) > 1.3 * leverage_effect(cyclical=1.0)
    # utilisation near the limit: a jump for revolvers of the segment, not for those who clear
    near = 3.0  # utilisation about 0.92

    def near_limit_effect(**kw):
        return _one_customer_risk(util=near, **kw) - _one_customer_risk(**kw)

    assert near_limit_effect(limit_jump=1.6, company=0.0) > 3 * near_limit_effect(company=0.0)
    assert near_limit_effect(limit_jump=1.6, company=0.0, payment0=6.0) < 0.1
    # segment slopes: the same quality weighs differently per segment
    assert (
        _one_customer_risk(drift=1.0, segment_slope=1.25, company=0.0)
        > _one_customer_risk(drift=1.0, segment_slope=0.8, company=0.0) + 0.4
    )
