"""Configuration and environment: every mistake is refused with its line or its variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.master_scale import DEFAULT_PATH as SCALE_PATH
from models.master_scale import MasterScale
from models.yaml_config import ConfigError
from pipelines.decisions.early_warning import DEFAULT_PATH as RULES_PATH
from pipelines.decisions.early_warning import load_rules
from pipelines.decisions.policy import DEFAULT_PATH as POLICY_PATH
from pipelines.decisions.policy import load_policy
from pipelines.errors import BadInput, typed
from pipelines.settings import QUIET_ENVIRONMENT, get_settings
from tests.conftest import REPO, assert_clean_error

# Each shipped file with one line it holds and a repeated key added right after that line.
LOADERS = {
    "policy": (POLICY_PATH, load_policy, "    term_days: 90\n", "    term_days: 30\n"),
    "rules": (RULES_PATH, load_rules, "    relative: 0.5", "\n    relative: 0.7"),
    "scale": (SCALE_PATH, MasterScale.load, "floor: 0.0003\n", "floor: 0.0004\n"),
}


def _edited(tmp_path: Path, which: str, old: str, new: str) -> Path:
    source = LOADERS[which][0].read_text()
    assert old in source, (which, old)
    path = tmp_path / f"{which}.yaml"
    path.write_text(source.replace(old, new, 1))
    return path


def _line_of(path: Path, fragment: str, after: int = 0) -> int:
    """1-based line of the first line holding ``fragment`` after line ``after``."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if i > after and fragment in line)


def _refusal(which: str, path: Path) -> BadInput:
    """The typed error a loader's refusal becomes, as the CLI and API show it."""
    with pytest.raises(ConfigError) as info:
        LOADERS[which][1](path)
    found = typed(info.value)
    assert isinstance(found, BadInput) and found.source == str(path)
    return found


@pytest.mark.parametrize("which", list(LOADERS))
def test_shipped_files_load(which):
    path, load, *_ = LOADERS[which]
    load(path)


@pytest.mark.parametrize("which", list(LOADERS))
def test_a_duplicate_key_is_refused_with_its_line(tmp_path, which):
    _, _, line, extra = LOADERS[which]
    path = _edited(tmp_path, which, line, line + extra)
    error = _refusal(which, path)
    key = extra.strip().split(":")[0]
    first = _line_of(path, f"{key}:")
    assert error.line == _line_of(path, f"{key}:", after=first)
    assert "duplicate key" in error.reason and f"first on line {first}" in error.reason


@pytest.mark.parametrize(
    ("which", "old", "new", "key"),
    [
        ("policy", "cap: 5000000", "cap: .inf", "cap"),
        ("policy", "revenue_multiple: 0.25", "revenue_multiple: .nan", "revenue_multiple"),
        ("rules", "relative: 0.5", "relative: .inf", "relative"),
        ("rules", "value: 0.9}", "value: -.inf}", "value"),
        ("scale", "pd_max: 1.0,", "pd_max: .inf,", "pd_max"),
        ("scale", "floor: 0.0003", "floor: .nan", "floor"),
    ],
)
def test_infinite_or_nan_numbers_are_not_finite(tmp_path, which, old, new, key):
    path = _edited(tmp_path, which, old, new)
    error = _refusal(which, path)
    assert "not a finite number" in error.reason and key in error.reason
    assert error.line == _line_of(path, new)


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        ("feature: utilisation_latest", "feature: utilisation_lates", "feature"),
        ("other: payment_ratio_12m", "other: payment_ratio_1y", "other"),
    ],
)
def test_a_warning_rule_on_an_unknown_feature_is_refused_with_its_line(tmp_path, old, new, where):
    path = _edited(tmp_path, "rules", old, new)
    error = _refusal("rules", path)
    assert error.line == _line_of(path, new)
    assert f".{where}: unknown feature '{new.split(': ')[1]}'" in error.reason
    assert "features/catalog.py" in error.reason


def test_a_warning_rule_may_read_the_scored_columns(tmp_path):
    rule = '      - {feature: utilisation_latest, op: ">=", value: 0.9}\n'
    path = _edited(tmp_path, "rules", rule, rule + '      - {feature: pd, op: ">=", value: 0.2}\n')
    assert [c.feature for r in load_rules(path).rules for c in r.when if c.feature == "pd"]


@pytest.mark.parametrize(
    ("old", "new", "fragment", "reason"),
    [
        ("pd_min: 0.006,", "pd_min: 0.007,", "name: R4", "grade R4: gap with grade R3"),
        ("{name: R6,", "{name: R5,", "name: R5, pd_min: 0.035", "grade R5: duplicate"),
        ("pd_max: 1.0,", "pd_max: 0.9,", "name: R8", "grade R8: pd_max 0.9 must be 1"),
        ("pd_min: 0.0025, pd_max: 0.006,", "pd_min: 0.0025,", "name: R3", "grade R3: 'pd_max'"),
    ],
)
def test_master_scale_mistakes_name_file_and_line(tmp_path, old, new, fragment, reason):
    path = _edited(tmp_path, "scale", old, new)
    error = _refusal("scale", path)
    assert error.reason.startswith(reason)
    assert error.message.startswith(f"{path}:{_line_of(path, fragment)}: {reason}")


def test_cli_refuses_a_policy_with_a_duplicate_key_in_one_line(cli, tmp_path):
    path = _edited(
        tmp_path, "policy", "    term_days: 90\n", "    term_days: 90\n    term_days: 3\n"
    )
    line = _line_of(path, "term_days: 3")
    result = cli("policy", "check", str(path))
    assert_clean_error(result, 2, f"{path}:{line}:", "rules.0.term_days: duplicate key")


def test_cli_names_the_line_of_a_master_scale_mistake(cli, tmp_path):
    scale = _edited(tmp_path, "scale", "pd_min: 0.006,", "pd_min: 0.007,")
    result = cli("policy", "check", str(POLICY_PATH), "--master-scale", str(scale))
    assert_clean_error(result, 2, f"{scale}:{_line_of(scale, 'name: R4')}:", "gap with grade R3")


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("CREDITRISK_MAX_REJECT_RATE", "abc", "a share from 0 to 1"),
        ("CREDITRISK_MAX_REJECT_RATE", "2", "a share from 0 to 1"),
        ("CREDITRISK_MAX_REJECT_RATE", "nan", "a share from 0 to 1"),
        ("CREDITRISK_HORIZON_MONTHS", "0", "from 1 to 120"),
        ("CREDITRISK_HORIZON_MONTHS", "-6", "from 1 to 120"),
        ("CREDITRISK_HORIZON_MONTHS", "twelve", "from 1 to 120"),
        ("CREDITRISK_HORIZON_MONTHS", "1.5", "from 1 to 120"),
    ],
)
def test_a_bad_environment_value_names_the_variable_and_range(
    monkeypatch, variable, value, allowed
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(BadInput) as info:
        get_settings()
    assert info.value.field == variable
    assert f"{value!r} is not" in info.value.reason and allowed in info.value.reason
    assert f"set {variable}=" in info.value.hint


@pytest.mark.parametrize(
    ("command", "variable", "value"),
    [
        (("validate",), "CREDITRISK_MAX_REJECT_RATE", "abc"),
        (("features", "--as-of", "2023-01-01"), "CREDITRISK_HORIZON_MONTHS", "-1"),
    ],
)
def test_cli_refuses_a_bad_environment_value_in_one_line(cli, command, variable, value):
    result = cli(*command, env={variable: value})
    assert_clean_error(result, 2, f"'{variable}'", f"{value!r} is not")
    assert not cli.home.exists()


def test_reading_settings_creates_no_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CREDITRISK_HOME", str(tmp_path / "home"))
    settings = get_settings()
    assert settings.home == tmp_path / "home" and not settings.home.exists()


@pytest.mark.parametrize("user", ["tests/conftest.py", "benchmarks/training.py"])
def test_the_quiet_environment_is_written_once(user):
    text = (REPO / user).read_text()
    assert "quiet_environment()" in text
    assert not [key for key in QUIET_ENVIRONMENT if key in text]
