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

import errno
import re
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
    from features.io import BookReadError
    from features.schemas import ContractError, RejectRateExceeded
    from models.yaml_config import ConfigError

    if isinstance(exc, RejectRateExceeded):
        return Refused(str(exc), hint="fix the rejected rows or raise the threshold")
    if isinstance(exc, BookReadError):
        return BadInput(exc.reason, source=exc.source, line=exc.line, hint=exc.hint)
    if isinstance(exc, ContractError):
        return BadInput(str(exc))
    if isinstance(exc, ConfigError):  # master scale, credit policy, warning rules
        return BadInput(exc.reason, source=exc.source, line=exc.line)
    from models.prepare import TrainingInputError

    if isinstance(exc, TrainingInputError):  # a table that cannot train as given
        return BadInput(exc.reason, source=exc.source, field=exc.field, hint=exc.hint)
    return None


DATABASE_URL = "CREDITRISK_DATABASE_URL"
TRACKING_URI = "CREDITRISK_MLFLOW_TRACKING_URI"
PREFECT_STARTUP = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"


def store_error(exc: BaseException, named: str = DATABASE_URL) -> CreditriskError | None:
    """The typed error for a results-store driver exception; ``named`` says where its URL is set
    (the CREDITRISK_DATABASE_URL variable, or an option such as --database-url)."""
    from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError

    if isinstance(exc, ArgumentError):
        return BadInput(
            f"not a usable database URL ({_first_line(exc)})",
            field=named,
            hint="use sqlite:///path/results.db or postgresql+psycopg://user@host:5432/db",
        )
    if isinstance(exc, OperationalError):
        local = type(exc.orig).__module__.startswith("sqlite3")
        what = "make the file and its folder writable" if local else "start the database"
        return Unavailable(
            f"the results store did not answer: {_first_line(exc.orig or exc)}",
            field=named,
            hint=f"{what}, or fix {named}",
        )
    if isinstance(exc, DatabaseError) and "not a database" in str(exc.orig):
        return BadInput(
            "not a SQLite database file",
            field=named,
            hint=f"point {named} at a creditrisk results store",
        )
    return None


@contextmanager
def store_errors(named: str = DATABASE_URL) -> Iterator[None]:
    """Re-raise results-store driver errors inside the block as typed errors naming ``named``."""
    try:
        yield
    except Exception as exc:
        found = None if isinstance(exc, CreditriskError) else store_error(exc, named)
        if found is None:
            raise
        raise found from exc


def bad_tracking_uri(reason: str) -> BadInput:
    """The MLflow tracking URI cannot be used as given."""
    return BadInput(
        f"not a usable MLflow tracking URI ({reason})",
        field=TRACKING_URI,
        hint="use sqlite:///path/mlflow.db or http://host:5000 (an `mlflow server`)",
    )


def tracking_unavailable(reason: str) -> Unavailable:
    """The MLflow tracking server (or its database) did not answer."""
    return Unavailable(
        f"the MLflow tracking server did not answer: {reason}",
        field=TRACKING_URI,
        hint=f"start the server or point {TRACKING_URI} at one that runs",
    )


def _tracking(exc: BaseException) -> CreditriskError | None:
    from mlflow.exceptions import InvalidUrlException, MlflowException
    from mlflow.tracking.registry import UnsupportedModelRegistryStoreURIException

    if not isinstance(exc, MlflowException):
        return None
    code = getattr(exc, "error_code", "")
    text = _first_line(exc)
    if isinstance(exc, UnsupportedModelRegistryStoreURIException):
        schemes = ", ".join(s for s in exc.supported_uri_schemes if s)
        return bad_tracking_uri(f"MLflow supports the schemes {schemes}")
    if "filesystem tracking backend" in text:
        return bad_tracking_uri("a plain path means MLflow's file store, which MLflow 3 refuses")
    if isinstance(exc, InvalidUrlException):
        return bad_tracking_uri(text)
    if code == "RESOURCE_DOES_NOT_EXIST" or "not found" in text.lower():
        return NotFound(text, hint="list versions with `creditrisk models history`")
    if "API request" in text or "Max retries" in text or "Connection" in text:
        return tracking_unavailable(_request_failure(exc))
    return None


def _request_failure(exc: BaseException) -> str:
    """ "API request to URL failed (Connection refused)" out of MLflow's nested urllib3 text."""
    text = str(exc)
    cause = re.search(r"\[Errno -?\d+\] ([^'\")]+)|(Read timed out)", text)
    if cause is None:
        return _first_line(exc)
    return f"{text.split(' failed with exception')[0]} failed ({cause.group(1) or cause.group(2)})"


def _prefect(exc: BaseException) -> CreditriskError | None:
    if isinstance(exc, RuntimeError) and "ephemeral Prefect API server" in str(exc):
        return Unavailable(
            "the local (ephemeral) Prefect API server did not start in time",
            field=PREFECT_STARTUP,
            hint=f"set {PREFECT_STARTUP} higher (e.g. 300) on a busy machine, or run "
            "`prefect server start` and set PREFECT_API_URL=http://127.0.0.1:4200/api",
        )
    return None


def _not_a_folder(exc: BaseException) -> CreditriskError | None:
    if isinstance(exc, NotADirectoryError | FileExistsError):
        return Unavailable(
            f"cannot make or write the folder: a file is in the way ({exc.strerror})",
            source=str(exc.filename) if exc.filename else None,
            hint="set CREDITRISK_HOME (or the path you gave) to a folder you can write",
        )
    return None


def _disk(exc: BaseException) -> CreditriskError | None:
    if isinstance(exc, FileNotFoundError):
        where = getattr(exc, "filename", None)
        reason = exc.strerror if where else str(exc)
        hint = "check the path" if where else None
        return BadInput(reason or "no such file or folder", source=where, hint=hint)
    if isinstance(exc, IsADirectoryError):
        return BadInput("a folder where a file was expected", source=exc.filename)
    if isinstance(exc, PermissionError):
        return Unavailable(
            f"permission denied ({exc.strerror or exc})",
            source=exc.filename,
            hint="give this user access to it, or set CREDITRISK_HOME to a folder it can use",
        )
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EROFS):
        return Unavailable(
            f"cannot write: {exc.strerror or exc}",
            source=exc.filename,
            hint="free some space or set CREDITRISK_HOME to a writable folder",
        )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


_TRANSLATIONS = (_domain, store_error, _tracking, _prefect, _disk, _not_a_folder)
