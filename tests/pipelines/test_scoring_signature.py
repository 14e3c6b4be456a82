"""Scoring refuses a snapshot whose columns or kinds differ from the model's signature, naming
them, before it opens the results store; a snapshot that fits is scored and stored."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import sqlalchemy as sa

from features.labels import observed_until
from features.snapshots import build_snapshots
from features.synthetic import generate_book
from models.tracking import log_training
from models.training import train_from_snapshots
from pipelines.errors import BadInput
from pipelines.usecases.scoring import DecisionConfig, ScoringRequest, score_dates

pytestmark = pytest.mark.xdist_group("scoring-signature")

MODEL = "creditrisk-signature-test"
START = pd.Timestamp("2021-01-01")


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """An 800-customer book, its latest snapshot and a model of it in MLflow."""
    tables = generate_book(800, 33, start=f"{START:%Y-%m-%d}", seed=11)
    training = build_snapshots(tables, [START + pd.DateOffset(months=m) for m in (15, 18, 21)])
    scoring = build_snapshots(tables, [observed_until(tables)], with_defaulted=True)
    root = tmp_path_factory.mktemp("mlflow-signature")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    tracked = log_training(
        train_from_snapshots(training, n_estimators=20),
        experiment="signature-test",
        model_name=MODEL,
        dataset="signature-test",
        trained_by="alice",
        tracking_uri=uri,
        artifact_root=root / "mlartifacts",
    )
    return SimpleNamespace(scoring=scoring, uri=uri, version=tracked.version)


def request_for(book, results: str) -> ScoringRequest:
    return ScoringRequest(MODEL, book.version, book.uri, results, "runner", DecisionConfig.load())


def test_a_snapshot_unlike_the_signature_is_refused_naming_the_columns_before_any_write(
    book, tmp_path
):
    store = tmp_path / "results.db"
    bad = book.scoring.drop(columns=["leverage"]).assign(
        segment=book.scoring["segment"].cat.codes,  # numbers where the model has text
        utilisation_latest=book.scoring["utilisation_latest"].astype(str),
    )
    with pytest.raises(BadInput) as refused:
        score_dates(bad, request_for(book, f"sqlite:///{store}"))
    error = refused.value
    assert error.source == "snapshot"
    changed = ["leverage", "segment", "utilisation_latest"]
    first = next(c for c in book.scoring.columns if c in changed)  # signature: snapshot order
    assert error.field == first
    for text in ("'leverage' is missing", "'segment' is numeric", "'utilisation_latest' is"):
        assert text in error.reason
    assert error.hint and f"version {book.version}" in error.reason
    assert not store.exists()  # refused before the store was opened


def test_a_snapshot_that_fits_the_signature_is_scored_and_stored(book, tmp_path):
    store = tmp_path / "results.db"
    (outcome,) = score_dates(book.scoring, request_for(book, f"sqlite:///{store}"))
    engine = sa.create_engine(f"sqlite:///{store}")
    with engine.connect() as connection:
        stored = connection.execute(
            sa.text("select count(*) from scores where run_id = :run"), {"run": outcome.run_id}
        ).scalar()
    engine.dispose()
    assert stored == len(book.scoring)
