"""Use cases on a customer book: generate a synthetic one; read and validate one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.io import read_book, write_book, write_rejects, write_truth
from features.labels import observed_until
from features.schemas import MAX_REJECT_RATE_ENV, SCHEMAS, ValidationResult
from features.schemas import validate_tables as validate_contract
from features.synthetic import BookSizeError, generate_book_with_truth
from features.synthetic import generate_book as simulate_tables
from pipelines.errors import BadInput, Refused, as_typed
from pipelines.usecases import Step, silent

# The generator's arguments as the command line names them.
GENERATE_OPTIONS = {"n_customers": "--customers", "months": "--months", "seed": "--seed"}


@dataclass(frozen=True)
class GenerateRequest:
    """What `creditrisk generate` and the main job ask of the synthetic book."""

    customers: int = 20_000
    months: int = 48
    start: str = "2021-01-01"
    seed: int = 42
    truth: bool = True  # write the true PDs beside the book (a few seconds per 20k customers)


@dataclass(frozen=True)
class BookValidated:
    """A validated book: accepted tables, counts per table and where the rejects went."""

    validation: ValidationResult
    rejects_path: Path

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return self.validation.accepted

    @property
    def counts(self) -> pd.DataFrame:
        return self.validation.counts

    @property
    def customers(self) -> int:
        return len(self.validation.accepted["customers"])

    @property
    def observed_until(self) -> pd.Timestamp:
        return observed_until(self.validation.accepted)

    def enforce(self) -> None:
        """Raise `Refused` when a table's reject rate is above the threshold."""
        validation = self.validation
        if not validation.exceeded:
            return
        counts = validation.counts.set_index("table")
        over = ", ".join(
            f"{t} {counts.at[t, 'rejected']:,} of {counts.at[t, 'rows_in']:,} "
            f"({validation.reject_rates[t]:.1%})"
            for t in validation.exceeded
        )
        raise Refused(
            f"reject rate above the threshold of {validation.max_reject_rate:.1%}: {over}; "
            f"the rejected rows and reasons are in {self.rejects_path}",
            hint="fix the rejected rows, or raise the threshold with --max-reject-rate 0.10 "
            f"(or {MAX_REJECT_RATE_ENV}=0.10)",
        )


def generate_book(
    request: GenerateRequest,
    folder: Path,
    on_month: Callable[[int, int], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Simulate the synthetic book and write it as Parquet to ``folder``, its true PDs beside it
    (``folder/truth``, never read as a table) unless ``request.truth`` is off."""
    try:
        start = pd.Timestamp(request.start)
    except ValueError as exc:
        raise BadInput(
            f"{request.start!r} is not a date",
            field="start",
            hint="use YYYY-MM-DD, e.g. 2021-01-01",
        ) from exc
    args = (request.customers, request.months, f"{start:%Y-%m-%d}", request.seed)
    try:
        if request.truth:
            book = generate_book_with_truth(*args, on_month=on_month)
            tables, true_pd = book.tables, book.true_pd
        else:
            tables, true_pd = simulate_tables(*args, on_month=on_month), None
    except BookSizeError as exc:
        raise BadInput(
            f"{exc.value} is below the minimum of {exc.minimum}",
            field=GENERATE_OPTIONS[exc.argument],
            hint=f"give {GENERATE_OPTIONS[exc.argument]} {exc.minimum} or more",
        ) from exc
    with as_typed():
        write_book(tables, folder)
        if true_pd is not None:
            write_truth(true_pd, folder)
    return tables


def validate_book(
    folder: Path,
    max_reject_rate: float,
    rejects_path: Path,
    *,
    enforce: bool = True,
    step: Step = silent,
) -> BookValidated:
    """Read the book in ``folder``, validate it against the contract, quarantine the rejects.

    With ``enforce`` a reject rate above ``max_reject_rate`` raises `Refused` (the rejects are
    written first, so the user can see them).
    """
    with as_typed():
        step(f"reading {folder}")
        tables = read_book(folder)
        rows = sum(len(frame) for frame in tables.values())
        step(f"validating {rows:,} rows")
        validation = validate_contract(tables, max_reject_rate=max_reject_rate)
        write_rejects(validation.rejects, rejects_path)
    book = BookValidated(validation, rejects_path)
    if enforce:
        book.enforce()
    return book


def read_typed_book(folder: Path) -> dict[str, pd.DataFrame]:
    """Read a book without validating it: only one already typed by the contract will do.

    A book written by `creditrisk generate` or accepted by `validate` is Parquet with dates and
    numbers typed; a CSV book holds text and must be validated (which casts it) first.
    """
    with as_typed():
        tables = read_book(folder)
    for name, frame in tables.items():
        schema = SCHEMAS.get(name)
        if schema is None:
            continue
        for column, spec in schema.columns.items():
            if column not in frame.columns:
                continue
            wanted, seen = str(spec.dtype), frame[column].dtype
            if not _typed_as(seen, wanted):
                raise BadInput(
                    f"column holds {seen} values, not {wanted}: without validation only a typed "
                    "book (Parquet written by `creditrisk generate` or `validate`) can be read",
                    source=name,
                    field=column,
                    hint="drop --no-validate, so the book is validated and cast first",
                )
    return tables


def _typed_as(seen, wanted: str) -> bool:
    if wanted.startswith("datetime"):
        return pd.api.types.is_datetime64_any_dtype(seen)
    if wanted in ("float64", "int64"):
        return pd.api.types.is_numeric_dtype(seen)
    return True
