# One-command entry points; each creates its own virtual environment from PyPI first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: run test bytecode slurm stac-server lint lock clean
.DEFAULT_GOAL := run

$(BIN)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(BIN)/.installed-slurm: $(BIN)/.installed requirements-slurm.txt
	$(BIN)/pip install --quiet -r requirements-slurm.txt
	touch $@

$(BIN)/.installed-stac-server: $(BIN)/.installed requirements-stac-server.txt
	$(BIN)/pip install --quiet -r requirements-stac-server.txt
	touch $@

## bytecode: tilewise's modules compiled once, as pip compiles an installed package's. Every job is a
## new Python process that imports them, and Python reads this bytecode even where
## PYTHONDONTWRITEBYTECODE keeps it from writing its own: ~0.07 s of CPU saved per job. Up to date,
## it only compares times; a read-only checkout only loses the saving.
bytecode: $(BIN)/.installed
	-$(BIN)/python -m compileall -q src scripts

## run: the demo source and the demo state end to end (data generated locally, no network)
run: $(BIN)/.installed bytecode
	$(BIN)/snakemake --cores $(CORES) --config source=demo state=demo

## test: the test suite (unit tests and real snakemake runs); worksteal: a worker that runs out of
## tests takes some of the other's, so the suite does not end with one worker alone on a long queue
test: $(BIN)/.installed bytecode
	$(BIN)/pytest -n $(CORES) --dist worksteal --durations=30 tests

## slurm: add the SLURM executor plugin (for profiles/slurm and its test; not needed locally)
slurm: $(BIN)/.installed-slurm

## stac-server: add stac-fastapi-pgstac, the STAC API server of the root-only pgstac test
stac-server: $(BIN)/.installed-stac-server

## lint: snakemake's linter, snakefmt, and ruff (lint and format check)
lint: $(BIN)/.installed
	$(BIN)/snakemake --lint
	$(BIN)/snakefmt --check Snakefile rules
	$(BIN)/ruff check src scripts tests bench
	$(BIN)/ruff format --check src scripts tests bench

## lock: re-pin requirements.txt and the extras (requirements-slurm.txt, requirements-stac-server.txt)
## from the current environment; a package listed in an extra stays there (pinned as before if absent)
EXTRAS := requirements-slurm.txt requirements-stac-server.txt
lock:
	$(BIN)/pip freeze --exclude-editable | grep -v '^py-spy==' > .freeze
	for f in $(EXTRAS); do \
	  awk -F'==' 'NR == FNR { pin[tolower($$1)] = $$0; next } \
	    /^#/ || !(tolower($$1) in pin) { print; next } { print pin[tolower($$1)] }' .freeze $$f > $$f.new; \
	  mv $$f.new $$f; done
	cat $(EXTRAS) | grep -v '^#' | sed 's/==.*/==/' > .names
	{ echo "# Exact pins of every Python package the workflow and its tests use (pip freeze of a working venv)."; \
	  echo "# Refresh: make lock"; grep -v -i -F -f .names .freeze; } > requirements.txt
	rm .freeze .names

clean:
	rm -rf source-store polygon-store tar-store reports work results resources logs benchmarks .snakemake
