"""Engine and transaction helpers, and the programmatic Alembic upgrade (no alembic.ini needed)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from pipelines.errors import DATABASE_URL, Conflict, NotFound, Unavailable, store_errors

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"
CONNECT_TIMEOUT_SECONDS = 5


def parse_url(url: str) -> URL:
    """The parsed store URL; a malformed one (a port that is not a number, say) raises
    SQLAlchemy's `ArgumentError`, as an unknown dialect does."""
    try:
        return make_url(url)
    except ValueError as exc:
        raise ArgumentError(f"could not parse it: {exc}") from exc


def make_engine(url: str, *, schema: str | None = None, echo: bool = False) -> Engine:
    """Engine for a results-store URL: SQLite gets real transactions and WAL; PostgreSQL a schema
    and a connect timeout (unless the URL sets ``connect_timeout``).

    ``schema`` (PostgreSQL only) sets the search_path, so tests and tenants can share a database.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = _create(parsed, echo=echo)
        _sqlite_transactions(engine)
        return engine
    return _create(
        parsed, echo=echo, connect_args=_connect_args(parsed, schema), pool_pre_ping=True
    )


def _connect_args(parsed: URL, schema: str | None) -> dict[str, object]:
    args: dict[str, object] = {"options": f"-csearch_path={schema}"} if schema else {}
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        args["connect_timeout"] = CONNECT_TIMEOUT_SECONDS
    return args


def _create(url: URL, **kwargs) -> Engine:
    """`create_engine`; a database driver that is not installed raises `ArgumentError`."""
    try:
        return create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        raise ArgumentError(
            f"its driver {url.drivername!r} is not installed (no module {exc.name!r})"
        ) from exc


WRITING = "creditrisk_writing"


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """`engine.begin()` for a transaction that writes (on SQLite it holds the write lock from
    its start, so reading first cannot make its write fail)."""
    with engine.connect().execution_options(**{WRITING: True}) as conn, conn.begin():
        yield conn


def _sqlite_transactions(engine: Engine) -> None:
    """SQLAlchemy, not pysqlite, issues BEGIN: every statement of a block is in one transaction."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection):
        # a writer takes the write lock first: a deferred one that read, then wrote after
        # another connection's commit, would fail at once with "database is locked"
        immediate = conn.get_execution_options().get(WRITING, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the Alembic migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    url = engine.url.render_as_string(hide_password=False)
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))  # configparser syntax
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@cache
def known_revisions() -> frozenset[str]:
    """The Alembic revisions this creditrisk ships."""
    from alembic.script import ScriptDirectory

    return frozenset(s.revision for s in ScriptDirectory(str(MIGRATIONS_DIR)).walk_revisions())


def store_state(engine: Engine) -> tuple[str | None, list[str], str]:
    """The store's Alembic revision (None when it has none), its other tables, and where it is
    (the SQLite file, or the database URL without password and its schema)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        inspector = inspect(conn)
        tables = inspector.get_table_names()
        revision = None
        if VERSION_TABLE in tables:
            revision = MigrationContext.configure(conn).get_current_revision()
        schema = inspector.default_schema_name
    url = engine.url
    where = (
        url.database
        if url.get_backend_name() == "sqlite"
        else f"{url.render_as_string(hide_password=True)} schema {schema}"
    )
    return revision, [t for t in tables if t != VERSION_TABLE], str(where)


def _check_sqlite_file(url: URL, *, create: bool, named: str) -> None:
    """A reader needs the file; any user needs to write in its folder (WAL keeps files there)."""
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return
    path = Path(url.database)
    if not create and not path.is_file():
        raise NotFound(
            "no results store there",
            source=str(path),
            hint=f"check {named}; `creditrisk run` makes one",
        )
    folder = path.parent
    if folder.is_dir() and not os.access(folder, os.W_OK):
        raise Unavailable(
            "cannot write in the results store's folder (SQLite keeps its journal there)",
            source=str(folder),
            hint=f"make the folder writable, or set CREDITRISK_HOME or {named} elsewhere",
        )


def _check_creditrisk(engine: Engine, *, create: bool, named: str) -> None:
    """The database holds a creditrisk store this version knows, or (for writers) nothing yet."""
    revision, tables, where = store_state(engine)
    if revision is None and not create:
        raise NotFound(
            "holds no creditrisk results store",
            source=where,
            hint=f"check {named}; `creditrisk run` makes one",
        )
    if revision is None and tables:
        raise Conflict(
            f"holds {len(tables)} other table(s) and no creditrisk results store; "
            "creditrisk adds its tables only to an empty database",
            source=where,
            hint=f"point {named} at an empty database or schema, or at a creditrisk store",
        )
    if revision is not None and revision not in known_revisions():
        raise Conflict(
            f"the store is at migration {revision!r}, which this creditrisk does not know",
            source=where,
            hint=f"upgrade creditrisk, or point {named} at a store this version made",
        )


def open_store(
    url: str, *, schema: str | None = None, create: bool = True, named: str = DATABASE_URL
) -> Engine:
    """Engine on an up-to-date results store; errors name ``named`` (where the URL was set).

    Writers (``create``) make the SQLite file, or the tables of an empty database, on first use.
    Readers (``create`` False) get `NotFound` where there is no store. Neither adds tables to
    another application's database nor opens a store of a newer creditrisk (`Conflict`).
    """
    with store_errors(named):
        parsed = parse_url(url)
        _check_sqlite_file(parsed, create=create, named=named)
        engine = make_engine(url, schema=schema)
        try:
            _check_creditrisk(engine, create=create, named=named)
            upgrade(engine)
        except BaseException:
            engine.dispose()
            raise
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        yield session
