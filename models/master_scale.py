"""Master scale: map PDs to rating grades R1 (best) .. R8 plus the default grade D.

Bands are half-open [pd_min, pd_max), contiguous, monotone and cover [floor, 1); a PD below the
floor falls in the best grade, a PD of 1 (or a customer flagged in default) in the default grade.
The YAML is validated on load (duplicate keys and non-finite numbers refused by
`models.yaml_config`) and every problem reads ``file:line: grade at fault and problem``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from models.yaml_config import ConfigError, Problem, line_of, parse_yaml_mapping, read_yaml_text

PD_FLOOR = 0.0003  # the lowest PD anywhere: calibration clips to it, the best grade starts at it

DEFAULT_PATH = Path(__file__).with_name("master_scale.yaml")
MIN_PERFORMING_GRADES = 7


class MasterScaleError(ConfigError):
    """The master scale is invalid: ``file:line: grade and problem`` when loaded from a file.

    ``loc`` is the path of the fault in the YAML mapping (``("grades", 3, "pd_min")``), which
    `MasterScale.load` turns into the line.
    """

    what = "master scale"

    def __init__(self, source: str | None, problems: list[Problem], loc: tuple = ()):
        super().__init__(source, problems)
        self.loc = loc


def _refuse(message: str, *loc: object) -> MasterScaleError:
    """The error for one problem at ``loc`` in the scale's mapping (line found on load)."""
    return MasterScaleError(None, [(None, message)], loc)


@dataclass(frozen=True)
class Grade:
    """One performing grade: PD band [pd_min, pd_max) and a plain-language label."""

    name: str
    pd_min: float
    pd_max: float
    label: str = ""


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def _parse_grade(entry: Any, i: int) -> Grade:
    """The ``i``-th (0-based) entry of ``grades``."""
    if not isinstance(entry, Mapping):
        raise _refuse(f"grade #{i + 1}: expected a mapping with name, pd_min, pd_max", "grades", i)
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _refuse(f"grade #{i + 1}: missing 'name' (a non-empty string)", "grades", i, "name")
    bounds = {}
    for key in ("pd_min", "pd_max"):
        value = entry.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _refuse(
                f"grade {name}: '{key}' must be a number, got {value!r}", "grades", i, key
            )
        bounds[key] = float(value)
    return Grade(name, bounds["pd_min"], bounds["pd_max"], str(entry.get("label", "")))


def _validate(grades: list[Grade], default_name: str, floor: float) -> None:
    if len(grades) < MIN_PERFORMING_GRADES:
        raise _refuse(
            f"the master scale has {len(grades)} performing grades; "
            f"at least {MIN_PERFORMING_GRADES} are required",
            "grades",
        )
    names = [g.name for g in grades] + [default_name]
    for k, name in enumerate(names):
        if name in names[:k]:
            where = ("default_grade", "name") if k == len(grades) else ("grades", k, "name")
            raise _refuse(f"grade {name}: duplicate grade name; names must be unique", *where)
    if not 0 < floor < 1:
        raise _refuse(f"floor must lie in (0, 1), got {floor}", "floor")
    for i, g in enumerate(grades):
        if not (0 < g.pd_min < g.pd_max <= 1):
            raise _refuse(
                f"grade {g.name}: band [{g.pd_min}, {g.pd_max}) must satisfy "
                "0 < pd_min < pd_max <= 1 (non-monotone or empty band)",
                "grades",
                i,
            )
    for i, (prev, cur) in enumerate(pairwise(grades), start=1):
        if cur.pd_min < prev.pd_min:
            raise _refuse(
                f"grade {cur.name}: pd_min {cur.pd_min} is below grade {prev.name}'s "
                f"{prev.pd_min}; grades must be listed best first with rising PDs (non-monotone)",
                "grades",
                i,
                "pd_min",
            )
    for i, (prev, cur) in enumerate(pairwise(grades), start=1):
        if not _close(cur.pd_min, prev.pd_max):
            kind = "gap" if cur.pd_min > prev.pd_max else "overlap"
            raise _refuse(
                f"grade {cur.name}: {kind} with grade {prev.name} "
                f"({prev.name} ends at {prev.pd_max}, {cur.name} starts at {cur.pd_min}); "
                "set pd_min equal to the previous grade's pd_max",
                "grades",
                i,
                "pd_min",
            )
    if not _close(grades[0].pd_min, floor):
        raise _refuse(
            f"grade {grades[0].name}: pd_min {grades[0].pd_min} must equal the PD floor {floor} "
            "so that the scale covers [floor, 1)",
            "grades",
            0,
            "pd_min",
        )
    if not _close(grades[-1].pd_max, 1.0):
        raise _refuse(
            f"grade {grades[-1].name}: pd_max {grades[-1].pd_max} must be 1 "
            "so that the scale covers [floor, 1)",
            "grades",
            len(grades) - 1,
            "pd_max",
        )


class MasterScale:
    """A validated master scale; build with `MasterScale.load()` or `MasterScale.from_dict()`."""

    def __init__(self, grades: list[Grade], default_grade: str = "D", floor: float = PD_FLOOR):
        _validate(grades, default_grade, floor)
        self.performing: tuple[Grade, ...] = tuple(grades)
        self.default_grade = default_grade
        self.floor = float(floor)
        self._names = np.array([g.name for g in grades] + [default_grade], dtype=object)
        self._inner_edges = np.array([g.pd_min for g in grades[1:]], dtype=float)
        self._index = {name: i for i, name in enumerate(self._names)}

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> MasterScale:
        """Build from the parsed YAML mapping (keys: floor, grades, default_grade)."""
        if not isinstance(spec, Mapping):
            raise _refuse("the master scale must be a mapping with 'grades' and 'floor'")
        entries = spec.get("grades")
        if not isinstance(entries, list) or not entries:
            raise _refuse("'grades' must be a non-empty list of performing grades", "grades")
        grades = [_parse_grade(e, i) for i, e in enumerate(entries)]
        default = spec.get("default_grade", {"name": "D"})
        default_name = default.get("name") if isinstance(default, Mapping) else default
        if not isinstance(default_name, str) or not default_name.strip():
            raise _refuse("'default_grade' needs a name, e.g. {name: D}", "default_grade")
        floor = spec.get("floor", grades[0].pd_min)
        if isinstance(floor, bool) or not isinstance(floor, int | float):
            raise _refuse(f"'floor' must be a number, got {floor!r}", "floor")
        return cls(grades, default_name, float(floor))

    @classmethod
    def load(cls, path: str | Path | None = None) -> MasterScale:
        """Load and validate a YAML master scale (default: models/master_scale.yaml).

        Every problem reads ``file:line: grade and problem``.
        """
        path = Path(path) if path is not None else DEFAULT_PATH
        return cls.parse(read_yaml_text(path, MasterScaleError, "master scale"), str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<master scale>") -> MasterScale:
        """Validate master-scale YAML text; every problem reads ``source:line: ...``."""
        spec, index = parse_yaml_mapping(
            text,
            source,
            MasterScaleError,
            "expected a mapping with 'floor', 'grades' and 'default_grade'",
        )
        try:
            return cls.from_dict(spec)
        except MasterScaleError as exc:
            problem = (line_of(index, exc.loc), exc.reason)
            raise MasterScaleError(source, [problem], exc.loc) from None

    @property
    def grades(self) -> list[str]:
        """All grade names best to worst, the default grade last."""
        return list(self._names)

    @property
    def performing_grades(self) -> list[str]:
        return [g.name for g in self.performing]

    def grade_of(self, pd: ArrayLike, in_default: ArrayLike | None = None) -> np.ndarray:
        """Grade for each PD; PD >= 1 or `in_default` True gives the default grade."""
        p = np.asarray(pd, dtype=float)
        if np.isnan(p).any():
            raise ValueError("grade_of got NaN PDs; every row needs a PD before it can be graded")
        idx = np.searchsorted(self._inner_edges, p, side="right")
        idx = np.where(p >= 1.0, len(self.performing), idx)
        if in_default is not None:
            flag = np.asarray(in_default, dtype=bool)
            idx = np.where(flag, len(self.performing), idx)
        return self._names[idx]

    def _position(self, grade: str) -> int:
        try:
            return self._index[grade]
        except (KeyError, TypeError):
            raise KeyError(f"unknown grade {grade!r}; known grades: {self.grades}") from None

    def band(self, grade: str) -> tuple[float, float]:
        """PD band [pd_min, pd_max) of a grade; the default grade's band is (1, 1)."""
        i = self._position(grade)
        if i == len(self.performing):
            return (1.0, 1.0)
        return (self.performing[i].pd_min, self.performing[i].pd_max)

    def midpoint_pd(self, grade: str) -> float:
        """Geometric mean of a grade's band, the representative PD on a log scale."""
        lo, hi = self.band(grade)
        return math.sqrt(lo * hi)

    def notches(self, before: ArrayLike, after: ArrayLike) -> np.ndarray | int:
        """Grade steps from `before` to `after`: positive is a downgrade, negative an upgrade."""
        diff = self.positions(after) - self.positions(before)
        return int(diff) if diff.ndim == 0 else diff

    def positions(self, grades: ArrayLike) -> np.ndarray:
        """Index of each grade in `grades` (0 = best); unknown grades are an error."""
        values = np.asarray(grades, dtype=object)
        codes = pd.Categorical(values.ravel(), categories=self.grades).codes.astype(np.int64)
        if (codes < 0).any():
            bad = sorted({str(v) for v in values.ravel()[codes < 0]})
            raise KeyError(f"unknown grades {bad}; known grades: {self.grades}")
        return codes.reshape(values.shape)

    def grade_distribution(self, grades: ArrayLike) -> pd.DataFrame:
        """Count and share per grade (all grades of the scale, zeros included), best first."""
        return grade_distribution(grades, self)

    def herfindahl(self, grades: ArrayLike) -> float:
        return herfindahl(grades)

    def normalised_herfindahl(self, grades: ArrayLike) -> float:
        """HHI rescaled to [0, 1] over the performing grades of this scale."""
        return normalised_herfindahl(grades, len(self.performing))


def _shares(grades: ArrayLike) -> np.ndarray:
    values = pd.Series(np.asarray(grades, dtype=object).ravel()).dropna()
    if values.empty:
        raise ValueError("no grades given; concentration needs at least one graded customer")
    counts = values.value_counts().to_numpy(dtype=float)
    return counts / counts.sum()


def herfindahl(grades: ArrayLike) -> float:
    """Herfindahl-Hirschman index of grade concentration: sum of squared grade shares (1/K..1)."""
    return float(np.sum(_shares(grades) ** 2))


def normalised_herfindahl(grades: ArrayLike, n_grades: int) -> float:
    """HHI rescaled as (H - 1/K) / (1 - 1/K): 0 for an even spread over K grades, 1 for one."""
    if n_grades < 2:
        raise ValueError(f"n_grades must be at least 2, got {n_grades}")
    h = herfindahl(grades)
    return float((h - 1.0 / n_grades) / (1.0 - 1.0 / n_grades))


def grade_distribution(grades: ArrayLike, scale: MasterScale) -> pd.DataFrame:
    """Table of grade, pd_min, pd_max, n, share over every grade of the scale, best first."""
    values = pd.Series(np.asarray(grades, dtype=object).ravel()).dropna()
    unknown = sorted(set(values) - set(scale.grades))
    if unknown:
        raise ValueError(f"unknown grades {unknown}; known grades: {scale.grades}")
    counts = values.value_counts().reindex(scale.grades, fill_value=0).to_numpy(dtype=np.int64)
    total = counts.sum()
    bands = [scale.band(g) for g in scale.grades]
    return pd.DataFrame(
        {
            "grade": scale.grades,
            "pd_min": [b[0] for b in bands],
            "pd_max": [b[1] for b in bands],
            "n": counts,
            "share": counts / total if total else np.zeros(len(counts)),
        }
    )
