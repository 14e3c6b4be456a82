"""MLflow errors become typed errors naming CREDITRISK_MLFLOW_TRACKING_URI; the reachability probe
knows which tracking URIs name a server and which are local."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

from pipelines.errors import BadInput, NotFound, Unavailable, typed
from pipelines.usecases.preflight import sqlite_folder, tracking_address

READ_TIMEOUT = (
    "API request to http://10.0.0.9:5000/api/2.0/mlflow/experiments/get-by-name failed with "
    "exception HTTPConnectionPool(host='10.0.0.9', port=5000): Max retries exceeded with url: "
    "/api/2.0/mlflow/experiments/get-by-name?experiment_name=x (Caused by ReadTimeoutError("
    "\"HTTPConnectionPool(host='10.0.0.9', port=5000): Read timed out. (read timeout=10)\"))"
)


def test_a_failed_request_is_unavailable_in_a_few_words():
    found = typed(MlflowException(READ_TIMEOUT))
    assert isinstance(found, Unavailable)
    assert found.field == "CREDITRISK_MLFLOW_TRACKING_URI"
    assert found.reason.endswith("experiments/get-by-name failed (Read timed out)")


def test_registry_answers_keep_their_kind():
    missing = MlflowException("Registered Model with name=x not found", "RESOURCE_DOES_NOT_EXIST")
    assert isinstance(typed(missing), NotFound)
    assert typed(MlflowException("something else broke")) is None


@pytest.mark.parametrize(
    "uri, address",
    [
        ("http://mlflow.internal:5000", ("mlflow.internal", 5000)),
        ("https://mlflow.internal/prefix", ("mlflow.internal", 443)),
        ("postgresql+psycopg2://u@db/mlflow", ("db", 5432)),
        ("sqlite:////tmp/mlflow.db", None),
        ("databricks", None),
    ],
)
def test_servers_are_probed_and_local_stores_are_not(uri, address, monkeypatch):
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    assert tracking_address(uri) == address


def test_a_server_behind_a_proxy_is_left_to_mlflow(monkeypatch):
    monkeypatch.setenv("https_proxy", "http://proxy:3128")
    monkeypatch.setenv("no_proxy", "")
    assert tracking_address("https://mlflow.example.com") is None


@pytest.mark.parametrize("uri", ["http://host:port", "https://"])
def test_a_server_uri_without_host_or_with_a_bad_port_is_bad_input(uri):
    with pytest.raises(BadInput, match="not a usable MLflow tracking URI"):
        tracking_address(uri)


def test_the_folder_of_a_sqlite_tracking_store():
    assert str(sqlite_folder("sqlite:////data/home/mlflow.db")) == "/data/home"
    assert sqlite_folder("sqlite:///:memory:") is None
    assert sqlite_folder("http://host:5000") is None
