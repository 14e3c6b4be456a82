"""Connecting to an MLflow store does not leak its URI into the environment."""

from __future__ import annotations

import os

from models.tracking import connect
from pipelines.settings import Settings


def test_connecting_leaves_the_environment_and_other_homes_alone(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    connect(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}")
    assert "MLFLOW_TRACKING_URI" not in os.environ
    other = Settings(home=tmp_path / "b")
    assert other.tracking_uri == f"sqlite:///{(tmp_path / 'b' / 'mlflow.db').resolve()}"


def test_a_uri_set_by_the_user_stays(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///users-choice.db")
    connect(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///users-choice.db"
