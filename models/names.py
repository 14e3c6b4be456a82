"""Column names: kept as the user wrote them, made safe only where a library needs it.

Any text is a column name here: brackets, commas, colons, quotes, braces, spaces and unicode
("[(cash + receivables) / revenue] * 365", "负债率") reach the reasons, reports, scorecard table
and scoring input unchanged. Two places need other names:

- LightGBM refuses feature names with JSON-special characters (``"`` ``,`` ``:`` ``[`` ``]``
  ``{`` ``}``) and rewrites spaces: `lightgbm_names` gives each column a safe name for the
  booster only (names that are already safe are kept), unique by construction.
- Each name must say one column: duplicates (a header naming a column twice, which pandas
  would silently rename to ``a.1``) and names equal but for case, surrounding spaces or unicode
  form ("Revenue" and "revenue ") are refused before training (`ambiguity` says why), since a
  reader of reasons and reports, case-insensitive file systems and databases cannot tell them
  apart. A name that differs from a safe name only after `lightgbm_names` ("a,b" and "a:b") is
  fine: those names are unique by position.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable

import pandas as pd

_SAFE = re.compile(r"[A-Za-z0-9_]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_]+")


def lightgbm_names(names: Iterable) -> list[str]:
    """A name LightGBM accepts for each column, in order and unique: a name of letters, digits
    and underscores is kept; any other becomes ``c<position>_<its ASCII letters and digits>``."""
    out: list[str] = []
    taken: set[str] = set()
    for position, name in enumerate(str(n) for n in names):
        safe = name
        if not _SAFE.fullmatch(name) or name in taken:
            safe = f"c{position}_{_UNSAFE.sub('_', name).strip('_')}".rstrip("_")
        while safe in taken:
            safe += "_"
        taken.add(safe)
        out.append(safe)
    return out


def lightgbm_frame(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` under its `lightgbm_names` (the values are not copied)."""
    return X.set_axis(lightgbm_names(X.columns), axis=1)


def _same_name(name) -> str:
    """The form two names share when a reader cannot tell them apart."""
    return unicodedata.normalize("NFKC", str(name)).strip().casefold()


def ambiguous_names(columns: Iterable) -> list[list[str]]:
    """Groups of column names that name one column twice: equal, or equal but for case,
    surrounding spaces or unicode normal form; each group in table order."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name in columns:
        groups[_same_name(name)].append(str(name))
    return [names for names in groups.values() if len(names) > 1]


def ambiguity(columns: Iterable) -> str | None:
    """Why the column names are ambiguous (the groups of `ambiguous_names`), or None."""
    parts = []
    for names in ambiguous_names(columns):
        if len(set(names)) == 1:
            times = "twice" if len(names) == 2 else f"{len(names)} times"
            parts.append(f"{names[0]!r} {times}")
        else:
            shown = [repr(n) for n in names]
            parts.append(", ".join(shown[:-1]) + " and " + shown[-1])
    reason = "each column needs a name of its own, not equal to another but for case or spaces"
    return f"{reason}: {'; '.join(parts)}" if parts else None


AMBIGUOUS_HINT = "rename the columns (or drop the repeated ones)"
