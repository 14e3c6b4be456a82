"""Throwaway stores for tests and benchmarks: a SQLite file or a private PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from pipelines.store.db import make_engine, upgrade

POSTGRES_TEST_URL = os.environ.get(
    "CREDITRISK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


class StoreUnavailable(RuntimeError):
    """The PostgreSQL test server did not answer."""


def postgres_available(url: str = POSTGRES_TEST_URL) -> str | None:
    """None when the server answers, else why not (for skip messages)."""
    try:
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return None
    except Exception as exc:
        return f"PostgreSQL at {url} did not answer ({type(exc).__name__}: {str(exc)[:120]})"


@contextmanager
def temporary_store(kind: str, folder: Path, migrate: bool = True) -> Iterator[Engine]:
    """An empty, migrated store: `kind` 'sqlite' (file in `folder`) or 'postgresql' (own schema)."""
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{folder / f'store-{uuid.uuid4().hex[:8]}.db'}")
        if migrate:
            upgrade(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    problem = postgres_available()
    if problem:
        raise StoreUnavailable(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_TEST_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(POSTGRES_TEST_URL, schema=schema)
    try:
        if migrate:
            upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
