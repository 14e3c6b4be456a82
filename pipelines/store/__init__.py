"""Results store: score runs, scores, policy decisions, overrides, warnings and the audit log.

SQLAlchemy 2 tables (``models``), engine and session helpers (``db``), Alembic migrations
(``migrations``, applied by ``db.upgrade``) and the read/write operations the CLI, flows and API
share (``queries``, ``lifecycle``). SQLite file by default; PostgreSQL by URL.
"""

from pipelines.store.db import make_engine, open_store, upgrade

__all__ = ["make_engine", "open_store", "upgrade"]
