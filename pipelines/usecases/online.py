"""Use case: score customers online from their raw data, by the batch code, one as-of date.

`OnlineScorer` is built once (the champion scorer, the decision configuration and what the
features need of the whole book: the customers, for the industry default rates and category
levels at each as-of date, and the default dates). `decide` takes the raw tables of a few
customers in the data contract's columns, validates them as a book is validated, builds their
snapshot with `features.snapshots.build_snapshot` and decides it by the steps of
`scoring.decide_date`: the same code, in the same order, as a batch run of that date (without the
Parquet copy a stored run keeps), so the online score of a customer
equals the stored batch score of the same date (given the same score history).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.build import ID, BookContext, book_context
from features.labels import default_dates, derived_default_dates
from features.schemas import SCHEMAS, TABLES, ContractError, validate_tables
from features.snapshots import DEFAULTED_ON, LABEL, TIME, build_snapshot
from models.scorer import NUMERIC, TEXT, CreditScorer
from pipelines.errors import BadInput
from pipelines.usecases.scoring import DecisionConfig, decide_scores, raise_warnings

CONTEXTS_KEPT = 64
FAMILY_TABLES = ("financial_statements", "events")  # a family applies when its table is given


class RecordsRejected(BadInput):
    """Rows of the raw data break the data contract; ``problems`` lists each (table, key,
    column, reason), the way a book's rejects are listed."""

    def __init__(self, problems: list[dict[str, str]]):
        self.problems = problems
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(
            f"{first['reason']}{more}",
            source=first["table"],
            key=first["key"] or None,
            field=first["column"] or None,
            hint="correct the value; the data contract is in features/schemas.py",
        )


@dataclass(frozen=True)
class BookReference:
    """What online features need of the whole book: its customers (industry default rates and
    category levels at each as-of date), its default dates, and which tables it has."""

    customers: pd.DataFrame
    dates: pd.Series
    tables: frozenset[str]

    @classmethod
    def of(cls, tables: dict[str, pd.DataFrame]) -> BookReference:
        """From a validated book (`usecases.book.validate_book(...).tables`)."""
        present = frozenset(name for name, frame in tables.items() if frame is not None)
        return cls(tables["customers"], default_dates(tables), present)

    def context(self, as_of: pd.Timestamp) -> BookContext:
        return book_context({"customers": self.customers}, as_of, self.dates)


@dataclass(frozen=True)
class CustomerDecision:
    """One customer's online decision: PD, score, grade, reasons, policy and warning."""

    customer_id: str
    as_of: pd.Timestamp
    pd: float
    score: int
    grade: str
    reasons: list[dict[str, Any]]
    policy: dict[str, Any]
    warning: dict[str, Any]
    in_default_since: str | None


class OnlineScorer:
    """The champion's scorer with everything a request needs, built once; thread-safe."""

    def __init__(
        self,
        scorer: CreditScorer,
        config: DecisionConfig,
        book: BookReference,
        model_name: str,
        model_version: str,
        horizon_months: int = 12,
    ):
        self.scorer, self.config, self.book = scorer, config, book
        self.model_name, self.model_version = model_name, model_version
        self.horizon_months = horizon_months
        self._contexts: OrderedDict[pd.Timestamp, BookContext] = OrderedDict()
        self._lock = threading.Lock()
        scorer._build()  # booster and explainer now, not on the first request

    def context(self, as_of: pd.Timestamp) -> BookContext:
        """The book's context at ``as_of``, computed once and kept (the latest `CONTEXTS_KEPT`)."""
        with self._lock:
            if as_of in self._contexts:
                self._contexts.move_to_end(as_of)
                return self._contexts[as_of]
        context = self.book.context(as_of)
        with self._lock:
            self._contexts[as_of] = context
            while len(self._contexts) > CONTEXTS_KEPT:
                self._contexts.popitem(last=False)
        return context

    def tables(
        self, raw: dict[str, pd.DataFrame], checked: bool = False
    ) -> dict[str, pd.DataFrame]:
        """The raw tables validated by the data contract, with the book's tables all present
        (empty where the customers have no rows), so the same feature families apply.

        ``checked``: the caller already enforced every rule of the contract on these rows and
        typed them as it does (the API's strict request models do): only the tables are
        completed."""
        wanted = [name for name in TABLES if name in self.book.tables or name in raw]
        given = {name: raw.get(name) for name in wanted}
        given = {name: contract_frame(name, []) if f is None else f for name, f in given.items()}
        if checked:
            return given
        try:
            result = validate_tables(given, max_reject_rate=1.0)
        except ContractError as exc:
            raise BadInput(str(exc), source="request") from exc
        if not result.rejects.empty:
            raise RecordsRejected(result.rejects.astype(str).to_dict("records"))
        return result.accepted

    def snapshot(self, tables: dict[str, pd.DataFrame], as_of: pd.Timestamp) -> pd.DataFrame:
        """The customers' scoring snapshot at ``as_of`` (performing, then those in default)."""
        dates = self._dates(tables)
        context = self.context(as_of)
        snapshot = build_snapshot(
            tables, as_of, self.horizon_months, context, dates, observed=as_of, with_defaulted=True
        )
        missing = sorted(set(tables["customers"][ID].astype(str)) - set(snapshot[ID]))
        if missing:
            onboarded = tables["customers"].set_index(ID)["onboarded_on"]
            first = missing[0]
            raise BadInput(
                f"onboarded on {pd.Timestamp(onboarded.loc[first]).date()}, not before the as-of "
                f"date {as_of.date()}: there is nothing to score yet",
                source="customers",
                key=f"customer_id={first}",
                field="onboarded_on",
                hint="score at an as-of date after the customer was onboarded",
            )
        return snapshot.drop(columns=[LABEL])

    def _dates(self, tables: dict[str, pd.DataFrame]) -> pd.Series:
        if "defaults" in self.book.tables:
            return default_dates(tables)
        dates = derived_default_dates(tables["repayments"])
        dates.index = dates.index.astype(str)
        return dates

    def decide(
        self,
        raw: dict[str, pd.DataFrame],
        as_of: pd.Timestamp | str,
        history: pd.DataFrame,
        checked: bool = False,
    ) -> list[CustomerDecision]:
        """Validate, build features, score and decide the customers of ``raw`` at ``as_of``,
        warned against their stored ``history`` (customer_id, as_of, pd, grade); ``checked``
        as in `tables`."""
        as_of = pd.Timestamp(as_of)
        snapshot = self.snapshot(self.tables(raw, checked), as_of)
        return self.decide_snapshot(snapshot, history)

    def feature_rows(self, rows: list[dict[str, Any]], as_of: pd.Timestamp) -> pd.DataFrame:
        """A snapshot from ready feature rows (customer_id and the model's input columns by
        name; absent ones missing): numbers as floats, categories as text. Unknown names and
        values of the wrong kind are `BadInput` naming the row and feature."""
        kinds = self.scorer.signature
        known = {c for c, kind in kinds.items() if kind in (NUMERIC, TEXT)}
        text = {c for c, kind in kinds.items() if kind == TEXT}
        for i, row in enumerate(rows):
            for name, value in row.items():
                if name == ID:
                    continue
                where = {"source": "features", "key": str(i), "field": name}
                if name not in known:
                    raise BadInput("not an input of the model", **where,
                                   hint="GET /v1/model lists the features")  # fmt: skip
                if value is not None and (name in text) != isinstance(value, str):
                    kind = "text" if name in text else "a number"
                    raise BadInput(f"must be {kind} or null", **where)
        columns = [c for c, kind in kinds.items() if kind in (NUMERIC, TEXT)]
        frame = pd.DataFrame(rows).reindex(columns=[ID, *columns])
        numeric = [c for c in columns if c not in text]
        frame[numeric] = frame[numeric].astype("float64")
        for column in text:
            frame[column] = frame[column].astype("str").where(frame[column].notna(), None)
        frame[ID] = frame[ID].astype("str")
        frame.insert(1, TIME, pd.Series(as_of, index=frame.index, dtype="datetime64[ns]"))
        frame[DEFAULTED_ON] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns]")
        return frame

    def decide_snapshot(
        self, snapshot: pd.DataFrame, history: pd.DataFrame
    ) -> list[CustomerDecision]:
        """Decide a scoring snapshot of one as-of date by the batch code (`decide_date`'s steps)."""
        as_of = pd.Timestamp(snapshot[TIME].iloc[0])
        # as `decide_date` does, without the Parquet round trip that only a stored run needs
        scored, decisions = decide_scores(snapshot, self.scorer, self.config.policy)
        policy = decisions.set_index("customer_id")
        warnings = raise_warnings(scored, history, self.config).set_index("customer_id")
        out = []
        for i, customer in enumerate(scored[ID].tolist()):
            since = scored[DEFAULTED_ON].iloc[i] if DEFAULTED_ON in scored else None
            out.append(
                CustomerDecision(
                    customer_id=customer,
                    as_of=as_of,
                    pd=float(scored["pd"].iloc[i]),
                    score=int(scored["score"].iloc[i]),
                    grade=str(scored["grade"].iloc[i]),
                    reasons=json.loads(scored["reasons"].iloc[i]),
                    policy=policy_fields(policy.loc[customer]),
                    warning={
                        "level": str(warnings.at[customer, "level"]),
                        **warning_fields(warnings.loc[customer]),
                    },
                    in_default_since=None if pd.isna(since) else f"{pd.Timestamp(since).date()}",
                )
            )
        return out


def contract_frame(name: str, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows of table ``name`` typed as the data contract types them (dates, numbers; text as
    Python strings or None), in the contract's columns."""
    columns = SCHEMAS[name].columns
    frame = pd.DataFrame(rows, columns=list(columns))
    for column, spec in columns.items():
        kind = str(spec.dtype)
        if kind.startswith("datetime"):
            frame[column] = pd.to_datetime(frame[column]).astype("datetime64[ns]")
        elif kind in ("float64", "int64"):
            frame[column] = frame[column].astype(kind)
        else:
            frame[column] = frame[column].astype(object).where(frame[column].notna(), None)
    return frame


def policy_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A policy decision row (decided now or stored) as JSON: limit, term, conditions, approval
    level, the rule that bound and the inputs it read."""
    inputs = row.get("inputs")
    return {
        "recommended_limit": float(row["recommended_limit"]),
        "term_days": int(row["term_days"]),
        "conditions": str(row["conditions"]),
        "approval_level": str(row["approval_level"]),
        "binding_rule": str(row["binding_rule"]),
        "inputs": json.loads(inputs) if isinstance(inputs, str) and inputs else {},
    }


def warning_fields(row: Mapping[str, Any]) -> dict[str, Any]:
    """A warning row's signals (comma-separated text), evidence and measures (JSON text) as
    JSON: a list, an object and a list."""
    evidence, measures = row.get("evidence"), row.get("measures")
    return {
        "signals": [s for s in str(row.get("signals") or "").split(",") if s],
        "evidence": json.loads(evidence) if isinstance(evidence, str) and evidence else {},
        "measures": json.loads(measures) if isinstance(measures, str) and measures else [],
    }
