"""API keys and the API call audit in the store.

Keys are kept by prefix and sha256 of the token, never the token. Creating and revoking a key
also append an entry to the audit log, in the same transaction. The service's calls go to
`api_audit` in batches (`insert_calls`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipelines.store.db import writing
from pipelines.store.lifecycle import audit
from pipelines.store.tables import ApiAuditRecord, ApiKeyRecord, _utcnow

KEYS = ApiKeyRecord.__table__
CALLS = ApiAuditRecord.__table__
PUBLIC = [c for c in KEYS.c if c.name != "key_sha256"]  # what readers of keys get


class KeyStateError(ValueError):
    """The key's state does not allow the change: its name is in use, or it is revoked."""


def prefix_taken(engine: Engine, prefix: str) -> bool:
    """Some key, active or revoked, has this prefix."""
    with engine.connect() as conn:
        found = conn.execute(select(func.count()).where(KEYS.c.prefix == prefix)).scalar_one()
    return bool(found)


def add_key(
    engine: Engine, name: str, role: str, prefix: str, key_sha256: str, created_by: str
) -> dict[str, Any]:
    """Insert an active key and its audit entry; `KeyStateError` when an active key has the
    name (also when another writer took it first: the unique partial index says so)."""
    row = {
        "name": name,
        "role": role,
        "prefix": prefix,
        "key_sha256": key_sha256,
        "created_at": _utcnow(),
        "created_by": created_by,
    }
    try:
        with writing(engine) as conn:
            if _active_id(conn, name) is not None:
                raise KeyStateError(f"an active key is already named {name!r}")
            key_id = conn.execute(insert(KEYS).values(**row).returning(KEYS.c.id)).scalar_one()
            audit(
                conn,
                created_by,
                "api_key_created",
                f"api key {name}",
                {"role": role, "prefix": prefix},
            )
    except IntegrityError as exc:
        if prefix_taken(engine, prefix):
            raise KeyStateError(f"the prefix {prefix!r} is taken") from exc
        raise KeyStateError(f"an active key is already named {name!r}") from exc
    return _public({**row, "id": key_id, "revoked_at": None, "revoked_by": None,
                    "last_used_at": None})  # fmt: skip


def revoke_key(engine: Engine, name: str, revoked_by: str) -> dict[str, Any]:
    """Revoke the active key of this name (audited); `LookupError` when no key ever had the
    name, `KeyStateError` when every key of that name is already revoked."""
    with writing(engine) as conn:
        key_id = _active_id(conn, name)
        if key_id is None:
            known = conn.execute(select(func.count()).where(KEYS.c.name == name)).scalar_one()
            if known:
                raise KeyStateError(f"the key {name!r} is already revoked")
            raise LookupError(f"no API key named {name!r}")
        conn.execute(
            update(KEYS)
            .where(KEYS.c.id == key_id)
            .values(revoked_at=_utcnow(), revoked_by=revoked_by)
        )
        row = conn.execute(select(*PUBLIC).where(KEYS.c.id == key_id)).mappings().one()
        audit(conn, revoked_by, "api_key_revoked", f"api key {name}", {"prefix": row["prefix"]})
    return dict(row)


def _active_id(conn, name: str) -> int | None:
    stmt = select(KEYS.c.id).where(KEYS.c.name == name, KEYS.c.revoked_at.is_(None))
    return conn.execute(stmt).scalar_one_or_none()


def _public(row: Mapping[str, Any]) -> dict[str, Any]:
    return {c.name: row[c.name] for c in PUBLIC}


def read_keys(engine: Engine, include_revoked: bool = True) -> list[dict[str, Any]]:
    """Keys without their hashes, oldest first."""
    stmt = select(*PUBLIC).order_by(KEYS.c.id)
    if not include_revoked:
        stmt = stmt.where(KEYS.c.revoked_at.is_(None))
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def active_key(engine: Engine, prefix: str) -> tuple[str, dict[str, Any]] | None:
    """The hash and public fields of the active key with this prefix, or None."""
    stmt = select(KEYS).where(KEYS.c.prefix == prefix, KEYS.c.revoked_at.is_(None))
    with engine.connect() as conn:
        row = conn.execute(stmt).mappings().one_or_none()
    return None if row is None else (row["key_sha256"], _public(row))


def active_keys(engine: Engine) -> list[tuple[str, dict[str, Any]]]:
    """(hash, public fields) of every active key."""
    stmt = select(KEYS).where(KEYS.c.revoked_at.is_(None))
    with engine.connect() as conn:
        return [(r["key_sha256"], _public(r)) for r in conn.execute(stmt).mappings()]


def mark_used(engine: Engine, used: Mapping[int, dt.datetime]) -> None:
    """Set last_used_at of keys (by id) in one transaction."""
    if not used:
        return
    with writing(engine) as conn:
        for key_id, at in used.items():
            conn.execute(update(KEYS).where(KEYS.c.id == key_id).values(last_used_at=at))


def insert_calls(engine: Engine, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append API calls to `api_audit` in one transaction."""
    if rows:
        with writing(engine) as conn:
            conn.execute(insert(CALLS), list(rows))


def read_calls(engine: Engine, limit: int = 100) -> pd.DataFrame:
    """The latest API calls, newest first."""
    stmt = select(CALLS).order_by(CALLS.c.at.desc(), CALLS.c.id.desc()).limit(limit)
    with engine.connect() as conn:
        result = conn.execute(stmt)
        return pd.DataFrame(result.all(), columns=list(result.keys()))
