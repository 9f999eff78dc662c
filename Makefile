# shikong: two commands do everything — `make run` and `make test` (each sets up first).
SHELL := /bin/bash
PY := .venv/bin/python
CONFIG ?= conf/local.yaml
AREA ?= all

.PHONY: setup run test bench lint clean help

help:
	@echo "make run    set up, then run the whole pipeline on the default world (./lakehouse)"
	@echo "make test   set up, then run the test suite (real Spark + Sedona + Delta, local mode)"
	@echo "make bench  set up, then run benchmarks (AREA=spatial|timeseries|training|decisions|all)"
	@echo "make lint   ruff + mypy + layering contracts (import-linter)"

setup:
	@scripts/setup.sh

run: setup
	$(PY) -m shikong.cli run --config $(CONFIG)

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) bench/run.py --area $(AREA)

lint: setup
	$(PY) -m ruff check lib tests bench jobs scripts
	$(PY) -m mypy lib/shikong
	.venv/bin/lint-imports

clean:
	rm -rf lakehouse spark-warehouse metastore_db derby.log dist build
