"""Use cases of credit staff on stored results: warnings, overrides, migrations, the watch list."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Engine

from models.master_scale import MasterScale
from pipelines.decisions.early_warning import LEVELS
from pipelines.errors import BadInput, Conflict, NotFound, as_typed
from pipelines.store import lifecycle, queries
from pipelines.store.lifecycle import ACTIVE, STATUSES
from pipelines.usecases.preflight import check_store

if TYPE_CHECKING:
    from models.validation import MigrationResult

MAX_LIMIT = 1e12
MAX_TERM_DAYS = 3650


def _choices(values: tuple[str, ...] | None, allowed: tuple[str, ...], option: str) -> None:
    unknown = sorted(set(values or ()) - set(allowed))
    if unknown:
        raise BadInput(
            f"unknown value(s) {', '.join(map(repr, unknown))}",
            field=option,
            hint=f"use one of {', '.join(allowed)}",
        )


def check_warning_filters(status: tuple[str, ...] | None, levels: tuple[str, ...] | None) -> None:
    """Unknown statuses or levels are refused, naming the option and the values allowed."""
    _choices(status, STATUSES, "--status")
    _choices(levels, tuple(lv for lv in LEVELS if lv != "green"), "--level")


def list_warnings(
    engine: Engine,
    status: tuple[str, ...] = ACTIVE,
    levels: tuple[str, ...] | None = None,
    customer_id: str | None = None,
) -> pd.DataFrame:
    """Stored warnings, newest first; unknown levels or statuses are refused."""
    check_warning_filters(status, levels)
    with as_typed():
        return queries.read_warnings(engine, status, levels, customer_id)


@dataclass(frozen=True)
class WarningHistory:
    """A stored warning, what each run found for it (oldest first) and its lifecycle events."""

    warning: dict
    runs: pd.DataFrame
    events: pd.DataFrame


def show_warning(engine: Engine, warning_id: int) -> WarningHistory:
    """One warning with its history of runs: as-of date, run, action, the level the data gave,
    the signals that fired and their values; `NotFound` when there is no such warning."""
    with as_typed():
        warning = queries.read_warning(engine, warning_id)
        if warning is None:
            raise NotFound(
                f"no warning with id {warning_id}",
                field="WARNING_ID",
                hint="list them with `creditrisk warnings list`",
            )
        runs = lifecycle.observations_of(engine, warning_id)
        return WarningHistory(warning, runs, lifecycle.events_of(engine, warning_id))


@dataclass(frozen=True)
class WarningActed:
    """A warning after a person acted on it."""

    warning_id: int
    customer_id: str
    level: str
    status: str
    by: str
    note: str


@dataclass(frozen=True)
class OverrideRecorded:
    """A manual limit override as recorded (and audited)."""

    override_id: int
    customer_id: str
    run_id: int
    original_limit: float | None
    override_limit: float
    term_days: int | None
    user: str
    reason: str


def _transition(action, engine: Engine, warning_id: int, user: str, note: str) -> WarningActed:
    with as_typed():
        try:
            row = action(engine, warning_id, user, note)
            return WarningActed(
                warning_id, row["customer_id"], row["level"], row["status"], user, note
            )
        except LookupError as exc:
            raise NotFound(str(exc), field="WARNING_ID") from exc
        except lifecycle.TransitionError as exc:
            raise Conflict(str(exc), field="WARNING_ID") from exc
        except ValueError as exc:
            raise BadInput(str(exc)) from exc


def acknowledge_warning(engine: Engine, warning_id: int, user: str, note: str) -> WarningActed:
    """Acknowledge an open warning (audited); `Conflict` when it is not open (acknowledged,
    defaulted or resolved)."""
    return _transition(lifecycle.acknowledge, engine, warning_id, user, note)


def resolve_warning(engine: Engine, warning_id: int, user: str, note: str) -> WarningActed:
    """Resolve an open, acknowledged or defaulted warning (audited); `Conflict` when already
    resolved."""
    return _transition(lifecycle.resolve, engine, warning_id, user, note)


def check_override(limit: float, term_days: int | None) -> None:
    """The limit is a finite amount in range and the term, when given, a number of days."""
    if not math.isfinite(limit) or not 0 <= limit <= MAX_LIMIT:
        raise BadInput(
            f"limit {limit} is not a finite amount between 0 and {MAX_LIMIT:,.0f}",
            field="--limit",
            hint="give the limit in the book's currency, e.g. 250000",
        )
    if term_days is not None and not 0 <= term_days <= MAX_TERM_DAYS:
        raise BadInput(
            f"term {term_days} days is not between 0 and {MAX_TERM_DAYS}",
            field="--term-days",
            hint="give the term in days, e.g. 90",
        )


def override_limit(
    engine: Engine,
    customer_id: str,
    limit: float,
    user: str,
    reason: str,
    *,
    term_days: int | None = None,
    run_id: int | None = None,
) -> OverrideRecorded:
    """Record a manual limit (and term) override against the customer's latest decision."""
    check_override(limit, term_days)
    with as_typed():
        try:
            row = queries.record_override(
                engine, customer_id, limit, user, reason, term_days=term_days, run_id=run_id
            )
            return OverrideRecorded(
                row["id"],
                customer_id,
                row["run_id"],
                row["original_limit"],
                row["override_limit"],
                term_days,
                row["user"],
                row["reason"],
            )
        except LookupError as exc:
            raise NotFound(str(exc), key=customer_id) from exc
        except ValueError as exc:
            raise BadInput(str(exc)) from exc


def rating_migration(
    engine: Engine,
    before: int | None,
    after: int | None,
    scale: MasterScale,
    model_name: str | None = None,
) -> tuple[int, int, MigrationResult]:
    """Migration matrix between two current runs (default: the two newest as-of dates)."""
    with as_typed():
        if before is None or after is None:
            newest = queries.latest_run_ids(engine, model_name, n=2)
            if len(newest) < 2:
                raise NotFound(
                    f"the store holds {len(newest)} current scoring run(s); a migration needs two",
                    hint="score another as-of date, or pass --from and --to run ids",
                )
            after = newest[0] if after is None else after
            before = newest[1] if before is None else before
        known = set(queries.list_runs(engine, model_name, current_only=False)["id"].astype(int))
        for option, run in (("--from", before), ("--to", after)):
            if run not in known:
                raise NotFound(
                    f"no scoring run with id {run}",
                    field=option,
                    hint="list runs with `creditrisk ratings runs`",
                )
        return before, after, queries.run_migration(engine, before, after, scale)


def watchlist(engine: Engine, model_name: str | None = None) -> pd.DataFrame:
    """Customers with an active amber or red warning and their current rating (customers in
    default are with collections, not on the watch list)."""
    with as_typed():
        return queries.read_watchlist(engine, model_name)


def list_runs(engine: Engine, model_name: str | None = None) -> pd.DataFrame:
    """The current scoring runs, newest as-of date first."""
    with as_typed():
        return queries.list_runs(engine, model_name)


def warning_counts(results_url: str) -> dict[str, int]:
    """Active warnings per level in the results store at ``results_url`` (which must exist)."""
    engine = check_store(results_url, create=False)
    try:
        with as_typed():
            return queries.open_warnings_by_level(engine)
    finally:
        engine.dispose()
