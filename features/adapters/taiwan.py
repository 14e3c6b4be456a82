"""The UCI Taiwan credit card file (Yeh & Lien 2009) as canonical tables plus its own labels.

Mapping and quirks are documented in ``features/adapters/README.md``. SEX, AGE, MARRIAGE and
EDUCATION are dropped: protected attributes and a proxy, and the contract has no applicant age.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from features.schemas import SCHEMAS

DEFAULT_PATH = Path("../shared/datasets/taiwan_credit_default/UCI_Credit_Card.csv")
AS_OF = pd.Timestamp("2005-10-01")
LABEL_SOURCE = "default.payment.next.month"
# Column suffix -> month: 1 = September 2005 ... 6 = April 2005; status PAY_0 belongs to suffix 1.
MONTHS = {k: pd.Timestamp(2005, 10 - k, 1) for k in range(1, 7)}
STATUS = {1: "PAY_0", 2: "PAY_2", 3: "PAY_3", 4: "PAY_4", 5: "PAY_5", 6: "PAY_6"}
# The contract's required statement columns (the file has no statements: the table stays empty).
STATEMENT_COLUMNS = [
    c for c, col in SCHEMAS["financial_statements"].columns.items() if col.required
]


def load_taiwan(path: str | Path = DEFAULT_PATH) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """Read the file; return ``(tables, labels)`` with labels (customer_id, as_of, default_flag)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"Taiwan credit card file not found at {path}: pass the path to UCI_Credit_Card.csv "
            "(it lives in ../shared/datasets/taiwan_credit_default/ beside the project)."
        )
    raw = pd.read_csv(path)
    return taiwan_tables(raw), taiwan_labels(raw)


def customer_ids(raw: pd.DataFrame) -> pd.Series:
    """Pseudonymous ids ``TW00001`` built from the file's row ID."""
    return "TW" + raw["ID"].astype("int64").astype("str").str.zfill(5)


def taiwan_tables(raw: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Canonical customers, (empty) financial_statements and six repayment months."""
    ids = customer_ids(raw)
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "segment": "retail",
            "industry": "consumer",
            "region": "TW",
            "onboarded_on": MONTHS[6],
            "founded_on": pd.Series(pd.NaT, index=raw.index, dtype="datetime64[ns]"),
        }
    )
    customers["onboarded_on"] = customers["onboarded_on"].astype("datetime64[ns]")
    statements = pd.DataFrame({c: pd.Series(dtype="float64") for c in STATEMENT_COLUMNS})
    statements["customer_id"] = statements["customer_id"].astype("str")
    for column in ("period_end", "published_on"):
        statements[column] = statements[column].astype("datetime64[ns]")
    return {
        "customers": customers,
        "financial_statements": statements,
        "repayments": taiwan_repayments(raw, ids),
    }


def days_past_due(status: pd.Series | np.ndarray) -> np.ndarray:
    """PAY_x status to days past due: -2, -1 and 0 are current (0 days); k >= 1 is 30 * k days."""
    return np.clip(np.asarray(status, dtype="int64"), 0, None) * 30


def taiwan_repayments(raw: pd.DataFrame, ids: pd.Series) -> pd.DataFrame:
    """One row per customer and month, April to September 2005.

    A month's ``amount_paid`` (PAY_AMTk, paid during the month) settles the previous month's bill,
    so ``amount_due`` is the previous month's bill (negative bills owe nothing; April: unknown).
    """
    n = len(raw)
    frames = []
    for k in range(6, 0, -1):
        previous_bill = raw[f"BILL_AMT{k + 1}"].clip(lower=0) if k < 6 else np.nan
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": ids,
                    "month": np.repeat(MONTHS[k], n),
                    "credit_limit": raw["LIMIT_BAL"].astype("float64"),
                    "balance": raw[f"BILL_AMT{k}"].astype("float64"),
                    "amount_due": pd.Series(previous_bill, index=raw.index, dtype="float64"),
                    "amount_paid": raw[f"PAY_AMT{k}"].astype("float64"),
                    "days_past_due": days_past_due(raw[STATUS[k]]),
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["month"] = out["month"].astype("datetime64[ns]")
    return out.sort_values(["customer_id", "month"], kind="stable").reset_index(drop=True)


def taiwan_labels(raw: pd.DataFrame) -> pd.DataFrame:
    """The file's own label: default payment in October 2005, as of 2005-10-01 (1.0 / 0.0)."""
    return pd.DataFrame(
        {
            "customer_id": customer_ids(raw),
            "as_of": pd.Series(AS_OF, index=raw.index).astype("datetime64[ns]"),
            "default_flag": raw[LABEL_SOURCE].astype("float64"),
        }
    )
