"""The command line explains itself: every command and sub-command has a --help."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [(*prefix, info.name or info.callback.__name__) for info in group.registered_commands]
    for sub in group.registered_groups:
        found += commands(sub.typer_instance, (*prefix, sub.name))
    return found


def test_top_level_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in (
        "generate",
        "validate",
        "features",
        "train",
        "promote",
        "run",
        "models",
        "score",
        "monitor",
        "schedule",
    ):
        assert name in result.output


def test_every_command_has_help_text():
    names = commands(app)
    assert len(names) >= 12
    for path in names:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        body = result.output.split("Options")[0]
        assert len(body.split()) > 6, f"creditrisk {' '.join(path)} --help explains too little"
