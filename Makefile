# rrn developer commands. Everything runs inside .venv, created on first use, so a
# fresh clone needs only Python 3.11+ and access to the package registry.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# rrn's import package as the editable install sees it: links to the folders here.
SRC := $(VENV)/src/rrn

.PHONY: install tools lint format test test-fast fuzz demo bench catalogues clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rrn needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	mkdir -p $(SRC)
	for p in protocol federation node; do ln -sfn ../../../$$p $(SRC)/$$p; done
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The real tools the deploy kit is checked with (.ci/tools installs them as root).
tools:
	@.ci/tools

test: lint tools
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not integration"

# Many more examples of the structure-aware decoder fuzzing `make test` runs a little of
# (about 10 minutes on 2 cores; RRN_FUZZ_EXAMPLES=n to change).
fuzz: $(STAMP)
	RRN_FUZZ_EXAMPLES=$${RRN_FUZZ_EXAMPLES:-20000} $(BIN)/python -m pytest -p no:cacheprovider tests/test_fuzz.py

demo: $(STAMP)
	$(BIN)/python -m rrn.node.devnet.demo

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/catchup.py

# Extract the console's messages into node/console/locale/console.pot and merge them into each language's console.po (new ones come untranslated).
catalogues: $(STAMP)
	$(BIN)/pybabel -q extract -F node/console/babel.cfg -k N_ -c Translators: --add-location=file --sort-output --no-wrap --omit-header -o node/console/locale/console.pot node/console
	for l in es fr pt; do \
	  $(BIN)/pybabel -q update -D console -d node/console/locale -i node/console/locale/console.pot -l $$l --init-missing --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date --no-wrap || exit 1; \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
