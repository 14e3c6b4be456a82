"""Throwaway stores for tests and benchmarks: a SQLite file or a private PostgreSQL schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
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


def schema_url(schema: str, url: str = POSTGRES_TEST_URL) -> str:
    """``url`` with its search_path set to ``schema``, for commands that take only a URL."""
    return f"{url}?options=-csearch_path%3D{schema}"


@contextmanager
def temporary_schema(url: str = POSTGRES_TEST_URL) -> Iterator[str]:
    """A new, empty PostgreSQL schema (its name), dropped with everything in it afterwards."""
    problem = postgres_available(url)
    if problem:
        raise StoreUnavailable(problem)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield schema
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@contextmanager
def temporary_store(kind: str, folder: Path, migrate: bool = True) -> Iterator[Engine]:
    """An empty, migrated store: `kind` 'sqlite' (file in `folder`) or 'postgresql' (own schema)."""
    with ExitStack() as stack:
        if kind == "sqlite":
            engine = make_engine(f"sqlite:///{folder / f'store-{uuid.uuid4().hex[:8]}.db'}")
        else:
            engine = make_engine(POSTGRES_TEST_URL, schema=stack.enter_context(temporary_schema()))
        stack.callback(engine.dispose)
        if migrate:
            upgrade(engine)
        yield engine
