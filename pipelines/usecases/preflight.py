"""Checks that the systems a use case needs are there, each within seconds, before work starts."""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from sqlalchemy import Engine

from pipelines.errors import (
    DATABASE_URL,
    Unavailable,
    as_typed,
    bad_tracking_uri,
    tracking_unavailable,
)
from pipelines.store.db import open_store

if TYPE_CHECKING:  # MLflow is imported when it is checked: store commands start without it
    from mlflow.tracking import MlflowClient

PROBE_SECONDS = 3.0
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def check_writable(folder: Path) -> None:
    """``folder`` exists (or can be made) and a file can be written in it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise Unavailable(
            f"cannot write in this folder ({exc.strerror or exc})",
            source=str(folder),
            hint="make it writable or set CREDITRISK_HOME to a folder that is",
        ) from exc


def check_store(url: str, *, create: bool, named: str = DATABASE_URL) -> Engine:
    """An engine on a reachable, migrated results store; ``create`` False refuses a missing one.

    Errors name ``named``: the variable or option the URL came from.
    """
    with as_typed():
        return open_store(url, create=create, named=named)


def tracking_address(uri: str) -> tuple[str, int] | None:
    """Host and port of a tracking server or database; None for a local store (SQLite, files)
    and for a server reached through an HTTP proxy."""
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+")[0].lower()
    if scheme not in DEFAULT_PORTS:
        return None
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise bad_tracking_uri(str(exc)) from exc
    if not parts.hostname:
        raise bad_tracking_uri("it names no host")
    if getproxies().get(scheme) and not proxy_bypass(parts.hostname):
        return None
    return parts.hostname, port


def probe(address: tuple[str, int]) -> None:
    """A TCP connection to ``address`` opens within `PROBE_SECONDS`."""
    host, port = address
    try:
        socket.create_connection(address, timeout=PROBE_SECONDS).close()
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        raise tracking_unavailable(f"{host}:{port}: {reason}") from exc


def sqlite_folder(uri: str) -> Path | None:
    """The folder of a SQLite tracking store's file (None for other stores)."""
    database = uri.removeprefix("sqlite:///").split("?")[0] if uri.startswith("sqlite:///") else ""
    return Path(database).parent if database and database != ":memory:" else None


def check_tracking(tracking_uri: str) -> MlflowClient:
    """A client on the MLflow tracking store once it answers: a server or database within
    `PROBE_SECONDS`, a SQLite file in a folder that can be written."""
    from models.tracking import connect

    address = tracking_address(tracking_uri)
    if address is not None:
        probe(address)
    folder = sqlite_folder(tracking_uri)
    if folder is not None:
        check_writable(folder)
    with as_typed():
        client = connect(tracking_uri)
        client.search_experiments(max_results=1)
    return client
