"""Commands for decisions: early warnings, credit policy, ratings over time and the reproduction
of stored decisions (`register(app)`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from models.master_scale import MasterScale
from pipelines.cli.render import console, table
from pipelines.errors import Refused, as_typed
from pipelines.settings import get_settings
from pipelines.usecases import review
from pipelines.usecases.preflight import check_store

DB_HELP = "Results store URL (default: CREDITRISK_DATABASE_URL, else .creditrisk/results.db)."
DatabaseUrl = Annotated[str | None, typer.Option("--database-url", help=DB_HELP)]
User = Annotated[str, typer.Option("--user", "-u", help="Who you are (recorded in the audit log).")]

warnings_app = typer.Typer(
    help="Early warnings: list, show a warning's history, acknowledge and resolve.",
    no_args_is_help=True,
)
policy_app = typer.Typer(
    help="Credit policy: check a policy file, override a limit.", no_args_is_help=True
)
ratings_app = typer.Typer(
    help="Ratings over time: the scoring runs, migration between them, the watch list.",
    no_args_is_help=True,
)
decisions_app = typer.Typer(
    help="Stored decisions: reproduce a scoring run from what it recorded.", no_args_is_help=True
)


def _engine(url: str | None):
    """The results store; commands here only read or change one that exists."""
    if url:
        return check_store(url, create=False, named="--database-url")
    return check_store(get_settings().results_url, create=False)


def _table(frame, title: str, columns: list[str]) -> None:
    console.print(table(frame, title, columns))


@warnings_app.command("list")
def warnings_list(
    level: Annotated[list[str] | None, typer.Option(help="Only these levels (repeatable).")] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="Statuses to show (default: open, acknowledged).")
    ] = None,
    customer: Annotated[str | None, typer.Option(help="Only this customer id.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    database_url: DatabaseUrl = None,
) -> None:
    """List warnings, newest first (default: active ones at every level)."""
    statuses, levels = tuple(status or review.ACTIVE), tuple(level) if level else None
    review.check_warning_filters(statuses, levels)
    frame = review.list_warnings(_engine(database_url), statuses, levels, customer)
    if frame.empty:
        console.print("no warnings match")
        return
    _table(
        frame.head(limit),
        f"{len(frame)} warnings",
        ["id", "customer_id", "level", "latest_level", "status", "signals", "last_as_of"],
    )


def _values(evidence: str | None) -> str:
    """Signal values as ``signal: name=value, ...; ...`` from a warning's evidence JSON."""
    found = json.loads(evidence or "{}")
    return "; ".join(
        f"{signal}: " + ", ".join(f"{k}={v}" for k, v in values.items())
        if isinstance(values, dict)
        else f"{signal}: {values}"
        for signal, values in found.items()
    )


@warnings_app.command("show")
def warnings_show(
    warning_id: Annotated[int, typer.Argument(help="Warning id (see `warnings list`).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Show a warning and its history of runs: what each run found (level, signals, values)."""
    shown = review.show_warning(_engine(database_url), warning_id)
    w = shown.warning
    console.print(
        f"warning {w['id']}: customer {w['customer_id']}, level {w['level']} "
        f"(latest run says {w['latest_level']}), {w['status']}; "
        f"open since {w['first_as_of']}, last run {w['last_run_id']} as of {w['last_as_of']}",
        soft_wrap=True,
    )
    console.print(f"signals: {w['signals']}; values: {_values(w['evidence'])}", soft_wrap=True)
    console.print(f"measures: {', '.join(json.loads(w['measures'] or '[]'))}")
    runs = shown.runs.assign(values=shown.runs["evidence"].map(_values))
    columns = ["as_of", "run_id", "action", "level", "warning_level", "signals", "values"]
    _table(runs, f"{len(runs)} runs", columns)
    events = shown.events
    if not events.empty:
        at = pd.to_datetime(events["at"]).dt.strftime("%Y-%m-%d %H:%M:%S")
        events = events.assign(at=at).astype(object).where(events.notna(), "")
        _table(events, "events (UTC)", ["at", "event", "from_level", "to_level", "user", "note"])


@warnings_app.command("ack")
def warnings_ack(
    warning_id: Annotated[int, typer.Argument(help="Warning id (see `warnings list`).")],
    user: User,
    note: Annotated[str, typer.Option("--note", "-n", help="What you did or will do.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Acknowledge an open warning (it stays active until resolved or cleared by data)."""
    review.acknowledge_warning(_engine(database_url), warning_id, user, note)
    console.print(f"warning {warning_id} acknowledged by {user}")


@warnings_app.command("resolve")
def warnings_resolve(
    warning_id: Annotated[int, typer.Argument(help="Warning id (see `warnings list`).")],
    user: User,
    note: Annotated[str, typer.Option("--note", "-n", help="How it was resolved.")],
    database_url: DatabaseUrl = None,
) -> None:
    """Resolve a warning; the next run that still flags the customer opens a new one."""
    review.resolve_warning(_engine(database_url), warning_id, user, note)
    console.print(f"warning {warning_id} resolved by {user}")


@policy_app.command("check")
def policy_check(
    file: Annotated[Path, typer.Argument(help="Policy YAML to validate.")],
    master_scale: Annotated[
        Path | None, typer.Option(help="Master scale YAML (default: models/master_scale.yaml).")
    ] = None,
) -> None:
    """Validate a credit policy file against the master scale and show it per grade."""
    from pipelines.decisions.policy import load_policy, policy_table

    with as_typed():
        policy = load_policy(file, MasterScale.load(master_scale).grades)
    frame = policy_table(policy).fillna("")
    _table(frame, f"{file}: valid ({policy.name})", list(frame.columns))


@policy_app.command("override")
def policy_override(
    customer: Annotated[str, typer.Argument(help="Customer id.")],
    limit: Annotated[float, typer.Option("--limit", help="The limit to grant instead.")],
    user: User,
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why (required, audited).")],
    term_days: Annotated[int | None, typer.Option(help="Override the term too.")] = None,
    run_id: Annotated[int | None, typer.Option(help="Decision's run (default: latest).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Override a customer's recommended credit limit; recorded with user and reason."""
    review.check_override(limit, term_days)
    out = review.override_limit(
        _engine(database_url), customer, limit, user, reason, term_days=term_days, run_id=run_id
    )
    console.print(
        f"override {out.override_id}: {customer} limit {out.original_limit} -> {limit} by {user}"
    )


@ratings_app.command("migration")
def ratings_migration(
    before: Annotated[int | None, typer.Option("--from", help="Earlier run id.")] = None,
    after: Annotated[int | None, typer.Option("--to", help="Later run id.")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (default: any).")] = None,
    rates: Annotated[bool, typer.Option(help="Show row shares instead of counts.")] = False,
    database_url: DatabaseUrl = None,
) -> None:
    """Rating migration matrix between two runs (default: the two newest; see `ratings runs`)."""
    with as_typed():
        scale = MasterScale.load()
    before, after, result = review.rating_migration(
        _engine(database_url), before, after, scale, model
    )
    matrix = (result.rates.round(3) if rates else result.counts).reset_index()
    matrix.columns = [str(c) for c in matrix.columns]
    _table(
        matrix.astype(str),
        f"run {before} -> run {after}: {result.n} customers",
        list(matrix.columns),
    )
    console.print(
        f"upgrades {result.upgrade_share:.1%}, downgrades {result.downgrade_share:.1%}, "
        f"stable {result.stable_share:.1%}; new, exited or already in default {result.n_excluded}"
    )


@ratings_app.command("runs")
def ratings_runs(
    model: Annotated[str | None, typer.Option(help="Model name (default: any).")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The current scoring runs, newest as-of date first: the ids `ratings migration` takes."""
    frame = review.list_runs(_engine(database_url), model)
    if frame.empty:
        console.print("the store holds no scoring runs yet; `creditrisk run` makes some")
        return
    frame = frame.rename(
        columns={"model_name": "model", "model_version": "version", "n_customers": "customers"}
    )
    frame["created (UTC)"] = pd.to_datetime(frame["finished_at"]).dt.strftime("%Y-%m-%d %H:%M:%S")
    columns = ["id", "as_of", "model", "version", "customers", "created (UTC)"]
    _table(frame, f"{len(frame)} current scoring runs", columns)


@ratings_app.command("watchlist")
def ratings_watchlist(
    model: Annotated[str | None, typer.Option(help="Model whose latest run gives grades.")] = None,
    limit: Annotated[int, typer.Option(help="Show at most this many.")] = 50,
    database_url: DatabaseUrl = None,
) -> None:
    """Customers with an active amber or red warning, newest first, with their current rating."""
    frame = review.watchlist(_engine(database_url), model)
    if frame.empty:
        console.print("the watch list is empty")
        return
    frame = frame.assign(measures=frame["measures"].map(lambda m: ", ".join(json.loads(m or "[]"))))
    columns = [
        c
        for c in (
            "id",
            "customer_id",
            "level",
            "status",
            "grade",
            "pd",
            "signals",
            "last_as_of",
            "measures",
        )
        if c in frame
    ]
    _table(frame.head(limit), f"watch list: {len(frame)} customers", columns)


@decisions_app.command("reproduce")
def decisions_reproduce(
    run_id: Annotated[int, typer.Argument(help="Scoring run id (see `ratings runs`).")],
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute a stored run from its recorded configuration, snapshot and model version (from
    MLflow) and compare every PD, grade, reason and decision; exit 1 when anything differs."""
    from pipelines.usecases import reproduce

    settings = get_settings()
    found = reproduce.reproduce_run(_engine(database_url), settings.tracking_uri, run_id)
    title = f"run {run_id}: {found.model_name} v{found.model_version} as of {found.as_of}"
    checks = found.checks.assign(ok=found.checks["ok"].map({True: "yes", False: "no"}))
    _table(checks, title, ["item", "sha256", "ok", "verdict"])
    if not found.compared:
        bad = ", ".join(found.checks.loc[~found.checks["ok"], "item"])
        raise Refused(
            f"run {run_id} cannot be reproduced: its {bad} is not as the run recorded it",
            hint="the store was changed after the run; restore it from a backup",
        )
    if not found.differences.empty:
        _table(found.differences, "differences", list(found.differences.columns))
        columns = ", ".join(found.differences["column"])
        raise Refused(f"run {run_id} does not reproduce: {columns} differ", hint="see above")
    console.print(
        f"run {run_id} reproduces exactly: {found.n_customers:,} customers' PD, score, grade, "
        "reasons and policy decisions (with their inputs) match",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the `warnings`, `policy`, `ratings` and `decisions` command groups to the CLI."""
    from pipelines.cli import warnings_calibrate

    warnings_calibrate.register(warnings_app)
    app.add_typer(warnings_app, name="warnings")
    app.add_typer(policy_app, name="policy")
    app.add_typer(ratings_app, name="ratings")
    app.add_typer(decisions_app, name="decisions")
