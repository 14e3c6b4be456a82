"""Schedules of the flows: monthly scoring and monitoring, quarterly retraining, served by Prefect.

Defaults here; a YAML file and command-line options change them. A schedule file reads::

    timezone: Europe/Berlin          # IANA name; default UTC
    deployments:
      score:   {cron: "0 6 1 * *"}   # any of score, monitor, train
      monitor: {cron: "0 8 1 * *"}
      train:   {cron: "0 2 1 1,4,7,10 *", enabled: false}

Every problem is refused with its line (`ScheduleError`, bad input). `deployments` makes the
Prefect deployments that `creditrisk schedule` serves; `next_runs` says what would run when.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, replace
from pathlib import Path

from models.yaml_config import ConfigError, dotted, line_of, parse_yaml_mapping, read_yaml_text


class ScheduleError(ConfigError):
    """The schedule file or options are invalid; ``problems`` lists (line, message) pairs."""

    what = "schedule"


@dataclass(frozen=True)
class Scheduled:
    """One deployment: which flow, on what cron, what it does and with which parameters."""

    name: str
    flow_name: str
    flow: str  # "module:function"
    cron: str
    description: str
    parameters: dict
    enabled: bool = True


DEFAULTS = {
    "score": Scheduled(
        "monthly-scoring",
        "score",
        "pipelines.flows.score:score_flow",
        "0 6 1 * *",
        "score the book's latest month with the champion (policy, reasons, warnings)",
        {"user": "creditrisk-schedule"},
    ),
    "monitor": Scheduled(
        "monthly-monitoring",
        "monitor",
        "pipelines.flows.monitor:monitor_flow",
        "0 8 1 * *",
        "monitor the champion's latest scoring run (PSI, migration, backtests, alerts)",
        {"user": "creditrisk-schedule"},
    ),
    "train": Scheduled(
        "quarterly-retraining",
        "train",
        "pipelines.flows.train:train_flow",
        "0 2 1 1,4,7,10 *",
        "rebuild the training snapshots from the book and train a challenger (promotion stays "
        "a person's four-eyes decision)",
        {"request": {"trained_by": "creditrisk-schedule"}, "refresh": True},
    ),
}
FIELDS = {"cron", "enabled"}
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class ScheduleSpec:
    """The deployments to serve and the time zone their crons are read in."""

    deployments: dict[str, Scheduled]
    timezone: str = DEFAULT_TIMEZONE

    @property
    def enabled(self) -> list[Scheduled]:
        return [d for d in self.deployments.values() if d.enabled]


def cron_problem(cron: str) -> str | None:
    """Why ``cron`` is not a cron string Prefect accepts, or None."""
    from prefect._vendor.croniter import croniter

    if not isinstance(cron, str) or len(cron.split()) != 5:
        return f"{cron!r} is not a cron string of 5 fields (minute hour day month weekday)"
    if not croniter.is_valid(cron):
        return f"{cron!r} is not a valid cron string"
    return None


def timezone_problem(name: str) -> str | None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return f"{name!r} is not an IANA time zone such as UTC or Europe/Berlin"
    return None


def parse_schedule(text: str, source: str) -> ScheduleSpec:
    """A schedule file's text as a spec over the defaults; every problem with its line."""
    data, index = parse_yaml_mapping(
        text, source, ScheduleError, "expected a mapping with timezone and deployments"
    )
    problems = []
    for key in sorted(set(data) - {"timezone", "deployments"}):
        problems.append(
            (line_of(index, [key]), f"{key}: unknown key; allowed timezone, deployments")
        )
    timezone = data.get("timezone", DEFAULT_TIMEZONE)
    if (why := timezone_problem(timezone)) is not None:
        problems.append((line_of(index, ["timezone"]), f"timezone: {why}"))
    given = data.get("deployments") or {}
    if not isinstance(given, dict):
        problems.append((line_of(index, ["deployments"]), "deployments: expected a mapping"))
        given = {}
    chosen = dict(DEFAULTS)
    for name, entry in given.items():
        loc = ["deployments", name]
        if name not in DEFAULTS:
            allowed = ", ".join(DEFAULTS)
            problems.append((line_of(index, loc), f"{dotted(loc)}: unknown flow; one of {allowed}"))
            continue
        if not isinstance(entry, dict):
            problems.append((line_of(index, loc), f"{dotted(loc)}: expected cron and enabled"))
            continue
        for key in sorted(set(entry) - FIELDS):
            where = line_of(index, [*loc, key])
            problems.append((where, f"{dotted([*loc, key])}: unknown key; allowed cron, enabled"))
        cron = entry.get("cron", DEFAULTS[name].cron)
        if (why := cron_problem(cron)) is not None:
            problems.append((line_of(index, [*loc, "cron"]), f"{dotted([*loc, 'cron'])}: {why}"))
        enabled = entry.get("enabled", True)
        if not isinstance(enabled, bool):
            where = line_of(index, [*loc, "enabled"])
            problems.append((where, f"{dotted([*loc, 'enabled'])}: expected true or false"))
        chosen[name] = replace(DEFAULTS[name], cron=cron, enabled=enabled is not False)
    if problems:
        raise ScheduleError(source, sorted(problems, key=lambda p: p[0] or 0))
    return ScheduleSpec(chosen, str(timezone))


def load_schedule(
    path: Path | None = None,
    crons: dict[str, str | None] | None = None,
    timezone: str | None = None,
) -> ScheduleSpec:
    """The defaults, then the file at ``path``, then the options (``crons`` by flow name)."""
    spec = ScheduleSpec(dict(DEFAULTS))
    if path is not None:
        spec = parse_schedule(read_yaml_text(path, ScheduleError, "schedule"), str(path))
    problems = []
    deployments = dict(spec.deployments)
    for name, cron in (crons or {}).items():
        if cron is None:
            continue
        if (why := cron_problem(cron)) is not None:
            problems.append((None, f"--{name}-cron: {why}"))
        deployments[name] = replace(deployments[name], cron=cron, enabled=True)
    if timezone is not None and (why := timezone_problem(timezone)) is not None:
        problems.append((None, f"--timezone: {why}"))
    if problems:
        raise ScheduleError(None, problems)
    return ScheduleSpec(deployments, timezone or spec.timezone)


def next_runs(spec: ScheduleSpec, n: int = 3, after: dt.datetime | None = None) -> dict:
    """The next ``n`` run times of each enabled deployment, by deployment name."""
    from prefect.server.schemas.schedules import CronSchedule

    start = after or dt.datetime.now(dt.UTC)

    async def dates(cron: str) -> list[dt.datetime]:
        schedule = CronSchedule(cron=cron, timezone=spec.timezone)
        return list(await schedule.get_dates(n=n, start=start))

    return {d.name: asyncio.run(dates(d.cron)) for d in spec.enabled}


def deployments(spec: ScheduleSpec) -> list:
    """The Prefect deployments of the enabled schedules (nothing is started)."""
    import importlib

    from prefect.client.schemas.schedules import CronSchedule
    from prefect.deployments.runner import EntrypointType

    made = []
    for entry in spec.enabled:
        module, name = entry.flow.split(":")
        flow = getattr(importlib.import_module(module), name)
        made.append(
            flow.to_deployment(
                entry.name,
                schedule=CronSchedule(cron=entry.cron, timezone=spec.timezone),
                parameters=entry.parameters,
                description=entry.description,
                tags=["creditrisk", "scheduled"],
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return made


def serve_schedules(spec: ScheduleSpec) -> None:
    """Serve the deployments until stopped; their schedules stay active after a restart."""
    from prefect import serve

    serve(*deployments(spec), pause_on_shutdown=False)
