"""Checks that the systems a use case needs are there, each within seconds, before work starts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sqlalchemy import Engine

from models.tracking import connect
from pipelines.errors import as_typed
from pipelines.store.db import open_store


def check_writable(folder: Path) -> None:
    """``folder`` exists (or can be made) and a file can be written in it."""
    with as_typed():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass


def check_store(url: str, *, create: bool) -> Engine:
    """An engine on a reachable, migrated results store; ``create`` False refuses a missing one."""
    with as_typed():
        engine = open_store(url, create=create)
    return engine


def check_tracking(tracking_uri: str) -> None:
    """The MLflow tracking store answers."""
    with as_typed():
        connect(tracking_uri).search_experiments(max_results=1)
