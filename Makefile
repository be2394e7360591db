# The two commands a user needs: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-fast lint ui docs bench verify stop clean lock glue-wheel
PORT ?= 3000

## Seed the embedded source (first time only), run the whole migration with all checks, print a summary.
run: $(STAMP)
	$(BIN)/consorcio run

$(STAMP): pyproject.toml requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

## Set up and run the test suite.
test: $(STAMP)
	bash infra/install-checkov.sh
	bash consorcio_assets_tests/ui/install-chromium.sh
	bash docs/install-graphviz.sh
	bash consorcio_assets_tests/glue/install-java.sh
	$(BIN)/python -m consorcio_assets.deployment.glue_wheel
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -n 2 -q -p no:cacheprovider

## The edit loop: every test but the slow kinds (markers in pyproject.toml), in parallel; no installs beyond the venv.
SLOW_MARKERS := browser infra faults bench spark deploy slow
empty :=
FAST := not $(subst $(empty) $(empty), and not ,$(SLOW_MARKERS))
test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q -p no:cacheprovider -m "$(FAST)"

## Lint (ruff), format check (ruff format --check) and type check (mypy, settings in pyproject.toml).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## The Glue job's wheel (consorcio_glue + consorcio_core) for --extra-py-files: dist/glue/consorcio_glue-<version>-py3-none-any.whl.
glue-wheel: $(STAMP)
	$(BIN)/python -m consorcio_assets.deployment.glue_wheel

## Dagster UI (webserver + daemon) on http://127.0.0.1:$(PORT) with the PostgreSQL-backed instance (make ui PORT=3001).
ui: $(STAMP)
	$(BIN)/consorcio ui --port $(PORT)

## Stop the embedded PostgreSQL (it stays up between commands so they and the UI share it).
stop: $(STAMP)
	$(BIN)/consorcio stop

## Every check against the current state, without loading anything.
verify: $(STAMP)
	$(BIN)/consorcio verify

## Regenerate docs/ from the catalog.
docs: $(STAMP)
	bash docs/install-graphviz.sh
	$(BIN)/consorcio docs

## The benchmark at 1M simulações (long: see bench/README.md).
bench: $(STAMP)
	$(BIN)/consorcio bench

## Re-pin requirements.lock, the deployment image's runtime dependencies (`.[aws]`, hashed) for Python 3.11 on
## x86_64 Linux, and requirements-dev.lock, what the venv installs (`.[dev]` plus every extra in DEV_EXTRAS that
## pyproject.toml defines). Run after changing any dependency; the Dockerfile and .venv install exactly these files.
UV_VERSION := 0.13.9
DEV_EXTRAS = $(foreach extra,dev bench,$(if $(shell grep -E '^$(extra) = \[' pyproject.toml),--extra $(extra)))
lock:
	test -x $(VENV)/tools/uv/bin/uv || ($(PYTHON) -m venv $(VENV)/tools/uv && $(VENV)/tools/uv/bin/pip install --quiet uv==$(UV_VERSION))
	$(VENV)/tools/uv/bin/uv pip compile pyproject.toml --extra aws --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --annotation-style line --custom-compile-command 'make lock' -o requirements.lock
	$(VENV)/tools/uv/bin/uv pip compile pyproject.toml $(DEV_EXTRAS) --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --annotation-style line --custom-compile-command 'make lock' -o requirements-dev.lock

clean:
	-test ! -x $(BIN)/consorcio || $(BIN)/consorcio stop
	rm -rf .data
