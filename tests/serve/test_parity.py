"""Parity (issue 12, section 6): the online score from raw data equals the stored batch score of
the same as-of date, for a sample across segments, customers without financial statements,
without repayment history, and in default; /v1/score/batch equals single calls."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from serve.payloads import customer_payload

PER_SEGMENT = 6
TOL = 1e-9
IN_DEFAULT = 25  # customers in default decided one by one (each is a batch build)
PERFORMING = 400  # performing customers decided one by one, a seeded draw of the book


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


@pytest.fixture(scope="module")
def book(world):
    from features.io import read_book

    return read_book(world.book_dir)


@pytest.fixture(scope="module")
def stored(world):
    """{as_of: scores joined with decisions} of two of the stored runs (the oldest, the newest)."""
    from pipelines.store.db import open_store
    from pipelines.store.queries import list_runs, read_decisions, read_scores

    engine = open_store(world.results_url, create=False)
    try:
        runs = list_runs(engine, world.model_name)
        assert len(runs) >= 2, runs
        out = {}
        for _, run in runs.iloc[[0, -1]].iterrows():
            scores = read_scores(engine, int(run["id"]))
            decisions = read_decisions(engine, int(run["id"]))
            joined = scores.merge(decisions, on=["run_id", "customer_id"], how="left")
            out[pd.Timestamp(run["as_of"])] = joined.set_index("customer_id")
        return out
    finally:
        engine.dispose()


def _known(frame: pd.DataFrame, column: str, as_of: pd.Timestamp) -> pd.Index:
    """Customers with at least one row of ``frame`` known before ``as_of``."""
    when = pd.to_datetime(frame[column])
    return pd.Index(frame.loc[when < as_of, "customer_id"].astype(str).unique())


def _sample(book, scores: pd.DataFrame, as_of: pd.Timestamp) -> dict[str, list[str]]:
    """Scored customers by kind: per segment, without statements, without repayments, in
    default."""
    customers = book["customers"].astype({"customer_id": str}).set_index("customer_id")
    scored = customers.loc[customers.index.intersection(scores.index)]
    rng = np.random.default_rng(int(as_of.strftime("%Y%m%d")))
    kinds = {}
    for segment in ("corporate", "sme", "retail"):
        ids = scored.index[scored["segment"] == segment]
        assert len(ids), f"no {segment} customer scored on {as_of.date()}"
        kinds[segment] = list(rng.choice(ids, size=min(PER_SEGMENT, len(ids)), replace=False))
    with_statements = _known(book["financial_statements"], "published_on", as_of)
    with_repayments = _known(book["repayments"], "month", as_of)
    kinds["no statements"] = list(scored.index.difference(with_statements)[:PER_SEGMENT])
    kinds["no repayments"] = list(scored.index.difference(with_repayments)[:PER_SEGMENT])
    defaulted = scores.index[scores["grade"] == "D"]
    kinds["in default"] = list(defaulted[:PER_SEGMENT])
    return kinds


def _headers(keys):
    return {"X-API-Key": keys["scorer"]}


def assert_same(online: dict, batch: pd.Series, what: str) -> None:
    """The online decision equals the stored batch one: PD to 1e-9, score, grade, reasons,
    policy."""
    assert abs(online["pd"] - float(batch["pd"])) <= TOL, what
    assert online["score"] == int(batch["score"]), what
    assert online["grade"] == batch["grade"], what
    reasons = _json(batch["reasons"]) or []
    assert [r["feature"] for r in online["reasons"]] == [r["feature"] for r in reasons], what
    for got, want in zip(online["reasons"], reasons, strict=True):
        assert {k: v for k, v in got.items() if k != "contribution"} == {
            k: v for k, v in want.items() if k != "contribution"
        }, what
        if want.get("contribution") is None:
            assert got.get("contribution") is None, what
        else:
            assert abs(got["contribution"] - want["contribution"]) <= TOL, what
    policy = online["policy"]
    assert abs(policy["recommended_limit"] - float(batch["recommended_limit"])) <= TOL, what
    assert policy["term_days"] == int(batch["term_days"]), what
    assert policy["conditions"] == batch["conditions"], what
    assert policy["approval_level"] == batch["approval_level"], what
    assert policy["binding_rule"] == batch["binding_rule"], what


def _score(client, keys, body):
    response = client.post("/v1/score", json=body, headers=_headers(keys))
    assert response.status_code == 200, response.text
    return response.json()


def test_online_equals_batch_across_kinds(client, keys, book, stored):
    found = {}
    for as_of, scores in stored.items():
        for kind, ids in _sample(book, scores, as_of).items():
            found[kind] = found.get(kind, 0) + len(ids)
            for cid in ids:
                online = _score(client, keys, customer_payload(book, cid, as_of))
                assert online["customer_id"] == cid
                assert online["as_of"] == f"{as_of.date()}"
                assert_same(online, scores.loc[cid], f"{kind} {cid} on {as_of.date()}")
                if kind == "in default":
                    assert online["pd"] == 1.0 and online["grade"] == "D"
                    assert online["in_default_since"] is not None
    for segment in ("corporate", "sme", "retail"):
        assert found[segment] >= 2, found
    # the book holds customers of each kind on one of the dates at least
    assert found["in default"] > 0, found
    assert found["no repayments"] > 0, found
    assert found["no statements"] > 0, found


def test_rows_after_as_of_do_not_matter(client, keys, book, stored):
    """A payload cut to what was known at the as-of date scores as the whole history does (and
    as the batch): the features read only what was known then."""
    as_of, scores = min(stored.items())
    ids = [i for ids in _sample(book, scores, as_of).values() for i in ids][:8]
    for cid in ids:
        body = customer_payload(book, cid, as_of)
        cut = {
            **body,
            "financial_statements": [
                s for s in body["financial_statements"] if pd.Timestamp(s["published_on"]) < as_of
            ],
            "repayments": [r for r in body["repayments"] if pd.Timestamp(r["month"]) < as_of],
            "events": [e for e in body["events"] if pd.Timestamp(e["occurred_on"]) < as_of],
        }
        assert_same(_score(client, keys, cut), scores.loc[cid], f"cut {cid}")


def test_statements_matter(client, keys, book, stored):
    """Dropping the statements of a customer who has some changes its features: the parity
    above is not vacuous."""
    as_of, scores = max(stored.items())
    ids = _sample(book, scores, as_of)["corporate"]
    body = customer_payload(book, ids[0], as_of)
    assert body["financial_statements"]
    full = _score(client, keys, body)
    bare = client.post(
        "/v1/score",
        json={**body, "financial_statements": []},
        headers=_headers(keys),
    )
    assert bare.status_code == 200, bare.text
    assert bare.json()["pd"] != full["pd"]


def test_batch_equals_single_calls(client, keys, book, stored, serve_config):
    for as_of, scores in stored.items():
        ids = [i for ids in _sample(book, scores, as_of).values() for i in ids]
        ids = list(dict.fromkeys(ids))[: serve_config.max_batch]
        body = {
            "as_of": f"{as_of.date()}",
            "customers": [customer_payload(book, cid) for cid in ids],
        }
        response = client.post("/v1/score/batch", json=body, headers=_headers(keys))
        assert response.status_code == 200, response.text
        decisions = response.json()["decisions"]
        assert [d["customer_id"] for d in decisions] == ids
        for cid, decision in zip(ids, decisions, strict=True):
            single = _score(client, keys, customer_payload(book, cid, as_of))
            single.pop("model"), single.pop("request_id")
            assert decision == single
            assert_same(decision, scores.loc[cid], f"batch {cid}")


def test_customers_decide_one_by_one_as_the_batch(app, book, stored, world):
    """The one-customer kernels (`OnlineScorer.decide_one`, what /v1/score runs) against the
    batch code for a seeded draw of the book's customers at the newest stored date: the stored
    scores, reasons and policy, and the warnings the batch code raises against the same history.
    (`tests/features/test_single.py` holds every customer's features to the batch build.)"""
    from features.single import records_of
    from pipelines.store.queries import read_score_history
    from pipelines.usecases import lookup

    service = app.state.service
    online = service.holder.loaded.online
    as_of, scores = max(stored.items())
    history = read_score_history(service.engine, world.model_name, as_of, 12)
    batch = {d.customer_id: d for d in online.decide(book, as_of, history)}
    by_customer = {
        name: dict(tuple(frame.groupby(frame["customer_id"].astype(str))))
        for name, frame in book.items()
        if frame is not None and name != "customers"
    }
    customers = book["customers"].assign(customer_id=book["customers"]["customer_id"].astype(str))
    performing = [c for c, d in batch.items() if not d.in_default_since]
    rng = np.random.default_rng(int(as_of.strftime("%Y%m%d")))
    drawn = set(rng.choice(performing, size=min(PERFORMING, len(performing)), replace=False))
    kinds = {"performing": 0, "in default": 0}
    for cid, customer in customers.groupby("customer_id"):
        if cid not in batch:
            continue  # onboarded after the date
        if batch[cid].in_default_since and kinds["in default"] >= IN_DEFAULT:
            continue  # they take the batch path, one build each: a sample of them
        if not batch[cid].in_default_since and cid not in drawn:
            continue
        empty = {name: frame.iloc[:0] for name, frame in book.items() if frame is not None}
        own = {**empty, "customers": customer}
        own.update({name: rows[cid] for name, rows in by_customer.items() if cid in rows})
        rows = lookup.score_history(service.engine, world.model_name, cid, as_of)
        one = online.decide_one(records_of(own, cid), as_of, rows)
        want = batch[cid]
        assert one == want, cid
        what = f"{cid} on {as_of.date()}"
        assert_same({**one.__dict__}, scores.loc[cid], what)
        kinds["in default" if one.in_default_since else "performing"] += 1
    assert kinds["performing"] == len(drawn) > 100 and kinds["in default"] > 0, kinds
