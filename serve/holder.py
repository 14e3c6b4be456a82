"""The champion the service scores with: loaded from the MLflow registry, followed when its alias
moves, and kept as a local copy so the service goes on scoring when MLflow is away.

The copy is the scorer pickled with its card, written atomically under ``cache_dir`` as
``<model>-champion.pkl``; at start the registry is asked first, the copy is the fallback.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.registry import CHAMPION, GOVERNANCE_EXPERIMENT, alias_version, load_scorer
from models.scorer import CreditScorer
from models.tracking import connect
from pipelines.usecases.online import BookReference, OnlineScorer
from pipelines.usecases.scoring import DecisionConfig

log = logging.getLogger("creditrisk.serve")
CARD_METRICS = ("auc", "gini", "ks", "ece", "psi")


@dataclass(frozen=True)
class Loaded:
    """A champion ready to score: the online scorer and its card."""

    online: OnlineScorer
    card: dict[str, Any]


@dataclass
class Status:
    """What `/ready` says: ready, degraded (scoring from the local copy, or MLflow not
    answering) or unavailable (nothing to score with), and why."""

    state: str = "unavailable"
    reasons: list[str] = field(default_factory=list)
    checked_at: str | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def model_card(client, name: str, version: str, scorer: CreditScorer) -> dict[str, Any]:
    """Version, who trained it and when, who approved it and when, headline figures, features."""
    mv = client.get_model_version(name, version)
    tags = dict(mv.tags)
    approved_by = approved_at = None
    experiment = client.get_experiment_by_name(GOVERNANCE_EXPERIMENT)
    if experiment is not None:
        runs = client.search_runs(
            [experiment.experiment_id],
            filter_string=f"tags.model = '{name}' and tags.version = '{version}' "
            "and tags.decision = 'promote'",
            max_results=1,
            order_by=["attributes.start_time DESC"],
        )
        if runs:
            approved_by = runs[0].data.tags.get("approver")
            approved_at = runs[0].data.tags.get("decided_at")
    metrics = {}
    for key in CARD_METRICS:
        try:
            metrics[key] = float(tags[key])
        except (KeyError, ValueError):
            continue
    created = dt.datetime.fromtimestamp(mv.creation_timestamp / 1000, dt.UTC)
    booster = scorer._build().get("booster")
    return {
        "name": name,
        "version": str(version),
        "trained_by": tags.get("trained_by"),
        "trained_at": created.isoformat(timespec="seconds"),
        "approved_by": approved_by,
        "approved_at": approved_at,
        "metrics": metrics,
        "features": scorer.input_columns,
        "trees": None if booster is None else int(booster.num_trees()),
    }


class ModelHolder:
    """Holds the current champion; `check` follows the registry alias, `start` falls back to
    the local copy. Swapping is one reference assignment: a request sees one model throughout."""

    def __init__(
        self,
        tracking_uri: str,
        model_name: str,
        cache_dir: Path,
        build: Callable[[CreditScorer, str], OnlineScorer],
    ):
        self.tracking_uri, self.model_name = tracking_uri, model_name
        self.cache_dir = Path(cache_dir)
        self._build = build
        self.loaded: Loaded | None = None
        self.status = Status()
        self._lock = threading.Lock()

    @property
    def copy_path(self) -> Path:
        return self.cache_dir / f"{self.model_name}-champion.pkl"

    def start(self) -> None:
        """Load the champion from the registry, else from the local copy."""
        if not self.check():
            self._load_copy()

    def check(self, force: bool = False) -> bool:
        """Ask the registry which version is champion and load it if it is not the one held;
        False (and degraded, or unavailable with nothing held) when the registry does not answer."""
        with self._lock:
            try:
                client = connect(self.tracking_uri)
                version = alias_version(client, self.model_name, CHAMPION)
                if version is None:
                    self._set(
                        "unavailable" if self.loaded is None else "degraded",
                        f"model {self.model_name!r} has no champion in the registry",
                    )
                    return False
                held = self.loaded.card["version"] if self.loaded else None
                if force or version != held:
                    self.cache_dir.mkdir(parents=True, exist_ok=True)
                    scorer = load_scorer(client, self.model_name, version, str(self.cache_dir))
                    card = model_card(client, self.model_name, version, scorer)
                    self._hold(scorer, card | {"loaded_from": "registry"})
                    self._write_copy(scorer, card)
                    log.info("loaded %s version %s from the registry", self.model_name, version)
                self._set("ready")
                return True
            except Exception as exc:  # MLflow away, or a broken version: keep what is held
                reason = (
                    f"the MLflow registry at {self.tracking_uri} did not answer: "
                    f"{type(exc).__name__}"
                )
                log.warning(reason)
                self._set("degraded" if self.loaded else "unavailable", reason)
                return False

    def _hold(self, scorer: CreditScorer, card: dict[str, Any]) -> None:
        self.loaded = Loaded(self._build(scorer, card["version"]), card)

    def _set(self, state: str, *reasons: str) -> None:
        if state == "ready" and self.loaded and self.loaded.card.get("loaded_from") == "copy":
            state, reasons = "degraded", ("scoring from the local copy of the champion",)
        self.status = Status(state, list(reasons), _now())

    def _write_copy(self, scorer: CreditScorer, card: dict[str, Any]) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.copy_path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as handle:
            pickle.dump({"scorer": scorer, "card": card}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self.copy_path)

    def _load_copy(self) -> None:
        if not self.copy_path.exists():
            return
        with self.copy_path.open("rb") as handle:
            saved = pickle.load(handle)
        self._hold(saved["scorer"], saved["card"] | {"loaded_from": "copy"})
        reasons = [*self.status.reasons, f"scoring from the local copy {self.copy_path}"]
        self.status = Status("degraded", reasons, _now())
        log.warning(
            "scoring from the local copy of %s version %s",
            self.model_name,
            saved["card"]["version"],
        )


def online_builder(
    config: DecisionConfig, book: BookReference, model_name: str, horizon_months: int
) -> Callable[[CreditScorer, str], OnlineScorer]:
    """Build the online scorer of a loaded version (explainer and contexts once)."""

    def build(scorer: CreditScorer, version: str) -> OnlineScorer:
        return OnlineScorer(scorer, config, book, model_name, version, horizon_months)

    return build
