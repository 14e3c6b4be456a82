"""Build the service's parts from settings: the results store, the decision configuration, what
the features need of the book, and the model holder (`build_service`)."""

from __future__ import annotations

from pathlib import Path

from pipelines.errors import NotFound, as_typed
from pipelines.store.db import open_store
from pipelines.usecases.book import validate_book
from pipelines.usecases.online import BookReference
from pipelines.usecases.scoring import DecisionConfig
from serve.app import ServeConfig, Service
from serve.holder import ModelHolder, online_builder


def book_reference(book_dir: Path, rejects_path: Path) -> BookReference:
    """The book's customers and default dates, validated as the batch flows validate it."""
    if not any(Path(book_dir).glob("customers.*")):
        raise NotFound(
            f"no book in {book_dir}: online features need the book's customers (industry default "
            "rates and category levels) and default dates",
            source=str(book_dir),
            hint="run `creditrisk run` (or `creditrisk generate`) first, or pass --book",
        )
    validated = validate_book(Path(book_dir), 1.0, rejects_path, enforce=False)
    return BookReference.of(validated.tables)


def build_service(
    config: ServeConfig,
    book_dir: Path,
    rejects_path: Path,
    horizon_months: int = 12,
    decisions: DecisionConfig | None = None,
) -> Service:
    """The store (which must exist: batch runs fill it), the book and the holder, not started."""
    with as_typed():
        engine = open_store(config.results_url, create=False)
    decisions = decisions or DecisionConfig.load()
    book = book_reference(book_dir, rejects_path)
    build = online_builder(decisions, book, config.model_name, horizon_months)
    holder = ModelHolder(config.tracking_uri, config.model_name, config.cache_dir, build)
    return Service(config, engine, holder, decisions.scale, Path(book_dir))
