"""`creditrisk run`'s summary when the model is not promoted: why nothing was scored, what next."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd

from pipelines.cli.run import stopped_lines


def _summary(promoted: bool, lights: list[str], runs: tuple = ()) -> SimpleNamespace:
    grades = pd.DataFrame(
        {
            "grade": ["R3", "R4", "R5"],
            "n": [978, 734, 463],
            "defaults": [13.0, 12.0, 12.0],
            "default_rate": [13 / 978, 12 / 734, 12 / 463],
            "mean_pd": [0.00386, 0.00958, 0.02287],
            "light": lights,
        }
    )
    result = SimpleNamespace(champion=SimpleNamespace(grade_table=grades))
    return SimpleNamespace(
        decision=SimpleNamespace(promoted=promoted),
        runs=list(runs),
        trained=SimpleNamespace(
            tracked=SimpleNamespace(model_name="creditrisk-pd", version="1"), result=result
        ),
        book=SimpleNamespace(customers=3_000),
    )


def test_a_red_grade_is_named_with_observed_and_predicted_and_the_next_steps():
    lines = stopped_lines(_summary(False, ["red", "yellow", "green"]))

    text = "\n".join(lines)
    assert "nothing was scored" in lines[0]
    assert "grade R3: 13 defaults in 978 test customers (1.33%) against a mean PD of 0.39%" in text
    assert "R4" not in text  # only the red grades stop the promotion
    assert "--customers 20000" in text and "--allow-red-jeffreys" in text
    assert "3,000 customers" in text


def test_other_refusals_point_to_the_reasons_and_promoting_by_hand():
    text = "\n".join(stopped_lines(_summary(False, ["green", "green", "yellow"])))

    assert "nothing was scored" in text
    assert "creditrisk promote 1 --approver" in text


def test_nothing_is_added_when_the_model_was_promoted_or_runs_were_scored():
    assert stopped_lines(_summary(True, ["green"] * 3, runs=("run",))) == []
    assert stopped_lines(_summary(False, ["red"] * 3, runs=("run",))) == []
