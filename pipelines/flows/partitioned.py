"""Feature building and batch scoring partitioned by customer on a Dask cluster (prefect-dask).

Each flow runs on `dask_runner(address)`, one Prefect task per customer partition
(`features.partition.partition_of`). What needs the whole book or the whole date is done on the
driver: each as-of date's `BookContext` (broadcast to every task), the snapshot bytes a run
keeps, the stored score history (read here, split by partition) and the warnings' roll-up (green
rows for the whole performing population). The partitions are stacked back in the
single-process order, so the results equal `features.snapshots.build_snapshots` and
`pipelines.usecases.scoring.compute_dates` (tests/pipelines/test_dask.py).

Dask tasks never retry: a failing partition fails its task and the flow, with its own error,
once every partition has finished. A worker lost under a task surfaces as Dask's own error, for
which Prefect may leave the task run Running (prefect#21638): it is marked Crashed here and
raised as `Unavailable`.
"""

from __future__ import annotations

import logging
from functools import partial

import numpy as np
import pandas as pd
from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.context import FlowRunContext
from prefect.futures import wait
from prefect_dask import DaskTaskRunner

from features.build import BookContext, book_context
from features.labels import default_dates, observed_until
from features.partition import partition_of, partition_tables
from features.snapshots import ID, TIME, build_snapshot
from models.registry import load_scorer
from models.scorer import CreditScorer
from models.tracking import connect
from pipelines.decisions.early_warning import evaluate_signals, roll_up
from pipelines.errors import Unavailable, as_typed
from pipelines.store.runs import ScoredDate
from pipelines.store.trace import RunTrace, snapshot_bytes, snapshot_frame
from pipelines.usecases.scoring import (
    HISTORY_COLUMNS,
    DecisionConfig,
    ScoringRequest,
    batch_history,
    check_signature,
    decide_scores,
    defaulted_warnings,
    in_default,
    stored_histories,
)

log = logging.getLogger(__name__)
on_cluster = partial(task, retries=0, cache_policy=NONE, persist_result=False)


class Held:
    """A flow argument that Prefect records as a placeholder at once (its parameter encoder
    would walk every value of a large frame before giving up)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def dask_runner(address: str) -> DaskTaskRunner:
    """prefect-dask's task runner on the existing cluster at ``address`` (it neither starts nor
    stops the cluster)."""
    return DaskTaskRunner(address=address)


def _cluster_threads() -> int:
    """Threads of the running flow's cluster (one partition each by default); `Unavailable`
    when its scheduler does not answer."""
    runner = FlowRunContext.get().task_runner
    try:
        threads = runner.client.nthreads()
    except OSError as exc:
        raise Unavailable(
            f"the Dask scheduler at {runner.address} did not answer ({str(exc)[:200]})",
            field="--dask-address",
            hint="start it (dask scheduler; dask worker ADDRESS), or run without --dask-address",
        ) from exc
    return max(1, sum(threads.values()))


def _mark_crashed(task, index: int, task_run_id, message: str) -> None:
    """Record a task run the cluster lost as Crashed; one whose worker died before its first
    events reached the API is created so (the lost partition stays visible in the UI)."""
    from prefect import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.states import Crashed

    state = Crashed(message=message)
    try:
        with get_client(sync_client=True) as client:
            try:
                client.set_task_run_state(task_run_id, state, force=True)
            except PrefectHTTPStatusError as exc:
                if exc.response.status_code != 404:
                    raise
                client.create_task_run(
                    task, FlowRunContext.get().flow_run.id, f"lost-{task_run_id}",
                    id=task_run_id, name=f"{task.name}-{index}", state=state,
                )  # fmt: skip
    except Exception:  # the error raised next says what happened; this is bookkeeping
        log.warning("could not mark the lost task run %s Crashed", task_run_id, exc_info=True)


def _gather(task, submitted: dict[int, object]) -> dict[int, object]:
    """Every task's result by partition, once all have finished: the first failed task's own
    error, or `Unavailable` for a task the cluster lost (its Prefect run marked Crashed)."""
    wait(list(submitted.values()))
    results = {}
    for index, future in submitted.items():
        dask_future = future.wrapped_future
        if dask_future.status in ("error", "cancelled"):  # Dask's own failure, not the task's
            error = dask_future.exception() if dask_future.status == "error" else "cancelled"
            message = (
                f"the Dask cluster lost the task {task.name}-{index}: "
                f"{type(error).__name__}: {error}"
            )[:400]
            _mark_crashed(task, index, future.task_run_id, message)
            raise Unavailable(message, hint="check the workers' memory and logs, then rerun")
        results[index] = future.result()
    return results


# --- features ------------------------------------------------------------------------------


@on_cluster(name="snapshot-partition", task_run_name="snapshot-partition-{index}")
def snapshot_partition(
    index: int,
    tables: dict[str, pd.DataFrame],
    contexts: list[BookContext],
    horizon_months: int,
    observed: pd.Timestamp,
    with_defaulted: bool,
) -> list[pd.DataFrame]:
    """One partition's snapshot at each context's as-of date: its own default dates, the whole
    book's context and last observed month."""
    dates = default_dates(tables)
    return [
        build_snapshot(tables, c.as_of, horizon_months, c, dates, observed, with_defaulted)
        for c in contexts
    ]


def _positions(customers: pd.DataFrame) -> pd.Series:
    """Each customer's row in the customers table (the single-process row order)."""
    ids = customers[ID].astype("str")
    first = ~ids.duplicated().to_numpy()
    return pd.Series(np.arange(len(ids))[first], index=ids.to_numpy()[first])


def _stack_date(frames: list[pd.DataFrame], positions: pd.Series) -> pd.DataFrame:
    """One date's partitions in the order of `build_snapshot`: the performing customers, then
    those in default, each in customers-table order."""
    kept = [f for f in frames if len(f)] or frames[:1]
    frame = pd.concat(kept, ignore_index=True)
    defaulted = in_default(frame)
    position = positions.reindex(frame[ID].astype("str").to_numpy()).to_numpy()
    return frame.iloc[np.lexsort((position, defaulted))].reset_index(drop=True)


@flow(name="snapshots-partitioned", validate_parameters=False)
def snapshots_flow(
    book: Held,
    as_of: list[str],
    horizon_months: int,
    with_defaulted: bool,
    n_partitions: int | None,
) -> pd.DataFrame:
    """`build_snapshots` with one task per customer partition of ``book`` on the cluster."""
    tables = book.value
    dates = sorted(pd.Timestamp(d) for d in as_of)
    if not dates:
        raise ValueError("no as-of dates given: pass at least one")
    threads = _cluster_threads()  # connects first: `Unavailable` when it cannot
    k = n_partitions or threads
    whole = default_dates(tables)
    contexts = [book_context(tables, d, whole) for d in dates]
    parts = [p for p in partition_tables(tables, k) if len(p["customers"])]
    parts = parts or partition_tables(tables, 1)
    until = observed_until(tables)
    submitted = {
        i: snapshot_partition.submit(i, part, contexts, horizon_months, until, with_defaulted)
        for i, part in enumerate(parts)
    }
    built = list(_gather(snapshot_partition, submitted).values())
    positions = _positions(tables["customers"])
    by_date = [_stack_date([b[i] for b in built], positions) for i in range(len(dates))]
    return pd.concat(by_date, ignore_index=True)


def build_snapshots_partitioned(
    tables: dict[str, pd.DataFrame],
    dates,
    horizon: int = 12,
    *,
    address: str,
    with_defaulted: bool = False,
    n_partitions: int | None = None,
) -> pd.DataFrame:
    """`features.snapshots.build_snapshots` (the same frame: rows, order, dtypes) built on the
    Dask cluster at ``address``, one Prefect task per customer partition (``n_partitions``,
    default one per worker thread)."""
    run = snapshots_flow.with_options(task_runner=dask_runner(address))
    as_of = [pd.Timestamp(d).isoformat() for d in dates]
    return run(Held(tables), as_of, horizon, with_defaulted, n_partitions)


# --- scoring -------------------------------------------------------------------------------


@on_cluster(name="score-partition", task_run_name="score-partition-{index}")
def score_partition(
    index: int,
    dates: list[pd.Timestamp],
    snapshots: list[pd.DataFrame | None],
    stored: list[pd.DataFrame],
    scorer: CreditScorer,
    config: DecisionConfig,
) -> list[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None]:
    """One partition's customers at each date in order (as `scoring.decide_dates`): scored,
    decisions and the signals of the performing ones against their stored score history with
    this batch's earlier dates in place; None where the partition has nobody at a date."""
    done: list[ScoredDate] = []
    out = []
    for as_of, snapshot, history in zip(dates, snapshots, stored, strict=True):
        if snapshot is None:
            done.append(ScoredDate(as_of.date(), pd.DataFrame(columns=HISTORY_COLUMNS)))
            out.append(None)
            continue
        scored, decisions = decide_scores(snapshot, scorer, config.policy)
        performing = scored[~in_default(scored)]
        signals = evaluate_signals(
            performing, batch_history(history, done, as_of), config.rules, config.scale
        )
        done.append(ScoredDate(as_of.date(), scored))
        out.append((scored, decisions, signals))
    return out


def _restack(frames: list[pd.DataFrame], rows: list[np.ndarray]) -> pd.DataFrame:
    """Partition frames back in the rows' original order."""
    order = np.argsort(np.concatenate(rows), kind="stable")
    return pd.concat(frames, ignore_index=True).iloc[order].reset_index(drop=True)


def _date_of(
    as_of: pd.Timestamp,
    data: bytes,
    n_rows: int,
    pieces: list[tuple[np.ndarray, tuple]],
    config: DecisionConfig,
) -> ScoredDate:
    """One date from its partitions: scored and decisions in snapshot order, the warnings rolled
    up over the whole performing population (as `scoring.raise_warnings`), the run's trace."""
    rows = [r for r, _ in pieces]
    scored = _restack([p[0] for _, p in pieces], rows)
    decisions = _restack([p[1] for _, p in pieces], rows)
    fired = [p[2] for _, p in pieces]
    signals = pd.concat([s for s in fired if not s.empty] or fired[:1], ignore_index=True)
    defaulted = in_default(scored)
    warnings = roll_up(signals, config.rules, population=scored[~defaulted])
    if defaulted.any():
        warnings = pd.concat([warnings, defaulted_warnings(scored[defaulted])], ignore_index=True)
    trace = RunTrace(config.texts, data, n_rows)
    return ScoredDate(as_of.date(), scored, decisions, warnings, trace)


@flow(name="score-partitioned", validate_parameters=False)
def scoring_flow(work: Held, request: ScoringRequest, n_partitions: int | None) -> list[ScoredDate]:
    """`compute_dates` with one task per customer partition of the snapshots on the cluster."""
    with as_typed():
        client = connect(request.tracking_uri)
        scorer = load_scorer(client, request.model_name, request.model_version)
    check_signature(scorer, work.value, request)
    threads = _cluster_threads()  # connects first: `Unavailable` when it cannot
    k = n_partitions or threads
    dates, traces, rows = [], [], []
    parts: list[list[pd.DataFrame | None]] = [[] for _ in range(k)]
    stored: list[list[pd.DataFrame]] = [[] for _ in range(k)]
    histories = stored_histories(
        request, [pd.Timestamp(d) for d in sorted(work.value[TIME].unique())]
    )
    for as_of, snapshot in work.value.groupby(TIME, sort=True):
        as_of = pd.Timestamp(as_of)
        data = snapshot_bytes(snapshot)
        frame = snapshot_frame(data)  # scored as read back from the bytes the run keeps
        history = histories[as_of]
        group = partition_of(frame[ID], k)
        by_customer = partition_of(history[ID], k)
        at = [np.flatnonzero(group == p) for p in range(k)]
        for p in range(k):
            piece = frame.iloc[at[p]].reset_index(drop=True) if len(at[p]) else None
            parts[p].append(piece)
            stored[p].append(history[by_customer == p])
        dates.append(as_of)
        traces.append((data, len(frame)))
        rows.append(at)
    busy = [p for p in range(k) if any(s is not None for s in parts[p])]
    submitted = {
        p: score_partition.submit(p, dates, parts[p], stored[p], scorer, request.config)
        for p in busy
    }
    results = _gather(score_partition, submitted)
    out = []
    for i, as_of in enumerate(dates):
        pieces = [(rows[i][p], results[p][i]) for p in busy if results[p][i] is not None]
        out.append(_date_of(as_of, *traces[i], pieces, request.config))
    return out


def compute_dates_partitioned(
    snapshots: pd.DataFrame,
    request: ScoringRequest,
    *,
    address: str,
    n_partitions: int | None = None,
) -> list[ScoredDate]:
    """`pipelines.usecases.scoring.compute_dates` (the same dates: scored, decisions, warnings,
    trace) computed on the Dask cluster at ``address``, one Prefect task per customer partition
    (``n_partitions``, default one per worker thread); nothing is stored."""
    run = scoring_flow.with_options(task_runner=dask_runner(address))
    return run(Held(snapshots), request, n_partitions)
