# creditrisk: `make run` runs the main job on the embedded default; `make test` runs the tests.
# Both bootstrap .venv on a fresh machine and reinstall only when pyproject.toml changed.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed
BIN    := $(VENV)/bin

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

test: $(STAMP)
	mkdir -p $(PREFECT_HOME)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q

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
