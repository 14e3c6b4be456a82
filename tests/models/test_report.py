"""Validation figures and the self-contained HTML report."""

from __future__ import annotations

import base64
import os
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from models import report
from models.tracking import FigureWorker, figure_inputs, validation_report, write_artifacts
from models.training import train_model

pytestmark = pytest.mark.xdist_group("models-report")

PNG = b"\x89PNG\r\n\x1a\nfake"


def test_ks_figure_title_is_the_widest_cdf_gap():
    # defaults at 0.35 and 0.8, non-defaults at 0.1 and 0.4: at PD 0.1 (and 0.4) the
    # non-default CDF is half a step ahead -> KS = 0.5
    fig = report.ks_figure(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert fig.axes[0].get_title() == "KS 0.500"
    report.figure_png(fig)


def test_calibration_bins_average_pd_and_default_rate_per_bin():
    table = report.calibration_bins(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4]), 2)
    np.testing.assert_allclose(table["mean_pd"], [0.15, 0.35])
    np.testing.assert_allclose(table["default_rate"], [0.5, 0.5])
    assert list(table["count"]) == [2, 2]


def test_figure_png_is_a_png():
    fig = report.roc_figure(np.array([0, 1, 0, 1]), {"m": np.array([0.1, 0.9, 0.2, 0.7])})
    assert "AUC 1.000" in fig.axes[0].get_legend().get_texts()[0].get_text()
    assert report.figure_png(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_roc_points_trace_sklearns_curve_and_area_with_ties():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(float)
    p = np.round(rng.random(500) * 0.5 + 0.3 * y, 2)  # ties within and across classes
    fpr, tpr = report.roc_points(y, p)
    ref_fpr, ref_tpr, _ = roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc_score(y, p))


def test_pile_offsets_spread_crowded_dots_and_leave_lone_ones_on_the_row():
    x = np.array([0.0, 0.0, 0.0, 0.0, 10.0])
    offsets = report._pile_offsets(x, bins=10, height=0.4)
    assert offsets[4] == 0.0  # alone in its cell
    assert sorted(offsets[:4]) == pytest.approx([-0.1, 0.0, 0.1, 0.2])  # 4 dots: 0, +1, -1, +2
    assert report._pile_offsets(np.zeros(3)).tolist() == pytest.approx([0.0, 0.4 / 3, -0.4 / 3])
    assert report._pile_offsets(np.array([])).size == 0


def test_shap_summary_shows_the_largest_contributions_first():
    rng = np.random.default_rng(0)
    features = pd.DataFrame({"small": rng.normal(size=50), "large": rng.normal(size=50)})
    features["segment"] = pd.Categorical(rng.choice(["a", "b"], 50))
    features.loc[:4, "large"] = np.nan  # drawn grey, not dropped
    contrib = np.column_stack([features["small"] * 0.1, rng.normal(size=50), np.zeros(50)])
    contrib = np.column_stack([contrib, np.full(50, -2.0)])  # bias column is ignored
    fig = report.shap_summary_figure(contrib, features)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == ["segment", "small", "large"]  # bottom to top: largest on top
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 150
    report.figure_png(fig)


def small_report() -> str:
    grades = pd.DataFrame(
        {"grade": ["R1", "R2", "R3"], "n": [10, 5, 0], "light": ["green", "red", np.nan]}
    )
    return report.validation_report_html(
        title="Validation <test>",
        headline={"AUC": 0.81234, "test rows": "1,000"},
        comparison=pd.DataFrame({"metric": ["auc"], "lightgbm": [0.81234], "scorecard": [0.79]}),
        calibration_table=pd.DataFrame({"pd_mean": [0.0123456], "default_rate": [0.02]}),
        grade_table=grades,
        psi=0.1234,
        psi_verdict="investigate",
        tests=pd.DataFrame({"test": ["binomial"], "p_value": [0.5]}),
        scorecard_table=pd.DataFrame({"feature": ["dpd"], "bin": ["[0, 30)"], "points": [42]}),
        data_summary=pd.DataFrame({"part": ["test"], "rows": [1000]}),
        figures={"roc": PNG, "calibration": PNG},
    )


def test_report_is_self_contained_html_with_inline_images():
    html = small_report()
    assert html.startswith("<!doctype html>")
    assert "<script" not in html
    assert not re.search(r'(src|href)="(?!data:)', html)
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert [base64.b64decode(i) for i in images] == [PNG, PNG]
    assert "Validation &lt;test&gt;" in html


def test_report_shows_metrics_lights_psi_verdict_and_scorecard():
    html = small_report()
    assert "0.8123" in html
    assert "0.01235" in html  # 4 significant digits in tables
    assert 'style="background:#2e7d32">green' in html
    assert 'style="background:#c62828">red' in html
    assert "0.1234</b> &rarr; <b>investigate" in html
    assert "[0, 30)" in html and "Scorecard challenger table" in html


def credit_frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2 + 1.2 * x[:, 0] + 0.6 * x[:, 1])))).astype(int)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "bad": y})


@pytest.fixture(scope="module")
def result():
    return train_model(credit_frame(), "bad", n_estimators=30)


def test_training_artifacts_and_report_cover_every_section(result, tmp_path):
    write_artifacts(result, tmp_path, "Validation report: demo")
    html = (tmp_path / "report" / "validation_report.html").read_text(encoding="utf-8")
    for section in ("Headline metrics", "Calibration", "Jeffreys", "Stability", "Data summary"):
        assert section in html
    assert f"{result.champion.metrics['auc']:.4f}" in html
    assert len(re.findall(r"data:image/png;base64,", html)) == 6
    for plot in ("roc", "ks", "calibration", "grades", "importance", "shap_summary"):
        assert (tmp_path / "plots" / f"{plot}.png").read_bytes()[:4] == b"\x89PNG"
    table = pd.read_csv(tmp_path / "scorecard" / "scorecard_table.csv")
    assert len(table) == len(result.scorecard_table)
    assert (tmp_path / "scorecard" / "scorecard_table.html").exists()
    test_rows = pd.read_parquet(tmp_path / "validation" / "oot_test.parquet")
    assert list(test_rows["bad"]) == list(result.y_test)
    grades = pd.read_csv(tmp_path / "tables" / "grades_jeffreys.csv")
    assert grades["n"].sum() == len(result.y_test)


def test_figure_worker_draws_in_a_second_process_the_same_figures(result, tmp_path):
    with FigureWorker(figure_inputs(result), tmp_path) as worker:
        assert worker.process.pid != os.getpid()
        figures = worker.result()
    assert sorted(figures) == sorted(report.FIGURES)
    assert all(png[:8] == b"\x89PNG\r\n\x1a\n" for png in figures.values())


def test_figure_worker_failure_says_what_went_wrong(result, tmp_path):
    inputs = figure_inputs(result)
    inputs.shap_features = inputs.shap_features.iloc[:, :0]  # no feature to draw
    with FigureWorker(inputs, tmp_path) as worker, pytest.raises(RuntimeError, match="no features"):
        worker.result()


def test_report_of_a_result_is_readable_on_its_own(result):
    html = validation_report(result, "demo", {})
    assert result.psi_verdict in html
    assert all(g in html for g in result.scorer.master_scale.grades)
