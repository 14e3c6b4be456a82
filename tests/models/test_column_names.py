"""Any column name works: kept as written for the user, made safe only where a library needs it.

Units at the boundary (LightGBM's names, ambiguous names, figures), then `creditrisk train` on a
CSV of financial-ratio names through the real command: it trains, registers, and the report,
tables and reasons show the names as written; the registered model scores them.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from models import report
from models.lgbm import LGBMPDClassifier
from models.names import ambiguity, lightgbm_names
from models.prepare import TrainingInputError, check_roles
from pipelines.errors import BadInput
from pipelines.usecases.training import read_flat_table
from tests.conftest import assert_clean_error, run_cli

RATIO = "[(cash + receivables) / revenue] * 365"
UNICODE = "负债率 (EBIT $ / 利息 $)"
CATEGORY = "{brace}"
LEAK = "[paid] copy of default"
FEATURES = [RATIO, "a,b", "x:y", 'q"uote', CATEGORY, UNICODE]
BAD_INPUT = 2


def ratio_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Six features under awkward names (four with signal, one text), a leak and the target."""
    rng = np.random.default_rng(seed)
    risk = rng.normal(size=n)
    default = (rng.random(n) < 1 / (1 + np.exp(1.8 - 1.4 * risk))).astype(int)
    return pd.DataFrame(
        {
            RATIO: np.round(45 + 12 * risk + rng.normal(0, 8, n), 1),
            "a,b": rng.normal(size=n) - 0.6 * risk,
            "x:y": rng.normal(size=n),
            'q"uote': rng.integers(0, 5, n),
            CATEGORY: rng.choice(["north", "south", "east"], n),
            UNICODE: rng.normal(size=n) + 0.5 * risk,
            LEAK: default * 2.0,
            "default": default,
        }
    )


def test_lightgbm_names_are_safe_unique_and_keep_safe_names():
    names = ["days_past_due_max_12m", *FEATURES, "a:b", "a_b", "c2_a_b", "a_b"]
    safe = lightgbm_names(names)
    assert safe[0] == "days_past_due_max_12m" and safe[-3] == "a_b"
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", s) for s in safe)
    assert len(set(safe)) == len(names)  # "a,b", "a:b" and "a_b" stay apart
    assert safe == lightgbm_names(names)
    data = lgb.Dataset(np.random.default_rng(0).normal(size=(50, len(safe))), feature_name=safe)
    assert data.construct().get_feature_name() == safe


@pytest.mark.parametrize("early_stopping", [True, False], ids=["eval-set", "cross-fit"])
def test_the_classifier_fits_and_predicts_under_the_names_as_written(early_stopping):
    table = ratio_table()
    X = table[FEATURES].astype({CATEGORY: "category"})
    y = table["default"].to_numpy()
    model = LGBMPDClassifier(n_estimators=50, monotone_constraints={RATIO: 1, UNICODE: 1})
    if early_stopping:
        model.fit(X.iloc[:400], y[:400], eval_set=(X.iloc[400:], y[400:]))
    else:
        model.fit(X, y)
    assert model.feature_names_ == FEATURES
    assert set(model.feature_importance().index) == set(FEATURES)
    shuffled = X[FEATURES[::-1]]
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(X))


def test_ambiguous_names_are_named():
    assert ambiguity(FEATURES) is None
    assert ambiguity(["a,b", "a:b", "a_b"]) is None  # distinct to a reader
    assert ambiguity(["a", "b", "a"]).endswith(": 'a' twice")
    assert ambiguity(["Revenue", "b", "revenue "]).endswith(": 'Revenue' and 'revenue '")
    assert "'Ａ' and 'a'" in ambiguity(["Ａ", "a"])  # fullwidth A: one letter in NFKC


def test_training_refuses_ambiguous_columns_naming_them():
    frame = pd.DataFrame([[1, 2, 0]], columns=["Revenue", "REVENUE", "default"])
    with pytest.raises(TrainingInputError, match="'Revenue' and 'REVENUE'"):
        check_roles(frame.columns, "default")
    repeated = pd.DataFrame([[1, 2, 0]], columns=["x", "x", "default"])
    with pytest.raises(TrainingInputError, match="'x' twice"):
        check_roles(repeated.columns, "default")


def test_a_repeated_name_in_a_file_header_is_refused(tmp_path):
    csv = tmp_path / "table.csv"
    csv.write_text("a,a,default\n1,2,0\n3,4,1\n", encoding="utf-8")  # pandas reads 'a', 'a.1'
    with pytest.raises(BadInput) as caught:
        read_flat_table(csv)
    assert (caught.value.source, caught.value.line) == (str(csv), 1)
    assert "'a' twice" in caught.value.reason

    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = tmp_path / "table.parquet"
    pq.write_table(pa.table([[1, 3], [2, 4], [0, 1]], names=["a", "a", "default"]), parquet)
    with pytest.raises(BadInput, match="'a' twice"):
        read_flat_table(parquet)


def test_figures_draw_any_name():
    names = ["x_$^$", "cost ($) / revenue ($)", RATIO]
    importance = pd.Series([3.0, 2.0, 1.0], index=names)
    assert report.figure_png(report.importance_figure(importance)).startswith(b"\x89PNG")
    features = pd.DataFrame(np.random.default_rng(0).normal(size=(20, 3)), columns=names)
    contrib = np.random.default_rng(1).normal(size=(20, 4))
    assert report.figure_png(report.shap_summary_figure(contrib, features)).startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One real `creditrisk train` run on the ratio table (600 rows x 8 columns)."""
    folder = tmp_path_factory.mktemp("names")
    path = folder / "ratios.csv"
    ratio_table().to_csv(path, index=False)
    result = run_cli("train", "--data", str(path), "--target", "default", home=folder / "home")
    return result, folder / "home", path


def test_cli_trains_and_registers_a_table_of_any_column_names(trained):
    from models.tracking import connect

    result, home, _path = trained
    assert result.returncode == 0, result.stdout + result.stderr
    client = connect(f"sqlite:///{(home / 'mlflow.db').resolve()}")
    assert str(client.get_model_version_by_alias("creditrisk-ratios", "challenger").version) == "1"
    assert f"probable leaks of the target: {LEAK} (AUC 1.000 alone)" in result.stdout


def test_tables_report_and_reasons_show_the_names_as_written(trained, tmp_path):
    import mlflow

    from models.tracking import connect

    result, home, path = trained
    assert result.returncode == 0, result.stdout + result.stderr
    client = connect(f"sqlite:///{(home / 'mlflow.db').resolve()}")
    (version,) = client.search_model_versions("name='creditrisk-ratios'")
    run = version.run_id
    local = Path(client.download_artifacts(run, "", str(tmp_path)))

    importance = pd.read_csv(local / "tables" / "feature_importance.csv")
    assert sorted(importance["feature"]) == sorted(FEATURES)
    scorecard = pd.read_csv(local / "scorecard" / "scorecard_table.csv")
    assert set(scorecard["feature"]) <= set(FEATURES) and RATIO in set(scorecard["feature"])
    page = (local / "report" / "validation_report.html").read_text(encoding="utf-8")
    assert all(html.escape(name, quote=False) in page for name in set(scorecard["feature"]))
    roles = (local / "tables" / "column_roles.json").read_text(encoding="utf-8")
    assert json.loads(roles)["dropped"] == {LEAK: "probable leak of the target"}
    assert UNICODE in roles  # written as is, not escaped

    model = mlflow.pyfunc.load_model(f"models:/creditrisk-ratios/{version.version}")
    names = [spec.name for spec in model.metadata.get_input_schema().inputs]
    assert names == ["customer_id", *FEATURES]
    scored = model.predict(pd.read_csv(path).drop(columns="default"))
    reasons = [r for row in scored["reasons"] for r in json.loads(row)]
    assert {r["feature"] for r in reasons} <= set(FEATURES)
    assert {RATIO, UNICODE} <= {r["feature"] for r in reasons}
    assert {r["text"] for r in reasons if r["feature"] == RATIO} == {RATIO}


@pytest.mark.parametrize(
    ("header", "named"),
    [("a,a,default", "'a' twice"), ("Revenue,revenue ,default", "'Revenue' and 'revenue '")],
    ids=["repeated", "case-only"],
)
def test_cli_refuses_a_header_that_names_a_column_twice(cli, tmp_path, header, named):
    path = tmp_path / "table.csv"
    path.write_text(header + "\n" + "1,2,0\n" * 5, encoding="utf-8")
    result = cli("train", "--data", str(path), "--target", "default")
    assert_clean_error(result, BAD_INPUT, "table.csv:1", named, "Rename the columns")
