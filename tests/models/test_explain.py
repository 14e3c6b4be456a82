import json
import warnings

import numpy as np
import pandas as pd
import pytest

from features.catalog import SOURCES, reason_rules, reason_text
from features.customer import SEGMENTS
from models.explain import ReasonExplainer, ScorecardReasons, plain_name, top_k
from models.lgbm import LGBMPDClassifier


class FixedBooster:
    """Stands in for a booster: pred_contrib returns a hand-written matrix (bias last)."""

    def __init__(self, contrib):
        self.contrib = np.asarray(contrib, dtype=float)

    def predict(self, X, pred_contrib=False, num_iteration=None):
        assert pred_contrib
        return self.contrib[: len(X)]


TEXTS = {"dpd": "days past due are high", "util": "credit line nearly used up"}


@pytest.fixture
def frame():
    return pd.DataFrame(
        {
            "dpd": [30.0, 0.0, np.nan],
            "util": [0.95, 0.2, 0.5],
            "region": pd.Categorical(["north", "south", None]),
        }
    )


@pytest.fixture
def explainer():
    contrib = [
        [0.40, 0.90, -0.10, -2.0],  # util first, then dpd; region lowers risk
        [-0.30, -0.20, -0.05, -2.0],  # nothing raises risk
        [0.20, 0.20, 0.70, -2.0],  # tie between dpd and util: column order decides
    ]
    return ReasonExplainer(FixedBooster(contrib), ["dpd", "util", "region"], TEXTS.__getitem__, k=2)


def test_top_reasons_are_risk_raising_ordered_and_limited_to_k(frame, explainer):
    reasons = explainer.top_reasons(frame)
    assert reasons[0] == [
        {"feature": "util", "text": TEXTS["util"], "value": 0.95, "contribution": 0.90},
        {"feature": "dpd", "text": TEXTS["dpd"], "value": 30.0, "contribution": 0.40},
    ]
    assert reasons[1] == []
    assert [r["feature"] for r in reasons[2]] == ["region", "dpd"]


def test_text_falls_back_to_the_feature_name_and_missing_values_are_said_missing(frame, explainer):
    """Without catalog rules (flat tables) a missing value may be a reason: it says so."""
    row = explainer.top_reasons(frame, k=3)[2]
    assert row[0]["text"] == "region: missing"
    assert row[0]["value"] is None
    assert row[1] == {
        "feature": "dpd",
        "text": f"{TEXTS['dpd']}: missing",
        "value": None,
        "contribution": 0.20,
    }
    assert explainer.top_reasons(frame)[0][0]["text"] == TEXTS["util"]  # present: plain text


def test_json_and_frame_outputs_agree(frame, explainer):
    parsed = [json.loads(s) for s in explainer.reasons_json(frame)]
    assert parsed == explainer.top_reasons(frame)
    long = explainer.top_reasons_frame(frame)
    assert long[["row", "rank", "feature"]].values.tolist() == [
        [0, 1, "util"],
        [0, 2, "dpd"],
        [2, 1, "region"],
        [2, 2, "dpd"],
    ]


def test_top_k_breaks_ties_by_column_and_caps_k():
    idx, vals = top_k(np.array([[1.0, 3.0, 3.0, 2.0]]), 10)
    assert idx.tolist() == [[1, 2, 3, 0]]
    assert vals.tolist() == [[3.0, 3.0, 2.0, 1.0]]


@pytest.fixture(scope="module")
def model_and_data():
    rng = np.random.default_rng(5)
    n = 600
    X = pd.DataFrame(
        {
            "dpd": rng.integers(0, 90, n).astype(float),
            "util": rng.uniform(0, 1, n),
            "segment": pd.Categorical(rng.choice(["retail", "sme", "corporate"], n)),
        }
    )
    X.loc[::17, "util"] = np.nan
    logit = X["dpd"] / 30 + 2 * X["util"].fillna(0.5) - 2 + (X["segment"] == "sme")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    model = LGBMPDClassifier(n_estimators=40, early_stopping_rounds=10, min_child_samples=10)
    return model.fit(X, y), X


def test_pred_contrib_equals_shap_tree_explainer_with_categories(model_and_data):
    import shap

    model, X = model_and_data
    explainer = ReasonExplainer(model.booster_, model.feature_names_)
    ours = explainer.contributions(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = shap.TreeExplainer(model.booster_).shap_values(X)
    theirs = theirs[1] if isinstance(theirs, list) else theirs
    assert ours.shape == (len(X), 3)
    assert np.abs(ours - np.asarray(theirs)).max() < 1e-6


def test_contributions_and_bias_add_up_to_the_log_odds(model_and_data):
    model, X = model_and_data
    explainer = ReasonExplainer(model.booster_, model.feature_names_)
    total = explainer.contributions(X, with_bias=True).sum(axis=1)
    assert np.allclose(total, model.decision_function(X))


def test_scorecard_reasons_are_points_lost():
    from models.scorecard import WOEScorecard

    rng = np.random.default_rng(2)
    n = 2000
    X = pd.DataFrame({"util": rng.uniform(0, 1, n), "dpd": rng.integers(0, 90, n).astype(float)})
    logit = 3 * X["util"] + X["dpd"] / 30 - 3
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    card = WOEScorecard().fit(X, y)
    reasons = ScorecardReasons(card, TEXTS.__getitem__, k=5)
    lost = card.points_lost(X.head(20))
    assert np.allclose(reasons.contributions(X.head(20)), lost[card.features_].to_numpy())
    for i, row in enumerate(reasons.top_reasons(X.head(20))):
        expected = lost.iloc[i][lost.iloc[i] > 0].sort_values(ascending=False)
        assert [r["feature"] for r in row] == list(expected.index)
        assert [r["contribution"] for r in row] == pytest.approx(list(expected.values))


def test_flat_table_columns_read_as_words_in_reasons():
    assert plain_name("NumberOfTime30-59DaysPastDueNotWorse") == (
        "Number of time 30-59 days past due not worse"
    )
    assert plain_name("LIMIT_BAL") == "LIMIT BAL"  # acronyms kept
    assert plain_name("DebtRatio") == "Debt ratio"
    assert plain_name("late_count_special") == "late count (special code)"


# Missing values with the catalog's rules: retail customers file no statements, a company may
# have none on file, a ratio may be undefined, and "days since the last lawsuit" is missing when
# there was none.
BOOK_FEATURES = [
    "segment",
    "leverage",
    "interest_coverage",
    "statement_age_days",
    "leverage_change_1y",
    "company_age_years",
    "days_since_lawsuit",
    "days_past_due_max_12m",
]
NAN = np.nan


@pytest.fixture
def book_rows():
    return pd.DataFrame(
        {
            "segment": pd.Categorical(
                ["retail", "sme", "sme", "corporate", "sme"], categories=SEGMENTS
            ),
            "leverage": [NAN, NAN, 0.8, 0.9, 0.5],
            "interest_coverage": [NAN, NAN, NAN, 2.0, 3.0],  # row 2: no interest expense
            "statement_age_days": [NAN, NAN, 200.0, 100.0, 90.0],
            "leverage_change_1y": [NAN, NAN, NAN, 0.1, NAN],
            "company_age_years": [NAN, 4.0, 7.0, 30.0, 12.0],
            "days_since_lawsuit": [NAN, NAN, NAN, 30.0, NAN],
            "days_past_due_max_12m": [0.0, 10.0, 0.0, 0.0, 0.0],
        }
    )


BOOK_CONTRIB = np.array(
    [
        # seg  lev   cover  age   chg   coage since dpd  bias
        [-0.10, 0.30, 0.20, 0.10, 0.05, 0.25, 0.40, 0.01, -2.0],  # retail: nothing on file
        [0.02, 0.30, 0.20, 0.10, 0.05, -0.03, 0.40, 0.15, -2.0],  # sme with no statement
        [0.02, 0.01, 0.35, 0.02, 0.07, -0.03, 0.40, -0.1, -2.0],  # cover undefined, no prior
        [0.01, 0.50, -0.2, 0.03, 0.04, -0.10, 0.20, -0.1, -2.0],  # all on file
        [0.01, 0.01, -0.1, 0.03, 0.30, -0.10, 0.60, -0.1, -2.0],  # no prior statement
    ]
)


@pytest.fixture
def book_explainer():
    return ReasonExplainer(
        FixedBooster(BOOK_CONTRIB),
        BOOK_FEATURES,
        reason_text,
        k=5,
        rules=reason_rules(BOOK_FEATURES),
    )


def by_feature(reasons: list[dict]) -> dict[str, dict]:
    return {r["feature"]: r for r in reasons}


def test_features_a_segment_never_has_are_never_reasons_their_effect_is_the_segment(
    book_rows, book_explainer
):
    retail = by_feature(book_explainer.top_reasons(book_rows)[0])
    assert list(retail) == ["segment", "days_past_due_max_12m"]
    assert retail["segment"]["value"] == "retail"
    assert retail["segment"]["text"] == reason_text("segment")
    # the segment's own -0.10 plus the four statement features and the company age
    assert retail["segment"]["contribution"] == pytest.approx(
        -0.10 + 0.30 + 0.20 + 0.10 + 0.05 + 0.25
    )


def test_a_company_without_a_statement_gets_one_reason_pooling_the_statement_features(
    book_rows, book_explainer
):
    sme = book_explainer.top_reasons(book_rows)[1]
    assert [r["feature"] for r in sme] == ["statement", "days_past_due_max_12m", "segment"]
    assert sme[0]["text"] == SOURCES["statement"].text == "No financial statement on file"
    assert sme[0]["value"] is None
    assert sme[0]["contribution"] == pytest.approx(0.30 + 0.20 + 0.10 + 0.05)  # prior year too


def test_a_missing_prior_year_statement_and_an_undefined_ratio_are_said_so(
    book_rows, book_explainer
):
    rows = book_explainer.top_reasons(book_rows)
    undefined = by_feature(rows[2])
    assert set(undefined) == {
        "interest_coverage",
        "prior_year_statement",
        "leverage",
        "segment",
        "statement_age_days",
    }
    assert undefined["interest_coverage"]["text"] == reason_text("interest_coverage") + ": missing"
    assert undefined["interest_coverage"]["value"] is None
    assert undefined["prior_year_statement"]["text"] == SOURCES["prior_year_statement"].text
    assert undefined["prior_year_statement"]["contribution"] == pytest.approx(0.07)
    assert undefined["leverage"] == {
        "feature": "leverage",
        "text": reason_text("leverage"),
        "value": 0.8,
        "contribution": 0.01,
    }
    assert by_feature(rows[4])["prior_year_statement"]["contribution"] == pytest.approx(0.30)


def test_days_since_an_event_that_never_happened_is_never_a_reason(book_rows, book_explainer):
    rows = book_explainer.top_reasons(book_rows)
    assert by_feature(rows[3])["days_since_lawsuit"]["value"] == 30.0  # a lawsuit 30 days ago
    for i in (0, 1, 2, 4):
        assert "days_since_lawsuit" not in by_feature(rows[i])


def test_pooling_keeps_each_rows_total_bar_events_that_never_happened(book_rows, book_explainer):
    raw = book_explainer.contributions(book_rows)
    pooled = book_explainer.reason_contributions(book_rows)
    since = BOOK_FEATURES.index("days_since_lawsuit")
    never = book_rows["days_since_lawsuit"].isna().to_numpy()
    assert np.allclose(pooled.sum(axis=1), raw.sum(axis=1) - np.where(never, raw[:, since], 0))
    long = book_explainer.top_reasons_frame(book_rows)
    parsed = book_explainer.top_reasons(book_rows)
    assert long["feature"].tolist() == [r["feature"] for row in parsed for r in row]
    assert long["text"].tolist() == [r["text"] for row in parsed for r in row]


def test_a_short_repayment_history_is_one_reason_for_the_shortest_window_it_misses():
    names = [
        "days_past_due_max_6m",
        "payment_ratio_6m",
        "days_past_due_max_12m",
        "payment_ratio_12m",
        "days_past_due_current",
    ]
    X = pd.DataFrame(
        {
            "days_past_due_max_6m": [NAN, 5.0, 0.0],
            "payment_ratio_6m": [NAN, 0.9, NAN],  # row 2: nothing was due
            "days_past_due_max_12m": [NAN, NAN, 0.0],
            "payment_ratio_12m": [NAN, NAN, 0.9],
            "days_past_due_current": [0.0, 0.0, 0.0],
        }
    )
    contrib = np.column_stack([np.full((3, 5), 0.1), np.zeros(3)])
    explainer = ReasonExplainer(
        FixedBooster(contrib), names, reason_text, k=5, rules=reason_rules(names)
    )
    four, nine, due = explainer.top_reasons(X)
    assert [(r["feature"], round(r["contribution"], 6)) for r in four] == [
        ("repayments_6m", 0.4),
        ("days_past_due_current", 0.1),
    ]
    assert "Repayment record incomplete over the last 6 closed months" in four[0]["text"]
    assert by_feature(nine)["repayments_12m"]["contribution"] == pytest.approx(0.2)
    assert by_feature(due)["payment_ratio_6m"]["text"].endswith(": missing")


def test_scorecard_reasons_follow_the_same_rules():
    from models.scorecard import WOEScorecard

    rng = np.random.default_rng(3)
    n = 3000
    segment = rng.choice(["retail", "sme", "corporate"], n, p=[0.6, 0.3, 0.1])
    company = segment != "retail"
    filed = company & (rng.random(n) < 0.85)
    leverage = np.where(filed, rng.uniform(0.2, 1.0, n), NAN)
    dpd = rng.poisson(1.0, n) * 10.0
    logit = -2.5 + 0.04 * dpd + np.where(filed, 2 * (leverage - 0.6), 0.8 * company)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame(
        {
            "segment": pd.Categorical(segment, categories=SEGMENTS),
            "leverage": leverage,
            "days_past_due_max_12m": dpd,
        }
    )
    card = WOEScorecard().fit(X, y)
    assert "leverage" in card.features_
    reasons = ScorecardReasons(card, reason_text, k=5, rules=reason_rules(card.features_))
    rows = reasons.top_reasons(X)
    for i, row in enumerate(rows):
        features = {r["feature"] for r in row}
        assert all(r["value"] is not None or r["feature"] == "statement" for r in row)
        if segment[i] == "retail":
            assert not features & {"leverage", "statement"}
        elif not filed[i]:
            assert "leverage" not in features
    no_statement = [r for i, row in enumerate(rows) if company[i] and not filed[i] for r in row]
    assert any(r["feature"] == "statement" for r in no_statement)
    lost = reasons.contributions(X)
    assert np.allclose(reasons.reason_contributions(X).sum(axis=1), lost.sum(axis=1))


def test_the_scorer_trained_on_snapshots_gives_no_reason_a_customer_cannot_have():
    """train_from_snapshots hands the catalog's rules to the scorer: retail customers get no
    statement reasons, companies without a statement one pooled reason, whatever the model."""
    from models.training import train_from_snapshots

    rng = np.random.default_rng(11)
    n = 2400
    segment = rng.choice(["retail", "sme", "corporate"], n, p=[0.6, 0.3, 0.1])
    filed = (segment != "retail") & (rng.random(n) < 0.8)
    leverage = np.where(filed, rng.uniform(0.2, 1.0, n), NAN)
    dpd = rng.poisson(1.0, n) * 10.0
    logit = -2.5 + 0.04 * dpd + np.where(filed, 2.5 * (leverage - 0.6), 0.3)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(float)
    frame = pd.DataFrame(
        {
            "customer_id": [f"C{i:05d}" for i in range(n)],
            "as_of": pd.date_range("2021-01-01", periods=6, freq="QS")[rng.integers(0, 6, n)],
            "segment": pd.Categorical(segment, categories=SEGMENTS),
            "leverage": leverage,
            "statement_age_days": np.where(filed, rng.uniform(60, 400, n), NAN),
            "days_past_due_max_12m": dpd,
            "default_flag": y,
        }
    )
    result = train_from_snapshots(frame, n_estimators=40)
    scorer = result.scorer
    # the same rules whichever candidate is champion: LightGBM, the scorecard or their blend
    scorer.booster_model = result.lgbm_model.booster_.model_to_string()
    scorer.scorecard = result.scorecard_model
    statement = {"leverage", "statement_age_days", "statement"}
    for weight in (1.0, 0.5, 0.0):
        scorer.lightgbm_weight, scorer._runtime = weight, None
        reasons = [json.loads(r) for r in scorer.score_frame(frame)["reasons"]]
        retail = [
            r["feature"] for i, row in enumerate(reasons) if segment[i] == "retail" for r in row
        ]
        assert retail and not statement & set(retail), weight
        unfiled = [
            r
            for i, row in enumerate(reasons)
            if segment[i] != "retail" and not filed[i]
            for r in row
        ]
        assert {r["feature"] for r in unfiled} & statement == {"statement"}, weight
        assert all(
            r["value"] is not None for row in reasons for r in row if r["feature"] != "statement"
        ), weight


# --- models.treeshap: the tabulated TreeSHAP against LightGBM's own pred_contrib ---


def treeshap_data(n: int, seed: int) -> pd.DataFrame:
    """Missing values in training (NaN missing type), a feature complete in training (missing
    type None: a missing value counts as 0), zeros, and a 40-level category (bitsets past one
    32-bit word)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "dpd": rng.poisson(1.5, n) * 10.0,
            "util": rng.uniform(-0.2, 1.2, n),
            "income": rng.lognormal(10, 0.6, n),
            "region": pd.Categorical.from_codes(
                rng.integers(0, 40, n), [f"r{i}" for i in range(40)]
            ),
        }
    )
    X.loc[rng.random(n) < 0.15, "income"] = np.nan
    X.loc[rng.random(n) < 0.1, "region"] = np.nan
    return X


def target(X: pd.DataFrame, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    region = X["region"].cat.codes.to_numpy()
    logit = (X["dpd"] / 20 + 1.5 * X["util"] - 0.3 * np.log(X["income"].fillna(5e3) / 2e4)
             + np.where(region % 3 == 0, 0.8, -0.4) + (region < 0) - 2.5)  # fmt: skip
    return (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)


def scoring_rows(X: pd.DataFrame) -> pd.DataFrame:
    """Rows with what training never had: util missing, an unseen region, exact zeros and the
    thresholds themselves."""
    rows = X.copy()
    rows.loc[rows.index[::7], "util"] = np.nan
    rows.loc[rows.index[::11], "dpd"] = 0.0
    rows.loc[rows.index[::13], "util"] = 0.0
    region = rows["region"].astype(object)
    region.iloc[::9] = "unseen"
    rows["region"] = pd.Categorical(region, categories=[*X["region"].cat.categories, "unseen"])
    return rows


@pytest.fixture(scope="module")
def treeshap_boosters():
    import lightgbm as lgb

    X = treeshap_data(3000, 1)
    y = target(X, 2)
    base = {"objective": "binary", "num_leaves": 15, "min_child_samples": 20, "verbosity": -1,
            "max_cat_to_onehot": 4, "cat_smooth": 1.0, "min_data_per_group": 10,
            "seed": 3}  # fmt: skip
    boosters = {
        "nan": lgb.train(base, lgb.Dataset(X, y), 60),
        "zero_as_missing": lgb.train({**base, "zero_as_missing": True}, lgb.Dataset(X, y), 60),
        # trees past 64 nodes: the one-row kernel's split-by-split patterns
        "wide": lgb.train(
            {**base, "num_leaves": 120, "min_child_samples": 5}, lgb.Dataset(X, y), 8
        ),
    }
    return boosters, X


def test_tabulated_treeshap_equals_pred_contrib_with_missing_values_and_categories(
    treeshap_boosters,
):
    from models.treeshap import TreeShap, lightgbm_matrix

    boosters, X = treeshap_boosters
    rows = scoring_rows(X.iloc[:1500])
    for name, booster in boosters.items():
        model = booster.dump_model()
        kinds = {(n["decision_type"], n["missing_type"]) for n in _nodes(model)}
        assert ("==", "NaN") in kinds or ("==", "None") in kinds, name  # categorical splits
        assert any(kind == "<=" for kind, _ in kinds), name
        tables = TreeShap.of(booster)
        assert tables is not None, name
        for n_iter in (None, 17):
            ours = TreeShap.of(booster, n_iter) if n_iter else tables
            phi, raw = ours.explain(lightgbm_matrix(booster, rows))
            reference = booster.predict(rows, pred_contrib=True, num_iteration=n_iter)
            assert np.abs(phi - reference).max() < 1e-6, (name, n_iter)
            assert np.array_equal(raw, booster.predict(rows, raw_score=True, num_iteration=n_iter))
    missing_types = {n["missing_type"] for n in _nodes(boosters["nan"].dump_model())}
    assert {"NaN", "None"} <= missing_types
    assert "Zero" in {n["missing_type"] for n in _nodes(boosters["zero_as_missing"].dump_model())}


def test_one_row_explains_as_the_batch_bit_for_bit(treeshap_boosters):
    """A one-row call (`kernels.explain_row`, what a customer online gets) gives the batch
    kernel's contributions and raw score of the same row exactly."""
    from models.treeshap import TreeShap, lightgbm_matrix

    boosters, X = treeshap_boosters
    assert max(_tree_sizes(boosters["wide"])) > 64 >= max(_tree_sizes(boosters["nan"]))
    for name, booster in boosters.items():
        tables = TreeShap.of(booster)
        matrix = lightgbm_matrix(booster, scoring_rows(X.iloc[:300]))
        phi, raw = tables.explain(matrix, threads=1)
        for i in range(len(matrix)):
            one_phi, one_raw = tables.explain(matrix[i : i + 1])
            assert np.array_equal(one_phi[0], phi[i]) and one_raw[0] == raw[i], (name, i)


@pytest.mark.parametrize(
    ("splits", "bits", "growth"),
    # leaves alone; small groups; whole trees; past the table budget
    [(0, 14, 8), (3, 6, 8), (14, 20, 1 << 30), (40, 60, 1 << 60)],
)
def test_any_grouping_of_leaves_gives_the_same_values(
    treeshap_boosters, monkeypatch, splits, bits, growth
):
    """Leaves summed into groups of any size (up to whole trees, and past the table budget,
    where the build falls back to smaller groups) keep pred_contrib's values and raw scores,
    one row as the batch."""
    from models import treeshap

    monkeypatch.setattr(treeshap, "GROUP_SPLITS", splits)
    monkeypatch.setattr(treeshap, "GROUP_BITS", bits)
    monkeypatch.setattr(treeshap, "GROUP_GROWTH", growth)
    boosters, X = treeshap_boosters
    rows = scoring_rows(X.iloc[:200])
    for name in ("nan", "wide"):
        booster = boosters[name]
        tables = treeshap.TreeShap.of(booster)
        matrix = treeshap.lightgbm_matrix(booster, rows)
        phi, raw = tables.explain(matrix, threads=1)
        assert np.abs(phi - booster.predict(rows, pred_contrib=True)).max() < 1e-6, name
        assert np.array_equal(raw, booster.predict(rows, raw_score=True)), name
        for i in range(0, len(matrix), 17):
            one_phi, one_raw = tables.explain(matrix[i : i + 1])
            assert np.array_equal(one_phi[0], phi[i]) and one_raw[0] == raw[i], (name, i)


def _tree_sizes(booster) -> list[int]:
    """The split nodes of each tree."""
    return [sum(1 for _ in _nodes({"tree_info": [t]})) for t in booster.dump_model()["tree_info"]]


def _nodes(model: dict):
    stack = [t["tree_structure"] for t in model["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            yield node
            stack += [node["left_child"], node["right_child"]]


def test_reason_explainer_uses_the_tables_and_agrees_with_pred_contrib(treeshap_boosters):
    boosters, X = treeshap_boosters
    booster, rows = boosters["nan"], scoring_rows(X.iloc[:400])
    fast = ReasonExplainer(booster, list(X.columns))
    slow = ReasonExplainer(booster, list(X.columns), fast=False)
    assert (fast.method, slow.method) == ("tables", "pred_contrib")
    contrib, raw = fast.explain(rows)
    reference, reference_raw = slow.explain(rows)
    assert np.abs(contrib - reference).max() < 1e-6
    assert np.array_equal(raw, reference_raw)
    assert np.abs(fast.contributions(rows) - slow.contributions(rows)).max() < 1e-6
    assert fast.explain(rows.iloc[:0])[0].shape == (0, X.shape[1] + 1)


def test_models_the_tables_do_not_take_fall_back_to_pred_contrib(treeshap_boosters, monkeypatch):
    import lightgbm as lgb

    from models import treeshap

    boosters, X = treeshap_boosters
    numeric = X[["dpd", "util", "income"]]
    y = target(X, 2)
    params = {"num_leaves": 7, "verbosity": -1, "seed": 3}
    linear = lgb.train({**params, "objective": "binary", "linear_tree": True},
                       lgb.Dataset(numeric, y), 10)  # fmt: skip
    three = lgb.train({**params, "objective": "multiclass", "num_class": 3},
                      lgb.Dataset(numeric, (y + (numeric["dpd"] > 10)).to_numpy()), 5)  # fmt: skip
    assert treeshap.TreeShap.of(linear) is None and treeshap.TreeShap.of(three) is None
    assert treeshap.TreeShap.of(FixedBooster(BOOK_CONTRIB)) is None
    monkeypatch.setattr(treeshap, "MAX_PATH_FEATURES", 1)  # paths too long to tabulate
    booster = boosters["nan"]
    explainer = ReasonExplainer(booster, list(X.columns))
    assert explainer.method == "pred_contrib"
    contrib, raw = explainer.explain(X)
    np.testing.assert_array_equal(contrib, booster.predict(X, pred_contrib=True))
    np.testing.assert_array_equal(raw, booster.predict(X, raw_score=True))


def test_reasons_json_is_json_dumps_of_the_top_reasons(book_rows, book_explainer, frame):
    expected = [json.dumps(r, default=str) for r in book_explainer.top_reasons(book_rows)]
    assert book_explainer.reasons_json(book_rows) == expected
    contrib = [[0.4, 0.9, -0.1, -2.0], [0.3, 0.2, 0.05, -2.0], [0.2, 0.2, 0.7, -2.0]]
    flat = ReasonExplainer(FixedBooster(contrib), ["dpd", "util", "region"], k=3)
    rows = frame.assign(dpd=[np.inf, 1e-300, np.nan], util=[0.1 + 0.2, -0.0, 7.0])
    rows["region"] = pd.Categorical(['nörth "q"', "south", None])
    expected = [json.dumps(r, default=str) for r in flat.top_reasons(rows)]
    assert flat.reasons_json(rows) == expected
    assert flat.reasons_json(rows, k=0) == ["[]"] * 3
