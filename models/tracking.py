"""Log a training result to MLflow: one experiment per dataset, params, metrics, validation
figures and tables, the HTML validation report, the out-of-time test rows, tuning trials as nested
runs, and the scorer as a registered pyfunc version aliased `challenger`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import pickle
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, Schema

from models import report
from models.registry import (
    TARGET_TAG,
    TEST_FRAME_ARTIFACT,
    ensure_experiment,
    register_challenger,
)
from models.scorer import ID, CreditScorer, pip_requirements
from models.training import TrainingResult

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
CODE_PATHS = [str(PACKAGE_ROOT / "models"), str(PACKAGE_ROOT / "features")]
SCORER_NAME = "scorer"
EXAMPLE_ROWS = 5
FIGURE_TIMEOUT = 600.0


@dataclass(frozen=True)
class TrackedModel:
    """Where a training run went: run, experiment, logged model and registered version."""

    run_id: str
    experiment_id: str
    model_uri: str
    model_name: str
    version: str
    tracking_uri: str


def connect(tracking_uri: str, registry_uri: str | None = None) -> MlflowClient:
    """Point MLflow (fluent API and a client) at one tracking store and registry.

    MLflow also exports the URIs as MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI; they are put back
    as they were, so that a later setting of the process (read from the environment) is not
    taken over by the last store connected to.
    """
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri or tracking_uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def _raw_columns(scorer: CreditScorer) -> list[str]:
    """The id column, then every raw column the scorer reads (each once)."""
    return list(dict.fromkeys([scorer.id_col or ID, *scorer.input_columns]))


def scorer_signature(scorer: CreditScorer) -> ModelSignature:
    """Inputs: the id and every raw model column, all optional and of any type (ints, floats,
    strings or categories are accepted as they come); outputs: the scorer's columns."""
    inputs = Schema([ColSpec(AnyType(), c, required=False) for c in _raw_columns(scorer)])
    outputs = Schema(
        [
            ColSpec("string", ID, required=False),
            ColSpec("double", "pd"),
            ColSpec("long", "score"),
            ColSpec("string", "grade"),
            ColSpec("string", "reasons"),
        ]
    )
    return ModelSignature(inputs=inputs, outputs=outputs)


def input_example(frame: pd.DataFrame, scorer: CreditScorer, rows: int = EXAMPLE_ROWS):
    """A few raw rows (categories as text) that show callers the expected layout."""
    columns = [c for c in _raw_columns(scorer) if c in frame.columns]
    example = frame[columns].head(rows).copy()
    for column in example.columns:
        if isinstance(example[column].dtype, pd.CategoricalDtype):
            example[column] = example[column].astype(object)
    return example


def write_test_frame(frame: pd.DataFrame, path: Path) -> None:
    """The raw test rows as Parquet; dictionary encoding only off the float columns, where it
    rarely pays (250k x 63 rows: 0.5 s and 88 MB against 1.2 s and 101 MB)."""
    encoded = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
    frame.to_parquet(path, index=False, use_dictionary=encoded)


def log_scorer(
    scorer: CreditScorer,
    example_frame: pd.DataFrame,
    name: str = SCORER_NAME,
):
    """Log the scorer as a pyfunc in the active run; ModelInfo out (`log_training` registers it).

    MLflow warns that a Python object is pickled: the object is our own `CreditScorer`, loaded
    only from this project's registry, so that one warning is silenced here.
    """
    pyfunc_log = logging.getLogger("mlflow.pyfunc")
    level = pyfunc_log.level
    pyfunc_log.setLevel(logging.ERROR)
    try:
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=scorer,
            signature=scorer_signature(scorer),
            input_example=input_example(example_frame, scorer),
            pip_requirements=pip_requirements(),
            code_paths=CODE_PATHS,
        )
    finally:
        pyfunc_log.setLevel(level)


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(x) for k, x in metrics.items() if x is not None and math.isfinite(float(x))}


def figure_inputs(result: TrainingResult) -> report.FigureInputs:
    """What the validation figures of a training result are drawn from: the champion beside the
    model alone it is compared with (`TrainingResult.challenger`)."""
    return report.FigureInputs(
        y=result.y_test,
        champion_pd=result.champion.pd,
        challenger_pd=result.challenger.pd,
        names=(result.champion.name, result.challenger.name),
        grade_table=result.champion.grade_table,
        importance=result.importance,
        shap_contrib=result.shap_contrib,
        shap_features=result.shap_features,
    )


class FigureWorker:
    """Draws the validation figures in a second Python process (``python -m models.report``)
    while this one goes on logging; `result()` waits for the PNGs and raises if drawing failed."""

    def __init__(self, inputs: report.FigureInputs, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        source = folder / "figure_inputs.pickle"
        with source.open("wb") as handle:
            pickle.dump(inputs, handle, protocol=pickle.HIGHEST_PROTOCOL)
        path = os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "models.report", str(source), str(folder)],
            env={**os.environ, "PYTHONPATH": path, "MPLBACKEND": "Agg"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def __enter__(self) -> FigureWorker:
        return self

    def __exit__(self, *exc) -> None:
        if self.process.poll() is None:  # left early: do not leave the drawer behind
            self.process.kill()
            self.process.communicate()

    def result(self, timeout: float = FIGURE_TIMEOUT) -> dict[str, bytes]:
        try:
            _, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
            raise RuntimeError(f"drawing the figures took over {timeout:.0f} s") from None
        if self.process.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError("drawing the validation figures failed:\n" + "\n".join(tail))
        return {name: (self.folder / f"{name}.png").read_bytes() for name in report.FIGURES}


def write_tables(result: TrainingResult, folder: Path) -> None:
    """Validation tables, the scorecard table, column roles and the test rows under ``folder``."""
    for sub in ("tables", "scorecard", "validation"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    tables = {
        "calibration_table": result.champion.calibration_table,
        "grades_jeffreys": result.champion.grade_table,
        "scorecard_grades_jeffreys": result.candidates["scorecard"].grade_table,
        "candidates": candidates_table(result),
        "statistical_tests": result.champion.tests,
        "feature_importance": result.importance.rename("gain").rename_axis("feature").reset_index(),
        "data_summary": result.data_summary,
    }
    for key, table in tables.items():
        table.to_csv(folder / "tables" / f"{key}.csv", index=False)
    result.scorecard_table.to_csv(folder / "scorecard" / "scorecard_table.csv", index=False)
    (folder / "scorecard" / "scorecard_table.html").write_text(
        result.scorecard_table.to_html(index=False, border=0), encoding="utf-8"
    )
    (folder / "tables" / "column_roles.json").write_text(
        json.dumps(result.roles, indent=2, default=str, ensure_ascii=False), encoding="utf-8"
    )
    write_test_frame(result.test_frame, folder / TEST_FRAME_ARTIFACT)


def write_figures(
    result: TrainingResult, folder: Path, title: str, figures: dict[str, bytes]
) -> None:
    """The figures as PNGs and the HTML validation report that embeds them, under ``folder``."""
    for sub in ("plots", "report"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for key, png in figures.items():
        (folder / "plots" / f"{key}.png").write_bytes(png)
    (folder / "report" / "validation_report.html").write_text(
        validation_report(result, title, figures), encoding="utf-8"
    )


def write_artifacts(result: TrainingResult, folder: Path, title: str) -> None:
    """Figures, tables, the HTML validation report and the test rows, written under ``folder``
    (in this process; `log_training` draws the figures in a second one)."""
    write_tables(result, folder)
    write_figures(result, folder, title, report.render_figures(figure_inputs(result)))


CANDIDATE_METRICS = ("auc", "auc_lower", "auc_upper", "gini", "ks", "brier", "log_loss", "ece")


def candidates_table(result: TrainingResult) -> pd.DataFrame:
    """One row per champion candidate: LightGBM's weight in it, whether it was chosen, the AUC
    the choice was made on, and its metrics on the test rows (seen by no fit and no choice)."""
    choice = result.choice
    return pd.DataFrame(
        [
            {
                "candidate": name,
                "chosen": name == choice.chosen,
                "lightgbm_weight": choice.weight_of(name),
                "choice_auc": choice.auc[name],
                **{f"test_{k}": evaluation.metrics[k] for k in CANDIDATE_METRICS},
            }
            for name, evaluation in result.candidates.items()
        ]
    )


def validation_report(result: TrainingResult, title: str, figures: dict[str, bytes]) -> str:
    """The self-contained HTML validation report of a training result."""
    m = result.champion.metrics
    headline = {
        "AUC": m["auc"],
        "AUC 95% CI": f"{m['auc_lower']:.3f} – {m['auc_upper']:.3f}",
        "Gini": m["gini"],
        "KS": m["ks"],
        "Brier": m["brier"],
        "ECE": m["ece"],
        "PSI": result.psi,
        "test rows": f"{int(m['n_test']):,}",
    }
    return report.validation_report_html(
        title=title,
        headline=headline,
        comparison=candidates_table(result),
        calibration_table=result.champion.calibration_table,
        grade_table=result.champion.grade_table,
        psi=result.psi,
        psi_verdict=result.psi_verdict,
        tests=result.champion.tests,
        scorecard_table=result.scorecard_table,
        data_summary=result.data_summary,
        figures=figures,
    )


def version_tags(result: TrainingResult, trained_by: str, dataset: str, run_id: str) -> dict:
    """Tags the registry gates read: who, which data, and the validation metrics."""
    m = result.champion.metrics
    red = result.champion.grade_table.loc[result.champion.grade_table["light"] == "red", "grade"]
    return {
        "trained_by": trained_by,
        "dataset": dataset,
        TARGET_TAG: result.target,
        "run_id": run_id,
        "auc": m["auc"],
        "gini": m["gini"],
        "ks": m["ks"],
        "ece": m["ece"],
        "psi": result.psi,
        "psi_verdict": result.psi_verdict,
        "jeffreys_red": int(m["jeffreys_red"]),
        "jeffreys_red_grades": ",".join(red),
        "champion_model": result.choice.chosen,
        "lightgbm_weight": result.choice.weight,
        **{f"{name}_auc": e.metrics["auc"] for name, e in result.candidates.items()},
    }


def choice_tags(result: TrainingResult) -> dict[str, str]:
    """Run tags that say which candidate was chosen, on what, and every candidate's figures."""
    choice = result.choice
    figures = "; ".join(
        f"{name} {choice.auc[name]:.4f} (test {e.metrics['auc']:.4f})"
        for name, e in result.candidates.items()
    )
    return {
        "champion_model": choice.chosen,
        "champion_lightgbm_weight": f"{choice.weight:g}",
        "choice_on": f"{choice.on}, {choice.rows:,} rows",
        "choice_auc": figures,
    }


def log_training(
    result: TrainingResult,
    *,
    experiment: str,
    model_name: str,
    dataset: str,
    trained_by: str,
    tracking_uri: str,
    registry_uri: str | None = None,
    artifact_root: Path | None = None,
    step: Callable[[str], None] | None = None,
    run_tags: dict[str, str] | None = None,
) -> TrackedModel:
    """Log everything about one training run and register its scorer as the new challenger.

    ``run_tags`` go on the training run (the main job tags its id, to end the run if killed).
    """
    step = step or (lambda _: None)
    client = connect(tracking_uri, registry_uri)
    experiment_id = ensure_experiment(client, experiment, artifact_root)
    tags = {"trained_by": trained_by, "dataset": dataset, "mlflow.user": trained_by}
    tags |= choice_tags(result) | (run_tags or {})
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train {model_name}", tags=tags):
        run_id = mlflow.active_run().info.run_id
        step("logging params and metrics")
        mlflow.log_params({k: str(x)[:6000] for k, x in result.params.items()})
        mlflow.log_metrics(_finite(result.metrics))
        mlflow.log_metrics({f"seconds_{k}": t for k, t in result.timings.items()})
        for trial in result.trials:
            name = f"trial {trial['trial']}"
            with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True):
                mlflow.log_params(trial["params"])
                mlflow.log_metric("valid_auc", trial["valid_auc"])
        with tempfile.TemporaryDirectory() as tmp:
            tables, figures = Path(tmp) / "tables", Path(tmp) / "figures"
            step("drawing figures (second process), writing tables, logging the scorer")
            with FigureWorker(figure_inputs(result), Path(tmp) / "drawn") as worker:
                write_tables(result, tables)
                mlflow.log_artifacts(str(tables))
                info = log_scorer(result.scorer, result.test_frame)
                step("writing the validation report")
                title = f"Validation report: {model_name} ({dataset})"
                write_figures(result, figures, title, worker.result())
            mlflow.log_artifacts(str(figures))
        step("registering the scorer")
        version = str(mlflow.register_model(info.model_uri, model_name).version)
    register_challenger(
        client, model_name, version, version_tags(result, trained_by, dataset, run_id)
    )
    return TrackedModel(
        run_id, experiment_id, info.model_uri, model_name, version, client.tracking_uri
    )
