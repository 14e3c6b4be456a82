import math

import numpy as np
import pandas as pd
import pytest

from models.prepare import TablePreparer
from models.scaling import factor_offset
from models.scorecard import WOEScorecard, cart_prebins, scorecard_matrix


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 3000
    utilisation = rng.uniform(0, 1, n)
    months_since_arrears = rng.integers(0, 60, n).astype(float)
    never = rng.uniform(size=n) < 0.2
    months_since_arrears[never] = -1  # sentinel: never in arrears, the safest group
    region = rng.choice(["north", "south", "east"], n)
    logit = -2.5 + 3.0 * utilisation - 1.5 * never + 0.8 * (region == "south")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame(
        {
            "utilisation": utilisation,
            "months_since_arrears": months_since_arrears,
            "region": region,
            "noise": rng.normal(size=n),
        }
    )
    return X, y


@pytest.fixture(scope="module")
def card(data):
    X, y = data
    return WOEScorecard().fit(X, y)


def test_weak_features_are_left_out(card):
    assert "noise" not in card.features_
    assert set(card.features_) == {"utilisation", "months_since_arrears", "region"}
    assert card.iv_["noise"] < 0.02


def test_sentinel_code_gets_a_bin_of_its_own(card):
    assert card.special_codes_ == {"months_since_arrears": [-1.0]}
    table = card.scorecard_table_
    special = table[(table.feature == "months_since_arrears") & (table.bin == "-1")]
    assert len(special) == 1
    assert special["count"].iloc[0] == pytest.approx(0.2 * 3000, rel=0.1)
    assert (
        special["event_rate"].iloc[0]
        < table[table.feature == "months_since_arrears"]["event_rate"].max()
    )


def test_table_has_one_row_per_bin_and_woe_coefficients_are_negative(card):
    table = card.scorecard_table_
    assert list(table.columns) == [
        "feature",
        "bin",
        "count",
        "event_rate",
        "woe",
        "iv",
        "coefficient",
        "points",
    ]
    assert (card.coef_ <= 0).all()
    assert set(table.feature) == set(card.features_)


def test_points_sum_to_the_scaled_log_odds(data, card):
    X, _ = data
    pd_ = card.predict_proba(X.head(50))[:, 1]
    factor, offset = factor_offset(600, 50, 20)
    assert factor == pytest.approx(20 / math.log(2))
    expected = offset + factor * np.log((1 - pd_) / pd_)
    assert np.allclose(card.points(X.head(50)).sum(axis=1), expected)
    assert np.array_equal(card.credit_score(X.head(50)), np.rint(expected).astype(int))


def test_points_per_row_come_from_the_table(data, card):
    X, _ = data
    row = X.head(1)
    points = card.points(row).iloc[0]
    table = card.scorecard_table_
    for feature in card.features_:
        assert np.isclose(table.loc[table.feature == feature, "points"], points[feature]).any()
    region = table[(table.feature == "region") & (table.bin == f"[{row.region.iloc[0]}]")]
    assert points["region"] == pytest.approx(region["points"].iloc[0])


def test_points_lost_are_zero_in_the_best_bin_and_positive_elsewhere(data, card):
    X, _ = data
    lost = card.points_lost(X)
    assert (lost >= 0).all().all()
    assert (lost.min() == 0).all()
    best = card.scorecard_table_.groupby("feature")["points"].max()
    assert np.allclose(lost.iloc[0], best[lost.columns] - card.points(X.head(1)).iloc[0])


def test_unseen_category_and_missing_values_score(card):
    new = pd.DataFrame(
        {
            "utilisation": [np.nan, 0.5],
            "months_since_arrears": [-1.0, np.nan],
            "region": ["west", None],
            "noise": [0.0, 0.0],
        }
    )
    p = card.predict_proba(new)[:, 1]
    assert np.isfinite(p).all()


def test_no_informative_feature_is_an_error():
    # Each value of x has exactly a 50 % event rate: IV is 0.
    X = pd.DataFrame({"x": [0.0, 1.0] * 250})
    y = np.array([0, 0, 1, 1] * 125)
    with pytest.raises(ValueError, match="min_iv"):
        WOEScorecard().fit(X, y)


def test_rare_codes_are_binned_with_their_neighbours_not_apart():
    rng = np.random.default_rng(5)
    n = 4000
    late_30 = rng.poisson(0.4, n).astype(float)
    late_90 = rng.poisson(0.2, n).astype(float)
    coded = np.arange(n) % 100 == 0  # 1 % of rows carry 98 in both columns
    late_30[coded] = late_90[coded] = 98.0
    logit = -2.5 + 0.8 * np.minimum(late_30, 5) + 1.0 * np.minimum(late_90, 5)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"late_30": late_30, "late_90": late_90})
    card = WOEScorecard().fit(X, y)  # 1 % < min_bin_size 5 %: 98 joins the top bin
    assert card.special_codes_ == {}
    assert not (card.scorecard_table_["bin"] == "98").any()
    apart = WOEScorecard(min_bin_size=0.01).fit(X, y)
    assert apart.special_codes_ == {"late_30": [98.0], "late_90": [98.0]}


def test_monotone_feature_never_gives_fewer_points_to_higher_values():
    # U-shaped risk in age: the old are riskier again, which a scorecard may not learn (Reg B).
    rng = np.random.default_rng(5)
    n = 4000
    age = rng.uniform(20, 90, n)
    logit = -2.0 + 0.0015 * (age - 55) ** 2
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"age": age})
    free = WOEScorecard().fit(X, y).scorecard_table_
    held = WOEScorecard(monotone={"age": -1}).fit(X, y).scorecard_table_

    def points_by_age(table):
        numeric = table[table["bin"].str.startswith(("(", "["))]
        return numeric["points"].to_numpy()

    assert np.any(np.diff(points_by_age(free)) < 0)  # unconstrained: the old lose points
    assert np.all(np.diff(points_by_age(held)) >= 0)


def _sklearn_prebins(x, y, max_leaves, min_leaf):
    from sklearn.tree import DecisionTreeClassifier, _tree

    tree = DecisionTreeClassifier(min_samples_leaf=min_leaf, max_leaf_nodes=max_leaves)
    splits = np.unique(tree.fit(x.reshape(-1, 1), y).tree_.threshold)
    return splits[splits != _tree.TREE_UNDEFINED]


COLUMNS = {
    "normal": lambda rng, n: rng.normal(size=n),
    "integers": lambda rng, n: rng.integers(0, 15, n).astype(float),  # many ties
    "rounded": lambda rng, n: np.round(rng.lognormal(size=n), 2),
    "large": lambda rng, n: rng.exponential(size=n) * 1e5,  # float32 rounding matters
}


@pytest.mark.parametrize("kind", list(COLUMNS))
def test_cart_prebins_are_sklearns_tree_splits(kind):
    rng = np.random.default_rng(len(kind))
    for _ in range(15):
        n = int(rng.integers(50, 4000))
        x = COLUMNS[kind](rng, n)
        z = (x - np.median(x)) / (np.std(x) + 1e-9) * rng.random()
        y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(float)
        leaves, min_leaf = int(rng.integers(2, 25)), int(np.ceil(rng.choice([0.01, 0.05]) * n))
        np.testing.assert_array_equal(
            cart_prebins(x, y, leaves, min_leaf), _sklearn_prebins(x, y, leaves, min_leaf)
        )


def test_cart_prebins_of_a_constant_or_pure_column_are_none():
    assert cart_prebins(np.ones(100), np.r_[np.zeros(50), np.ones(50)], 20, 5).size == 0
    assert cart_prebins(np.arange(100.0), np.zeros(100), 20, 5).size == 0
    assert cart_prebins(np.array([]), np.array([]), 20, 5).size == 0


def test_scorecard_with_own_prebins_equals_optbinnings_own_cart(data, card, monkeypatch):
    X, y = data
    monkeypatch.setattr(WOEScorecard, "_prebins", lambda self, values, y, codes: np.array([]))
    theirs = WOEScorecard().fit(X, y)  # no user splits: optbinning's sklearn tree pre-bins
    pd.testing.assert_frame_equal(card.scorecard_table_, theirs.scorecard_table_)
    np.testing.assert_array_equal(card.decision_function(X), theirs.decision_function(X))


def test_contributions_sum_to_the_log_odds_and_centre_on_the_training_rows(data, card):
    X, _ = data
    with_bias = card.contributions(X, with_bias=True)
    assert with_bias.shape == (len(X), len(card.features_) + 1)
    np.testing.assert_allclose(with_bias.sum(axis=1), card.decision_function(X), atol=1e-10)
    np.testing.assert_allclose(card.contributions(X).mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_array_equal(card.contributions(X), with_bias[:, :-1])


def test_the_scorecard_reads_codes_put_back_from_the_prepared_rows():
    """Codes come back from the `_special` column (two codes and missing values) or, where the
    preparer keeps none (one code, never missing), from the missing values themselves."""
    rng = np.random.default_rng(2)
    n = 2000
    late = rng.poisson(0.5, n).astype(float)
    late[rng.random(n) < 0.02] = 96.0
    late[rng.random(n) < 0.02] = 98.0
    late[rng.random(n) < 0.05] = np.nan
    months = rng.integers(0, 60, n).astype(float)
    months[rng.random(n) < 0.2] = -1.0
    raw = pd.DataFrame({"late": late, "months": months, "util": rng.uniform(size=n)})
    preparer = TablePreparer().fit(raw)
    assert preparer.specials_ == ["late"] and set(preparer.sentinels_) == {"late", "months"}
    keeping = TablePreparer(sentinels_to_nan=False).fit(raw).transform(raw)
    pd.testing.assert_frame_equal(scorecard_matrix(preparer, preparer.transform(raw)), keeping)


def test_binnings_and_selection_are_optbinnings_binning_process(data, card):
    """Each variable is binned as optbinning's BinningProcess bins it, and IVs and the features
    kept are the ones its summary gives (the process itself also runs a quality analysis)."""
    from optbinning import BinningProcess

    X, y = data
    inputs = card._binning_input(X, card.variables_)
    process = BinningProcess(
        card.variables_,
        max_n_prebins=card.max_n_prebins,
        min_prebin_size=card._min_prebin_size(),
        min_bin_size=card.min_bin_size,
        categorical_variables=card.categorical_ or None,
        selection_criteria={"iv": {"min": card.min_iv}},
        binning_fit_params=card._fit_params(inputs, y),
    ).fit(inputs, y)
    summary = process.summary().set_index("name")["iv"].astype(float)
    pd.testing.assert_series_equal(
        card.iv_, summary.sort_values(ascending=False), check_names=False
    )
    kept = [c for c in card.variables_ if card.iv_[c] >= card.min_iv]
    assert kept == list(process.get_support(names=True))
    for name in card.variables_:
        ours, theirs = card.binnings_[name], process.get_binned_variable(name)
        pd.testing.assert_frame_equal(ours.binning_table.build(), theirs.binning_table.build())
