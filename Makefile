# The two commands of the README: `make demo` and `make test`. Each sets itself up first.
UV_VERSION := 0.13.8
UV := python3 -m uv
DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export DAGSTER_HOME

.PHONY: setup instance test-servers demo test test-fast lint ui

setup:
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet "uv==$(UV_VERSION)"
	$(UV) sync --frozen

instance:
	@mkdir -p "$(DAGSTER_HOME)"
	@cp dagster.yaml "$(DAGSTER_HOME)/dagster.yaml"

# What the tests run besides Python: Azurite (Azure Storage emulator) from npm, pinned by
# tools/azurite; PostgreSQL and Chromium from Debian, for the end-to-end suite.
test-servers:
	@test -x tools/azurite/node_modules/.bin/azurite-blob || \
		(cd tools/azurite && npm ci --no-audit --no-fund --loglevel=error)
	@if ! command -v chromium >/dev/null || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium postgresql >/dev/null; fi

demo: setup instance
	.venv/bin/exporter-pipeline demo

test: setup instance test-servers
	.venv/bin/ruff check exporter_pipeline exporter_pipeline_tests benchmarks
	.venv/bin/mypy
	.venv/bin/dagster definitions validate -w workspace.yaml
	.venv/bin/pytest

# The unit tier only (no server, no slow subprocess): under a minute on two cores. The
# tiers are given in exporter_pipeline_tests/conftest.py; `make test` runs all of them.
# `--dist load` (not the default loadfile): no unit file then holds one worker alone.
test-fast: setup instance
	.venv/bin/pytest -m unit --dist load

lint:
	.venv/bin/ruff check exporter_pipeline exporter_pipeline_tests benchmarks
	.venv/bin/ruff format --check exporter_pipeline exporter_pipeline_tests benchmarks
	.venv/bin/mypy

ui: setup instance
	.venv/bin/dagster dev -w workspace.yaml
