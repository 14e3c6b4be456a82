"""The main job as a Prefect flow: its steps are tasks and the flows build-features, train,
score, promote and monitor, each its own flow run in the Prefect UI.

Promotion and the scoring it triggers are one unit as users see it: the candidate scores every
date and stages the runs (pending: no reader shows them), then the alias moves, then one
transaction makes the runs current. A job that stops in between leaves pending runs that
`pipelines.flows.guard` settles: published when their version is the champion, else discarded.
"""

from __future__ import annotations

from prefect import flow

from pipelines.failpoints import failpoint
from pipelines.flows.features import build_features_flow
from pipelines.flows.monitor import monitor_flow
from pipelines.flows.promote import promote_flow
from pipelines.flows.score import score_flow
from pipelines.flows.tasks import (
    backtest_task,
    generate_book_task,
    preflight_task,
    publish_task,
    review_promotion_task,
)
from pipelines.flows.train import train_flow
from pipelines.settings import Settings
from pipelines.usecases.main_job import MainJobRequest, MainJobResult
from pipelines.usecases.scoring import DecisionConfig
from pipelines.usecases.training import TrainRequest
from pipelines.usecases.warning_backtest import BacktestRequest


@flow(name="creditrisk-main", log_prints=False)
def main_flow(settings: Settings, request: MainJobRequest, config: DecisionConfig) -> MainJobResult:
    """Generate and validate a book, build snapshots, train and promote, score and decide, then
    backtest the warnings and monitor the champion's runs."""
    preflight_task(settings)
    folder = generate_book_task(request.book, settings.book_dir)
    address = request.dask_address
    built = build_features_flow(
        settings, folder, plan_from=request.book.start, dask_address=address
    )
    book, training, to_score = built.book, built.snapshots["training"], built.snapshots["scoring"]
    train = TrainRequest(
        snapshots=training.path, trained_by=request.trained_by, job_id=request.job_id
    )
    trained = train_flow(train, settings, dask_address=address)
    failpoint("after-training")
    tracked = trained.tracked
    decision = review_promotion_task(
        settings.tracking_uri, tracked.model_name, tracked.version, request.approver, request.gates
    )
    staged = None
    if decision.champion:
        staged = score_flow(
            settings,
            snapshots=to_score.path,
            model_name=tracked.model_name,
            version=decision.champion,
            config=config,
            user=request.trained_by,
            stage_as=request.job_id,
            dask_address=address,
        )
    decision = promote_flow(settings, reviewed=decision)
    failpoint("after-promotion")
    runs = publish_task(staged.staged, staged.request) if staged and staged.staged else []
    backtest = backtest_task(
        BacktestRequest(
            tracked.model_name,
            settings.tracking_uri,
            training.path,
            settings.book_dir,
            version=tracked.version,
        ),
        config,
    )
    monitoring = "nothing was scored, so there is nothing to monitor"
    if runs:
        monitoring = monitor_flow(
            settings, tracked.model_name, user=request.trained_by, job_id=request.job_id
        )
    return MainJobResult(
        book, training.summary, training.n_features, trained, decision, runs, backtest, monitoring
    )
