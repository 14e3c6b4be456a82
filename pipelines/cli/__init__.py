"""The ``creditrisk`` command line (the app is in `pipelines.cli.root`).

This module stays light: `main` installs the signal handling before the heavy imports start
threads (see `pipelines.signals`), then runs the app.
"""

from __future__ import annotations


def main() -> None:
    """The `creditrisk` console script."""
    from pipelines.signals import interrupts_unwind

    interrupts_unwind()
    from pipelines.cli.root import app

    app()


def __getattr__(name: str):
    if name == "app":
        from pipelines.cli.root import app

        return app
    raise AttributeError(name)
