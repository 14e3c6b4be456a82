"""Flow commands: `creditrisk score`, `creditrisk monitor` and `creditrisk schedule`.

Each runs its Prefect flow (`pipelines.flows`); a failed flow run exits with the code of the
typed error its task raised (the root group maps it), so a scheduler can tell bad input (2),
a failed gate or a monitoring alert (1) and a system away (3).
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer
from rich.table import Table

from pipelines.cli.monitoring_render import print_report
from pipelines.cli.render import bar, console, spinner
from pipelines.errors import EXIT_REFUSED, BadInput
from pipelines.settings import Settings, get_settings

if TYPE_CHECKING:
    from pipelines.usecases.scoring import DecisionConfig

SCORE_HELP = """Score as-of dates of the book with the champion and keep the decisions.

Builds each date's point-in-time snapshot from the book (default: its last observed month), loads
the champion scorer from the MLflow registry, computes PD, score, grade, credit policy, reasons and
early warnings, and writes one run per date to the results store (Prefect flow `score`). A date
already scored with the same snapshot, model version and configuration is left as it is: rerunning
writes nothing new.
"""
MONITOR_HELP = """Monitor the champion and its latest scoring run (Prefect flow `monitor`).

Score and feature PSI against the training reference, rating migration against the previous run,
AUC and calibration backtests on cohorts whose outcome has matured, the warning backtest and the
expected figures of recent cohorts. The report is stored with its history, logged to the
champion's MLflow run and published as Prefect artifacts. Exits 1 when an alert is raised
(a gate breached), unless --no-fail-on-alert.
"""
SCHEDULE_HELP = """Serve the flows on cron schedules through Prefect (until stopped).

Monthly scoring and monitoring and quarterly retraining by default; change them with a YAML file
(--file) or the --*-cron options. Needs a Prefect server (`prefect server start`, then
PREFECT_API_URL=http://127.0.0.1:4200/api). Schedules stay active when this process stops.
--list prints the next run times without starting anything.
"""
TIME_FORMAT = "%Y-%m-%d %H:%M %Z"


def prefect_ui_hint() -> str:
    """Where to see the flow runs: the configured server's UI, or how to start one on the
    folder that keeps the embedded default's runs."""
    from prefect.settings import get_current_settings

    current = get_current_settings()
    if current.api.url:
        return f"Prefect UI: {current.api.url.removesuffix('/').removesuffix('/api')}"
    return (
        f"Prefect UI: PREFECT_HOME={current.home} prefect server start, then open "
        "http://127.0.0.1:4200 (runs on the embedded default are kept there)"
    )


def as_flow(dask_address: str | None = None) -> bool:
    """Whether `features`, `train` and `promote` run as Prefect flows: with a Prefect server to
    see them (PREFECT_API_URL) or a Dask cluster to run on; else they call their use case
    directly, sparing the seconds an embedded Prefect server takes to start."""
    from prefect.settings import get_current_settings

    from pipelines.flows.cluster import address_of

    configured = get_settings().dask_address
    return bool(get_current_settings().api.url or address_of(dask_address, configured))


DASK_HELP = (
    "Dask scheduler (tcp://host:8786) to run on, partitioned by customer. "
    "Default: $CREDITRISK_DASK_ADDRESS, else this process."
)
DASK_OPTION = typer.Option(None, "--dask-address", help=DASK_HELP)


def features_flow(settings, book_dir, dates, out, horizon, validate, dask_address):
    """`creditrisk features` as the build-features flow, with a bar over the dates."""
    from pipelines.flows.features import build_features_flow

    with bar("Building snapshots (Prefect flow build-features)", len(dates)) as progress:
        task = progress.task_ids[0]

        def built(as_of: pd.Timestamp) -> None:
            progress.update(task, advance=1, description=f"Built {as_of:%Y-%m-%d}")

        return build_features_flow(
            settings, book_dir, [d.date() for d in dates], out, horizon, validate,
            dask_address=dask_address, progress=built,
        ).snapshots["snapshots"]  # fmt: skip


def config_of(policy: Path | None, rules: Path | None, scale: Path | None) -> DecisionConfig:
    from pipelines.usecases.scoring import DecisionConfig

    return DecisionConfig.load(policy=policy, rules=rules, scale=scale)


def score_table(scored) -> Table:
    """One row per as-of date: the run written or the run already current."""
    request = scored.request
    out = Table(title=f"Scoring with {request.model_name} v{request.model_version}")
    for name in (
        "as_of",
        "run",
        "outcome",
        "customers",
        "warnings opened",
        "escalated",
        "supersedes",
    ):
        out.add_column(name, justify="left" if name in ("as_of", "outcome") else "right")
    rows = []
    for run in scored.runs:
        warned = run.warnings
        rows.append(
            (
                run.as_of,
                str(run.run_id),
                "written",
                f"{int(run.grades.sum()):,}",
                f"{warned.get('opened', 0):,}",
                f"{warned.get('escalated', 0):,}",
                str(run.written.superseded_run_id or "-"),
            )
        )
    for as_of, run_id in scored.current.items():
        rows.append((as_of, str(run_id), "already current: nothing written", "", "", "", "-"))
    for as_of, *cells in sorted(rows, key=lambda r: r[0]):
        out.add_row(f"{pd.Timestamp(as_of):%Y-%m-%d}", *cells)
    return out


def score(
    as_of: list[datetime] = typer.Option(
        None,
        "--as-of",
        formats=["%Y-%m-%d"],
        help="As-of date (YYYY-MM-DD); repeat for several. Default: the book's last observed "
        "month.",
    ),
    data: Path = typer.Option(None, "--data", help="The book. Default: $CREDITRISK_HOME/book."),
    snapshots: Path = typer.Option(
        None, "--snapshots", help="Score snapshots from this Parquet file instead of the book."
    ),
    model: str = typer.Option(None, "--model", help="Registered model; default creditrisk-pd."),
    version: str = typer.Option(None, "--version", help="Model version; default the champion."),
    policy: Path = typer.Option(None, help="Credit policy YAML (default: the shipped one)."),
    rules: Path = typer.Option(None, help="Warning rules YAML (default: the shipped ones)."),
    scale: Path = typer.Option(None, help="Master scale YAML (default: the shipped one)."),
    user: str = typer.Option("creditrisk-score", help="Who scores (recorded in the audit log)."),
    validate: bool = typer.Option(
        True, "--validate/--no-validate", help="Validate the book against the contract first."
    ),
    dask_address: str = typer.Option(
        None,
        "--dask-address",
        help="Dask scheduler (tcp://host:8786): build and score partitioned by customer there. "
        "Default: $CREDITRISK_DASK_ADDRESS, else this process.",
    ),
) -> None:
    from prefect import tags

    from pipelines.cli.run import print_recovered
    from pipelines.flows.guard import job, job_tag
    from pipelines.flows.score import score_flow

    if snapshots is not None and data is not None:
        raise BadInput("give either --data or --snapshots, not both", field="--snapshots")
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    settings = get_settings()
    config = config_of(policy, rules, scale)
    with (
        job(settings) as (job_id, recovered),
        spinner("starting the score flow") as step,
        tags(job_tag(job_id)),
    ):
        if recovered is not None and recovered.anything:
            print_recovered(recovered)
        scored = score_flow(
            settings,
            as_of=[d.date() for d in as_of or []],
            snapshots=snapshots,
            book_dir=data,
            model_name=model,
            version=version,
            config=config,
            user=user,
            validate_first=validate,
            dask_address=dask_address,
            step=step,
        )
    print_scored(scored, settings)


def print_scored(scored, settings: Settings) -> None:
    """Grades and policy of each run written, then the summary table and where to look."""
    from pipelines.cli.run import grades_table

    for run in scored.runs:
        console.print(grades_table(run))
    console.print(score_table(scored))
    if scored.runs:
        console.print(f"results store: {settings.results_url}", soft_wrap=True)
        console.print(
            f"then: creditrisk monitor | creditrisk decisions reproduce {scored.runs[-1].run_id}"
        )
    console.print(prefect_ui_hint(), soft_wrap=True)


def verdicts_table(report) -> Table:
    """The monitoring verdicts, one per check."""
    out = Table(
        title=f"Monitoring {report.model_name} v{report.model_version}: run {report.run_id} "
        f"({pd.Timestamp(report.as_of):%Y-%m-%d})"
    )
    out.add_column("check")
    out.add_column("verdict")
    for name, verdict in report.verdicts.items():
        out.add_row(name, str(verdict))
    return out


def print_verdicts(report) -> None:
    """Verdicts, alerts and notes of a monitoring report, and how to see all of it."""
    console.print(verdicts_table(report))
    for alert in report.alerts:
        console.print(f"[red]alert[/red]: {alert}", soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(
        f"whole report: creditrisk monitoring show {report.monitoring_id} (and the Prefect "
        "artifacts of the monitor flow run)",
        soft_wrap=True,
    )


def monitor(
    model: str = typer.Option(None, "--model", help="Registered model; default creditrisk-pd."),
    run_id: int = typer.Option(
        None, "--run-id", help="Scoring run to monitor; default the latest current run."
    ),
    data: Path = typer.Option(
        None, "--data", help="Book whose defaults give realised outcomes ($CREDITRISK_HOME/book)."
    ),
    horizon: int = typer.Option(None, "--horizon", min=1, help="Outcome horizon in months (12)."),
    user: str = typer.Option("creditrisk-monitor", help="Who monitors (recorded)."),
    fail_on_alert: bool = typer.Option(
        True, "--fail-on-alert/--no-fail-on-alert", help="Exit 1 when an alert is raised."
    ),
) -> None:
    from pipelines.flows.monitor import monitor_flow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    settings = get_settings()
    with spinner("monitoring (Prefect flow monitor)"):
        report = monitor_flow(settings, model, run_id, data, horizon, user)
    print_report(report)
    console.print(prefect_ui_hint(), soft_wrap=True)
    if report.alerts and fail_on_alert:
        raise typer.Exit(EXIT_REFUSED)


def schedules_table(spec, runs: dict) -> Table:
    out = Table(title=f"Schedules (cron in {spec.timezone})")
    for name in ("deployment (flow/name)", "cron", "next runs", "what it does"):
        out.add_column(name)
    for entry in spec.enabled:
        times = "\n".join(f"{t:{TIME_FORMAT}}" for t in runs[entry.name])
        out.add_row(f"{entry.flow_name}/{entry.name}", entry.cron, times, entry.description)
    return out


def require_server() -> str:
    """The Prefect API URL: serving needs a server that keeps the schedules, not the embedded
    default."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise BadInput(
            "no Prefect server: schedules need one that keeps running",
            field="PREFECT_API_URL",
            hint="start `prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api "
            "(or look first with `creditrisk schedule --list`)",
        )
    return url


def schedule(
    listing: bool = typer.Option(
        False, "--list", help="Print the schedules and their next run times; start nothing."
    ),
    file: Path = typer.Option(None, "--file", help="Schedule YAML (timezone, deployments)."),
    score_cron: str = typer.Option(None, help="Cron of the scoring (default '0 6 1 * *')."),
    monitor_cron: str = typer.Option(None, help="Cron of the monitoring (default '0 8 1 * *')."),
    train_cron: str = typer.Option(
        None, help="Cron of the retraining (default '0 2 1 1,4,7,10 *')."
    ),
    timezone: str = typer.Option(None, help="Time zone of the crons (IANA name; default UTC)."),
    runs: int = typer.Option(3, "--runs", min=1, max=24, help="Next run times shown per flow."),
) -> None:
    from pipelines.errors import as_typed
    from pipelines.flows.schedule import load_schedule, next_runs, serve_schedules

    crons = {"score": score_cron, "monitor": monitor_cron, "train": train_cron}
    with as_typed():
        spec = load_schedule(file, crons, timezone)
    if not spec.enabled:
        raise BadInput("every schedule is disabled: nothing to serve", source=str(file))
    url = None if listing else require_server()
    console.print(schedules_table(spec, next_runs(spec, runs)))
    if listing:
        return
    console.print(
        f"serving {len(spec.enabled)} deployment(s) on {url}; Ctrl-C stops serving (the "
        "schedules stay active)",
        soft_wrap=True,
    )
    serve_schedules(spec)


def register(app: typer.Typer) -> None:
    """Add score, monitor and schedule to the creditrisk CLI."""
    app.command("score", help=SCORE_HELP)(score)
    app.command("monitor", help=MONITOR_HELP)(monitor)
    app.command("schedule", help=SCHEDULE_HELP)(schedule)
