# The two commands a user needs: `make run` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test ui docs bench verify clean glue-wheel

## Seed the embedded source (first time only), run the whole migration with all checks, print a summary.
run: $(STAMP)
	$(BIN)/consorcio run

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## Set up and run the test suite.
test: $(STAMP)
	bash infra/install-checkov.sh
	bash consorcio_assets_tests/ui/install-chromium.sh
	bash consorcio_assets_tests/glue/install-java.sh
	$(BIN)/python -m consorcio_assets.glue.wheel
	$(BIN)/python -m pytest -n 2 -q -p no:cacheprovider

## The Glue job's wheel (consorcio_glue + consorcio_core) for --extra-py-files: dist/glue/consorcio_glue-<version>-py3-none-any.whl.
glue-wheel: $(STAMP)
	$(BIN)/python -m consorcio_assets.glue.wheel

## Dagster UI (webserver + daemon) on http://127.0.0.1:3000 with the PostgreSQL-backed instance.
ui: $(STAMP)
	$(BIN)/consorcio ui

## Every check against the current state, without loading anything.
verify: $(STAMP)
	$(BIN)/consorcio verify

## Regenerate docs/ from the catalog.
docs: $(STAMP)
	$(BIN)/consorcio docs

## The benchmark at 1M simulações (long: see bench/README.md).
bench: $(STAMP)
	$(BIN)/consorcio bench

clean:
	rm -rf .data
