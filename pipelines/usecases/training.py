"""Use case: train the PD model and scorecard, log them to MLflow, register a `challenger`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features.io import read_snapshots, read_table
from models.dask_lgbm import dask_client
from models.names import AMBIGUOUS_HINT, ambiguity
from models.registry import default_trainer
from models.tracking import TrackedModel, log_training
from models.training import TrainingResult, design_of, train_from_snapshots, train_model
from pipelines.errors import BadInput, CreditriskError, NotFound, Unavailable, as_typed
from pipelines.settings import Settings
from pipelines.signals import deferred
from pipelines.usecases import Step, silent
from pipelines.usecases.preflight import check_tracking

SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")
OTHER_SEPARATORS = (";", "\t", "|")
BINARY_SNIFF = 8192  # bytes read to tell a binary file from text (text holds no NUL byte)
JOB_TAG = "creditrisk.job"


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
    job_id: str | None = None
    dask_address: str | None = None  # a Dask scheduler: LightGBM fits on its cluster


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
    """A user's flat table from CSV (optionally gzipped) or Parquet, read by
    `features.io.read_table` (which refuses unreadable files, naming the file and line); binary
    content and a CSV separated by another character than a comma are refused, naming what was
    seen."""
    if not path.is_file():
        raise NotFound("no such file", source=str(path), hint="check the path given to --data")
    if path.name.lower().endswith(".csv") and _is_binary(path):
        raise BadInput(
            "binary content, not CSV text",
            source=str(path),
            hint="give a CSV (UTF-8 text), CSV.gz or Parquet file",
        )
    parquet = path.name.lower().endswith((".parquet", ".pq"))
    if parquet:  # pyarrow cannot read a repeated name: say so before it fails
        _check_header(path, _parquet_names(path), line=None)
    frame = read_table(path)
    if not parquet:  # pandas renamed a repeated name to `a.1`: check the header as written
        _check_header(path, _csv_names(path), line=1)
    header = str(frame.columns[0]) if frame.shape[1] == 1 else ""
    seen = next((sep for sep in OTHER_SEPARATORS if sep in header), None)
    if seen:
        raise BadInput(
            f"one column was read: the header is separated by {seen!r}, not by commas",
            source=str(path),
            hint="save the file with commas as separators (or as Parquet)",
        )
    return frame


def _check_header(path: Path, names: list[str], line: int | None) -> None:
    """Refuse a header that names a column twice (see `models.names`)."""
    ambiguous = ambiguity(name for name in names if name)  # empty names become "Unnamed: n"
    if ambiguous:
        raise BadInput(ambiguous, source=str(path), line=line, hint=AMBIGUOUS_HINT)


def _csv_names(path: Path) -> list[str]:
    """The CSV header's names as written (called once the file has been read)."""
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, keep_default_na=False)
    return header.iloc[0].tolist()


def _parquet_names(path: Path) -> list[str]:
    """The Parquet schema's names; none when unreadable (`read_table` then says why)."""
    try:
        return pq.read_schema(path).names
    except (pa.ArrowException, OSError):
        return []


def _is_binary(path: Path) -> bool:
    """A NUL byte in the first `BINARY_SNIFF` bytes, which UTF-8 text never holds (UTF-16 text,
    told by its byte-order mark, is left to the reader's own message)."""
    with path.open("rb") as file:
        start = file.read(BINARY_SNIFF)
    return b"\x00" in start and not start.startswith((b"\xff\xfe", b"\xfe\xff"))


@contextmanager
def _typed_in(source: str) -> Iterator[None]:
    """`as_typed`, naming ``source`` as the place of the errors that name none."""
    try:
        with as_typed():
            yield
    except CreditriskError as exc:
        if exc.source:
            raise
        raise type(exc)(
            exc.reason, source=source, line=exc.line, key=exc.key, field=exc.field, hint=exc.hint
        ) from exc


@contextmanager
def _cluster(address: str | None) -> Iterator[object]:
    """A Dask client on ``address`` for the block (None without one); `Unavailable` when the
    scheduler does not answer."""
    if address is None:
        yield None
        return
    with ExitStack() as stack:
        try:
            client = stack.enter_context(dask_client(address))
        except OSError as exc:
            raise Unavailable(
                f"the Dask scheduler at {address} did not answer ({str(exc)[:200]})",
                field="--dask-address",
                hint="start it (dask scheduler; dask worker ADDRESS) or train without it",
            ) from exc
        yield client


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
    if request.data is not None:  # a bad table is named before MLflow is touched
        path = Path(request.data)
        with _typed_in(str(path)):
            frame = read_flat_table(path)
            started = time.perf_counter()
            design = design_of(frame, request.target, request.id_col, request.time_col,
                               request.exclude, request.seed)  # fmt: skip
            prepared = time.perf_counter() - started
    check_tracking(settings.tracking_uri)  # before minutes of training, not after
    trained_by = request.trained_by or default_trainer()
    with _cluster(request.dask_address) as client:
        if request.data is not None:
            dataset = dataset_stem(path)
            model = request.model or f"creditrisk-{dataset}"
            step(f"training on {len(frame):,} rows x {frame.shape[1]} columns")
            with _typed_in(str(path)):
                result = train_model(
                    frame,
                    request.target,
                    id_col=request.id_col,
                    time_col=request.time_col,
                    exclude=request.exclude,
                    tune_trials=request.tune,
                    seed=request.seed,
                    client=client,
                    design=design,
                )
            result.timings["prepare"] += prepared  # the part done before MLflow was checked
        else:
            path = snapshot_file(
                Path(request.snapshots) if request.snapshots else settings.snapshots_dir
            )
            dataset, model = "snapshots", request.model or settings.model_name
            step(f"training on snapshots {path.name}")
            with _typed_in(str(path)):
                frame, _metadata = read_snapshots(path)
                result = train_from_snapshots(
                    frame, tune_trials=request.tune, seed=request.seed, client=client
                )
    with as_typed(), deferred():  # an interrupt mid-write would leave MLflow's SQLite locked
        tracked = log_training(
            result,
            experiment=request.experiment or model,
            model_name=model,
            dataset=dataset,
            trained_by=trained_by,
            tracking_uri=settings.tracking_uri,
            artifact_root=local_artifact_root(settings),
            step=step,
            run_tags={JOB_TAG: request.job_id} if request.job_id else None,
        )
    return Trained(result, tracked)
