# creditrisk: `make run` runs the main job on the embedded default; `make test` runs the tests.
# Both bootstrap .venv on a fresh machine and reinstall only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
BIN    := $(VENV)/bin

# The quiet environment lives in pipelines/settings.py (QUIET_ENVIRONMENT). make exports its
# telemetry part again: the tools it starts (pip, pytest and its plugins) run before any
# creditrisk code can set it.
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export MPLBACKEND := Agg
export PREFECT_HOME := $(CURDIR)/.creditrisk/prefect
export PREFECT_LOGGING_LEVEL ?= WARNING

.PHONY: run test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	mkdir -p $(PREFECT_HOME)
	$(BIN)/creditrisk run

# Two test workers share 2 cores: LightGBM's OpenMP threads sleep rather than spin while they
# wait (205 s -> 86 s for the suite; not for runs: it slows one training by a quarter).
test: $(STAMP)
	mkdir -p $(PREFECT_HOME)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -n 2 --dist loadgroup -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python benchmarks/features.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/model_quality.py
	$(BIN)/python benchmarks/store.py

clean:
	rm -rf .creditrisk
