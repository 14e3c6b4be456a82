"""One value coerced as a frame column would coerce it (for one-row paths beside batch code)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def number_of(value: Any) -> float:
    """``pd.to_numeric(errors="coerce")`` of one value as a float (NaN where not a number)."""
    if value is None:
        return np.nan
    if isinstance(value, bool | int | float | np.number):
        return float(value)
    number = pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0]
    return float(number) if pd.notna(number) else np.nan
