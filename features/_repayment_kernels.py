"""Compiled loop of `features.repayment.matrix_features`: one walk back over the months."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _utilisation(balance, limit):
    return np.float64(balance) / limit if limit > 0 else np.nan


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _ratio(numerator, denominator):
    out = np.float64(numerator) / np.float64(denominator)
    return out if np.isfinite(out) else np.nan


@njit(cache=True, nogil=True, error_model="numpy")
def matrix_walk(present, dpd, limit, balance, due, paid, windows, thresholds, spike, delinquent):
    """Rows of features (customers along the columns): for each of the ascending ``windows``,
    the worst days past due, the months at or over each threshold, the payment ratio, the mean,
    trend and spikes of utilisation and the balance growth (NaN where the window is not
    filled); then the latest days past due, months since ``delinquent`` days, utilisation and
    limit. The same sums in the same order as a walk on whole month rows."""
    span, n = present.shape
    n_t = thresholds.size
    per = n_t + 6
    out = np.empty((windows.size * per + 4, n))
    over = np.zeros(n_t)
    for c in range(n):
        util_last = _utilisation(balance[span - 1, c], limit[span - 1, c])
        months, dpd_max = 0.0, -np.inf
        over[:] = 0.0
        paid_sum, due_sum, util_sum, util_n, spikes = 0.0, 0.0, 0.0, 0.0, 0.0
        util_next = util_last
        w = 0
        for k in range(1, span + 1):
            j = span - k
            d = dpd[j, c]
            util = util_last if k == 1 else _utilisation(balance[j, c], limit[j, c])
            months += present[j, c]
            if d != d or dpd_max != dpd_max:
                dpd_max = np.nan
            elif d > dpd_max:
                dpd_max = d
            for t in range(n_t):
                over[t] += d >= thresholds[t]
            paid_sum += paid[j, c]
            due_sum += due[j, c]
            utilised = util == util
            util_sum += util if utilised else 0.0
            util_n += utilised
            if k > 1:
                spikes += util_next - util > spike
            util_next = util
            if w == windows.size or k != windows[w]:
                continue
            row = w * per
            w += 1
            if months != k:
                out[row : row + per, c] = np.nan
                continue
            util_mean = _ratio(util_sum, util_n)
            out[row, c] = dpd_max
            for t in range(n_t):
                out[row + 1 + t, c] = over[t]
            out[row + n_t + 1, c] = _ratio(paid_sum, due_sum)
            out[row + n_t + 2, c] = util_mean
            out[row + n_t + 3, c] = util_last - util_mean
            out[row + n_t + 4, c] = spikes
            out[row + n_t + 5, c] = _ratio(balance[span - 1, c], balance[j, c]) - 1.0
        row = windows.size * per
        latest, first, since = -1, -1, -1
        for j in range(span):
            if present[j, c]:
                latest = j
                if first < 0:
                    first = j
        if latest < 0:
            out[row : row + 4, c] = np.nan
            continue
        for i in range(span):
            if dpd[span - 1 - i, c] >= delinquent:
                since = i
                break
        out[row, c] = dpd[latest, c]
        out[row + 1, c] = since if since >= 0 else span - first
        out[row + 2, c] = _utilisation(balance[latest, c], limit[latest, c])
        out[row + 3, c] = limit[latest, c]
    return out
