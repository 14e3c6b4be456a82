"""One trained world for the service tests: the main job on a small synthetic book (champion in
the registry, three scored runs in the store), an API key per role, and the app on it.

Every test module here is in the xdist group ``serve``, so the world is built once per run."""

from __future__ import annotations

import pytest

ROLES = ("viewer", "scorer", "officer", "admin")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/serve/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group("serve"))


@pytest.fixture(scope="session")
def world(prefect_harness, tmp_path_factory):
    """Settings of a home where `creditrisk run` ran on 3,000 customers over 48 months."""
    from models.registry import Gates
    from pipelines.flows.main import main_flow
    from pipelines.settings import Settings
    from pipelines.usecases.book import GenerateRequest
    from pipelines.usecases.main_job import MainJobRequest
    from pipelines.usecases.scoring import DecisionConfig

    home = tmp_path_factory.mktemp("serve-home")
    settings = Settings(home=home)
    request = MainJobRequest(
        book=GenerateRequest(customers=3_000, months=48, seed=7),
        gates=Gates(allow_red_jeffreys=True),
    )
    state = main_flow(settings, request, DecisionConfig.load(), return_state=True)
    assert state.is_completed(), state
    return settings


@pytest.fixture(scope="session")
def serve_config(world):
    from serve.app import ServeConfig

    return ServeConfig(
        results_url=world.results_url,
        tracking_uri=world.tracking_uri,
        model_name=world.model_name,
        cache_dir=world.home / "serve-cache",
        max_batch=20,
        max_body_bytes=200_000,
        check_seconds=3600,
        key_refresh_seconds=0.2,
        cookie_secure=False,
    )


@pytest.fixture(scope="session")
def keys(world):
    """A key per role (and one revoked), made as `creditrisk keys create` makes them."""
    from pipelines.store.db import open_store
    from pipelines.usecases.access import create_key, revoke_key

    engine = open_store(world.results_url, create=False)
    try:
        found = {role: create_key(engine, f"test-{role}", role, "tests").token for role in ROLES}
        found["revoked"] = create_key(engine, "test-revoked", "admin", "tests").token
        revoke_key(engine, "test-revoked", "tests")
    finally:
        engine.dispose()
    return found


def make_service(world, config):
    from serve.build import build_service

    return build_service(config, world.book_dir, world.rejects_dir / "serve.csv")


@pytest.fixture(scope="session")
def app(world, serve_config, keys):
    """The app on the world (started by each TestClient context)."""
    from serve.app import create_app

    return create_app(serve_config, make_service(world, serve_config))


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c
