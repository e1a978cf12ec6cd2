# rrn developer commands. Everything runs inside .venv, created on first use, so a
# fresh clone needs only Python 3.11+ and access to the package registry. The venv is
# installed from deploy/lock/dev.txt: exact versions, every artefact's hash checked.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# rrn's import package as the editable install sees it: links to the folders here.
SRC := $(VENV)/src/rrn
LOCK := deploy/lock
# How the locks are resolved: for every platform, Python 3.11 up, with every hash.
COMPILE := $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --no-header --quiet

.PHONY: soak install tools lint format test test-fast fuzz demo bench bench-history bench-store-profile catalogues clean lock sbom

install: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)/dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "rrn needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK)/dev.txt || { \
	  echo "make install: a dependency could not be installed as $(LOCK)/dev.txt pins it" >&2; \
	  echo "  (no network, or an artefact whose hash differs from the lock's: never edit" >&2; \
	  echo "  a hash to make it pass; see docs/OPERATIONS.md, 'Installing from the lock')" >&2; \
	  exit 1; }
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
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

# Re-resolve the locks after a change to pyproject.toml (pins kept where they still
# fit; UPGRADE=1 takes the newest releases). Review the diff before committing it.
lock: $(STAMP)
	$(COMPILE) $(if $(UPGRADE),--upgrade) -o $(LOCK)/runtime.txt
	$(COMPILE) $(if $(UPGRADE),--upgrade) --extra dev -o $(LOCK)/dev.txt
	$(COMPILE) $(if $(UPGRADE),--upgrade) --extra report -o $(LOCK)/report.txt
	@git diff --stat -- $(LOCK) || true

# The CycloneDX SBOM of what a production node runs (deploy/lock/runtime.txt, with the
# nats-server binary and the tz database as components of their own).
sbom: $(STAMP)
	$(BIN)/python deploy/sbom.py --out dist/rrn-sbom.cdx.json

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

# The chaos soak for longer than make test's 90 s (needs root): DURATION seconds,
# SEED; report.json and delivery.svg in soak-report/.
soak: $(STAMP)
	$(BIN)/python -m tests.chaos --duration $${DURATION:-600} --seed $${SEED:-1} --out soak-report

demo: $(STAMP)
	$(BIN)/python -m rrn.node.devnet.demo

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/catchup.py
	$(BIN)/python bench/mesh.py
	$(BIN)/python bench/week.py --seed 1 --out docs/week

# Years of history (issue 20): a node holding a million events, and one catching up from it
# (about half an hour on 2 cores). HISTORY=dir keeps the built history there; add
# ARGS="--reuse dir" to measure it again without building.
bench-history: $(STAMP)
	$(BIN)/python bench/history.py --events $${EVENTS:-1000000} $(if $(HISTORY),--out $(HISTORY)) $(ARGS)

# Where a growing store's time goes: HISTORY=dir (built by bench-history) imported again,
# each statement timed, per tenth of the events (about five minutes at 1M).
bench-store-profile: $(STAMP)
	@test -n "$(HISTORY)" || { echo "make bench-store-profile HISTORY=dir (a history kept by make bench-history HISTORY=dir)"; exit 2; }
	$(BIN)/python bench/store_profile.py $(HISTORY) $(ARGS)

# Extract the console's messages into node/console/locale/console.pot and merge them into each language's console.po (new ones come untranslated).
catalogues: $(STAMP)
	$(BIN)/pybabel -q extract -F node/console/babel.cfg -k N_ -c Translators: --add-location=file --sort-output --no-wrap --omit-header -o node/console/locale/console.pot node/console
	for l in es fr pt; do \
	  $(BIN)/pybabel -q update -D console -d node/console/locale -i node/console/locale/console.pot -l $$l --init-missing --no-fuzzy-matching --ignore-obsolete --ignore-pot-creation-date --no-wrap || exit 1; \
	done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build dist *.egg-info
