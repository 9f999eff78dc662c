# shikong: two commands do everything — `make run` and `make test` (each sets up first).
SHELL := /bin/bash
PY := .venv/bin/python
CONFIG ?= conf/local.yaml
AREA ?= all
OLIST ?= ../shared/data/olist_sample

.PHONY: setup run run-olist test bench lint image image-test clean help

help:
	@echo "make run    set up, then run the whole pipeline on the default world (./lakehouse)"
	@echo "make run-olist  the whole pipeline on the real Olist files (OLIST=dir; ./lakehouse-olist)"
	@echo "make clean  remove ./lakehouse and ./lakehouse-olist (and Spark and build leftovers)"
	@echo "make test   set up, then run the test suite (real Spark + Sedona + Delta, local mode)"
	@echo "make bench  set up, then run benchmarks (AREA=spatial|timeseries|training|decisions|all)"
	@echo "make lint   ruff + mypy + layering contracts (import-linter)"
	@echo "make image       build the container image with podman (docker/Dockerfile; not part of make test)"
	@echo "make image-test  run shikong and the smoke tests inside the built image's filesystem"

setup:
	@scripts/setup.sh

run: setup
	$(PY) -m shikong.cli run --config $(CONFIG)

# The real Olist sample (OLIST= another folder of the same files) into ./lakehouse-olist.
run-olist: setup
	$(PY) -m shikong.cli run --config conf/olist.yaml --source olist --path $(OLIST)

# Two pytest workers (TEST_WORKERS=0: one process). Tests sharing the session's pipeline
# fixtures run on one worker (tests/conftest.py groups them), every other file on one.
TEST_WORKERS ?= 2
test: setup
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

bench: setup
	$(PY) bench/run.py --area $(AREA)

lint: setup
	$(PY) -m ruff check lib tests bench jobs scripts notebooks
	$(PY) -m mypy lib/shikong
	.venv/bin/lint-imports

# Not in `make test`: the image build downloads the stack from PyPI (about 7 minutes) and
# the in-image run takes as long again; CI's budget goes to the suite.
image: setup
	@scripts/image.sh

image-test:
	@scripts/image_test.sh

clean:
	rm -rf lakehouse lakehouse-olist spark-warehouse metastore_db derby.log dist build
