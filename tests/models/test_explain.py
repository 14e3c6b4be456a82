import json
import warnings

import numpy as np
import pandas as pd
import pytest

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


def test_text_falls_back_to_the_feature_name_and_missing_values_are_null(frame, explainer):
    row = explainer.top_reasons(frame, k=3)[2]
    assert row[0]["text"] == "region"
    assert row[0]["value"] is None
    assert row[1]["value"] is None  # dpd is NaN in this row


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
