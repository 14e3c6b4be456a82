"""The model-unreachable case (issue 12, Tests) with a real MLflow tracking server: the service
loads the champion from it; when the server is stopped a reload keeps scoring and /ready says
degraded, and a service started while it is down scores from the local copy."""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from serve.payloads import customer_payload

STARTUP_SECONDS = 60


def make_service(world, config):
    """A service on the world, as conftest's `make_service` builds it."""
    from serve.build import build_service

    return build_service(config, world.book_dir, world.rejects_dir / "serve.csv")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_up(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mlflow server ended with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"mlflow server at {url} not up within {STARTUP_SECONDS} s")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait(timeout=10)


@pytest.fixture
def tracking_server(world, tmp_path):
    """A tracking server on a copy of the world's MLflow database (artifacts stay where the
    world's runs logged them); (url, process)."""
    db = tmp_path / "mlflow.db"
    shutil.copy(Path(world.tracking_uri.removeprefix("sqlite:///")), db)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    process = subprocess.Popen(
        [
            str(mlflow),
            "server",
            "--backend-store-uri",
            f"sqlite:///{db}",
            "--default-artifact-root",
            world.artifacts_dir.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "mlflow-server.log").open("wb"),
        start_new_session=True,
    )
    try:
        _wait_up(url, process)
        yield url, process
    finally:
        _stop(process)


def _body(world, engine_url):
    from features.io import read_book
    from pipelines.store.db import open_store
    from pipelines.store.queries import list_runs, read_scores

    engine = open_store(engine_url, create=False)
    try:
        run = list_runs(engine, world.model_name).iloc[0]
        cid = str(read_scores(engine, int(run["id"]))["customer_id"].iloc[0])
    finally:
        engine.dispose()
    return customer_payload(read_book(world.book_dir), cid, pd.Timestamp(run["as_of"]))


def test_scores_on_when_mlflow_is_away(world, serve_config, keys, tracking_server, tmp_path):
    from serve.app import create_app

    url, process = tracking_server
    config = dataclasses.replace(serve_config, tracking_uri=url, cache_dir=tmp_path / "cache")
    headers = {"X-API-Key": keys["admin"]}
    body = _body(world, world.results_url)

    with TestClient(create_app(config, make_service(world, config))) as first:
        ready = first.get("/ready").json()
        assert ready["status"] == "ready", ready
        card = first.get("/v1/model", headers=headers).json()
        assert card["loaded_from"] == "registry"
        scored = first.post("/v1/score", json=body, headers=headers)
        assert scored.status_code == 200, scored.text

        _stop(process)
        reloaded = first.post("/v1/admin/reload", headers=headers)
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["status"] == "degraded"
        again = first.post("/v1/score", json=body, headers=headers)
        assert again.status_code == 200, again.text
        ready = first.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert any(url in reason for reason in ready.json()["reasons"]), ready.json()
        assert ready.json()["model"]["version"] == card["version"]

    assert (config.cache_dir / f"{world.model_name}-champion.pkl").exists()
    with TestClient(create_app(config, make_service(world, config))) as second:
        ready = second.get("/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded", ready.json()
        reasons = " ".join(ready.json()["reasons"])
        assert "local copy" in reasons and str(config.cache_dir) in reasons, reasons
        assert second.get("/v1/model", headers=headers).json()["loaded_from"] == "copy"
        from_copy = second.post("/v1/score", json=body, headers=headers)
        assert from_copy.status_code == 200, from_copy.text
    first_decision, copy_decision = scored.json(), from_copy.json()
    for found in (first_decision, copy_decision):
        found.pop("request_id")
    assert copy_decision == first_decision
    assert again.json()["pd"] == first_decision["pd"]
