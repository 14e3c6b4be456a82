"""The Jeffreys interval of a default rate, as the ratings benchmark reads it for true PDs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from models.validation import jeffreys_interval, jeffreys_test


def test_interval_is_the_beta_posterior_quantiles_and_matches_the_test():
    lo, hi = jeffreys_interval(13, 978)
    assert (lo, hi) == pytest.approx(stats.beta.ppf([0.025, 0.975], 13.5, 965.5))
    # a PD at the upper end of the 95 % interval is 97.5 % likely not underestimated
    assert jeffreys_test(13, 978, hi).p_value == pytest.approx(0.975)
    assert lo < 13 / 978 < hi


def test_expected_counts_and_levels():
    lo, hi = jeffreys_interval(978 * 0.0129, 978)
    assert lo < 0.0129 < hi
    narrow = jeffreys_interval(978 * 0.0129, 978, level=0.5)
    assert lo < narrow[0] < narrow[1] < hi
    wide = np.subtract(*jeffreys_interval(100 * 0.0129, 100)[::-1])
    assert wide > hi - lo  # fewer customers, wider interval


def test_bad_counts_and_levels_are_refused():
    with pytest.raises(ValueError, match="defaults <= n"):
        jeffreys_interval(5, 3)
    with pytest.raises(ValueError, match="level"):
        jeffreys_interval(1, 10, level=1.0)
