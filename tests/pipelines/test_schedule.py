"""Schedules: the defaults, a YAML file and options, validated with lines; what would run when;
the deployments served through Prefect's `serve` with their schedules kept on shutdown."""

from __future__ import annotations

import datetime as dt

import pytest
from typer.testing import CliRunner

from pipelines.flows.schedule import (
    DEFAULTS,
    ScheduleError,
    deployments,
    load_schedule,
    next_runs,
    parse_schedule,
    serve_schedules,
)

JAN_15 = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)


def test_the_defaults_score_and_monitor_monthly_and_retrain_quarterly():
    runs = next_runs(load_schedule(), n=3, after=JAN_15)

    def days(name):
        return [(t.month, t.day, t.hour) for t in runs[name]]

    assert days("monthly-scoring") == [(2, 1, 6), (3, 1, 6), (4, 1, 6)]
    assert days("monthly-monitoring") == [(2, 1, 8), (3, 1, 8), (4, 1, 8)]
    assert days("quarterly-retraining") == [(4, 1, 2), (7, 1, 2), (10, 1, 2)]


def test_a_file_and_options_change_the_crons_time_zone_and_what_is_served(tmp_path):
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "timezone: Europe/Berlin\n"
        "deployments:\n"
        "  score: {cron: '30 5 2 * *'}\n"
        "  train: {enabled: false}\n"
    )
    spec = load_schedule(path, {"monitor": "0 9 * * 1"})

    assert spec.timezone == "Europe/Berlin"
    assert [d.name for d in spec.enabled] == ["monthly-scoring", "monthly-monitoring"]
    runs = next_runs(spec, n=1, after=JAN_15)
    assert runs["monthly-scoring"][0].isoformat().startswith("2026-02-02T05:30:00+01:00")
    assert runs["monthly-monitoring"][0].weekday() == 0  # Mondays


def test_every_problem_of_a_schedule_file_is_named_with_its_line():
    text = (
        "timezone: Mars/Base\n"
        "deployments:\n"
        "  score:\n"
        "    cron: '0 6 31 2 * *'\n"
        "    when: now\n"
        "  scoring: {}\n"
        "extra: 1\n"
    )
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(text, "schedule.yaml")
    problems = dict(caught.value.problems)
    assert "not an IANA time zone" in problems[1]
    assert "deployments.score.cron" in problems[4] and "5 fields" in problems[4]
    assert "deployments.score.when: unknown key" in problems[5]
    assert "deployments.scoring: unknown flow; one of score, monitor, train" in problems[6]
    assert "extra: unknown key" in problems[7]


def test_a_bad_cron_option_is_bad_input_naming_the_option():
    from pipelines.cli import app

    result = CliRunner().invoke(app, ["schedule", "--list", "--train-cron", "61 * * * *"])

    assert result.exit_code == 2, result.output
    assert "--train-cron: '61 * * * *' is not a valid cron string" in result.output


def test_list_prints_each_deployment_with_its_next_runs_and_starts_nothing(
    monkeypatch, wide_console
):
    from pipelines.cli import app
    from pipelines.flows import schedule

    monkeypatch.setattr(schedule, "serve_schedules", lambda spec: pytest.fail("served"))
    result = CliRunner().invoke(app, ["schedule", "--list", "--runs", "2"], env={"COLUMNS": "200"})

    assert result.exit_code == 0, result.output
    for entry in DEFAULTS.values():
        assert f"{entry.flow_name}/{entry.name}" in result.output
        assert entry.cron in result.output
    assert result.output.count(" UTC ") >= 2 * len(DEFAULTS)


def test_serving_without_a_prefect_server_is_refused_with_what_to_start():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.cli import app

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        result = CliRunner().invoke(app, ["schedule"])

    assert result.exit_code == 2, result.output
    assert "PREFECT_API_URL" in result.output and "prefect server start" in result.output


def test_the_deployments_run_the_flows_by_module_on_their_crons(monkeypatch):
    import prefect

    spec = load_schedule(crons={"score": "0 7 1 * *"}, timezone="Asia/Shanghai")
    made = {d.name: d for d in deployments(spec)}

    score = made["monthly-scoring"]
    assert score.entrypoint == "pipelines.flows.score.score_flow"
    (scheduled,) = score.schedules
    assert (scheduled.schedule.cron, scheduled.schedule.timezone) == ("0 7 1 * *", "Asia/Shanghai")
    assert made["quarterly-retraining"].parameters["refresh"] is True

    served = {}
    monkeypatch.setattr(prefect, "serve", lambda *d, **kw: served.update(n=len(d), **kw))
    serve_schedules(spec)
    assert served == {"n": 3, "pause_on_shutdown": False}
