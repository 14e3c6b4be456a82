import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from models.prepare import (
    TablePreparer,
    infer_roles,
    protected_attributes,
    sentinel_codes,
)


def test_negative_codes_in_an_otherwise_non_negative_column_are_sentinels():
    s = pd.Series([-2, -1, 0, 1, 2, 3, 0, 5, -1, 4])
    assert sentinel_codes(s) == [-2.0, -1.0]


def test_genuine_negative_amounts_are_not_sentinels():
    balances = pd.Series([-200.0, -5.0, -3.0, -1.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0])
    assert sentinel_codes(balances) == []


def test_fractional_negative_values_are_not_sentinels():
    assert sentinel_codes(pd.Series([-0.5, 1.0, 2.0, 3.0])) == []


def test_96_98_above_a_gap_in_a_count_column_are_sentinels():
    counts = pd.Series([0] * 40 + [1] * 5 + [2, 3, 17, 96, 98])
    assert sentinel_codes(counts) == [96.0, 98.0]


def test_96_98_among_ages_are_genuine_values():
    ages = pd.Series([25, 40, 60, 80, 96, 98, 101, 109] * 5)
    assert sentinel_codes(ages) == []


def test_high_codes_in_many_rows_are_not_sentinels():
    # 2 of 10 rows (20 %) carry 99: more than the 5 % a code may hold.
    assert sentinel_codes(pd.Series([0, 1, 2, 3, 1, 0, 2, 1, 99, 99])) == []


def test_999_codes_above_a_ratio_column_are_sentinels():
    s = pd.Series([0.1, 0.5, 1.2, 3.0] * 10 + [999.0])
    assert sentinel_codes(s) == [999.0]


def test_protected_attributes_by_name():
    cols = ["SEX", "AGE", "MARRIAGE", "age", "Marital Status", "account_age_months", "income"]
    assert protected_attributes(cols) == ["SEX", "MARRIAGE", "Marital Status"]
    everything = ["SEX", "AGE", "MARRIAGE", "age", "Marital Status"]
    assert protected_attributes(cols, allow_age=False) == everything


@pytest.fixture
def table():
    """40 rows; late_count carries 96/98 in rows 2 and 4 (5 % of rows)."""
    n = 40
    late = [0, 1, 96, 2, 98, 0] + [i % 4 for i in range(n - 6)]
    arrears = [-1, 3, 4, np.nan, 12, 5] + [float(i % 7) for i in range(n - 6)]
    regions = ["north", "south", None, "north", "east", "south"] + ["north"] * (n - 6)
    return pd.DataFrame(
        {
            "Unnamed: 0": np.arange(1, n + 1),
            "target": [0, 1] * (n // 2),
            "region": regions,
            "late_count": late,
            "months_since_arrears": arrears,
            "income": [10.0, 20.0, np.nan, 15.0, 12.0, 30.0] + [11.0] * (n - 6),
            "country": ["tw"] * n,
            "age": np.arange(n) + 20,
            "as_of": pd.to_datetime(["2024-01-01"] * n),
        }
    )


def test_infer_roles_reports_every_column(table):
    roles = infer_roles(table, "target", time="as_of")
    assert roles["id"] == ["Unnamed: 0"]
    assert roles["time"] == "as_of"
    assert roles["dropped"] == {"country": "constant"}
    assert roles["categorical"] == ["region"]
    assert roles["numeric"] == ["late_count", "months_since_arrears", "income", "age"]
    assert roles["age_constrained"] == ["age"]
    # 96/98: two codes -> indicator; -1 alongside genuine NaN -> indicator.
    assert roles["sentinels"] == {"late_count": [96.0, 98.0], "months_since_arrears": [-1.0]}
    assert roles["special_indicators"] == ["late_count", "months_since_arrears"]


def test_infer_roles_keeps_protected_when_asked(table):
    roles = infer_roles(table, "target", time="as_of", drop_protected=False)
    assert "age" in roles["numeric"]
    assert roles["age_constrained"] == []


def test_age_is_kept_only_under_the_elderly_constraint(table):
    prep = TablePreparer(target="target", time="as_of").fit(table.assign(SEX=["F", "M"] * 20))
    assert prep.monotone_ == {"age": -1}  # risk may never rise with age
    assert "SEX" in prep.report_["dropped"] and "SEX" not in prep.feature_names_
    strict = TablePreparer(target="target", time="as_of", allow_age=False).fit(table)
    assert strict.report_["dropped"]["age"] == "protected attribute"
    assert strict.monotone_ == {}
    banded = infer_roles(table.assign(age=["18-25", "26-40"] * 20), "target")
    assert banded["dropped"]["age"].startswith("protected attribute (age, not numeric")


def test_infer_roles_names_unknown_columns(table):
    with pytest.raises(KeyError, match="not_there"):
        infer_roles(table, "target", exclude=("not_there",))


def test_shuffled_row_counter_is_still_an_id():
    df = pd.DataFrame({"Unnamed: 0": [5, 3, 9, 1], "x": [1.0, 2.0, 3.0, 4.0]})
    assert infer_roles(df, None)["id"] == ["Unnamed: 0"]


def test_single_code_without_missing_values_needs_no_indicator():
    df = pd.DataFrame({"months": [-1, 2, 3, 4, 5, 6]})
    roles = infer_roles(df, None)
    assert roles["sentinels"] == {"months": [-1.0]}
    assert roles["special_indicators"] == []


def test_transform_fixes_categories_and_turns_codes_into_nan(table):
    prep = TablePreparer(target="target", time="as_of").fit(table)
    out = prep.transform(table)
    assert list(out.columns) == [
        "region",
        "late_count",
        "months_since_arrears",
        "income",
        "age",
        "late_count_special",
        "months_since_arrears_special",
    ]
    assert list(out["region"].cat.categories) == ["east", "north", "south"]
    head = out.head(6)
    assert head["late_count"].fillna(-9).tolist() == [0.0, 1.0, -9, 2.0, -9, 0.0]
    assert head["late_count_special"].fillna(-9).tolist() == [-9, -9, 96.0, -9, 98.0, -9]
    assert head["months_since_arrears_special"].fillna(-9).tolist() == [-1.0, -9, -9, -9, -9, -9]
    assert head["months_since_arrears"].isna().tolist() == [True, False, False, True, False, False]
    assert out["late_count_special"].notna().sum() == 2
    assert all(out[c].dtype == float for c in out.columns if c != "region")


def test_unseen_category_becomes_missing_and_extra_columns_are_ignored(table):
    prep = TablePreparer(target="target", time="as_of").fit(table)
    new = table.head(2).assign(region=["west", "south"], extra=[1, 2])
    out = prep.transform(new)
    assert out["region"].isna().tolist() == [True, False]
    assert "extra" not in out.columns
    assert list(out["region"].cat.categories) == ["east", "north", "south"]


def test_numbers_in_a_text_column_are_matched_as_text():
    fit = pd.DataFrame({"grade": pd.Series(["1", "2", "3", "2"], dtype=object)})
    prep = TablePreparer().fit(fit)
    out = prep.transform(pd.DataFrame({"grade": pd.Series(["2", "4"], dtype=object)}))
    assert out["grade"].astype(object).tolist()[0] == "2"
    assert pd.isna(out["grade"].iloc[1])


def test_missing_column_at_transform_says_what_to_do(table):
    prep = TablePreparer(target="target", time="as_of").fit(table)
    with pytest.raises(KeyError, match="same table layout"):
        prep.transform(table.drop(columns=["income"]))


def test_sentinels_can_be_kept_for_the_scorecard(table):
    prep = TablePreparer(target="target", time="as_of", sentinels_to_nan=False).fit(table)
    out = prep.transform(table)
    assert "late_count_special" not in out.columns
    assert out["late_count"].head(6).tolist() == [0.0, 1.0, 96.0, 2.0, 98.0, 0.0]
    assert prep.sentinels_["late_count"] == [96.0, 98.0]


def test_preparer_clones_with_its_parameters():
    prep = TablePreparer(id="cid", exclude=("x",), special_indicators=False)
    assert clone(prep).get_params()["exclude"] == ("x",)


def test_category_columns_match_text_columns_by_spelling():
    fit = pd.DataFrame({"grade": pd.Categorical([1, 2, 1, 2]), "x": [0.0, 1.0, 2.0, 3.0]})
    prep = TablePreparer().fit(fit)
    assert prep.categories_ == {"grade": ["1", "2"]}
    as_text = prep.transform(pd.DataFrame({"grade": ["2", "3", None], "x": [1.0, 2.0, 3.0]}))
    as_category = prep.transform(
        pd.DataFrame({"grade": pd.Categorical([2, 3, None]), "x": [1.0, 2.0, 3.0]})
    )
    assert as_text["grade"].tolist()[0] == as_category["grade"].tolist()[0] == "2"
    assert as_text["grade"].isna().tolist() == as_category["grade"].isna().tolist()
    assert as_category["grade"].isna().tolist() == [False, True, True]


def test_infinite_values_are_not_codes_and_do_not_break_fitting():
    s = pd.Series([np.inf, 1.0, -np.inf, 2.0] * 10)
    assert sentinel_codes(s) == []
    out = TablePreparer().fit_transform(pd.DataFrame({"ratio": s, "n": np.arange(40) % 4}))
    assert np.isinf(out["ratio"]).sum() == 20
