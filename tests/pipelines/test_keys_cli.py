"""`creditrisk keys`: create prints the token alone on its last line, list shows no secrets,
revoke stops the key, and mistakes are one error line with exit code 2. The real command runs in a
subprocess."""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.store.db import open_store
from pipelines.usecases.access import authenticate
from tests.conftest import assert_clean_error


def store_url(cli) -> str:
    return f"sqlite:///{(cli.home / 'results.db').resolve()}"


def test_create_list_and_revoke_a_key(cli):
    made = cli("keys", "create", "demo", "--role", "scorer", "--user", "alice")
    assert made.returncode == 0, made.stderr
    lines = made.stdout.strip().splitlines()
    token = lines[-1]
    assert token.startswith("cr_") and " " not in token and len(token) >= 44
    assert "role scorer" in made.stdout and token not in "\n".join(lines[:-1])
    engine = open_store(store_url(cli), create=False)  # `create` made the store
    key = authenticate(engine, token)
    assert (key.name, key.role, key.created_by) == ("demo", "scorer", "alice")

    listed = cli("keys", "list")
    assert listed.returncode == 0, listed.stderr
    assert "demo" in listed.stdout and "scorer" in listed.stdout and key.prefix in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout
    assert hashlib.sha256(token.encode()).hexdigest() not in listed.stdout

    assert_clean_error(cli("keys", "create", "demo", "--role", "viewer"), 2, "already named")
    revoked = cli("keys", "revoke", "demo", "--user", "bob")
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked by bob" in revoked.stdout
    assert authenticate(engine, token) is None
    assert_clean_error(cli("keys", "revoke", "demo"), 2, "already revoked")
    assert_clean_error(cli("keys", "revoke", "nobody"), 2, "no API key named 'nobody'")
    with engine.connect() as conn:
        actions = conn.execute(sa.text("select action from audit_log order by id")).scalars()
        assert list(actions) == ["api_key_created", "api_key_revoked"]


def test_a_bad_role_is_exit_2_naming_the_roles_and_creates_nothing(cli):
    line = assert_clean_error(cli("keys", "create", "demo", "--role", "boss"), 2, "'--role'")
    assert "viewer, scorer, officer, admin" in line
    assert not (cli.home / "results.db").exists()


def test_list_and_revoke_never_create_a_store(cli):
    assert_clean_error(cli("keys", "list"), 2, "no results store there")
    assert_clean_error(cli("keys", "revoke", "demo"), 2, "no results store there")
    assert not (cli.home / "results.db").exists()


def test_keys_commands_explain_themselves():
    runner = CliRunner()
    group = runner.invoke(app, ["keys", "--help"], terminal_width=200)
    assert group.exit_code == 0 and "printed once" in group.output
    for command in ("create", "list", "revoke"):
        result = runner.invoke(app, ["keys", command, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
    created = runner.invoke(app, ["keys", "create", "--help"], terminal_width=200)
    assert "viewer" in created.output and "admin" in created.output
