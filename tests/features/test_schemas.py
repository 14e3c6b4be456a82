"""The data contract: each kind of bad input is rejected with its key, column and reason."""

from __future__ import annotations

import pandas as pd
import pytest

from features.schemas import (
    ContractError,
    RejectRateExceeded,
    enforce_reject_rate,
    validate_tables,
)


def customers(**overrides) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C2", "C3"],
            "segment": ["corporate", "sme", "retail"],
            "industry": ["retail_trade", "manufacturing", "consumer"],
            "region": ["north", "south", "north"],
            "onboarded_on": ["2019-01-01", "2020-06-15", "2021-03-01"],
            "founded_on": ["2001-05-01", None, None],
        }
    )
    return df.assign(**overrides)


def repayments(**overrides) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C1", "C2"],
            "month": ["2023-01-01", "2023-02-01", "2023-01-01"],
            "credit_limit": ["1000", "1000", "500"],
            "balance": ["200", "-15.5", "0"],
            "amount_due": ["50", None, "0"],
            "amount_paid": ["50", "0", "0"],
            "days_past_due": ["0", "30", "0"],
        }
    )
    return df.assign(**overrides)


def statements(**overrides) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "period_end": ["2022-12-31", "2022-12-31"],
            "published_on": ["2023-03-31", "2023-04-30"],
            "revenue": [1000.0, 200.0],
            "ebit": [-50.0, 20.0],
            "interest_expense": [10.0, 2.0],
            "net_income": [-70.0, 15.0],
            "total_assets": [800.0, 150.0],
            "total_liabilities": [900.0, 100.0],
            "current_assets": [300.0, 60.0],
            "current_liabilities": [350.0, 40.0],
            "cash": [20.0, 10.0],
            "equity": [-100.0, 50.0],
        }
    )
    return df.assign(**overrides)


def events(**overrides) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "customer_id": ["C1", "C2"],
            "occurred_on": ["2023-01-10", "2023-02-11"],
            "type": ["lawsuit", "complaint"],
            "severity": [3, 1],
        }
    )
    return df.assign(**overrides)


def book(**tables) -> dict[str, pd.DataFrame]:
    base = {
        "customers": customers(),
        "financial_statements": statements(),
        "repayments": repayments(),
        "events": events(),
        "defaults": pd.DataFrame(
            {"customer_id": ["C2"], "defaulted_on": ["2023-06-01"], "reason": ["90dpd"]}
        ),
    }
    base.update(tables)
    return base


def rejects_of(result, table: str) -> list[tuple[str, str, str]]:
    r = result.rejects[result.rejects["table"] == table]
    return list(zip(r["key"], r["column"], r["reason"], strict=True))


def test_valid_book_is_accepted_whole_and_coerced_to_contract_types():
    result = validate_tables(book())
    assert result.rejects.empty
    assert result.counts.set_index("table")["accepted"].to_dict() == {
        "customers": 3,
        "financial_statements": 2,
        "repayments": 3,
        "events": 2,
        "defaults": 1,
    }
    rep = result.accepted["repayments"]
    assert rep["month"].dtype == "datetime64[ns]"
    assert rep["days_past_due"].dtype == "int64"
    assert rep["balance"].tolist() == [200.0, -15.5, 0.0]
    assert rep["amount_due"].isna().tolist() == [False, True, False]
    assert result.accepted["customers"]["founded_on"].isna().sum() == 2


def test_non_numeric_amount_rejects_the_row_with_its_key():
    result = validate_tables(book(repayments=repayments(credit_limit=["1000", "n/a", "500"])))
    assert rejects_of(result, "repayments") == [
        ("customer_id=C1, month=2023-02-01", "credit_limit", "not a number")
    ]
    assert len(result.accepted["repayments"]) == 2


def test_unparsable_date_rejects_the_row():
    result = validate_tables(
        book(customers=customers(onboarded_on=["2019-01-01", "15/06/2020", "x"]))
    )
    assert [(k, c) for k, c, _ in rejects_of(result, "customers")] == [
        ("customer_id=C2", "onboarded_on"),
        ("customer_id=C3", "onboarded_on"),
    ]
    assert rejects_of(result, "customers")[0][2].startswith("not a date")


def test_fractional_and_infinite_numbers_are_rejected():
    rep = repayments(days_past_due=["0", "1.5", "0"], balance=["inf", "0", "0"])
    result = validate_tables(book(repayments=rep))
    assert sorted(rejects_of(result, "repayments")) == [
        ("customer_id=C1, month=2023-01-01", "balance", "not a finite number"),
        ("customer_id=C1, month=2023-02-01", "days_past_due", "not a whole number"),
    ]


def test_missing_value_in_a_required_column_is_rejected():
    result = validate_tables(book(repayments=repayments(amount_paid=["50", None, "0"])))
    assert rejects_of(result, "repayments") == [
        ("customer_id=C1, month=2023-02-01", "amount_paid", "missing value")
    ]


def test_missing_column_fails_the_whole_table_naming_table_and_column():
    with pytest.raises(ContractError, match=r"'repayments' is missing column\(s\): days_past_due"):
        validate_tables(book(repayments=repayments().drop(columns="days_past_due")))


def test_missing_customers_table_and_unknown_tables_are_contract_errors():
    with pytest.raises(ContractError, match="customers table is missing"):
        validate_tables({"repayments": repayments()})
    with pytest.raises(ContractError, match="unknown table"):
        validate_tables(book(loans=pd.DataFrame()))


def test_optional_columns_may_be_absent_and_are_added_empty():
    result = validate_tables(book(customers=customers().drop(columns="founded_on")))
    assert result.accepted["customers"]["founded_on"].isna().all()
    assert result.accepted["financial_statements"]["inventory"].isna().all()


def test_exact_duplicate_keeps_the_first_copy():
    rep = pd.concat([repayments(), repayments().iloc[[2]]], ignore_index=True)
    result = validate_tables(book(repayments=rep))
    assert rejects_of(result, "repayments") == [
        ("customer_id=C2, month=2023-01-01", "*", "duplicate row")
    ]
    assert len(result.accepted["repayments"]) == 3


def test_conflicting_rows_with_one_key_are_all_rejected():
    rep = pd.concat([repayments(), repayments(balance=["0", "0", "999"]).iloc[[2]]])
    result = validate_tables(book(repayments=rep))
    assert (
        rejects_of(result, "repayments")
        == [
            (
                "customer_id=C2, month=2023-01-01",
                "customer_id,month",
                "conflicting rows share this key",
            )
        ]
        * 2
    )
    assert result.accepted["repayments"]["customer_id"].tolist() == ["C1", "C1"]


def test_duplicate_customer_id_is_rejected():
    cust = pd.concat([customers(), customers(region=["west", "x", "y"]).iloc[[0]]])
    result = validate_tables(book(customers=cust))
    assert {k for k, _, _ in rejects_of(result, "customers")} == {"customer_id=C1"}
    # C1's children now belong to no accepted customer
    assert ("customer_id", "customer was rejected in customers") in {
        (c, r) for _, c, r in rejects_of(result, "repayments")
    }


def test_negative_amounts_rejected_only_where_impossible():
    rep = repayments(credit_limit=["-1", "1000", "500"])
    fin = statements(revenue=[-5.0, 200.0])
    result = validate_tables(book(repayments=rep, financial_statements=fin))
    assert [c for _, c, _ in rejects_of(result, "repayments")] == ["credit_limit"]
    assert rejects_of(result, "financial_statements") == [
        (
            "customer_id=C1, period_end=2022-12-31, published_on=2023-03-31",
            "revenue",
            "negative amount: must be >= 0",
        )
    ]
    # negative balance, ebit, net income and equity are legitimate
    assert result.accepted["repayments"]["balance"].min() == -15.5
    assert result.accepted["financial_statements"]["equity"].tolist() == [50.0]


def test_negative_days_past_due_is_rejected():
    result = validate_tables(book(repayments=repayments(days_past_due=["0", "-30", "0"])))
    assert rejects_of(result, "repayments") == [
        ("customer_id=C1, month=2023-02-01", "days_past_due", "days_past_due must be >= 0")
    ]


def test_month_must_be_first_day_of_month():
    result = validate_tables(
        book(repayments=repayments(month=["2023-01-01", "2023-02-28", "2023-01-01"]))
    )
    assert [c for _, c, _ in rejects_of(result, "repayments")] == ["month"]


def test_statement_published_before_period_end_is_rejected():
    fin = statements(published_on=["2022-12-30", "2023-04-30"])
    result = validate_tables(book(financial_statements=fin))
    assert rejects_of(result, "financial_statements") == [
        (
            "customer_id=C1, period_end=2022-12-31, published_on=2022-12-30",
            "period_end",
            "published_on is before period_end",
        )
    ]


def test_founded_after_onboarded_is_rejected():
    result = validate_tables(book(customers=customers(founded_on=["2020-01-01", None, None])))
    assert rejects_of(result, "customers") == [
        ("customer_id=C1", "founded_on", "founded_on is after onboarded_on")
    ]


def test_dates_after_the_reference_date_are_rejected_only_when_asked():
    assert validate_tables(book()).rejects.empty
    result = validate_tables(book(), reference_date="2023-03-01")
    assert rejects_of(result, "financial_statements") == [
        (
            "customer_id=C1, period_end=2022-12-31, published_on=2023-03-31",
            "published_on",
            "date is after the reference date 2023-03-01",
        ),
        (
            "customer_id=C2, period_end=2022-12-31, published_on=2023-04-30",
            "published_on",
            "date is after the reference date 2023-03-01",
        ),
    ]
    assert [c for _, c, _ in rejects_of(result, "defaults")] == ["defaulted_on"]


def test_unknown_customer_in_child_table_is_rejected():
    result = validate_tables(book(events=events(customer_id=["C1", "C99"])))
    assert rejects_of(result, "events") == [
        ("customer_id=C99, occurred_on=2023-02-11, type=complaint, row=1", "customer_id",
         "unknown customer: not in customers")
    ]  # fmt: skip


def test_invalid_segment_event_type_and_severity_are_rejected():
    cust = customers(segment=["corporate", "bank", "retail"])
    ev = events(type=["lawsuit", "rumour"], severity=[4, 1])
    result = validate_tables(book(customers=cust, events=ev))
    assert rejects_of(result, "customers") == [
        ("customer_id=C2", "segment", "invalid value: must be one of corporate, sme, retail")
    ]
    assert sorted(c for _, c, _ in rejects_of(result, "events")) == [
        "customer_id",
        "severity",
        "type",
    ]


def test_rows_in_equals_accepted_plus_rejected_with_several_reasons_per_row():
    rep = repayments(credit_limit=["x", "1000", "-1"], customer_id=["C1", "C1", "C404"])
    result = validate_tables(book(repayments=rep))
    counts = result.counts.set_index("table").loc["repayments"]
    assert (counts["rows_in"], counts["accepted"], counts["rejected"]) == (3, 1, 2)
    assert sorted(c for _, c, _ in rejects_of(result, "repayments")) == [
        "credit_limit",
        "credit_limit",
        "customer_id",
    ]  # the C404 row is both negative and unknown


def test_typed_input_with_time_zones_and_odd_index_is_normalised():
    rep = repayments().set_index(pd.Index([10, 20, 30]))
    rep["month"] = pd.to_datetime(rep["month"]).dt.tz_localize("Europe/Berlin")
    rep["credit_limit"] = rep["credit_limit"].astype(float)
    result = validate_tables(book(repayments=rep))
    assert result.rejects.empty
    assert result.accepted["repayments"]["month"].tolist() == list(
        pd.to_datetime(["2023-01-01", "2023-02-01", "2023-01-01"])
    )


def test_enforce_reject_rate_names_rejects_file_and_how_to_raise_threshold():
    rep = repayments(credit_limit=["x", "1000", "500"])  # 1 of 3 repayment rows
    result = validate_tables(book(repayments=rep), max_reject_rate=0.05)
    assert result.exceeded == ["repayments"]
    with pytest.raises(RejectRateExceeded) as err:
        enforce_reject_rate(result, rejects_path="/tmp/x/rejects.csv")
    message = str(err.value)
    assert "repayments: 1 of 3 rows rejected (33.3%)" in message
    assert "/tmp/x/rejects.csv" in message
    assert "--max-reject-rate" in message and "CREDITRISK_MAX_REJECT_RATE" in message
    enforce_reject_rate(result, max_rate=0.34)  # at or under the limit passes


def test_max_reject_rate_must_be_a_share():
    with pytest.raises(ValueError, match="between 0 and 1"):
        validate_tables(book(), max_reject_rate=5)


def test_identical_events_are_kept_because_events_have_no_key():
    ev = pd.concat([events(), events().iloc[[0]]], ignore_index=True)
    result = validate_tables(book(events=ev))
    assert result.rejects.empty
    assert len(result.accepted["events"]) == 3


def test_missing_key_value_is_shown_as_missing_in_the_key():
    result = validate_tables(book(repayments=repayments(customer_id=["C1", None, "C2"])))
    assert rejects_of(result, "repayments") == [
        ("customer_id=<missing>, month=2023-02-01", "customer_id", "missing value")
    ]
