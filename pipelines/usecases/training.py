"""Use case: train the PD model and scorecard, log them to MLflow, register a `challenger`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.io import read_snapshots
from models.registry import default_trainer
from models.tracking import TrackedModel, log_training
from models.training import TrainingResult, train_from_snapshots, train_model
from pipelines.errors import BadInput, NotFound, as_typed
from pipelines.settings import Settings
from pipelines.usecases import Step, silent

SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")


@dataclass(frozen=True)
class TrainRequest:
    """What to train on (snapshots, or a flat table with its target) and how."""

    snapshots: Path | None = None
    data: Path | None = None
    target: str | None = None
    id_col: str | None = None
    time_col: str | None = None
    exclude: tuple[str, ...] = ()
    tune: int = 0
    trained_by: str | None = None
    experiment: str | None = None
    model: str | None = None
    seed: int = 42


@dataclass(frozen=True)
class Trained:
    """A trained and registered model: the training result and where MLflow keeps it."""

    result: TrainingResult
    tracked: TrackedModel


def dataset_stem(path: Path) -> str:
    """File name without its data suffixes: cs-training.csv.gz -> cs-training."""
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_flat_table(path: Path) -> pd.DataFrame:
    """A user's flat table from CSV (optionally gzipped) or Parquet."""
    name = path.name.lower()
    if not path.is_file():
        raise NotFound("no such file", source=str(path), hint="check the path given to --data")
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, low_memory=False)
    raise BadInput(
        "not a .csv, .csv.gz or .parquet file", source=str(path), hint="convert it to one of these"
    )


def snapshot_file(path: Path) -> Path:
    """The snapshot Parquet file: ``path`` itself, or the newest one inside a folder."""
    if path.is_dir():
        files = sorted(path.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        if not files:
            raise NotFound(
                "no snapshot Parquet files",
                source=str(path),
                hint="run `creditrisk features` first",
            )
        return files[-1]
    if not path.exists():
        raise NotFound(
            "no such snapshot file", source=str(path), hint="run `creditrisk features` first"
        )
    return path


def local_artifact_root(settings: Settings) -> Path | None:
    """CREDITRISK_HOME/mlartifacts for a local (SQLite or file) store; a server keeps its own."""
    local = settings.tracking_uri.startswith(("sqlite:", "file:", "/"))
    return settings.artifacts_dir if local else None


def train_and_register(request: TrainRequest, settings: Settings, step: Step = silent) -> Trained:
    """Train (snapshots or a flat table), log to MLflow and register the scorer as `challenger`."""
    if request.data is not None and request.snapshots is not None:
        raise BadInput("give either --snapshots or --data, not both", field="--data")
    if request.data is not None and not request.target:
        raise BadInput("--data needs --target COL (the 0/1 default column)", field="--target")
    trained_by = request.trained_by or default_trainer()
    if request.data is not None:
        path = Path(request.data)
        dataset = dataset_stem(path)
        model = request.model or f"creditrisk-{dataset}"
        with as_typed():
            frame = read_flat_table(path)
        step(f"training on {len(frame):,} rows x {frame.shape[1]} columns")
        with as_typed():
            result = train_model(
                frame,
                request.target,
                id_col=request.id_col,
                time_col=request.time_col,
                exclude=request.exclude,
                tune_trials=request.tune,
                seed=request.seed,
            )
    else:
        path = snapshot_file(
            Path(request.snapshots) if request.snapshots else settings.snapshots_dir
        )
        dataset, model = "snapshots", request.model or settings.model_name
        step(f"training on snapshots {path.name}")
        with as_typed():
            frame, _metadata = read_snapshots(path)
            result = train_from_snapshots(frame, tune_trials=request.tune, seed=request.seed)
    with as_typed():
        tracked = log_training(
            result,
            experiment=request.experiment or model,
            model_name=model,
            dataset=dataset,
            trained_by=trained_by,
            tracking_uri=settings.tracking_uri,
            artifact_root=local_artifact_root(settings),
            step=step,
        )
    return Trained(result, tracked)
