"""Engine and transaction helpers, and the programmatic Alembic upgrade (no alembic.ini needed)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from pipelines.errors import NotFound

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def make_engine(url: str, *, schema: str | None = None, echo: bool = False) -> Engine:
    """Engine for a results-store URL: SQLite gets real transactions and WAL; PostgreSQL a schema.

    ``schema`` (PostgreSQL only) sets the search_path, so tests and tenants can share a database.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo)
        _sqlite_transactions(engine)
        return engine
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    return create_engine(url, echo=echo, connect_args=connect_args, pool_pre_ping=True)


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
        conn.exec_driver_sql("BEGIN")


def upgrade(engine_or_url: Engine | str, revision: str = "head") -> None:
    """Bring the schema to ``revision`` with the Alembic migrations shipped in the package."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(engine_or_url) if isinstance(engine_or_url, str) else engine_or_url
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_store(url: str, *, schema: str | None = None, create: bool = True) -> Engine:
    """Engine on an up-to-date store: creates the SQLite file or tables on first use.

    With ``create`` False (commands that only read) a SQLite file that does not exist raises
    `NotFound` instead of being created empty.
    """
    parsed = make_url(url)
    if not create and parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if path and path != ":memory:" and not Path(path).is_file():
            raise NotFound(
                "no results store there",
                source=path,
                hint="check --database-url or CREDITRISK_DATABASE_URL; `creditrisk run` makes one",
            )
    engine = make_engine(url, schema=schema)
    upgrade(engine)
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    factory = sessionmaker(engine, expire_on_commit=False)
    with factory.begin() as session:
        yield session
