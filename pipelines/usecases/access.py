"""Who may call the scoring service: API keys with a role, and the audit of every call.

Roles are hierarchical: each has the rights of the roles before it in `ROLES`. An action needs
its least role (`ACTIONS`).

A token reads ``cr_<prefix>_<secret>``: 8 lowercase hex characters that find the key, then 43
characters of `secrets.token_urlsafe`. The store keeps the prefix and the sha256 of the whole
token, never the token; it is shown once, when the key is made. A token is checked by its prefix,
then by `hmac.compare_digest` of the hashes; an unknown prefix is still compared, with a dummy
hash, so an unknown key costs what a wrong one does.

The service holds a `KeyRing`: the active keys in memory, reloaded from the store when older than
``refresh_seconds`` (5 s). A key revoked in the store stops working at the ring's next reload,
so up to ``refresh_seconds`` later (plus the time a reload takes). When the store does not answer
the ring keeps the keys it had, and tries again at the next check.

`AuditWriter` writes the service's calls to `api_audit` from a background thread, in batches:
a request only puts its entry on a queue.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import queue
import re
import secrets
import threading
import time
from contextlib import suppress
from dataclasses import asdict, dataclass

import pandas as pd
from sqlalchemy import Engine

from pipelines.errors import BadInput, Conflict, NotFound, Unavailable, as_typed
from pipelines.store import access as store

log = logging.getLogger(__name__)

ROLES = ("viewer", "scorer", "officer", "admin")
ACTIONS = {"read": "viewer", "score": "scorer", "act": "officer", "admin": "admin"}
TOKEN_PREFIX = "cr_"
TOKEN = re.compile(r"cr_([0-9a-f]{8})_([A-Za-z0-9_-]{32,128})")
SECRET_BYTES = 32  # token_urlsafe(32): 43 characters, 256 bits
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
NAME_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_DUMMY_SHA256 = hashlib.sha256(b"creditrisk: no key has this prefix").hexdigest()


def allowed(role: str, action: str) -> bool:
    """The role may do the action: its rank is at least that of the action's least role.
    Unknown roles or actions are never allowed."""
    if role not in ROLES or action not in ACTIONS:
        return False
    return ROLES.index(role) >= ROLES.index(ACTIONS[action])


@dataclass(frozen=True)
class ApiKey:
    """A key as the store keeps it, without its hash."""

    id: int
    name: str
    role: str
    prefix: str
    created_at: dt.datetime
    created_by: str
    revoked_at: dt.datetime | None
    revoked_by: str | None
    last_used_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its token: the only time the token is known."""

    key: ApiKey
    token: str


def sha256_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def prefix_of(token: str | None) -> str | None:
    """The token's prefix, or None when it is not a creditrisk token."""
    if not isinstance(token, str):
        return None
    found = TOKEN.fullmatch(token)
    return found.group(1) if found else None


def new_token() -> tuple[str, str]:
    """(prefix, token) of a fresh random token."""
    prefix = secrets.token_hex(4)
    return prefix, f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise BadInput(f"{name!r} is not a usable key name", field="NAME", hint=f"use {NAME_RULE}")
    return name


def _check_user(user: str, field: str) -> str:
    if not isinstance(user, str) or not user.strip():
        raise BadInput("who did it is required", field=field, hint="give your user name")
    return user.strip()[:100]


def check_role(role: str) -> str:
    """The role, when it is one of `ROLES`; else `BadInput` naming them."""
    if role not in ROLES:
        raise BadInput(
            f"unknown role {role!r}", field="--role", hint=f"use one of {', '.join(ROLES)}"
        )
    return role


def create_key(engine: Engine, name: str, role: str, created_by: str) -> CreatedKey:
    """A new active key (audited); `BadInput` for a bad name or role, `Conflict` when an active
    key has the name."""
    _check_name(name)
    check_role(role)
    user = _check_user(created_by, "--user")
    with as_typed():
        for _attempt in range(5):
            prefix, token = new_token()
            if store.prefix_taken(engine, prefix):
                continue
            try:
                row = store.add_key(engine, name, role, prefix, sha256_of(token), user)
            except store.KeyStateError as exc:
                if "prefix" in str(exc):
                    continue
                raise Conflict(
                    str(exc), field="NAME", hint="revoke it first, or choose another name"
                ) from exc
            return CreatedKey(ApiKey(**row), token)
    raise Conflict("no free key prefix after 5 tries", hint="try again")  # 1 in 4 billion


def list_keys(engine: Engine, include_revoked: bool = True) -> list[ApiKey]:
    """Keys, oldest first (without hashes)."""
    with as_typed():
        return [ApiKey(**row) for row in store.read_keys(engine, include_revoked)]


def revoke_key(engine: Engine, name: str, revoked_by: str) -> ApiKey:
    """Revoke the active key of this name (audited); `NotFound` when there is none, `Conflict`
    when it is already revoked."""
    user = _check_user(revoked_by, "--user")
    with as_typed():
        try:
            return ApiKey(**store.revoke_key(engine, name, user))
        except LookupError as exc:
            raise NotFound(
                str(exc), field="NAME", hint="list keys with `creditrisk keys list`"
            ) from exc
        except store.KeyStateError as exc:
            raise Conflict(str(exc), field="NAME") from exc


def renew_key(engine: Engine, name: str, role: str, user: str) -> CreatedKey:
    """A fresh key of this name: the active one (if any) revoked, a new one created."""
    with suppress(NotFound):
        revoke_key(engine, name, user)
    return create_key(engine, name, role, user)


def _matches(token: str, found: tuple[str, ApiKey] | None) -> ApiKey | None:
    """The key when the token's hash equals the stored one; compares in constant time, against a
    dummy hash when nothing was found."""
    stored, key = found if found is not None else (_DUMMY_SHA256, None)
    same = hmac.compare_digest(sha256_of(token).encode(), stored.encode())
    return key if same and key is not None else None


def authenticate(engine: Engine, token: str) -> ApiKey | None:
    """The active key of the token, straight from the store; None for an unknown, revoked or
    malformed token."""
    prefix = prefix_of(token)
    if prefix is None:
        return None
    with as_typed():
        found = store.active_key(engine, prefix)
    return _matches(token, None if found is None else (found[0], ApiKey(**found[1])))


class KeyRing:
    """The service's view of the active keys: {prefix: (sha256, ApiKey)} in memory.

    `check` reloads the view when it is older than ``refresh_seconds``: one caller reloads, the
    others use the view they have meanwhile. The reload also writes, in one transaction, when each
    key was last used (so last_used_at lags by up to ``refresh_seconds``). Thread-safe.
    """

    def __init__(self, engine: Engine, refresh_seconds: float = 5.0):
        self.engine = engine
        self.refresh_seconds = refresh_seconds
        self._keys: dict[str, tuple[str, ApiKey]] = {}
        self._loaded_at = float("-inf")
        self._used: dict[int, dt.datetime] = {}
        self._lock = threading.Lock()  # guards _used
        self._reloading = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        """Write the last-used times and reload the active keys now; `Unavailable` when the store
        does not answer (the view is kept)."""
        with self._reloading:
            self._reload()

    def _reload(self) -> None:
        with self._lock:
            used, self._used = self._used, {}
        try:
            with as_typed():
                store.mark_used(self.engine, used)
                rows = store.active_keys(self.engine)
        except Exception:
            with self._lock:  # try these again next time
                self._used = {**used, **self._used}
            self._loaded_at = time.monotonic()  # next try after refresh_seconds, not each call
            raise
        self._keys = {row["prefix"]: (sha, ApiKey(**row)) for sha, row in rows}
        self._loaded_at = time.monotonic()

    def _maybe_reload(self) -> None:
        if time.monotonic() - self._loaded_at < self.refresh_seconds:
            return
        if not self._reloading.acquire(blocking=False):
            return  # another thread reloads; use the current view
        try:
            if time.monotonic() - self._loaded_at >= self.refresh_seconds:
                self._reload()
        except Unavailable as exc:
            log.warning("API keys not reloaded, keeping %d known: %s", len(self._keys), exc)
        finally:
            self._reloading.release()

    @property
    def fresh(self) -> bool:
        """Whether the view is recent enough for `check` to answer from memory alone."""
        return time.monotonic() - self._loaded_at < self.refresh_seconds

    def check(self, token: str | None, reload: bool = True) -> ApiKey | None:
        """The active key of the token, or None (missing, malformed, unknown, revoked); reloads
        the view first when it is stale, unless ``reload`` is False."""
        if reload:
            self._maybe_reload()
        prefix = prefix_of(token)
        if prefix is None:
            return None
        key = _matches(token, self._keys.get(prefix))
        if key is not None:
            with self._lock:
                self._used[key.id] = _utcnow()
        return key

    def active(self, name: str) -> bool:
        """Whether an active key has this name (as of the last reload: see `check`)."""
        self._maybe_reload()
        return any(key.name == name for _, key in self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class AuditEntry:
    """One call of the service. ``path`` is the route template (never the raw path with ids),
    ``target`` the customer or warning id, ``input_sha256`` the hash of the request body."""

    at: dt.datetime
    request_id: str
    key_name: str | None
    role: str | None
    method: str
    path: str
    target: str | None
    status: int
    outcome: str
    model_version: str | None
    input_sha256: str | None
    duration_ms: float

    def row(self) -> dict:
        """The entry as an `api_audit` row: times in naive UTC, texts cut to their columns."""
        at = self.at
        if at.tzinfo is not None:
            at = at.astimezone(dt.UTC).replace(tzinfo=None)
        out = {**asdict(self), "at": at}
        for name, size in _SIZES.items():
            if isinstance(out[name], str):
                out[name] = out[name][:size]
        return out


_SIZES = {
    c.name: c.type.length for c in store.CALLS.c if getattr(c.type, "length", None) is not None
}


class AuditWriter:
    """Writes `AuditEntry` rows from a background thread, in batches of up to `BATCH` rows, every
    ``flush_seconds`` at least. `record` only queues (never waits for the store). When the store
    fails, the batch is kept and tried again (up to `MAX_PENDING` rows; older ones beyond that
    are dropped and counted in ``dropped``). `close` writes everything still queued."""

    BATCH = 500
    MAX_PENDING = 100_000
    RETRY_SECONDS = 1.0

    def __init__(self, engine: Engine, flush_seconds: float = 0.05):
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.dropped = 0
        self.last_error: str | None = None
        self._queue: queue.SimpleQueue[AuditEntry | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._recorded = 0  # entries queued so far
        self._settled = 0  # entries committed or dropped
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="api-audit", daemon=True)
        self._thread.start()

    def record(self, entry: AuditEntry) -> None:
        """Queue one entry; returns at once."""
        with self._done:
            if self._closed:
                log.warning("audit entry after close, not written: %s", entry.request_id)
                return
            self._recorded += 1
        self._queue.put(entry)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every entry recorded so far is committed; `Unavailable` after ``timeout``
        seconds when the store does not take them."""
        with self._done:
            target = self._recorded
            if not self._done.wait_for(lambda: self._settled >= target, timeout):
                raise Unavailable(
                    f"{target - self._settled} API audit rows not written within {timeout:g} s"
                    + (f": {self.last_error}" if self.last_error else ""),
                    hint="check the results store",
                )

    def close(self, timeout: float = 30.0) -> None:
        """Stop taking entries, write the queued ones and end the thread (within ``timeout``)."""
        with self._done:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("API audit writer did not drain within %g s", timeout)

    def _run(self) -> None:
        pending: list[dict] = []
        stopping = False
        while True:
            stopping = self._take(pending) or stopping
            if pending:
                pending = self._write(pending)
            if stopping and not pending:
                return
            if pending:  # the store failed: wait before trying again
                time.sleep(self.RETRY_SECONDS if not stopping else min(self.RETRY_SECONDS, 0.2))

    def _take(self, pending: list[dict]) -> bool:
        """Add queued entries to ``pending``: wait for one (up to flush_seconds while rows are
        pending, else as long as it takes), let the batch gather for flush_seconds (one wake-up
        per batch, not one per call: the calls' thread keeps the GIL), then take up to a batch;
        True when close() was asked (then everything queued before it)."""
        try:
            entry = self._queue.get(timeout=self.flush_seconds if pending else None)
        except queue.Empty:
            return False
        if entry is not None:
            time.sleep(self.flush_seconds)
        stopping = False
        while True:
            if entry is None:
                stopping = True
            else:
                pending.append(entry.row())
            if not stopping and len(pending) >= self.BATCH:
                return False
            try:
                entry = self._queue.get_nowait()
            except queue.Empty:
                return stopping

    def _write(self, pending: list[dict]) -> list[dict]:
        """Commit the pending rows in batches; those not committed (store failed) come back."""
        while pending:
            batch = pending[: self.BATCH]
            try:
                store.insert_calls(self.engine, batch)
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("API audit rows not written yet (%d pending): %s", len(pending), exc)
                return self._cap(pending)
            pending = pending[self.BATCH :]
            self._settle(len(batch))
        self.last_error = None
        return pending

    def _cap(self, pending: list[dict]) -> list[dict]:
        extra = len(pending) - self.MAX_PENDING
        if extra <= 0:
            return pending
        self.dropped += extra
        log.error("dropped %d API audit rows: the store has not taken them", extra)
        self._settle(extra)
        return pending[extra:]

    def _settle(self, n: int) -> None:
        with self._done:
            self._settled += n
            self._done.notify_all()


def read_api_audit(engine: Engine, limit: int = 100) -> pd.DataFrame:
    """The latest API calls, newest first."""
    with as_typed():
        return store.read_calls(engine, limit)
