"""API keys, roles and the API audit in the store, on SQLite and PostgreSQL: tokens kept only as
hashes, constant-time checks, the key ring's reload delay, the audit writer's batches, and
migration 0005."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from pipelines.errors import BadInput, Conflict, NotFound, Unavailable
from pipelines.store import access as store
from pipelines.store import queries, upgrade
from pipelines.store.tables import Base
from pipelines.store.testing import StoreUnavailable, temporary_store
from pipelines.usecases import access
from pipelines.usecases.access import (
    ACTIONS,
    AuditEntry,
    AuditWriter,
    KeyRing,
    allowed,
    authenticate,
    create_key,
    list_keys,
    read_api_audit,
    revoke_key,
)
from serve.auth import API_KEY_HEADER, AuthError, Principal, require
from tests.pipelines.conftest import BACKENDS


def test_roles_are_hierarchical():
    assert [a for a in ACTIONS if allowed("viewer", a)] == ["read"]
    assert [a for a in ACTIONS if allowed("scorer", a)] == ["read", "score"]
    assert [a for a in ACTIONS if allowed("officer", a)] == ["read", "score", "act"]
    assert all(allowed("admin", a) for a in ACTIONS)
    assert not allowed("root", "read") and not allowed("admin", "delete")


def test_a_created_key_authenticates_until_it_is_revoked(engine):
    created = create_key(engine, "web-1", "scorer", "alice")
    token, key = created.token, created.key
    assert token.startswith(f"cr_{key.prefix}_") and len(token.split("_", 2)[2]) >= 32
    assert (key.name, key.role, key.created_by, key.revoked_at) == (
        "web-1",
        "scorer",
        "alice",
        None,
    )
    assert authenticate(engine, token) == key
    revoked = revoke_key(engine, "web-1", "bob")
    assert (revoked.revoked_by, revoked.revoked_at is not None) == ("bob", True)
    assert authenticate(engine, token) is None
    assert [(k.name, k.active) for k in list_keys(engine)] == [("web-1", False)]
    assert list_keys(engine, include_revoked=False) == []
    logged = queries.read_audit(engine)
    assert logged[["who", "action", "what"]].values.tolist() == [
        ["bob", "api_key_revoked", "api key web-1"],
        ["alice", "api_key_created", "api key web-1"],
    ]


def test_wrong_unknown_and_malformed_tokens_are_refused(engine):
    token = create_key(engine, "svc", "viewer", "alice").token
    prefix = token.split("_")[1]
    wrong = f"cr_{prefix}_{'A' * 43}"
    unknown = f"cr_{'0' * 8 if prefix != '0' * 8 else '1' * 8}_{token.split('_', 2)[2]}"
    for bad in (wrong, unknown, token[:-20], token.upper(), "", "cr__x", "Bearer " + token, None):
        assert authenticate(engine, bad) is None, bad


def test_the_store_keeps_only_the_prefix_and_the_hash(engine):
    token = create_key(engine, "svc", "admin", "alice").token
    secret = token.split("_", 2)[2]
    with engine.connect() as conn:
        rows = conn.execute(sa.select(store.KEYS)).mappings().all()
        logged = conn.execute(sa.text("select details from audit_log")).all()
    assert len(rows) == 1 and rows[0]["key_sha256"] == hashlib.sha256(token.encode()).hexdigest()
    for value in [*rows[0].values(), *(str(d) for (d,) in logged)]:
        assert secret not in str(value) and token not in str(value)
    assert all("key_sha256" not in str(k) and "token" not in str(k) for k in list_keys(engine))


def test_names_roles_and_states_are_checked(engine):
    with pytest.raises(BadInput, match="unknown role 'root'") as bad:
        create_key(engine, "svc", "root", "alice")
    assert "viewer, scorer, officer, admin" in bad.value.message
    for name in ("", "has space", "-dash", "x" * 65, "naïve"):
        with pytest.raises(BadInput, match="not a usable key name"):
            create_key(engine, name, "viewer", "alice")
    with pytest.raises(BadInput, match="who did it"):
        create_key(engine, "svc", "viewer", " ")
    create_key(engine, "svc", "viewer", "alice")
    with pytest.raises(Conflict, match="already named 'svc'"):
        create_key(engine, "svc", "admin", "alice")
    with pytest.raises(NotFound, match="no API key named 'other'"):
        revoke_key(engine, "other", "bob")
    revoke_key(engine, "svc", "bob")
    with pytest.raises(Conflict, match="already revoked"):
        revoke_key(engine, "svc", "bob")
    again = create_key(engine, "svc", "officer", "carol")  # the name is free once revoked
    assert [(k.name, k.role, k.active) for k in list_keys(engine)] == [
        ("svc", "viewer", False),
        ("svc", "officer", True),
    ]
    assert revoke_key(engine, "svc", "bob").id == again.key.id


def test_the_database_refuses_two_active_keys_of_one_name(engine):
    create_key(engine, "svc", "viewer", "alice")
    row = {"name": "svc", "role": "viewer", "prefix": "abcdef01", "key_sha256": "0" * 64,
           "created_at": dt.datetime(2027, 1, 1), "created_by": "x"}  # fmt: skip
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(sa.insert(store.KEYS).values(**row))
    with engine.begin() as conn:  # a revoked one of the same name is fine
        conn.execute(sa.insert(store.KEYS).values(**row, revoked_at=dt.datetime(2027, 1, 2)))


def test_the_ring_sees_new_and_revoked_keys_at_its_next_reload(engine):
    ring = KeyRing(engine, refresh_seconds=3600)
    created = create_key(engine, "svc", "scorer", "alice")
    assert ring.check(created.token) is None  # not loaded yet
    ring.refresh()
    assert ring.check(created.token) == created.key
    revoke_key(engine, "svc", "bob")
    assert ring.check(created.token) == created.key  # the documented delay
    ring.refresh()
    assert ring.check(created.token) is None and len(ring) == 0
    quick = KeyRing(engine, refresh_seconds=0.05)
    other = create_key(engine, "svc2", "viewer", "alice")
    time.sleep(0.1)
    assert quick.check(other.token) == other.key
    revoke_key(engine, "svc2", "bob")
    time.sleep(0.1)
    assert quick.check(other.token) is None
    assert ring.check(None) is None and ring.check("") is None


def test_the_ring_writes_last_use_at_its_reload_not_per_check(engine):
    created = create_key(engine, "svc", "viewer", "alice")
    ring = KeyRing(engine, refresh_seconds=3600)
    assert ring.check(created.token) is not None
    assert list_keys(engine)[0].last_used_at is None
    ring.refresh()
    used = list_keys(engine)[0].last_used_at
    assert used is not None and used >= created.key.created_at


def test_every_check_compares_hashes_even_for_an_unknown_prefix(engine, monkeypatch):
    created = create_key(engine, "svc", "viewer", "alice")
    ring = KeyRing(engine)
    compared = []
    real = access.hmac.compare_digest
    monkeypatch.setattr(
        access.hmac, "compare_digest", lambda a, b: compared.append((a, b)) or real(a, b)
    )
    unknown = "cr_" + ("f" * 8 if created.key.prefix != "f" * 8 else "e" * 8) + "_" + "B" * 43
    assert ring.check(unknown) is None and authenticate(engine, unknown) is None
    assert [b for _, b in compared] == [access._DUMMY_SHA256.encode()] * 2
    compared.clear()
    assert ring.check(created.token) is not None
    assert len(compared) == 1 and compared[0][0] == compared[0][1]


def test_the_ring_keeps_its_keys_when_the_store_fails_and_is_thread_safe(engine, monkeypatch):
    created = create_key(engine, "svc", "viewer", "alice")
    ring = KeyRing(engine, refresh_seconds=0)

    def down(_engine):
        raise Unavailable("the results store did not answer")

    monkeypatch.setattr(store, "active_keys", down)
    assert ring.check(created.token) == created.key
    with pytest.raises(Unavailable):
        ring.refresh()
    monkeypatch.undo()
    found, errors = [], []

    def worker():
        try:
            found.extend(getattr(ring.check(created.token), "name", None) for _ in range(50))
        except Exception as exc:  # a failure in a thread must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and found == ["svc"] * 400


def entry(i: int, **changes) -> AuditEntry:
    fields = dict(
        at=dt.datetime(2027, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i),
        request_id=f"r{i}",
        key_name="svc",
        role="scorer",
        method="POST",
        path="/v1/customers/{customer_id}",
        target=f"C{i}",
        status=200,
        outcome="ok",
        model_version="3",
        input_sha256="a" * 64,
        duration_ms=1.5,
    )
    return AuditEntry(**{**fields, **changes})


def test_the_audit_writer_batches_and_close_drains_everything(engine):
    writer = AuditWriter(engine, flush_seconds=0.05)
    started = time.perf_counter()
    for i in range(1203):
        writer.record(entry(i))
    assert time.perf_counter() - started < 1.0  # queued, not written, in the request
    writer.flush()
    assert len(read_api_audit(engine, limit=5000)) == 1203
    for i in range(1203, 1300):
        writer.record(entry(i, key_name=None, role=None, status=401, outcome="unauthenticated"))
    writer.close()
    latest = read_api_audit(engine, limit=2)
    assert latest["request_id"].tolist() == ["r1299", "r1298"]  # newest first
    assert latest["at"].iloc[0] == dt.datetime(2027, 1, 1) + dt.timedelta(seconds=1299)
    assert latest[["key_name", "status", "path"]].iloc[0].tolist() == [
        None, 401, "/v1/customers/{customer_id}"]  # fmt: skip
    assert len(read_api_audit(engine, limit=5000)) == 1300
    writer.record(entry(5000))  # after close: dropped, never raises
    writer.close()


def test_the_audit_writer_keeps_rows_while_the_store_fails(engine, monkeypatch):
    real, failures = store.insert_calls, []

    def flaky(engine_, rows):
        if len(failures) < 2:
            failures.append(len(rows))
            raise Unavailable("the results store did not answer")
        real(engine_, rows)

    monkeypatch.setattr(store, "insert_calls", flaky)
    monkeypatch.setattr(AuditWriter, "RETRY_SECONDS", 0.05)
    writer = AuditWriter(engine, flush_seconds=0.01)
    writer.record(entry(1))
    with pytest.raises(Unavailable, match="not written within"):
        writer.flush(timeout=0.0)
    writer.record(entry(2))
    writer.flush(timeout=10)
    writer.close()
    assert failures and sorted(read_api_audit(engine)["request_id"]) == ["r1", "r2"]
    assert writer.dropped == 0 and writer.last_error is None


def test_audit_texts_are_cut_to_their_columns(engine):
    with AuditWriterClosing(engine) as writer:
        writer.record(entry(1, target="C" * 500, outcome="x" * 100))
    row = read_api_audit(engine).iloc[0]
    assert (len(row["target"]), len(row["outcome"])) == (64, 40)


class AuditWriterClosing:
    def __init__(self, engine):
        self.writer = AuditWriter(engine)

    def __enter__(self):
        return self.writer

    def __exit__(self, *exc):
        self.writer.close()


@pytest.fixture(params=BACKENDS)
def bare(request, tmp_path):
    """An empty store of either backend with no migration applied."""
    try:
        with temporary_store(request.param, tmp_path, migrate=False) as engine:
            yield engine
    except StoreUnavailable as exc:
        pytest.skip(f"{exc}; start it or set CREDITRISK_TEST_POSTGRES_URL")


API_TABLES = {"api_keys", "api_audit"}


def test_migration_0005_upgrades_a_0004_store_and_matches_the_tables(bare):
    upgrade(bare, "0004")
    with bare.begin() as conn:
        conn.execute(sa.text("insert into audit_log (at, who, action, what) values "
                             "('2027-01-01', 'runner', 'run_written', 'run 1')"))  # fmt: skip
    assert not API_TABLES & set(sa.inspect(bare).get_table_names())
    upgrade(bare)
    assert set(sa.inspect(bare).get_table_names()) >= API_TABLES
    with bare.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar() == "0005"
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    mine = [d for d in diffs if API_TABLES & set(map(str, _tables_of(d)))]
    assert mine == []
    indexes = {i["name"]: i["unique"] for i in sa.inspect(bare).get_indexes("api_keys")}
    assert indexes == {"uq_api_keys_active_name": True, "uq_api_keys_prefix": True}
    created = create_key(bare, "svc", "viewer", "alice")
    assert authenticate(bare, created.token) == created.key
    assert len(queries.read_audit(bare)) == 2  # the old entry is kept
    upgrade(bare)  # idempotent


def _tables_of(diff) -> list[str]:
    """The table names a compare_metadata diff is about (diffs are tuples, or lists of them)."""
    items = diff if isinstance(diff, list) else [diff]
    found = []
    for item in items:
        for part in item:
            name = getattr(part, "name", None)
            table = getattr(part, "table", None)
            found += [n for n in (name, getattr(table, "name", None)) if n]
            if isinstance(part, str):
                found.append(part)
    return found


def test_migration_0005_downgrades_to_0004(bare):
    from alembic import command
    from alembic.config import Config

    from pipelines.store.db import MIGRATIONS_DIR

    upgrade(bare)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with bare.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0004")
    assert not API_TABLES & set(sa.inspect(bare).get_table_names())
    assert "audit_log" in sa.inspect(bare).get_table_names()


def test_require_answers_401_without_a_valid_key_and_403_for_a_lesser_role(engine):
    api = FastAPI()
    api.state.keyring = KeyRing(engine, refresh_seconds=0)

    @api.exception_handler(AuthError)
    def _auth(_request, exc: AuthError):
        body = {"reason": exc.reason, "hint": exc.hint}
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @api.post("/v1/score")
    def score(request: Request, who: Principal = Depends(require("score"))):
        return {"key": who.key_name, "role": who.role, "state": request.state.principal.role}

    scorer = create_key(engine, "s", "scorer", "alice").token
    viewer = create_key(engine, "v", "viewer", "alice").token
    client = TestClient(api)
    missing = client.post("/v1/score")
    assert (missing.status_code, missing.headers["www-authenticate"]) == (401, "ApiKey")
    assert missing.json()["reason"] == "no API key"
    assert client.post("/v1/score", headers={API_KEY_HEADER: scorer[:-1]}).status_code == 401
    refused = client.post("/v1/score", headers={API_KEY_HEADER: viewer})
    assert refused.status_code == 403 and "www-authenticate" not in refused.headers
    assert "scorer, officer, admin" in refused.json()["hint"]
    ok = client.post("/v1/score", headers={API_KEY_HEADER: scorer})
    assert ok.json() == {"key": "s", "role": "scorer", "state": "scorer"}
    revoke_key(engine, "s", "bob")
    assert client.post("/v1/score", headers={API_KEY_HEADER: scorer}).status_code == 401
    with pytest.raises(ValueError, match="unknown action"):
        require("delete")


def test_require_reads_the_store_off_the_event_loop_and_a_fresh_ring_from_memory(
    engine, monkeypatch
):
    ring = KeyRing(engine, refresh_seconds=3600)
    api = FastAPI()
    api.state.keyring = ring
    api.add_exception_handler(AuthError, lambda _r, exc: JSONResponse({}, status_code=exc.status))
    loop_threads, reload_threads = set(), []

    @api.get("/v1/who")
    async def who(_: Principal = Depends(require("read"))):
        loop_threads.add(threading.get_ident())  # an async route runs on the loop
        return {}

    real = store.active_keys

    def active_keys(e):
        if e is engine:  # not another ring of this process (a served app reloads in the background)
            reload_threads.append(threading.get_ident())
        return real(e)

    monkeypatch.setattr(store, "active_keys", active_keys)
    token = create_key(engine, "v", "viewer", "alice").token
    ring.refresh()
    reload_threads.clear()
    with TestClient(api) as client:  # one event loop thread for every call
        ok = client.get("/v1/who", headers={API_KEY_HEADER: token})
        assert ok.status_code == 200 and reload_threads == []  # answered from memory
        ring.refresh_seconds = 0  # stale: the next call reloads first, in a worker thread
        revoke_key(engine, "v", "bob")
        assert not ring.fresh
        assert client.get("/v1/who", headers={API_KEY_HEADER: token}).status_code == 401
    assert len(reload_threads) == 1 and reload_threads[0] not in loop_threads
