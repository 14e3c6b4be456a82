"""Model commands: `creditrisk train`, `creditrisk promote` and `creditrisk models history`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipelines.cli.flows import DASK_HELP, as_flow
from pipelines.cli.render import console, spinner
from pipelines.errors import Refused
from pipelines.settings import get_settings

if TYPE_CHECKING:  # the rest is imported where it is used: `creditrisk --help` stays quick
    from models.tracking import TrackedModel
    from models.training import TrainingResult


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
    dask_address: Annotated[str | None, typer.Option("--dask-address", help=DASK_HELP)] = None,
) -> None:
    """Train LightGBM and the WOE scorecard, register whichever of them (or their blend)
    validates best as the new `challenger`, after validating every candidate and logging to MLflow.

    From feature snapshots (default) or from any flat table with --data FILE --target COL.

    Split: out of time with --time (and for snapshots); otherwise 3-fold cross-fitted LightGBM.

    The choice: on the out-of-time window's calibration half, or on out-of-fold scores; the test
    rows stay for the figures.

    Ids, text columns, sentinel codes and missing values need no work.

    Protected attributes (sex, marital status, race, ...) are dropped.

    Age is kept only with risk held non-increasing in it (Regulation B); --exclude it to drop it.
    """
    from pipelines.usecases.training import TrainRequest, train_and_register

    request = TrainRequest(
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
    )
    settings = get_settings()
    with spinner("reading data") as step:
        if as_flow(dask_address):  # the train flow (see `pipelines.cli.flows.as_flow`)
            from pipelines.flows.train import train_flow

            step("training (Prefect flow train)")
            trained = train_flow(request, settings, dask_address)
        else:
            trained = train_and_register(request, settings, step)
    print_training(trained.result, trained.tracked)


def print_training(result: TrainingResult, tracked: TrackedModel) -> None:
    """What was left out (rows without a target, probable leaks), which candidate was chosen and
    on what, every candidate's figures and where to look next."""
    if result.n_unlabelled:
        console.print(
            f"left out {result.n_unlabelled:,} rows without a target "
            f"({result.unlabelled_share:.1%} of the table)"
        )
    if result.leaks:
        leaks = ", ".join(f"{escape(c)} (AUC {auc:.3f} alone)" for c, auc in result.leaks.items())
        console.print(
            f"[yellow]left out probable leaks of the target[/yellow]: {leaks}; check how "
            "these columns were made",
            soft_wrap=True,
        )
    console.print(candidates_table(result, tracked))
    c = result.champion.metrics
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


CANDIDATE_LABELS = {"lightgbm": "LightGBM", "scorecard": "scorecard", "blend": "blend"}


def candidates_table(result: TrainingResult, tracked: TrackedModel) -> Table:
    """The candidates side by side: the AUC the choice was made on, then the test figures; the
    registered one marked."""
    choice = result.choice
    table = Table(
        title=f"{tracked.model_name} v{tracked.version} (alias: challenger): "
        f"{CANDIDATE_LABELS[choice.chosen]} chosen",
        caption=f"chosen on {choice.on} ({choice.rows:,} rows); test rows seen by no fit and "
        "no choice",
    )
    table.add_column("")
    for name in result.candidates:
        label = CANDIDATE_LABELS[name]
        if name == "blend":
            label += f" ({choice.blend_weight:g} LightGBM)"
        table.add_column(f"{label} *" if name == choice.chosen else label, justify="right")
    table.add_row("choice AUC", *(f"{choice.auc[name]:.4f}" for name in result.candidates))
    metrics = [e.metrics for e in result.candidates.values()]
    for key in ("auc", "gini", "ks", "brier", "ece"):
        label = {"gini": "Gini", "brier": "Brier"}.get(key, key.upper())
        table.add_row(f"test {label}", *(f"{m[key]:.4f}" for m in metrics))
    table.add_row(
        "test AUC 95% CI", *(f"{m['auc_lower']:.3f}-{m['auc_upper']:.3f}" for m in metrics)
    )
    return table


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
    from pipelines.usecases.promotion import promote as promote_version

    settings = get_settings()
    model = model or settings.model_name
    gates = Gates(min_auc=min_auc, max_psi=max_psi, allow_red_jeffreys=allow_red_jeffreys)
    with spinner(f"checking {model} v{version} against the gates and the champion"):
        if as_flow():  # the promote flow (see `pipelines.cli.flows.as_flow`)
            from pipelines.flows.promote import promote_flow

            decision = promote_flow(settings, model, version, approver, gates)
        else:
            decision = promote_version(settings.tracking_uri, model, version, approver, gates)
    if decision.promoted:
        console.print(f"[green]{model} v{version} is now champion[/green] (approved by {approver})")
        if decision.previous_champion:
            console.print(
                f"previous champion v{decision.previous_champion}: AUC "
                f"{decision.champion_auc:.4f} vs {decision.challenger_auc:.4f} on the same data"
            )
        return
    raise Refused(
        f"{model} v{version} stays as it is: " + "; ".join(decision.reasons),
        hint="see `creditrisk models history`",
    )


def history(
    model: Annotated[
        str | None, typer.Option(help="Registered model name; default creditrisk-pd.")
    ] = None,
) -> None:
    """Every promotion and refusal, oldest first: which version was champion when, and why."""
    from pipelines.usecases.promotion import champion_history

    settings = get_settings()
    model = model or settings.model_name
    with spinner(f"reading the champion history of {model}"):
        frame = champion_history(settings.tracking_uri, model)
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
