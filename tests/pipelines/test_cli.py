"""The command line explains itself: every command and sub-command has a --help."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_command_line_starts_without_the_libraries_its_commands_load():
    """`creditrisk --help` and the store commands do not wait on MLflow, LightGBM, Prefect or
    the model code: each command imports what it uses."""
    code = (
        "import sys, pipelines.cli.root\n"
        "heavy = ['mlflow', 'lightgbm', 'prefect', 'sklearn', 'scipy', 'matplotlib', 'numba',"
        " 'models.training', 'models.scorer', 'models.tracking', 'models.registry']\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout


def test_a_reader_that_leaves_is_no_internal_error(monkeypatch):
    """`creditrisk ... | head -1`: the pipe closing under a command ends it as click ends it
    (quietly), not as a bug."""
    from typer.core import TyperGroup

    def closed(self, ctx):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(TyperGroup, "invoke", closed)
    result = runner.invoke(app, ["keys", "list"])
    assert result.exit_code == 1
    assert "internal error" not in result.output, result.output
