"""The ``creditrisk`` command line: one entry point for data, models, decisions and the main job."""

from __future__ import annotations

import importlib

import typer

from pipelines.settings import quiet_environment

quiet_environment()

app = typer.Typer(
    name="creditrisk",
    help=(
        "Default-prediction pipeline for customer credit risk: synthetic or real customer books, "
        "point-in-time features, LightGBM PD models with a scorecard challenger tracked in MLflow, "
        "ratings, credit policy and early warnings.\n\n"
        "Start with `creditrisk run` (the whole main job on a synthetic book). Files go under "
        "CREDITRISK_HOME (default .creditrisk)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

AREAS = (
    "pipelines.cli_data_generate",
    "pipelines.cli_data_validate",
    "pipelines.cli_data_features",
    "pipelines.cli_models",
    "pipelines.cli_decisions",
    "pipelines.cli_run",
)

for _area in AREAS:
    importlib.import_module(_area).register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
