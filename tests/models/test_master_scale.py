import math

import numpy as np
import pytest
import yaml

from models.master_scale import (
    DEFAULT_PATH,
    MasterScale,
    MasterScaleError,
    grade_distribution,
    herfindahl,
    normalised_herfindahl,
)


@pytest.fixture(scope="module")
def scale() -> MasterScale:
    return MasterScale.load()


def test_default_scale_has_eight_performing_grades_and_default(scale):
    assert scale.grades == ["R1", "R2", "R3", "R4", "R5", "R6", "R7", "R8", "D"]
    assert scale.performing_grades == scale.grades[:-1]
    assert scale.default_grade == "D"
    assert scale.floor == 0.0003


def test_bands_are_roughly_even_on_a_log_scale(scale):
    widths = [math.log(scale.band(g)[1] / scale.band(g)[0]) for g in scale.performing_grades]
    assert all(0.5 < w < 2.0 for w in widths)


def test_grade_of_boundaries_are_half_open(scale):
    pds = [0.0001, 0.0003, 0.000999, 0.001, 0.0025, 0.0149, 0.2, 0.999999, 1.0]
    expected = ["R1", "R1", "R1", "R2", "R3", "R4", "R8", "R8", "D"]
    assert scale.grade_of(pds).tolist() == expected


def test_grade_of_default_flag_overrides_pd(scale):
    grades = scale.grade_of([0.001, 0.001], in_default=[False, True])
    assert grades.tolist() == ["R2", "D"]


def test_every_pd_falls_inside_its_band(scale):
    pds = np.exp(np.random.default_rng(1).uniform(math.log(0.0003), 0.0, size=2000))
    pds = pds[pds < 1]
    grades = scale.grade_of(pds)
    lo = np.array([scale.band(g)[0] for g in grades])
    hi = np.array([scale.band(g)[1] for g in grades])
    assert ((lo <= pds) & (pds < hi)).all()


def test_grade_of_rejects_nan(scale):
    with pytest.raises(ValueError, match="NaN"):
        scale.grade_of([0.01, np.nan])


def test_band_and_geometric_midpoint(scale):
    assert scale.band("R2") == (0.001, 0.0025)
    assert scale.midpoint_pd("R2") == pytest.approx(math.sqrt(0.001 * 0.0025))  # 0.0015811
    assert scale.midpoint_pd("D") == 1.0
    with pytest.raises(KeyError, match="unknown grade 'R9'"):
        scale.band("R9")


def test_notches_positive_for_downgrades(scale):
    assert scale.notches("R2", "R5") == 3
    assert scale.notches("R5", "R2") == -3
    assert scale.notches(["R1", "R8"], ["R1", "D"]).tolist() == [0, 1]
    with pytest.raises(KeyError, match="X"):
        scale.notches(["R1"], ["X"])


def test_herfindahl_by_hand(scale):
    grades = ["R1", "R1", "R2", "R3"]  # shares 0.5, 0.25, 0.25
    assert herfindahl(grades) == pytest.approx(0.375)
    assert scale.herfindahl(grades) == pytest.approx(0.375)
    # (0.375 - 1/8) / (1 - 1/8) over the 8 performing grades
    assert scale.normalised_herfindahl(grades) == pytest.approx(0.25 / 0.875)
    assert normalised_herfindahl(["R1"] * 5, 8) == pytest.approx(1.0)
    assert normalised_herfindahl(scale.performing_grades, 8) == pytest.approx(0.0)


def test_grade_distribution_lists_every_grade(scale):
    table = grade_distribution(["R1", "R1", "R3", "D"], scale)
    assert table["grade"].tolist() == scale.grades
    assert table["n"].tolist() == [2, 0, 1, 0, 0, 0, 0, 0, 1]
    assert table["share"].sum() == pytest.approx(1.0)
    assert table.loc[0, "share"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown grades"):
        scale.grade_distribution(["R1", "Z"])


def _spec() -> dict:
    return yaml.safe_load(DEFAULT_PATH.read_text())


def _write(tmp_path, spec) -> str:
    path = tmp_path / "scale.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_gap_is_reported_with_grade(tmp_path):
    spec = _spec()
    spec["grades"][3]["pd_min"] = 0.007
    with pytest.raises(MasterScaleError, match="grade R4: gap with grade R3"):
        MasterScale.load(_write(tmp_path, spec))


def test_overlap_is_reported_with_grade(tmp_path):
    spec = _spec()
    spec["grades"][3]["pd_min"] = 0.005
    with pytest.raises(MasterScaleError, match="grade R4: overlap with grade R3"):
        MasterScale.load(_write(tmp_path, spec))


def test_non_monotone_order_is_reported(tmp_path):
    spec = _spec()
    spec["grades"][2], spec["grades"][3] = spec["grades"][3], spec["grades"][2]
    with pytest.raises(MasterScaleError, match=r"grade R3: .*non-monotone"):
        MasterScale.load(_write(tmp_path, spec))


def test_inverted_band_is_reported(tmp_path):
    spec = _spec()
    spec["grades"][4]["pd_max"] = 0.01
    with pytest.raises(MasterScaleError, match="grade R5: band"):
        MasterScale.load(_write(tmp_path, spec))


def test_duplicate_names_are_reported(tmp_path):
    spec = _spec()
    spec["grades"][5]["name"] = "R5"
    with pytest.raises(MasterScaleError, match="grade R5: duplicate"):
        MasterScale.load(_write(tmp_path, spec))


def test_default_grade_name_must_be_unique(tmp_path):
    spec = _spec()
    spec["default_grade"]["name"] = "R8"
    with pytest.raises(MasterScaleError, match="grade R8: duplicate"):
        MasterScale.load(_write(tmp_path, spec))


def test_too_few_performing_grades(tmp_path):
    spec = _spec()
    merged = spec["grades"][:6]
    merged[-1]["pd_max"] = 1.0
    spec["grades"] = merged
    with pytest.raises(MasterScaleError, match="6 performing grades; at least 7"):
        MasterScale.load(_write(tmp_path, spec))


def test_must_start_at_floor(tmp_path):
    spec = _spec()
    spec["grades"][0]["pd_min"] = 0.0005
    with pytest.raises(MasterScaleError, match=r"grade R1: pd_min 0\.0005 must equal the PD floor"):
        MasterScale.load(_write(tmp_path, spec))


def test_must_reach_one(tmp_path):
    spec = _spec()
    spec["grades"][-1]["pd_max"] = 0.9
    with pytest.raises(MasterScaleError, match=r"grade R8: pd_max 0\.9 must be 1"):
        MasterScale.load(_write(tmp_path, spec))


def test_missing_bound_and_bad_yaml_and_missing_file(tmp_path):
    spec = _spec()
    del spec["grades"][2]["pd_max"]
    with pytest.raises(MasterScaleError, match="grade R3: 'pd_max' must be a number"):
        MasterScale.load(_write(tmp_path, spec))
    bad = tmp_path / "bad.yaml"
    bad.write_text("grades: [\n")
    with pytest.raises(MasterScaleError, match="not valid YAML"):
        MasterScale.load(bad)
    with pytest.raises(MasterScaleError, match="not found"):
        MasterScale.load(tmp_path / "absent.yaml")
