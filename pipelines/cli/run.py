"""``creditrisk run``: the main job on the embedded default, and its summary."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pipelines.cli.flows import prefect_ui_hint, print_verdicts
from pipelines.cli.render import console, table
from pipelines.settings import Settings, get_settings

if TYPE_CHECKING:  # the rest is imported where it is used: `creditrisk --help` stays quick
    from pipelines.decisions.backtest import Backtest
    from pipelines.flows.guard import Recovered
    from pipelines.usecases.main_job import MainJobResult
    from pipelines.usecases.scoring import ScoringOutcome

DEMO_KEY = "demo"
RUN_HELP = """Run the whole main job on the embedded default and print a summary.

Generates a synthetic customer book, validates it against the data contract, builds point-in-time
feature snapshots, trains the LightGBM model and the scorecard challenger (tracked in MLflow),
promotes the model with a second (demo) approver, scores the last matured date and the latest
two quarters with the champion, applies the credit policy, raises early warnings, keeps everything
in the results store and monitors the champion's runs. Each step is a Prefect flow (build-features,
train, score, promote, monitor) under the flow creditrisk-main. Uses Prefect's ephemeral API (or
PREFECT_API_URL), MLflow on SQLite and results in SQLite, all under CREDITRISK_HOME (default
.creditrisk); set CREDITRISK_DATABASE_URL for PostgreSQL results.
"""


def counts_table(summary: MainJobResult) -> Table:
    table = Table(title=f"Customer book: {summary.book.customers:,} customers")
    for name in ("table", "rows in", "accepted", "rejected"):
        table.add_column(name, justify="left" if name == "table" else "right")
    for row in summary.book.counts.itertuples(index=False):
        table.add_row(row.table, f"{row.rows_in:,}", f"{row.accepted:,}", f"{row.rejected:,}")
    return table


def snapshots_table(summary: MainJobResult) -> Table:
    table = Table(title=f"Training snapshots: {summary.n_features} features")
    for name in ("as_of", "customers", "default rate (12 m)"):
        table.add_column(name, justify="left" if name == "as_of" else "right")
    for as_of, row in summary.training_snapshots.iterrows():
        table.add_row(f"{as_of:%Y-%m-%d}", f"{int(row['rows']):,}", f"{row['default_rate']:.2%}")
    return table


def model_table(summary: MainJobResult) -> Table:
    tracked, result = summary.trained.tracked, summary.trained.result
    table = Table(title=f"Model {tracked.model_name} v{tracked.version} (out-of-time test)")
    table.add_column("metric")
    table.add_column(f"{result.champion.name} (chosen)", justify="right")
    table.add_column(result.challenger.name, justify="right")
    c, s = result.champion.metrics, result.challenger.metrics
    for key, label in (("auc", "AUC"), ("gini", "Gini"), ("ks", "KS"), ("ece", "ECE")):
        table.add_row(label, f"{c[key]:.4f}", f"{s[key]:.4f}")
    table.add_row("AUC 95% CI", f"{c['auc_lower']:.3f}-{c['auc_upper']:.3f}", "")
    table.add_row("score PSI", f"{result.psi:.4f} ({result.psi_verdict})", "")
    return table


def grades_table(run: ScoringOutcome) -> Table:
    table = Table(title=f"Scored {run.as_of:%Y-%m-%d} (run {run.run_id}): grades and policy")
    for name in ("grade", "customers", "share", "median limit", "term", "conditions", "approval"):
        table.add_column(name, justify="left" if name in ("grade", "conditions") else "right")
    total = int(run.grades.sum())
    for row in run.policy.itertuples(index=False):
        table.add_row(
            row.grade,
            f"{row.customers:,}",
            f"{row.customers / total:.1%}",
            f"{row.median_limit:,.0f}",
            f"{row.term_days} d",
            str(row.conditions),
            row.approval_level,
        )
    return table


def stopped_lines(summary: MainJobResult) -> list[str]:
    """When the model was not promoted: that nothing was scored, the red grades with observed
    against predicted defaults, and what to do next (nothing when something was scored)."""
    if summary.decision.promoted or summary.runs:
        return []
    tracked, evaluation = summary.trained.tracked, summary.trained.result.champion
    lines = [
        f"[yellow]no champion, so nothing was scored[/yellow]: {tracked.model_name} "
        f"v{tracked.version} stays a challenger"
    ]
    grades = evaluation.grade_table
    red = grades[grades["light"] == "red"]
    for row in red.itertuples(index=False):
        lines.append(
            f"  grade {row.grade}: {int(row.defaults):,} defaults in {int(row.n):,} test customers "
            f"({row.default_rate:.2%}) against a mean PD of {row.mean_pd:.2%}: the PD is too low "
            "for the defaults observed (Jeffreys test red)"
        )
    if len(red):
        lines.append(
            f"  next: a book of {summary.book.customers:,} customers has few defaults per grade; "
            "rerun with more customers (creditrisk run --customers 20000), or for a demo accept "
            "red grades with creditrisk run --allow-red-jeffreys"
        )
    else:
        lines.append(
            "  next: fix what the reasons above say and rerun, or promote it by hand after "
            f"review: creditrisk promote {tracked.version} --approver NAME"
        )
    return lines


def print_backtest(result: Backtest | str, model: str) -> None:
    """The out-of-time backtest of the warning levels, and the goals they meet."""
    from pipelines.decisions.backtest import goals_of, goals_view, levels_view

    if isinstance(result, str):
        console.print(f"warning backtest: none ({result})", soft_wrap=True)
        return
    dates = ", ".join(f"{d:%Y-%m-%d}" for d in result.dates)
    title = f"Warning levels, backtest with {model} (out of time: {dates})"
    console.print(table(levels_view(result), title))
    console.print(table(goals_view(goals_of(result)), "Warning goals"))


def print_monitoring(result: object) -> None:
    """The monitoring verdicts, or why there are none."""
    if isinstance(result, str):
        console.print(f"monitoring: none ({result})", soft_wrap=True)
        return
    print_verdicts(result)


def print_summary(summary: MainJobResult, settings: Settings, seconds: float) -> None:
    """Book counts, default rates, features, model, grades, policy, open warnings, the warning
    backtest and the monitoring verdicts, then where to look."""
    console.print(counts_table(summary))
    console.print(f"rejects: {summary.book.rejects_path}")
    console.print(snapshots_table(summary))
    console.print(model_table(summary))
    decision = summary.decision
    verdict = "promoted to champion" if decision.promoted else "not promoted"
    console.print(
        f"{summary.trained.tracked.model_name} v{summary.trained.tracked.version} {verdict} "
        f"(approver {decision.approver}): {'; '.join(decision.reasons)}"
    )
    for line in stopped_lines(summary):
        console.print(line, soft_wrap=True)
    for run in summary.runs:
        console.print(grades_table(run))
    if summary.runs:
        from pipelines.usecases import review

        levels = review.warning_counts(settings.results_url)
        console.print(
            "open warnings by level: "
            + ", ".join(f"{level} {count:,}" for level, count in levels.items())
        )
    tracked = summary.trained.tracked
    print_backtest(summary.warning_backtest, f"{tracked.model_name} v{tracked.version}")
    print_monitoring(summary.monitoring)
    console.print(f"[bold]done in {seconds:.0f} s[/bold]; files under {settings.home.resolve()}:")
    console.print(f"  book and snapshots: {settings.book_dir}, {settings.snapshots_dir}")
    console.print(f"  results store: {settings.results_url}", soft_wrap=True)
    console.print(
        f"  models: mlflow ui --backend-store-uri {settings.tracking_uri} "
        f"--default-artifact-root {settings.artifacts_dir.resolve()}",
        soft_wrap=True,
    )
    console.print(f"  flows: {prefect_ui_hint()}", soft_wrap=True)
    console.print("  then: creditrisk warnings list | creditrisk ratings watchlist")
    if summary.runs:
        console.print(
            f"  trace a decision: creditrisk decisions reproduce {summary.runs[-1].run_id}"
        )
    print_service_hint(settings)


def print_service_hint(settings: Settings) -> None:
    """How to start the scoring service and open the page, with a fresh demo key (officer)."""
    from pipelines.usecases.access import renew_key
    from pipelines.usecases.preflight import check_store

    engine = check_store(settings.results_url, create=False)
    try:
        demo = renew_key(engine, DEMO_KEY, "officer", "creditrisk-run")
    finally:
        engine.dispose()
    console.print("  scoring service and page: creditrisk serve, then open http://127.0.0.1:8000/")
    console.print(
        f"    and sign in with the demo key (role officer; `creditrisk keys revoke {DEMO_KEY}` "
        "ends it):",
        soft_wrap=True,
    )
    console.print(f"    {demo.token}", soft_wrap=True, highlight=False)


def print_recovered(recovered: Recovered) -> None:
    """What was left of a killed job and has now been ended."""
    settled = recovered.settled
    console.print(
        f"[yellow]job {recovered.job_id} was killed[/yellow]; ended what it left: "
        f"{len(recovered.processes)} process(es), {len(recovered.mlflow_runs)} MLflow run(s) "
        f"marked KILLED, {len(recovered.flow_runs)} Prefect flow run(s) marked Crashed, "
        f"{len(settled.published)} pending scoring run(s) published (their model is champion), "
        f"{len(settled.discarded)} discarded",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add ``creditrisk run`` to the app."""

    @app.command("run", help=RUN_HELP)
    def run(
        customers: int = typer.Option(20_000, min=100, help="Customers in the synthetic book."),
        months: int = typer.Option(48, min=30, help="Months of repayment history."),
        seed: int = typer.Option(42, help="Random seed of the synthetic book."),
        start: str = typer.Option("2021-01-01", help="First month of the book (YYYY-MM-DD)."),
        trained_by: str = typer.Option("creditrisk-run", help="Who trains (recorded)."),
        approver: str = typer.Option(
            "demo-approver", help="Who approves the promotion; must differ from --trained-by."
        ),
        min_auc: float = typer.Option(0.65, help="Promotion gate: minimum test AUC."),
        allow_red_jeffreys: bool = typer.Option(
            False, help="Promotion gate: accept grades whose Jeffreys test is red (small books)."
        ),
        dask_address: str = typer.Option(
            None,
            "--dask-address",
            help="Dask scheduler (tcp://host:8786) for features, training and scoring. "
            "Default: $CREDITRISK_DASK_ADDRESS, else this process.",
        ),
    ) -> None:
        from prefect import tags

        from models.registry import Gates
        from pipelines.flows.cluster import address_of
        from pipelines.flows.guard import job, job_tag
        from pipelines.flows.main import main_flow
        from pipelines.usecases.book import GenerateRequest
        from pipelines.usecases.main_job import MainJobRequest
        from pipelines.usecases.scoring import DecisionConfig

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        settings = get_settings()
        config = DecisionConfig.load()
        book = GenerateRequest(customers=customers, months=months, start=start, seed=seed)
        started = time.perf_counter()
        with job(settings) as (job_id, recovered):
            if recovered is not None and recovered.anything:
                print_recovered(recovered)
            gates = Gates(min_auc=min_auc, allow_red_jeffreys=allow_red_jeffreys)
            address = address_of(dask_address, settings.dask_address)
            request = MainJobRequest(book, trained_by, approver, gates, job_id, address)
            status = console.status("running the main job (Prefect flow creditrisk-main)...")
            with status, tags(job_tag(job_id)):
                summary = main_flow(settings, request, config)
        print_summary(summary, settings, time.perf_counter() - started)
