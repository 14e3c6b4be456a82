"""Schemathesis against the OpenAPI schema, in-process, with a valid admin key (issue 12, Tests):
at least 1,000 generated requests across all endpoints, valid and invalid, no 5xx, no response
that breaks the schema or uses a status the schema does not document."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLES = {GenerationMode.POSITIVE: 90, GenerationMode.NEGATIVE: 60}
AT_LEAST = 1_000
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


@pytest.fixture(scope="module")
def api_schema(world, serve_config, tmp_path_factory):
    """The schema of an app of its own: schemathesis starts its lifespan and ends it after the
    test (which would stop the session app's service)."""
    from serve.app import create_app
    from serve.build import build_service

    config = dataclasses.replace(serve_config, cache_dir=tmp_path_factory.mktemp("fuzz-cache"))
    service = build_service(config, world.book_dir, world.rejects_dir / "serve.csv")
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(config, service))


def _operations(schema):
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


def _run(operation, mode, headers, sent: Counter) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case):
        sent[operation.label] += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


def test_fuzz_every_endpoint(api_schema, keys):
    headers = {"X-API-Key": keys["admin"]}
    operations = _operations(api_schema)
    labels = {op.label for op in operations}
    assert "POST /v1/score" in labels and "GET /v1/warnings" in labels, labels
    sent: Counter = Counter()
    for operation in operations:
        for mode in EXAMPLES:
            if mode is GenerationMode.NEGATIVE and not _can_break(operation):
                continue
            _run(operation, mode, headers, sent)
    assert set(sent) == labels, labels - set(sent)
    assert sum(sent.values()) >= AT_LEAST, sent


def _can_break(operation) -> bool:
    """The operation takes something a client can get wrong (a body or parameters)."""
    parts = (operation.path_parameters, operation.query, operation.headers, operation.body)
    return any(len(list(part)) for part in parts)
