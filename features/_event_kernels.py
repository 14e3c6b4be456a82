"""Compiled loop of `features.events.event_counts`: one pass over the events."""

from __future__ import annotations

import numpy as np
from numba import njit

NS_PER_DAY = 86_400 * 10**9


@njit(cache=True, nogil=True)
def event_walk(type_code, occurred, severity, code, n, as_of, start, member, since_kinds):
    """(counts: kinds x customers of the events of each kind at or after ``start``, their
    severity sum per customer over every type, days since the latest of each ``since_kinds``
    kind: NaN where none). ``type_code``: the event's row of ``member`` (types x kinds: which
    kinds a type counts for), -1 for a type no kind counts; ``occurred``, ``as_of`` and
    ``start`` in nanoseconds. Sums in event order, as `np.bincount` adds them."""
    n_kinds, n_since = member.shape[1], since_kinds.size
    counts = np.zeros((n_kinds, n))
    weight = np.zeros(n)
    since = np.full((n_since, n), np.inf)
    for i in range(type_code.size):
        c, t = code[i], type_code[i]
        recent = occurred[i] >= start
        if recent:
            weight[c] += severity[i]
        if t < 0:
            continue
        for k in range(n_kinds):
            if recent and member[t, k]:
                counts[k, c] += 1.0
        days = np.float64(as_of - occurred[i]) / np.float64(NS_PER_DAY)
        for s in range(n_since):
            if member[t, since_kinds[s]] and days < since[s, c]:
                since[s, c] = days
    for s in range(n_since):
        for c in range(n):
            if since[s, c] == np.inf:
                since[s, c] = np.nan
    return counts, weight, since
