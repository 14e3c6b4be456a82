"""Model commands: `creditrisk train`, `creditrisk promote` and `creditrisk models history`."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()

SUFFIXES = (".csv.gz", ".csv", ".parquet", ".pq")


def dataset_stem(path: Path) -> str:
    """File name without its data suffixes: cs-training.csv.gz -> cs-training."""
    name = path.name
    for suffix in SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_flat_table(path: Path):
    """A user's flat table from CSV (optionally gzipped) or Parquet."""
    import pandas as pd

    name = path.name.lower()
    if name.endswith((".parquet", ".pq")):
        return pd.read_parquet(path)
    if name.endswith((".csv", ".csv.gz")):
        return pd.read_csv(path, low_memory=False)
    raise typer.BadParameter(f"{path}: expected a .csv, .csv.gz or .parquet file")


def snapshot_file(path: Path) -> Path:
    """The snapshot Parquet file: ``path`` itself, or the newest one inside a folder."""
    if path.is_dir():
        files = sorted(path.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        if not files:
            raise typer.BadParameter(
                f"no snapshot Parquet files in {path}; run `creditrisk features` first"
            )
        return files[-1]
    if not path.exists():
        raise typer.BadParameter(f"{path} not found; run `creditrisk features` first")
    return path


def _settings():
    from pipelines.settings import get_settings

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return get_settings()


def _client(settings):
    from models.tracking import connect

    return connect(settings.tracking_uri)


def local_artifact_root(settings) -> Path | None:
    """CREDITRISK_HOME/mlartifacts for a local (SQLite or file) store; a server keeps its own."""
    local = settings.tracking_uri.startswith(("sqlite:", "file:", "/"))
    return settings.artifacts_dir if local else None


def ui_hint(tracking_uri: str) -> str:
    """The command that opens the MLflow UI on this tracking store."""
    return f"mlflow ui --backend-store-uri {tracking_uri}"


def train(
    snapshots: Annotated[
        Path | None,
        typer.Option(
            help="Feature snapshots (Parquet file or folder); default CREDITRISK_HOME/snapshots."
        ),
    ] = None,
    data: Annotated[
        Path | None, typer.Option(help="Any flat table (CSV, CSV.gz or Parquet), one row per case.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="With --data: the 0/1 default column (1 = default).")
    ] = None,
    id: Annotated[str | None, typer.Option("--id", help="With --data: the id column.")] = None,
    time: Annotated[
        str | None,
        typer.Option("--time", help="With --data: a date column for an out-of-time split."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(help="With --data: a column to keep out of the model (repeat)."),
    ] = None,
    tune: Annotated[int, typer.Option(help="Optuna trials for LightGBM (0 = the defaults).")] = 0,
    trained_by: Annotated[
        str | None,
        typer.Option(help="Who trains (recorded for four-eyes promotion); default $USER."),
    ] = None,
    experiment: Annotated[
        str | None, typer.Option(help="MLflow experiment; default the model name.")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Registered model name; default creditrisk-pd or creditrisk-<file stem>."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed (same data + seed = same model).")] = 42,
) -> None:
    """Train the LightGBM PD model and scorecard challenger, validate, log to MLflow and register
    the scorer as the new `challenger`.

    From feature snapshots (default) or from any flat table with --data FILE --target COL.

    Split: out of time with --time (and for snapshots); otherwise 5-fold cross-fitted LightGBM.

    Ids, text columns, sentinel codes and missing values need no work.

    Protected attributes (sex, marital status, race, ...) are dropped.

    Age is kept only with risk held non-increasing in it (Regulation B); --exclude it to drop it.
    """
    if data is not None and snapshots is not None:
        raise typer.BadParameter("give either --snapshots or --data, not both")
    if data is not None and not target:
        raise typer.BadParameter("--data needs --target COL (the 0/1 default column)")
    if data is not None and not data.exists():
        raise typer.BadParameter(f"{data} not found")
    progress = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console
    )
    with progress:
        task = progress.add_task("reading data", total=None)
        result, tracked = train_and_register(
            snapshots=snapshots,
            data=data,
            target=target,
            id_col=id,
            time_col=time,
            exclude=tuple(exclude or ()),
            tune=tune,
            trained_by=trained_by,
            experiment=experiment,
            model=model,
            seed=seed,
            step=lambda text: progress.update(task, description=text),
        )
    print_training(result, tracked)


def train_and_register(
    *,
    snapshots: Path | None = None,
    data: Path | None = None,
    target: str | None = None,
    id_col: str | None = None,
    time_col: str | None = None,
    exclude: tuple[str, ...] = (),
    tune: int = 0,
    trained_by: str | None = None,
    experiment: str | None = None,
    model: str | None = None,
    seed: int = 42,
    step: Callable[[str], None] | None = None,
    settings=None,
):
    """The train command without the console: train (snapshots or a flat table), log to MLflow
    and register the scorer as `challenger`. Returns (TrainingResult, TrackedModel)."""
    from features.io import read_snapshots
    from models.registry import default_trainer
    from models.tracking import log_training
    from models.training import train_from_snapshots, train_model

    settings = settings or _settings()
    step = step or (lambda _: None)
    trained_by = trained_by or default_trainer()
    if data is not None:
        dataset = dataset_stem(Path(data))
        model = model or f"creditrisk-{dataset}"
        frame = read_flat_table(Path(data))
        step(f"training on {len(frame):,} rows x {frame.shape[1]} columns")
        result = train_model(
            frame, target, id_col=id_col, time_col=time_col, exclude=exclude, tune_trials=tune,
            seed=seed,
        )  # fmt: skip
    else:
        path = snapshot_file(Path(snapshots) if snapshots else settings.snapshots_dir)
        dataset, model = "snapshots", model or settings.model_name
        step(f"training on snapshots {path.name}")
        frame, _metadata = read_snapshots(path)
        result = train_from_snapshots(frame, tune_trials=tune, seed=seed)
    tracked = log_training(
        result,
        experiment=experiment or model,
        model_name=model,
        dataset=dataset,
        trained_by=trained_by,
        tracking_uri=settings.tracking_uri,
        artifact_root=local_artifact_root(settings),
        step=step,
    )
    return result, tracked


def print_training(result, tracked) -> None:
    """Headline metrics of both models and where to look next."""
    table = Table(title=f"{tracked.model_name} v{tracked.version} (alias: challenger)")
    table.add_column("test set")
    table.add_column("LightGBM", justify="right")
    table.add_column("scorecard", justify="right")
    c, s = result.champion.metrics, result.challenger.metrics
    for key in ("auc", "gini", "ks", "brier", "ece"):
        table.add_row(key.upper() if key != "gini" else "Gini", f"{c[key]:.4f}", f"{s[key]:.4f}")
    table.add_row("AUC 95% CI", f"{c['auc_lower']:.3f}-{c['auc_upper']:.3f}", "")
    console.print(table)
    red = int(c["jeffreys_red"])
    console.print(
        f"PSI train vs test {result.psi:.4f} ({result.psi_verdict}); Jeffreys red grades: {red}; "
        f"test rows {int(c['n_test']):,} ({result.params['split']} split)"
    )
    console.print(
        f"run {tracked.run_id}; validation report: run artifacts report/validation_report.html",
        soft_wrap=True,
    )
    console.print(f"Look: [bold]{ui_hint(tracked.tracking_uri)}[/bold]", soft_wrap=True)
    console.print(
        f"Promote (another person approves): creditrisk promote {tracked.version} "
        f"--model {tracked.model_name} --approver NAME",
        soft_wrap=True,
    )


def promote(
    version: Annotated[str, typer.Argument(help="Model version to make champion.")],
    approver: Annotated[str, typer.Option(help="Who approves (must not be who trained it).")],
    model: Annotated[
        str | None, typer.Option(help="Registered model name; default creditrisk-pd.")
    ] = None,
    min_auc: Annotated[float, typer.Option(help="Gate: minimum test AUC.")] = 0.65,
    max_psi: Annotated[float, typer.Option(help="Gate: score PSI must be below this.")] = 0.25,
    allow_red_jeffreys: Annotated[
        bool, typer.Option(help="Gate: accept grades whose Jeffreys test is red.")
    ] = False,
) -> None:
    """Move the `champion` alias to VERSION if the gates pass, it is no worse than the current
    champion on the same out-of-time data, and the approver is not the trainer. Every decision
    (promotion or refusal) is recorded; see `creditrisk models history`."""
    from models.registry import Gates
    from models.registry import promote as promote_version

    settings = _settings()
    model = model or settings.model_name
    gates = Gates(min_auc=min_auc, max_psi=max_psi, allow_red_jeffreys=allow_red_jeffreys)
    with console.status(f"checking {model} v{version} against the gates and the champion"):
        decision = promote_version(_client(settings), model, version, approver, gates)
    if decision.promoted:
        console.print(f"[green]{model} v{version} is now champion[/green] (approved by {approver})")
        if decision.previous_champion:
            console.print(
                f"previous champion v{decision.previous_champion}: AUC "
                f"{decision.champion_auc:.4f} vs {decision.challenger_auc:.4f} on the same data"
            )
        return
    console.print(f"[red]refused: {model} v{version} stays as it is[/red]")
    for reason in decision.reasons:
        console.print(f"  - {reason}")
    raise typer.Exit(code=1)


def history(
    model: Annotated[
        str | None, typer.Option(help="Registered model name; default creditrisk-pd.")
    ] = None,
) -> None:
    """Every promotion and refusal, oldest first: which version was champion when, and why."""
    from models.registry import history as model_history

    settings = _settings()
    model = model or settings.model_name
    frame = model_history(_client(settings), model)
    if frame.empty:
        console.print(f"no promotion decisions recorded for {model} yet")
        return
    table = Table(title=f"{model}: champion history")
    for column in (
        "when (UTC)",
        "decision",
        "version",
        "approver",
        "trained by",
        "champion",
        "why",
    ):
        table.add_column(column)
    for row in frame.itertuples():
        style = "green" if row.decision == "promote" else "red"
        table.add_row(
            f"{row.decided_at:%Y-%m-%d %H:%M:%S}",
            f"[{style}]{row.decision}[/{style}]",
            row.version,
            row.approver,
            row.trained_by,
            row.champion or "-",
            row.reasons,
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    """Add train, promote and the `models` sub-app (history) to the creditrisk CLI."""
    app.command("train")(train)
    app.command("promote")(promote)
    models_app = typer.Typer(help="Registered PD models: champion history.", no_args_is_help=True)
    models_app.command("history")(history)
    app.add_typer(models_app, name="models")
