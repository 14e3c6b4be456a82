"""Typed errors of the use cases: what went wrong, where, and what to do about it.

Every error a person can act on is one of five kinds; each carries the place (file or table, row
key or line, column or field), the reason and a hint. The CLI prints one line and exits with the
kind's code; the API answers with the kind's HTTP status.

| kind          | exit | HTTP | when                                                         |
| ------------- | ---- | ---- | ------------------------------------------------------------ |
| `BadInput`    | 2    | 422  | a file, table, option or value the user gave is wrong        |
| `NotFound`    | 2    | 404  | a model, version, run, warning or customer does not exist    |
| `Conflict`    | 2    | 409  | the thing exists but is in the wrong state for the action    |
| `Refused`     | 1    | 409  | a gate or threshold said no (promotion, reject rate)         |
| `Unavailable` | 3    | 503  | a system is unreachable or unwritable (store, MLflow, disk)  |

`as_typed` turns the domain errors of `features` and `models` (which cannot import this module)
and the drivers' connection errors into these kinds, so every caller sees one hierarchy.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_UNAVAILABLE, EXIT_INTERNAL = 0, 1, 2, 3, 4
EXIT_INTERRUPTED = 130


class CreditriskError(Exception):
    """A failure a person can act on: where it is, why, and what to do."""

    kind = "error"
    exit_code = EXIT_BAD_INPUT
    http_status = 400

    def __init__(
        self,
        reason: str,
        *,
        source: str | None = None,
        line: int | None = None,
        key: str | None = None,
        field: str | None = None,
        hint: str | None = None,
    ):
        self.reason = reason.rstrip(". ")
        self.source, self.line, self.key, self.field = source, line, key, field
        self.hint = hint
        super().__init__(self.message)

    @property
    def where(self) -> str:
        """`file:line`, `table row key`, `column`: the place, as far as it is known."""
        parts = []
        if self.source:
            parts.append(f"{self.source}:{self.line}" if self.line else self.source)
        if self.key:
            parts.append(f"row {self.key}")
        if self.field:
            parts.append(f"'{self.field}'")
        return " ".join(parts)

    @property
    def message(self) -> str:
        """The one line a person reads: place, reason, what to do."""
        text = f"{self.where}: {self.reason}" if self.where else self.reason
        if not self.hint:
            return f"{text}."
        hint = self.hint.rstrip(".")
        return f"{text}. {hint[0].upper()}{hint[1:]}."

    def as_dict(self) -> dict[str, object]:
        """The error's fields, for an API response body or a log record."""
        return {
            "kind": self.kind,
            "reason": self.reason,
            "source": self.source,
            "line": self.line,
            "key": self.key,
            "field": self.field,
            "hint": self.hint,
        }


class BadInput(CreditriskError):
    """A file, table, option or value given by the user is wrong."""

    kind, exit_code, http_status = "bad input", EXIT_BAD_INPUT, 422


class NotFound(CreditriskError):
    """A model, version, run, warning or customer that was named does not exist."""

    kind, exit_code, http_status = "not found", EXIT_BAD_INPUT, 404


class Conflict(CreditriskError):
    """The thing exists but its state does not allow the action (a resolved warning, say)."""

    kind, exit_code, http_status = "conflict", EXIT_BAD_INPUT, 409


class Refused(CreditriskError):
    """A gate or threshold refused: promotion gates, the reject-rate threshold."""

    kind, exit_code, http_status = "refused", EXIT_REFUSED, 409


class Unavailable(CreditriskError):
    """A system is unreachable or unwritable: the results store, MLflow, Prefect, the disk."""

    kind, exit_code, http_status = "unavailable", EXIT_UNAVAILABLE, 503


def typed(exc: BaseException) -> CreditriskError | None:
    """The typed error for a domain or driver exception, or None when it is a bug."""
    if isinstance(exc, CreditriskError):
        return exc
    for check in _TRANSLATIONS:
        found = check(exc)
        if found is not None:
            return found
    return None


@contextmanager
def as_typed() -> Iterator[None]:
    """Re-raise domain and driver exceptions inside the block as typed errors."""
    try:
        yield
    except CreditriskError:
        raise
    except Exception as exc:
        found = typed(exc)
        if found is None:
            raise
        raise found from exc


def _domain(exc: BaseException) -> CreditriskError | None:
    from features.schemas import ContractError, RejectRateExceeded
    from models.master_scale import MasterScaleError

    if isinstance(exc, RejectRateExceeded):
        return Refused(str(exc), hint="fix the rejected rows or raise the threshold")
    if isinstance(exc, ContractError | MasterScaleError):
        return BadInput(str(exc))
    from pipelines.decisions.policy import PolicyError

    if isinstance(exc, PolicyError):
        return BadInput(str(exc).replace("\n", "; "))
    return None


def _store(exc: BaseException) -> CreditriskError | None:
    from sqlalchemy.exc import ArgumentError, OperationalError

    if isinstance(exc, ArgumentError):
        return BadInput(
            f"not a database URL ({_first_line(exc)})",
            field="CREDITRISK_DATABASE_URL",
            hint="use sqlite:///path/results.db or postgresql+psycopg://user@host:5432/db",
        )
    if isinstance(exc, OperationalError):
        return Unavailable(
            f"the results store did not answer: {_first_line(exc.orig or exc)}",
            hint="start the database or fix CREDITRISK_DATABASE_URL",
        )
    return None


def _tracking(exc: BaseException) -> CreditriskError | None:
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return None
    code = getattr(exc, "error_code", "")
    text = _first_line(exc)
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
        return NotFound(text, hint="list versions with `creditrisk models history`")
    if "API request" in text or "Max retries" in text or "Connection" in text:
        return Unavailable(
            f"the MLflow tracking server did not answer: {text}",
            field="CREDITRISK_MLFLOW_TRACKING_URI",
            hint="start the server or point CREDITRISK_MLFLOW_TRACKING_URI at one that runs",
        )
    return None


def _disk(exc: BaseException) -> CreditriskError | None:
    if isinstance(exc, FileNotFoundError):
        where = getattr(exc, "filename", None)
        reason = exc.strerror if where else str(exc)
        hint = "check the path" if where else None
        return BadInput(reason or "no such file or folder", source=where, hint=hint)
    if isinstance(exc, PermissionError | IsADirectoryError) or (
        isinstance(exc, OSError) and exc.errno in (28, 30)  # ENOSPC, EROFS
    ):
        where = getattr(exc, "filename", None)
        return Unavailable(
            f"cannot write: {exc.strerror or exc}",
            source=str(where) if where else None,
            hint="make the folder writable or set CREDITRISK_HOME to one that is",
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_TRANSLATIONS = (_domain, _store, _tracking, _disk)
