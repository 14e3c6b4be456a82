"""POST /v1/score/features: a ready feature row (built by the batch code) decides as the raw data
it was built from (by the one-customer kernels)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from features.io import read_book
from pipelines.usecases.online import records_tables
from serve.api import records_of
from serve.payloads import customer_payload
from serve.schemas import ScoreRequest


@pytest.fixture(scope="module")
def book(world):
    return read_book(world.book_dir)


def _json(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def _feature_row(app, body: ScoreRequest) -> dict:
    online = app.state.service.holder.loaded.online
    as_of = pd.Timestamp(body.as_of)
    tables = records_tables(records_of(body, online.book.tables))
    snapshot = online.snapshot(online.tables(tables, checked=True), as_of)  # the batch build
    row = snapshot.iloc[0]
    return {c: _json(row[c]) for c in online.scorer.input_columns if c in snapshot.columns}


def test_a_feature_row_decides_as_its_raw_data(app, client, keys, book, world):
    headers = {"X-API-Key": keys["scorer"]}
    runs = pd.read_sql("select as_of from score_runs where status = 'succeeded'", world.results_url)
    as_of = str(pd.Timestamp(runs["as_of"].max()).date())
    customers = book["customers"]["customer_id"].astype(str)
    checked = 0
    for customer_id in customers.iloc[::300].head(8):
        raw = customer_payload(book, customer_id, as_of)
        from_raw = client.post("/v1/score", json=raw, headers=headers)
        if from_raw.status_code == 422:  # onboarded after the date
            continue
        assert from_raw.status_code == 200, from_raw.text
        features = _feature_row(app, ScoreRequest.model_validate(raw))
        body = {"as_of": as_of, "customer_id": customer_id, "features": features}
        from_row = client.post("/v1/score/features", json=body, headers=headers)
        assert from_row.status_code == 200, from_row.text
        a, b = from_raw.json(), from_row.json()
        if a["in_default_since"] is not None:
            continue  # a feature row carries no default date: it is scored as performing
        assert abs(a["pd"] - b["pd"]) <= 1e-9
        assert (a["grade"], a["score"], a["policy"]) == (b["grade"], b["score"], b["policy"])
        assert [r["feature"] for r in a["reasons"]] == [r["feature"] for r in b["reasons"]]
        assert a["warning"]["level"] == b["warning"]["level"]
        checked += 1
    assert checked >= 4


def test_unknown_features_and_wrong_kinds_are_422_naming_them(client, keys):
    headers = {"X-API-Key": keys["scorer"]}
    base = {"as_of": "2024-07-01", "customer_id": "C1"}
    unknown = client.post(
        "/v1/score/features", json={**base, "features": {"no_such_feature": 1.0}}, headers=headers
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["errors"][0]["loc"] == ["no_such_feature"]
    wrong = client.post(
        "/v1/score/features", json={**base, "features": {"segment": 3.0}}, headers=headers
    )
    assert wrong.status_code == 422
    assert "segment" in wrong.json()["error"]["reason"]
    text = client.post(
        "/v1/score/features", json={**base, "features": {"leverage": "high"}}, headers=headers
    )
    assert text.status_code == 422
