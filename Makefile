# Two commands do everything on a fresh machine:  make run  |  make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: run test lint typecheck unit bench soak clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

# Byte-compiling first keeps start-up fast even where PYTHONDONTWRITEBYTECODE is set (it
# only stops Python from writing the cache, not from reading it); unchanged files are skipped.
run: $(STAMP)
	$(BIN)/python -m compileall -q fittracker plugins > /dev/null
	$(BIN)/fittracker serve --config config/default.toml $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check fittracker plugins tests scripts run.py
	$(BIN)/ruff format --check fittracker plugins tests scripts run.py

# mypy cannot see through the editable-install import hook that maps plugins/ to the
# fittracker_plugins package, so give it a symlink with the package's real name.
typecheck: $(STAMP)
	mkdir -p build/typecheck && ln -sfn ../../plugins build/typecheck/fittracker_plugins
	MYPYPATH=build/typecheck $(BIN)/mypy -p fittracker -p fittracker_plugins
	MYPYPATH=build/typecheck $(BIN)/mypy tests scripts

unit: $(STAMP)
	$(BIN)/pytest -q $(ARGS)

test: lint typecheck unit

# Load scenarios of docs/performance.md against their baselines (installs wrk when missing).
bench: $(STAMP)
	$(BIN)/python -m compileall -q fittracker plugins > /dev/null
	$(BIN)/python scripts/bench.py $(ARGS)

# Ten minutes of mixed load on each deployment, memory and open files sampled (on demand, not in CI).
soak: $(STAMP)
	$(BIN)/python -m compileall -q fittracker plugins > /dev/null
	$(BIN)/python scripts/soak.py $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .pytest_cache .ruff_cache
