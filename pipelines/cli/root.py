"""The ``creditrisk`` app: the command groups, and typed errors mapped to one line and an exit code.

Each command group is a module that registers its commands; commands call use cases and render
their results. The root group maps typed errors to one line and an exit code (0 ok, 1 refused by
a gate or threshold, 2 bad input, 3 a system unavailable, 4 a bug, 130 interrupted); ``--debug``
(or CREDITRISK_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import logging
import os

import click
import typer
from rich.markup import escape
from typer._click.exceptions import ClickException as TyperClickException
from typer.core import TyperGroup

from pipelines.cli.render import errors, print_error
from pipelines.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, typed
from pipelines.settings import quiet_environment

quiet_environment()


class GuardedGroup(TyperGroup):
    """The root group: typed errors become one line and an exit code, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.ClickException, TyperClickException):
            raise
        except KeyboardInterrupt:
            _exit_interrupted()
        except BrokenPipeError:  # the reader left (`creditrisk ... | head`): click ends quietly
            raise
        except Exception as exc:
            if _state["debug"]:
                raise
            if _interrupted(exc):  # a cleanup failed while Ctrl-C unwound: still an interrupt
                _exit_interrupted()
            found = typed(exc)
            if found is None:
                errors.print(
                    f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc)[:300])}. "
                    "This is a bug in creditrisk: rerun with `creditrisk --debug ...` and report "
                    "the traceback.",
                    soft_wrap=True,
                    highlight=False,
                )
                raise typer.Exit(EXIT_INTERNAL) from None
            print_error(found)
            raise typer.Exit(found.exit_code) from None


def _exit_interrupted() -> None:
    errors.print("[yellow]interrupted[/yellow]: nothing half-done was kept; run it again")
    raise typer.Exit(EXIT_INTERRUPTED) from None


def _interrupted(exc: BaseException) -> bool:
    """An interrupt is in the chain of causes and contexts of ``exc``."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


app = typer.Typer(
    cls=GuardedGroup,
    name="creditrisk",
    help=(
        "Default-prediction pipeline for customer credit risk: synthetic or real customer books, "
        "point-in-time features, LightGBM PD models with a scorecard challenger tracked in MLflow, "
        "ratings, credit policy and early warnings.\n\n"
        "Start with `creditrisk run` (the whole main job on a synthetic book). Files go under "
        "CREDITRISK_HOME (default .creditrisk).\n\n"
        "Exit codes: 0 ok, 1 refused by a gate or threshold, 2 bad input, 3 a system unavailable "
        "(results store, MLflow, disk), 4 an internal error, 130 interrupted."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

GROUPS = ("data", "train", "decisions", "run", "monitoring", "flows", "keys", "serve")
_state = {"debug": False}


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the Python traceback of an error (also CREDITRISK_DEBUG=1)."
    ),
) -> None:
    _state["debug"] = debug or os.environ.get("CREDITRISK_DEBUG") == "1"
    if not _state["debug"]:  # Prefect would print each failed task's traceback on the console
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        # MLflow logs a traceback for a database error before raising it; the error line says it
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


for _group in GROUPS:
    importlib.import_module(f"pipelines.cli.{_group}").register(app)
