"""Runtime settings: environment variables with the ``CREDITRISK_`` prefix.

Only the edges (CLI, flows, API) read settings; library functions take paths and URIs as arguments.
Reading settings creates nothing: each command creates the folders it writes to. A value out of
range is refused as `BadInput` naming the variable and what it allows.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.errors import BadInput

ENV_PREFIX = "CREDITRISK_"
# Telemetry off, no display, quiet MLflow: the one list; tests/conftest.py and the benchmarks
# apply it through `quiet_environment` (the Makefile exports its own copy for make's commands).
QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # An MLflow server that does not answer fails in seconds (MLflow's default: 7 retries with
    # backoff, about 4 minutes); two retries still ride out a blip.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    # The ephemeral Prefect API server of `creditrisk run` can take over 20 s on a loaded machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


class Settings(BaseSettings):
    """Where creditrisk keeps its files and which servers it talks to."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Path(".creditrisk")
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    max_reject_rate: float = Field(
        0.05, ge=0, le=1, allow_inf_nan=False, description="a share from 0 to 1"
    )
    horizon_months: int = Field(
        12, ge=1, le=120, description="a whole number of months from 1 to 120"
    )
    model_name: str = "creditrisk-pd"
    dask_address: str | None = Field(
        None, description="a Dask scheduler address such as tcp://10.0.0.5:8786"
    )

    @property
    def book_dir(self) -> Path:
        return self.home / "book"

    @property
    def snapshots_dir(self) -> Path:
        return self.home / "snapshots"

    @property
    def rejects_dir(self) -> Path:
        return self.home / "rejects"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def tracking_uri(self) -> str:
        """MLflow tracking URI: explicit setting, then MLFLOW_TRACKING_URI, then SQLite in home."""
        explicit = self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        return explicit or f"sqlite:///{(self.home / 'mlflow.db').resolve()}"

    @property
    def results_url(self) -> str:
        """Results store URL: CREDITRISK_DATABASE_URL or a SQLite file in home."""
        return self.database_url or f"sqlite:///{(self.home / 'results.db').resolve()}"


def quiet_environment() -> None:
    """Keep Prefect, MLflow and matplotlib local and silent (no telemetry, no display)."""
    for key, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def get_settings() -> Settings:
    """Read settings from the environment; a bad value raises `BadInput` naming its variable."""
    try:
        return Settings()
    except ValidationError as err:
        raise _bad_setting(err) from None


def _bad_setting(err: ValidationError) -> BadInput:
    """The first bad variable as the field, every bad one in the reason, the range as the hint."""
    problems = [(f"{ENV_PREFIX}{e['loc'][0]}".upper(), e) for e in err.errors() if e["loc"]]
    name, first = problems[0]
    reasons = [_setting_problem(first)]
    reasons += [f"also {other}: {_setting_problem(e)}" for other, e in problems[1:]]
    field = Settings.model_fields[first["loc"][0]]
    return BadInput(
        "; ".join(reasons),
        field=name,
        hint=f"set {name}={field.default} (the default) or unset it",
    )


def _setting_problem(error: dict) -> str:
    allowed = Settings.model_fields[error["loc"][0]].description
    return f"{error['input']!r} is not {allowed}" if allowed else error["msg"].lower()
