# Every target installs what it needs into .venv first, so each works on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast docs bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch that lies on this disk; a looser request pulls a CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

## The main job: the synthetic demo, end to end, no data to download.
demo: install
	$(BIN)/shiftattr demo --out shiftattr-demo

## The whole test suite, slow tests included (what CI runs). The suite's budget is 10
## minutes on a 2-core machine; the 20 slowest tests are listed to keep an eye on it.
## Tests, not whole files, go to the two workers as they free up (worksteal): with
## whole files the docs build's file kept one worker busy 150 s after the other had
## finished (7:52 against 8:42 on this machine).
test: install
	$(BIN)/python -m pytest -n 2 --dist worksteal --durations=20

## Everything but the slow tests, for quick local loops.
test-fast: install
	$(BIN)/python -m pytest -n 2 --dist worksteal -m "not slow"

docs: install
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: install
	$(BIN)/python -m pip install --quiet -e ".[bench]" || echo "some peers could not be installed; they will be reported as skipped"
	$(BIN)/python benchmarks/run.py --quick

lint: install
	$(BIN)/ruff check src tests examples benchmarks
	$(BIN)/ruff format --check src tests examples benchmarks

clean:
	rm -rf $(VENV) docs/_build shiftattr-demo .pytest_cache
