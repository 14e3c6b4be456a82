"""Early-warning rules on tiny frames: one test per rule, at the threshold, missing, no history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.decisions.early_warning import (
    RulesError,
    evaluate_signals,
    load_rules,
    parse_rules,
    roll_up,
)

RULES = load_rules(Path(__file__).with_name("engine_rules.yaml"))  # pinned, not the shipped
AS_OF = pd.Timestamp("2024-06-01")


def frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {"customer_id": [f"C{i}" for i in range(n)], "as_of": [AS_OF] * n}
    return pd.DataFrame({**base, **columns})


def fired(current, history=None, rule=None) -> dict[str, dict]:
    """customer -> evidence for one rule."""
    signals = evaluate_signals(current, history, RULES)
    signals = signals[signals["signal"] == rule] if rule else signals
    return {
        c: json.loads(e) for c, e in zip(signals["customer_id"], signals["evidence"], strict=True)
    }


# (rule, feature values: fires exactly at threshold, not just beyond it, not when missing)
CONDITION_CASES = [
    ("utilisation_high", {"utilisation_latest": [0.9, 0.8999, np.nan]}),
    ("utilisation_jump", {"utilisation_trend_3m": [0.2, 0.1999, np.nan]}),
    ("leverage_up", {"leverage_change_1y": [0.1, 0.0999, np.nan]}),
    ("legal_action", {"lawsuits_12m": [1, 0, np.nan]}),
]


@pytest.mark.parametrize(("rule", "values"), CONDITION_CASES)
def test_inclusive_threshold_rules(rule, values):
    assert list(fired(frame(**values), rule=rule)) == ["C0"]


@pytest.mark.parametrize(
    ("rule", "feature", "values"),
    [
        ("interest_coverage_low", "interest_coverage", [1.49, 1.5, np.nan]),
        ("current_ratio_low", "current_ratio", [0.99, 1.0, np.nan]),
        ("stale_statements", "statement_age_days", [457, 456, np.nan]),
    ],
)
def test_strict_threshold_rules_do_not_fire_at_the_threshold(rule, feature, values):
    got = fired(frame(**{feature: values}), rule=rule)
    assert got == {"C0": {feature: float(values[0])}}


def test_new_delinquency_needs_30dpd_now_and_no_earlier_30dpd_month():
    current = frame(
        days_past_due_current=[30, 29, 45, np.nan, 60],
        months_30dpd_6m=[1, 0, 2, 0, np.nan],
    )
    assert fired(current, rule="new_delinquency_30") == {
        "C0": {"days_past_due_current": 30.0, "months_30dpd_6m": 1.0}
    }


def test_payment_ratio_falling_compares_two_features_with_an_offset():
    current = frame(
        payment_ratio_3m=[0.8, 0.81, np.nan, 0.5, 2.0],
        payment_ratio_12m=[0.9, 0.9, 0.9, np.nan, 2.5],  # C4 pays twice what is due: no signal
    )
    assert fired(current, rule="payment_ratio_falling") == {
        "C0": {"payment_ratio_3m": 0.8, "payment_ratio_12m": 0.9}
    }


def test_complaint_spike_needs_both_conditions():
    current = frame(complaints_12m=[3, 3, 2, 5], days_since_complaint=[90, 91, 10, np.nan])
    assert list(fired(current, rule="complaint_spike")) == ["C0"]


def history(customers, as_of, pd_=None, grade=None) -> pd.DataFrame:
    return pd.DataFrame(
        {"customer_id": customers, "as_of": pd.to_datetime(as_of), "pd": pd_, "grade": grade}
    )


def test_pd_jump_needs_relative_and_absolute_rise_on_the_previous_run():
    # thresholds: +50 % and +0.01; C0 exactly at both, C1 relative only, C2 absolute only
    current = frame(pd=[0.03, 0.006, 0.15, 0.2], grade=["R5", "R4", "R7", "R8"])
    hist = history(
        ["C0", "C1", "C2", "C3", "C3"],
        ["2024-05-01", "2024-05-01", "2024-05-01", "2024-04-01", "2024-05-01"],
        pd_=[0.02, 0.002, 0.12, 0.01, 0.19],
        grade=["R5", "R2", "R7", "R4", "R8"],
    )
    got = fired(current, hist, "pd_jump")
    assert list(got) == ["C0"]  # C3 compares to May (0.19), not April
    assert got["C0"]["previous_pd"] == 0.02 and got["C0"]["previous_as_of"] == "2024-05-01"
    assert got["C0"]["relative_change"] == pytest.approx(0.5)


def test_pd_jump_ignores_runs_on_or_after_the_current_date():
    current = frame(pd=[0.3], grade=["R8"])
    hist = history(["C0"], ["2024-06-01"], pd_=[0.01], grade=["R4"])
    assert fired(current, hist, "pd_jump") == {}


def test_downgrade_by_notches_within_months():
    # 2 notches within 6 months fires (window edge inclusive); older history does not count
    current = frame(pd=[0.02] * 4, grade=["R5", "R5", "R5", "R6"])
    hist = history(
        ["C0", "C1", "C2", "C3"],
        ["2023-12-01", "2024-03-01", "2023-11-30", "2024-05-01"],
        pd_=[0.004] * 4,
        grade=["R3", "R4", "R1", "R5"],
    )
    got = fired(current, hist, "downgrade")
    assert got == {
        "C0": {"from_grade": "R3", "to_grade": "R5", "notches": 2, "since": "2023-12-01"}
    }


def test_first_run_without_history_skips_history_rules_and_says_so():
    current = frame(pd=[0.5], grade=["R8"], utilisation_latest=[0.95])
    for hist in (None, history([], [], [], [])):
        signals = evaluate_signals(current, hist, RULES)
        assert signals["signal"].tolist() == ["utilisation_high"]
        assert "no score history" in signals.attrs["skipped"]["pd_jump"]
        assert "no score history" in signals.attrs["skipped"]["downgrade"]


def test_missing_columns_are_reported_and_do_not_fire():
    signals = evaluate_signals(frame(pd=[0.1]), None, RULES)
    assert signals.empty
    assert "missing" in signals.attrs["skipped"]["current_ratio_low"]


def test_roll_up_levels_escalation_measures_and_green_population():
    current = frame(
        utilisation_latest=[0.95, 0.95, 0.1, 0.1],
        lawsuits_12m=[0, 1, 1, 0],
        interest_coverage=[5, 5, 1.0, 5],
    )
    signals = evaluate_signals(current, None, RULES)
    warnings = roll_up(signals, RULES, population=current).set_index("customer_id")
    assert warnings["level"].to_dict() == {"C0": "watch", "C1": "amber", "C2": "red", "C3": "green"}
    assert warnings.loc["C1", "signals"] == "legal_action,utilisation_high"
    assert warnings.loc["C2", "n_signals"] == 2  # two amber signals escalate to red
    assert "hand_to_collections" in json.loads(warnings.loc["C2", "measures"])
    assert json.loads(warnings.loc["C0", "measures"]) == ["increase_review_frequency"]
    assert json.loads(warnings.loc["C1", "evidence"])["legal_action"] == {"lawsuits_12m": 1.0}
    assert warnings.loc["C3", "signals"] == "" and json.loads(warnings.loc["C3", "measures"]) == []


def test_roll_up_of_no_signals_is_empty_or_all_green():
    signals = evaluate_signals(frame(pd=[0.1]), None, RULES)
    assert roll_up(signals, RULES).empty
    assert roll_up(signals, RULES, population=frame(pd=[0.1]))["level"].tolist() == ["green"]


def test_rules_file_errors_name_the_line():
    text = (
        "levels: {green: {}, watch: {}, amber: {}, red: {}}\n"
        "rules:\n"
        "  - name: x\n"
        "    severity: purple\n"
        "    when: [{feature: a, op: '>', value: 1}]\n"
    )
    with pytest.raises(RulesError, match=r"<rules>:4: rules.0.severity"):
        parse_rules(text)
    with pytest.raises(RulesError, match=r"needs relative, absolute"):
        parse_rules(
            text.replace("purple", "red").replace("    when", "    kind: pd_increase\n    when")
        )
