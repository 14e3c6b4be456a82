import numpy as np
import pandas as pd
import pytest

from models.split import make_split, out_of_time_split, stratified_kfold, stratified_split


@pytest.fixture
def monthly():
    """10 month-end snapshots of 10 rows; the first 3 rows' labels have not matured."""
    time = np.repeat(pd.date_range("2020-01-01", periods=10, freq="MS"), 10)
    y = np.tile([0, 1, 0, 0, 0, 1, 0, 0, 0, 0], 10).astype(float)
    y[:3] = np.nan
    return time, y


def test_out_of_time_parts_follow_each_other_in_time(monthly):
    time, y = monthly
    split = out_of_time_split(time, y, test_share=0.2, valid_share=0.2)
    # 97 labelled rows: 20 % is 19.4 rows -> the two latest months (20 rows) test,
    # the two before them validate and calibrate, the six earliest train.
    assert split.sizes() == {"train": 57, "valid": 10, "calib": 10, "test": 20}
    t = pd.to_datetime(time)
    assert t[split.train].max() < t[split.valid].min()
    assert t[split.valid].max() < t[split.test].min()
    assert set(t[split.valid]) == set(t[split.calib])
    assert [d.month for d in split.dates["test"]] == [9, 10]


def test_out_of_time_split_covers_each_labelled_row_once(monthly):
    time, y = monthly
    split = out_of_time_split(time, y)
    everything = np.concatenate([split.train, split.valid, split.calib, split.test])
    assert sorted(everything) == list(range(3, 100))


def test_validation_and_calibration_halves_are_stratified(monthly):
    time, y = monthly
    split = out_of_time_split(time, y)
    assert y[split.valid].sum() == y[split.calib].sum() == 2


def test_gap_dates_leave_an_embargo_between_parts(monthly):
    time, y = monthly
    split = out_of_time_split(time, y, gap_dates=1)
    months = {p: sorted({d.month for d in split.dates[p]}) for p in split.dates}
    assert months == {"train": [1, 2, 3, 4], "valid": [6, 7], "test": [9, 10]}


def test_out_of_time_needs_three_dates():
    time = np.repeat(pd.to_datetime(["2020-01-01", "2020-02-01"]), 5)
    with pytest.raises(ValueError, match="stratified split"):
        out_of_time_split(time, np.tile([0.0, 1.0], 5))


def test_stratified_split_keeps_the_default_rate():
    y = np.array([0, 0, 0, 1] * 50, dtype=float)
    split = stratified_split(y, test_share=0.2, valid_share=0.2)
    assert split.sizes() == {"train": 120, "valid": 20, "calib": 20, "test": 40}
    for part in (split.train, split.valid, split.calib, split.test):
        assert y[part].mean() == 0.25
    assert (
        len(np.unique(np.concatenate([split.train, split.valid, split.calib, split.test]))) == 200
    )


def test_make_split_chooses_by_time_column(monthly):
    time, y = monthly
    assert make_split(y, time).dates is not None
    assert make_split(np.nan_to_num(y)).dates is None


def test_stratified_kfold_is_seeded_and_partitions_rows():
    y = np.array([0, 1, 0, 0, 0] * 20)
    folds = stratified_kfold(y, n_splits=5, seed=7)
    again = stratified_kfold(y, n_splits=5, seed=7)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again, strict=True))
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests) == list(range(100))
    assert [int(y[te].sum()) for _, te in folds] == [4] * 5
