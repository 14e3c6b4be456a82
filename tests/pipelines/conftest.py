"""Shared setup of the pipelines tests: an empty, migrated results store per backend."""

from __future__ import annotations

import pytest

from pipelines.store.testing import StoreUnavailable, temporary_store

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def engine(request, tmp_path):
    try:
        with temporary_store(request.param, tmp_path) as engine:
            yield engine
    except StoreUnavailable as exc:
        pytest.skip(f"{exc}; start it or set CREDITRISK_TEST_POSTGRES_URL")


@pytest.fixture
def wide_console(monkeypatch):
    """The CLI's console 200 columns wide, whatever the terminal or COLUMNS (Rich keeps a width
    set once): tables print whole."""
    from pipelines.cli.render import console

    monkeypatch.setattr(console, "_width", 200)
    monkeypatch.setattr(console, "_height", 50)  # both set: Rich asks nothing else
