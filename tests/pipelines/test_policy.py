"""Credit policy: validation with line numbers, and the vectorised decision."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.decisions.policy import DEFAULT_PATH, PolicyError, decide, load_policy, parse_policy

GRADES = ["R1", "R2", "D"]
GOOD = """\
version: 1
rules:
  - grades: [R1, R2]
    limit: {cap: 1000, revenue_multiple: 0.5, current_limit_multiple: 2}
    term_days: 60
    conditions: [none]
    approval: automatic
  - grades: [D]
    limit: {cap: 0}
    term_days: 0
    conditions: [prepayment, collateral]
    approval: credit_committee
"""


def problems(text: str) -> list[tuple[int | None, str]]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, GRADES)
    return info.value.problems


def test_shipped_policy_is_valid_for_the_master_scale():
    policy = load_policy(DEFAULT_PATH)
    assert {g for r in policy.rules for g in r.grades} == {f"R{i}" for i in range(1, 9)} | {"D"}


def test_overlapping_grades_refused_with_line():
    bad = GOOD.replace("grades: [D]", "grades: [D, R2]")
    [(line, msg)] = problems(bad)
    assert line == 8 and "overlapping grades: R2" in msg and "line 3" in msg


def test_missing_grade_refused():
    bad = GOOD.replace("grades: [R1, R2]", "grades: [R1]")
    [(line, msg)] = problems(bad)
    assert line == 2 and "missing grade(s) ['R2']" in msg


def test_negative_limit_refused_with_line():
    [(line, msg)] = problems(GOOD.replace("cap: 1000", "cap: -1000"))
    assert line == 4 and "negative cap -1000" in msg and "rules.0.limit.cap" in msg


def test_negative_multiple_refused():
    [(line, msg)] = problems(GOOD.replace("revenue_multiple: 0.5", "revenue_multiple: -0.5"))
    assert line == 4 and "negative revenue_multiple" in msg


def test_unknown_condition_refused_with_line():
    [(line, msg)] = problems(GOOD.replace("[prepayment, collateral]", "[prepayment, colateral]"))
    assert line == 11 and "unknown condition 'colateral'" in msg and "guarantee" in msg


def test_unknown_approval_and_grade_and_key_refused():
    assert "unknown approval level 'boss'" in problems(GOOD.replace("automatic", "boss"))[0][1]
    assert "unknown grade 'R9'" in problems(GOOD.replace("[R1, R2]", "[R1, R2, R9]"))[0][1]
    found = problems(GOOD.replace("term_days: 60", "term: 60"))
    assert (5, "rules.0.term: unknown key 'term'; check the spelling") in found
    assert (3, "rules.0.term_days: Field required") in found


def test_load_names_the_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("cap: 1000", "cap: -1"))
    with pytest.raises(PolicyError, match=rf"{path}:4: "):
        load_policy(path, GRADES)
    with pytest.raises(PolicyError, match="file not found"):
        load_policy(tmp_path / "none.yaml", GRADES)


def test_not_yaml_names_line():
    assert problems("rules: [\n  - a: b\n  c")[0][0] is not None


def test_decide_takes_the_binding_minimum():
    policy = parse_policy(GOOD, GRADES)
    scored = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "grade": ["R1", "R2", "R1", "D", "R1"],
            "revenue_latest": [1000.0, 10000.0, np.nan, 5000.0, 800.0],
            "credit_limit_latest": [1000.0, 300.0, np.nan, 100.0, 200.0],
        }
    )
    out = decide(scored, policy)
    # a: cap 1000, 500, 2000 -> 500 revenue; b: 1000, 5000, 600 -> 600 current limit;
    # c: inputs missing -> cap 1000; d: grade D cap 0; e: 1000, 400, 400 tie -> revenue (earlier)
    assert out["recommended_limit"].tolist() == [500.0, 600.0, 1000.0, 0.0, 400.0]
    assert out["binding_rule"].tolist() == [
        "revenue_multiple",
        "current_limit_multiple",
        "cap",
        "cap",
        "revenue_multiple",
    ]
    assert out["term_days"].tolist() == [60, 60, 60, 0, 60]
    assert out.loc[3, "conditions"] == "prepayment,collateral"
    assert out.loc[3, "approval_level"] == "credit_committee"


def test_decide_without_limit_columns_uses_the_cap_and_rounds_down():
    policy = parse_policy("round_limit_to: 300\n" + GOOD, GRADES)
    out = decide(pd.DataFrame({"customer_id": ["a"], "grade": ["R1"]}), policy)
    assert out["recommended_limit"].tolist() == [900.0] and out["binding_rule"][0] == "cap"


def test_decide_negative_revenue_counts_as_zero():
    policy = parse_policy(GOOD, GRADES)
    out = decide(
        pd.DataFrame({"customer_id": ["a"], "grade": ["R1"], "revenue_latest": [-5.0]}), policy
    )
    assert out["recommended_limit"][0] == 0 and out["binding_rule"][0] == "revenue_multiple"


def test_decide_refuses_grades_without_a_rule():
    with pytest.raises(KeyError, match=r"\['R7'\]"):
        decide(pd.DataFrame({"customer_id": ["a"], "grade": ["R7"]}), parse_policy(GOOD, GRADES))


def test_cli_policy_check_reports_the_line(tmp_path):
    from typer.testing import CliRunner

    from pipelines.cli import app

    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT_PATH.read_text().replace("[guarantee]", "[guarantor]"))
    result = CliRunner().invoke(app, ["policy", "check", str(bad)], terminal_width=200)
    assert result.exit_code == 2
    assert "unknown condition 'guarantor'" in result.output
    line = DEFAULT_PATH.read_text().splitlines().index("    conditions: [guarantee]") + 1
    assert f"bad.yaml:{line}: rules.2.conditions.0" in result.output
    good = CliRunner().invoke(app, ["policy", "check", str(DEFAULT_PATH)])
    assert good.exit_code == 0 and "valid" in good.output


def test_rounding_never_turns_a_performing_limit_into_zero():
    """Step 1000: 800 stays 800 (not 0, not 1000 above the rule), 2500 rounds down to 2000."""
    policy = parse_policy("round_limit_to: 1000\n" + GOOD.replace("cap: 1000", "cap: 5000"), GRADES)
    scored = pd.DataFrame(
        {
            "customer_id": ["small", "mid", "exact", "default"],
            "grade": ["R2", "R1", "R1", "D"],
            "revenue_latest": [np.nan, np.nan, 6000.0, 5000.0],
            "credit_limit_latest": [400.0, 1250.0, np.nan, 100.0],
        }
    )
    out = decide(scored, policy)
    assert out["recommended_limit"].tolist() == [800.0, 2000.0, 3000.0, 0.0]
    assert out["binding_rule"].tolist() == [
        "current_limit_multiple",
        "current_limit_multiple",
        "revenue_multiple",
        "cap",
    ]


def test_a_zero_limit_in_a_performing_grade_comes_from_an_input_of_zero_and_says_so():
    policy = parse_policy("round_limit_to: 1000\n" + GOOD, GRADES)
    scored = pd.DataFrame(
        {
            "customer_id": ["no revenue", "no limit"],
            "grade": ["R1", "R1"],
            "revenue_latest": [0.0, np.nan],
            "credit_limit_latest": [1000.0, 0.0],
        }
    )
    out = decide(scored, policy)
    assert out["recommended_limit"].tolist() == [0.0, 0.0]
    assert out["binding_rule"].tolist() == ["revenue_multiple", "current_limit_multiple"]


def test_rounded_limits_are_steps_or_kept_below_one_and_never_above_the_rule():
    from pipelines.decisions.policy import round_limit

    rng = np.random.default_rng(4)
    computed = np.concatenate([[0.0, 999.99, 1000.0], rng.uniform(0, 10_000, 500)])
    rounded = round_limit(computed, 1000.0)
    assert (rounded <= computed + 1e-6).all()
    assert ((rounded > 0) == (computed > 0)).all()
    steps = computed >= 1000
    assert np.allclose(rounded[steps] % 1000, 0)
    assert (computed[steps] - rounded[steps] < 1000).all()
    assert np.array_equal(rounded[~steps], computed[~steps])
    assert np.array_equal(round_limit(computed, 0), computed)
