"""Runtime settings: environment variables with the ``CREDITRISK_`` prefix.

Only the edges (CLI, flows, API) read settings; library functions take paths and URIs as arguments.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

QUIET_ENVIRONMENT = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MPLBACKEND": "Agg",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class Settings(BaseSettings):
    """Where creditrisk keeps its files and which servers it talks to."""

    model_config = SettingsConfigDict(env_prefix="CREDITRISK_", extra="ignore")

    home: Path = Path(".creditrisk")
    database_url: str | None = None
    mlflow_tracking_uri: str | None = None
    max_reject_rate: float = 0.05
    horizon_months: int = 12
    model_name: str = "creditrisk-pd"

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
    """Read settings from the environment and create the working folder."""
    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    return settings
