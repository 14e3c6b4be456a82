"""Shared test setup: a quiet, offline environment and one Prefect test harness per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.settings import quiet_environment

quiet_environment()
for _key, _value in {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    # Two test workers each run LightGBM's OpenMP threads on 2 cores: spinning threads made the
    # suite 2.4 times slower (205 s against 86 s). Waiting threads sleep instead (see Makefile).
    "OMP_WAIT_POLICY": "PASSIVE",
}.items():
    os.environ.setdefault(_key, _value)

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real public credit datasets beside the project; skip where they are absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"real datasets not found at {DATASETS} (they live beside the project)")
    return DATASETS


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API for the whole session (starting one costs several seconds)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


CLI = Path(sys.executable).with_name("creditrisk")


def run_cli(*args: str, home: Path, env: dict | None = None, timeout: float = 600):
    """The real `creditrisk` command in a subprocess, under its own CREDITRISK_HOME.

    ``timeout`` only guards against a hang; tests never assert durations.
    """
    environment = {**os.environ, "CREDITRISK_HOME": str(home), "COLUMNS": "200"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    environment.pop("CREDITRISK_DATABASE_URL", None)
    environment.update(env or {})
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=home.parent,
        timeout=timeout,
        check=False,
    )


def assert_clean_error(result, exit_code: int, *fragments: str) -> str:
    """The command failed with ``exit_code`` and one readable error line holding ``fragments``."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == exit_code, (result.returncode, output)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture
def cli(tmp_path):
    """`cli(*args, env=...)` runs the real command with CREDITRISK_HOME under tmp_path."""
    home = tmp_path / "home"

    def run(*args: str, env: dict | None = None, timeout: float = 600):
        return run_cli(*args, home=home, env=env, timeout=timeout)

    run.home = home
    return run
