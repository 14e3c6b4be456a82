"""Registry rules: new versions become `challenger`; `champion` moves only through gated, four-eyes
promotion, and every decision (promotion or refusal) is recorded with who, when and why.

Decisions are MLflow runs in the experiment ``creditrisk-governance`` (one run per decision, tagged
with the model name), so the history survives alias moves and is visible in the MLflow UI.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from models.validation import auc as roc_auc

CHALLENGER = "challenger"
CHAMPION = "champion"
GOVERNANCE_EXPERIMENT = "creditrisk-governance"
TEST_FRAME_ARTIFACT = "validation/oot_test.parquet"
TARGET_TAG = "target"


@dataclass(frozen=True)
class Gates:
    """Validation gates a version must pass before it may become champion."""

    min_auc: float = 0.65
    max_psi: float = 0.25
    allow_red_jeffreys: bool = False
    max_auc_drop: float = 0.0


@dataclass
class Decision:
    """One promotion decision: who decided what, when, and why."""

    model: str
    version: str
    approver: str
    trained_by: str
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    previous_champion: str | None = None
    challenger_auc: float | None = None
    champion_auc: float | None = None
    decided_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def champion(self) -> str | None:
        """The champion version right after this decision."""
        return self.version if self.promoted else self.previous_champion


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path | None = None) -> str:
    """The experiment's id, created (with artifacts under ``artifact_root/name``) if absent."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = (Path(artifact_root).resolve() / name).as_uri() if artifact_root else None
    return client.create_experiment(name, artifact_location=location)


def register_challenger(
    client: MlflowClient, name: str, version: str | int, tags: dict[str, object]
) -> str:
    """Tag a freshly registered version (trained_by, dataset, metrics) and alias it `challenger`."""
    version = str(version)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, _tag_value(value))
    client.set_registered_model_alias(name, CHALLENGER, version)
    return version


NOT_SET = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")  # no such model, or alias


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when the model or the alias is not set; a
    registry that does not answer raises (that is not "not set")."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in NOT_SET:
            return None
        raise


def gate_failures(tags: dict[str, str], gates: Gates) -> list[str]:
    """Reasons the logged validation metrics fail the gates (empty when they pass)."""
    failures = []
    auc, psi = _float(tags.get("auc")), _float(tags.get("psi"))
    red = int(_float(tags.get("jeffreys_red")) or 0)
    if auc is None:
        failures.append("no 'auc' tag on the version: train it with `creditrisk train`")
    elif auc < gates.min_auc:
        failures.append(f"AUC {auc:.4f} below the minimum {gates.min_auc:.4f}")
    if psi is None:
        failures.append("no 'psi' tag on the version: train it with `creditrisk train`")
    elif psi >= gates.max_psi:
        failures.append(f"score PSI {psi:.4f} not below {gates.max_psi:.2f} (population shift)")
    if red and not gates.allow_red_jeffreys:
        grades = tags.get("jeffreys_red_grades", "")
        failures.append(f"{red} grade(s) red in the Jeffreys test: {grades}")
    return failures


def review_promotion(
    client: MlflowClient, name: str, version: str | int, approver: str, gates: Gates | None = None
) -> Decision:
    """Decide whether ``version`` may become champion (gates, champion comparison, four eyes),
    changing nothing: `apply_decision` moves the alias and records the decision."""
    gates = gates or Gates()
    version = str(version)
    mv = client.get_model_version(name, version)
    tags = dict(mv.tags)
    trained_by = tags.get("trained_by", "")
    previous = alias_version(client, name, CHAMPION)
    decision = Decision(name, version, approver, trained_by, False, previous_champion=previous)
    reasons = _four_eyes(approver, trained_by) + gate_failures(tags, gates)
    if previous == version:
        reasons.append(f"version {version} is already the champion")
    elif previous is not None:
        reasons += _champion_comparison(client, name, mv, previous, gates, decision)
    decision.reasons = reasons or [f"gates passed; approved by {approver}"]
    decision.promoted = not reasons
    return decision


def _four_eyes(approver: str, trained_by: str) -> list[str]:
    if not approver.strip():
        return ["an approver name is required"]
    if approver.strip().lower() == trained_by.strip().lower():
        return [f"four-eyes rule: approver {approver!r} trained this version"]
    return []


def _champion_comparison(
    client: MlflowClient, name: str, mv, previous: str, gates: Gates, decision: Decision
) -> list[str]:
    """Reasons the challenger is worse than the champion on its out-of-time test set."""
    try:
        challenger_auc, champion_auc = compare_on_test_frame(client, name, mv, previous)
    except (ValueError, OSError, MlflowException) as exc:
        decision.challenger_auc = decision.champion_auc = float("nan")
        return [f"could not compare with champion v{previous}: {exc}"]
    decision.challenger_auc, decision.champion_auc = challenger_auc, champion_auc
    if challenger_auc < champion_auc - gates.max_auc_drop:
        return [
            f"worse than champion v{previous} on the same out-of-time data: "
            f"AUC {challenger_auc:.4f} < {champion_auc:.4f}"
        ]
    return []


def apply_decision(client: MlflowClient, decision: Decision) -> Decision:
    """Move `champion` for a promotion (and drop `challenger` from it); record it either way."""
    name, version = decision.model, decision.version
    if decision.promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
        if alias_version(client, name, CHALLENGER) == version:
            client.delete_registered_model_alias(name, CHALLENGER)
        client.set_model_version_tag(name, version, "promoted_by", decision.approver)
        client.set_model_version_tag(name, version, "promoted_at", decision.decided_at)
    record_decision(client, decision)
    return decision


def promote(
    client: MlflowClient, name: str, version: str | int, approver: str, gates: Gates | None = None
) -> Decision:
    """Move `champion` to ``version`` when gates, champion comparison and four eyes all pass.

    The decision is recorded either way; read ``Decision.promoted`` and ``Decision.reasons``.
    """
    return apply_decision(client, review_promotion(client, name, version, approver, gates))


def compare_on_test_frame(
    client: MlflowClient, name: str, challenger: object, champion_version: str
) -> tuple[float, float]:
    """AUC of the challenger and the current champion on the challenger's out-of-time test set."""
    target = challenger.tags.get(TARGET_TAG)
    if not challenger.run_id or not target:
        raise ValueError(
            f"version {challenger.version} has no training run or target tag: "
            "register versions through `creditrisk train`"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(challenger.run_id, TEST_FRAME_ARTIFACT, tmp)
        frame = pd.read_parquet(path)
        y = frame[target].to_numpy(dtype=float)
        features = frame.drop(columns=[target])
        aucs = []
        for version in (challenger.version, champion_version):
            scorer = load_scorer(client, name, version, tmp)
            pd_ = scorer.score_frame(features, reasons=False)["pd"]
            aucs.append(roc_auc(y, pd_))
    return aucs[0], aucs[1]


def load_scorer(client: MlflowClient, name: str, version: str, dst: str | None = None):
    """Load a registered version's CreditScorer in this process (through its pyfunc wrapper)."""
    dst = tempfile.mkdtemp(dir=dst)
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}/{version}",
        dst_path=dst,
        tracking_uri=client.tracking_uri,
        registry_uri=getattr(client, "_registry_uri", None),
    )
    return mlflow.pyfunc.load_model(local).unwrap_python_model()


def record_decision(client: MlflowClient, decision: Decision) -> str:
    """Write one decision as a finished run in the governance experiment; returns the run id."""
    experiment_id = ensure_experiment(client, GOVERNANCE_EXPERIMENT)
    verb = "promote" if decision.promoted else "refuse"
    run = client.create_run(
        experiment_id,
        run_name=f"{verb} {decision.model} v{decision.version}",
        tags={
            "model": decision.model,
            "version": decision.version,
            "decision": verb,
            "approver": decision.approver,
            "trained_by": decision.trained_by,
            "decided_at": decision.decided_at,
            "previous_champion": decision.previous_champion or "",
            "champion": decision.champion or "",
            "reasons": "; ".join(decision.reasons)[:4900],
            "mlflow.user": decision.approver,
        },
    )
    client.log_text(run.info.run_id, json.dumps(asdict(decision), indent=2), "decision.json")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def history(client: MlflowClient, name: str) -> pd.DataFrame:
    """Every promotion and refusal for a model, oldest first, with the champion after each."""
    columns = [
        "decided_at",
        "decision",
        "version",
        "approver",
        "trained_by",
        "previous_champion",
        "champion",
        "reasons",
    ]
    experiment = client.get_experiment_by_name(GOVERNANCE_EXPERIMENT)
    if experiment is None:
        return pd.DataFrame(columns=columns)
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=f"tags.model = '{name}'", max_results=10000
    )
    rows = [{c: r.data.tags.get(c, "") for c in columns} for r in runs]
    frame = pd.DataFrame(rows, columns=columns).sort_values("decided_at", kind="stable")
    frame["decided_at"] = pd.to_datetime(frame["decided_at"], utc=True)
    return frame.reset_index(drop=True)


def champion_at(history_frame: pd.DataFrame, when: datetime | str) -> str | None:
    """The champion version at a point in time according to a ``history`` frame."""
    when = pd.Timestamp(when, tz="UTC") if pd.Timestamp(when).tzinfo is None else pd.Timestamp(when)
    before = history_frame[history_frame["decided_at"] <= when]
    if before.empty:
        return None
    return before["champion"].iloc[-1] or None


def default_trainer() -> str:
    """Who trains when no name is given: $USER (or 'unknown')."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "unknown"


def _tag_value(value: object) -> str:
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value)
    return str(value)


def _float(value: str | None) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except ValueError:
        return None
