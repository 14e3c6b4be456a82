"""Use case: score customers online from their raw data, by the batch code, one as-of date.

`OnlineScorer` is built once (the champion scorer, the decision configuration and what the
features need of the whole book: the customers, for the industry default rates and category
levels at each as-of date, and the default dates). Two ways in, one result:

- `decide_one` takes one customer's raw data as column arrays (`features.single.CustomerRecords`)
  and runs the one-customer kernels the batch code is built on: `features.single.feature_row`,
  `CreditScorer.score_row`, `policy.decide_row` and `early_warning.warning_row` (numpy and plain
  Python: a request costs about a millisecond, not the tens a one-row pandas frame costs). A
  customer in default takes the batch path below (PD 1, grade D, handed to collections).
- `decide` takes the raw tables of a few customers in the data contract's columns, validates them
  as a book is validated, builds their snapshot with `features.snapshots.build_snapshot` and
  decides it by the steps of `scoring.decide_date` (without the Parquet copy a stored run keeps).

Either way the online score of a customer equals the stored batch score of the same date (given
the same score history): the parity tests hold both to it.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.build import ID, BookContext, book_context
from features.labels import default_dates, derived_default_dates
from features.schemas import SCHEMAS, TABLES, ContractError, validate_tables
from features.single import CustomerRecords, default_date, feature_row
from features.snapshots import DEFAULTED_ON, LABEL, TIME, build_snapshot
from models.scorer import NUMERIC, TEXT, CreditScorer, RowScore
from pipelines.decisions.early_warning import warning_row
from pipelines.decisions.policy import decide_row
from pipelines.errors import BadInput
from pipelines.usecases.scoring import DecisionConfig, decide_scores, raise_warnings

CONTEXTS_KEPT = 64
CHILD_TABLES = tuple(name for name in TABLES if name != "customers")
History = list[tuple[Any, float, str]]  # one customer's stored (as_of, pd, grade), oldest first


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
        # a model logged before `score_row` runs the code it was logged with: it scores by frame
        self._score_row = getattr(scorer, "score_row", None) or self._score_by_frame
        self._score_row({})  # the row kernels now too

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
            raise _not_yet(missing[0], onboarded.loc[missing[0]], as_of)
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

    def decide_one(
        self, records: CustomerRecords, as_of: pd.Timestamp, history: History
    ) -> CustomerDecision:
        """One customer at ``as_of`` by the one-customer kernels, warned against its stored
        ``history``; the records already hold to the contract (as `tables` ``checked`` says)."""
        customer_id = str(records.customer[ID])
        onboarded = records.customer["onboarded_on"]
        if not (np.isnat(onboarded) or onboarded < np.datetime64(as_of, "D")):
            raise _not_yet(customer_id, onboarded, as_of)
        if default_date(records) <= np.datetime64(as_of, "D"):  # in default: the batch path
            tables = records_tables(records)
            return self.decide(tables, as_of, history_frame(customer_id, history), True)[0]
        values = feature_row(records, as_of, self.context(as_of))
        return self._decide_values(customer_id, as_of, values, history)

    def decide_features(
        self, customer_id: str, features: Mapping[str, Any], as_of: pd.Timestamp, history: History
    ) -> CustomerDecision:
        """One performing customer from a ready feature row (the model's input columns by
        name; absent ones missing), as `decide_one` decides it."""
        return self._decide_values(customer_id, as_of, self.feature_values(features), history)

    def feature_values(self, features: Mapping[str, Any]) -> dict[str, Any]:
        """The model's inputs from a feature row: numbers as floats (NaN where null), categories
        as text or None. Unknown names and values of the wrong kind are `BadInput` naming the
        feature."""
        kinds = self.scorer.signature
        out: dict[str, Any] = {c: None for c, kind in kinds.items() if kind == TEXT}
        out.update((c, np.nan) for c, kind in kinds.items() if kind == NUMERIC)
        for name, value in features.items():
            kind = kinds.get(name)
            where = {"source": "features", "key": "0", "field": name}
            if kind not in (NUMERIC, TEXT):
                raise BadInput("not an input of the model", **where,
                               hint="GET /v1/model lists the features")  # fmt: skip
            if value is not None and (kind == TEXT) != isinstance(value, str):
                raise BadInput(f"must be {'text' if kind == TEXT else 'a number'} or null", **where)
            if value is not None:
                out[name] = value if kind == TEXT else float(value)
        return out

    def _decide_values(
        self, customer_id: str, as_of: pd.Timestamp, values: dict[str, Any], history: History
    ) -> CustomerDecision:
        """Score, policy and warning of one performing customer's features."""
        scored = self._score_row(values)
        row = {**values, ID: customer_id, TIME: as_of}
        row.update(pd=scored.pd, score=scored.score, grade=scored.grade)
        policy = decide_row(row, self.config.policy)
        warning = warning_row(row, history, self.config.rules, self.config.scale)
        return CustomerDecision(
            customer_id=customer_id,
            as_of=as_of,
            pd=scored.pd,
            score=scored.score,
            grade=scored.grade,
            reasons=scored.reasons,
            policy=policy_fields(policy),
            warning={"level": str(warning["level"]), **warning_fields(warning)},
            in_default_since=None,
        )

    def _score_by_frame(self, values: dict[str, Any]) -> Any:
        row = self.scorer.score_frame(pd.DataFrame([values])).iloc[0]
        return RowScore(float(row["pd"]), int(row["score"]), str(row["grade"]),
                        json.loads(row["reasons"]))  # fmt: skip

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


def _not_yet(customer_id: str, onboarded: Any, as_of: pd.Timestamp) -> BadInput:
    return BadInput(
        f"onboarded on {pd.Timestamp(onboarded).date()}, not before the as-of date "
        f"{as_of.date()}: there is nothing to score yet",
        source="customers",
        key=f"customer_id={customer_id}",
        field="onboarded_on",
        hint="score at an as-of date after the customer was onboarded",
    )


def history_frame(customer_id: str, history: History) -> pd.DataFrame:
    """One customer's history rows as the batch code takes them (customer_id, as_of, pd, grade)."""
    frame = pd.DataFrame(history, columns=["as_of", "pd", "grade"])
    frame.insert(0, ID, customer_id)
    return frame.assign(as_of=pd.to_datetime(frame["as_of"]).astype("datetime64[ns]"))


def records_tables(records: CustomerRecords) -> dict[str, pd.DataFrame]:
    """One customer's records as the data contract's tables (customer_id on every row)."""
    customer_id = records.customer[ID]
    tables = {"customers": contract_frame("customers", [records.customer])}
    for name in CHILD_TABLES:
        columns = getattr(records, name)
        if columns is not None:
            rows = len(next(iter(columns.values()), ()))
            tables[name] = contract_frame(name, {ID: [customer_id] * rows, **columns})
    return tables


def contract_frame(name: str, rows: list[dict[str, Any]] | dict[str, Any]) -> pd.DataFrame:
    """Rows (records, or columns by name) of table ``name`` typed as the data contract types
    them (dates, numbers; text as Python strings or None), in the contract's columns."""
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
