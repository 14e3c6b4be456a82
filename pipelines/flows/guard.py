"""One main job at a time per working folder, and nothing left behind by one that stopped.

`job(settings)` takes a lock file in CREDITRISK_HOME with the job's id and process id, and
exports the id as CREDITRISK_JOB_ID so that every child process (the ephemeral Prefect server,
the figure drawer) carries it. Children still carrying the id are ended when the command exits.
A job that fails or is interrupted marks its MLflow runs still RUNNING as KILLED and settles
its own pending scoring runs; after a SIGKILL the next job finds the stale lock and ends what the
killed one left: its processes, its MLflow runs still RUNNING (marked KILLED), its Prefect flow
runs not in a final state (marked Crashed) and its pending runs (published if their version
became champion, else discarded).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from pipelines.errors import Conflict
from pipelines.settings import Settings
from pipelines.usecases.preflight import check_writable
from pipelines.usecases.scoring import Settled, settle_job
from pipelines.usecases.training import JOB_TAG

log = logging.getLogger(__name__)

JOB_VARIABLE = "CREDITRISK_JOB_ID"
LOCK_NAME = "job.lock"
PROC = Path("/proc")


@dataclass(frozen=True)
class JobLock:
    """Who holds the working folder: the job id, its process and when it started."""

    job_id: str
    pid: int
    started_at: str


@dataclass
class Recovered:
    """What was ended of a killed job."""

    job_id: str
    processes: list[int] = field(default_factory=list)
    mlflow_runs: list[str] = field(default_factory=list)
    flow_runs: list[str] = field(default_factory=list)
    settled: Settled = field(default_factory=lambda: Settled([], []))

    @property
    def anything(self) -> bool:
        return bool(
            self.processes
            or self.mlflow_runs
            or self.flow_runs
            or self.settled.published
            or self.settled.discarded
        )


def read_lock(path: Path) -> JobLock | None:
    """The lock in ``path``, or None when there is none (or it is unreadable)."""
    try:
        return JobLock(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        state = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def processes_of(job_id: str) -> list[int]:
    """Processes other than this one whose environment carries ``job_id``."""
    marker = f"{JOB_VARIABLE}={job_id}".encode()
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return sorted(found)


def end_processes(pids: list[int], grace: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL what is still alive after ``grace`` seconds; returns those ended."""
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if pid_alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids


def end_mlflow_runs(tracking_uri: str, job_id: str) -> list[str]:
    """Mark the job's MLflow runs still RUNNING as KILLED."""
    from models.tracking import connect

    client = connect(tracking_uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.`{JOB_TAG}` = '{job_id}' and attributes.status = 'RUNNING'",
    )
    for run in runs:
        client.set_terminated(run.info.run_id, status="KILLED")
    return [run.info.run_id for run in runs]


def end_flow_runs(job_id: str) -> list[str]:
    """Mark the job's Prefect flow runs that are not in a final state as Crashed."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    open_states = [StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED, StateType.PAUSED]
    flow_filter = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[job_tag(job_id)]),
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=open_states)),
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=flow_filter)
        for run in runs:
            message = f"the command running job {job_id} was killed; ended by the next job"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
    return [str(run.id) for run in runs]


def job_tag(job_id: str) -> str:
    """The Prefect tag of a job's flow runs."""
    return f"job:{job_id}"


def recover(stale: JobLock, settings: Settings) -> Recovered:
    """End what a killed job left behind: processes, MLflow and Prefect runs, pending runs."""
    found = Recovered(stale.job_id)
    found.processes = end_processes(processes_of(stale.job_id))
    steps = (
        ("mlflow_runs", lambda: end_mlflow_runs(settings.tracking_uri, stale.job_id)),
        ("flow_runs", lambda: end_flow_runs(stale.job_id)),
        ("settled", lambda: settle(settings, stale.job_id)),
    )
    for name, step in steps:
        try:
            setattr(found, name, step())
        except Exception as exc:  # a system away: the preflight will say which
            log.warning("could not end the %s of job %s: %s", name, stale.job_id, exc)
    return found


def settle(settings: Settings, job_id: str) -> Settled:
    """Publish or discard the job's pending scoring runs (see `usecases.scoring.settle_job`)."""
    user = f"creditrisk (settling job {job_id})"
    return settle_job(settings.results_url, settings.tracking_uri, job_id, user)


def _acquire(path: Path) -> tuple[JobLock, JobLock | None]:
    """Take the lock; the stale lock of a dead job is returned for recovery."""
    held = read_lock(path)
    if held is not None and held.pid != os.getpid() and pid_alive(held.pid):
        raise Conflict(
            f"another main job (process {held.pid}, job {held.job_id}) has been running on this "
            f"folder since {held.started_at}",
            source=str(path.parent),
            hint="wait for it to finish, or stop it; a killed job's lock is cleared by the next",
        )
    mine = JobLock(uuid.uuid4().hex[:12], os.getpid(), datetime.now(UTC).isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(asdict(mine)))
    os.replace(tmp, path)
    return mine, held


@contextmanager
def job(settings: Settings) -> Iterator[tuple[str, Recovered | None]]:
    """Hold the working folder for one job; yields its id and what was recovered of a killed
    one, if anything."""
    path = settings.home / LOCK_NAME
    check_writable(settings.home)
    mine, stale = _acquire(path)
    previous = os.environ.get(JOB_VARIABLE)
    os.environ[JOB_VARIABLE] = mine.job_id  # first: recovery may start Prefect's server
    recovered = recover(stale, settings) if stale is not None else None
    # Registered before Prefect starts its server, so it runs after Prefect's own shutdown.
    atexit.register(_end_leftovers, mine.job_id)
    try:
        yield mine.job_id, recovered
    except BaseException:
        for step in (
            lambda: end_mlflow_runs(settings.tracking_uri, mine.job_id),
            lambda: settle(settings, mine.job_id),
        ):
            with suppress(Exception):
                step()
        raise
    finally:
        if previous is None:
            os.environ.pop(JOB_VARIABLE, None)
        else:
            os.environ[JOB_VARIABLE] = previous
        if (held := read_lock(path)) is not None and held.job_id == mine.job_id:
            path.unlink(missing_ok=True)


def _end_leftovers(job_id: str) -> None:
    """At exit: end the job's child processes that did not stop on their own."""
    left = processes_of(job_id)
    if left:
        log.info("ending %d leftover process(es) of job %s", len(left), job_id)
        end_processes(left)
