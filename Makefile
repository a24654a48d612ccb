# One-command entry points. Everything installs into .venv; llama-cpp-python is built from
# source once per venv (about 5 minutes on 2 cores) and reused from pip's wheel cache after.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TINY   := models/tiny
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=

.PHONY: help install demo test test-slow lint bench-memory clean

help:
	@echo "make demo       install, generate samples, run extract on them, show the records"
	@echo "make test       install test dependencies, run lint and the test suite"
	@echo "make test-slow  also run the slow tests (200-page memory run)"
	@echo "make lint       ruff + mypy"
	@echo "make bench-memory  streaming memory benchmark (200 pages)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing extract (building llama-cpp-python the first time: ~5 min) ..."
	$(BIN)/python -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

install: $(STAMP)

data/samples/invoice-001-classic.pdf: | $(STAMP)
	$(BIN)/extract samples generate data/samples

$(TINY)/tiny-llama.gguf: | $(STAMP)
	$(BIN)/extract models make-tiny $(TINY)

demo: $(STAMP) data/samples/invoice-001-classic.pdf $(TINY)/tiny-llama.gguf
	$(BIN)/extract run --schema schemas/invoice.json data/samples --output $(DEMO_OUT) \
		--model $(TINY)/tiny-llama.gguf --mmproj $(TINY)/tiny-mmproj.gguf
	$(BIN)/extract show $(DEMO_OUT)
	@echo ""
	@echo "NOTE: the demo model is a tiny RANDOM-WEIGHT VLM: it exercises the real pipeline"
	@echo "(render -> llama.cpp VLM -> grammar -> validation -> Parquet) but its values are noise."
	@echo "documents: $(DEMO_OUT)/documents.parquet  pages: $(DEMO_OUT)/pages.parquet   manifest: $(DEMO_OUT)/manifest.json"

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/mypy pipeline

# pytest exit code 5 means "no tests collected": not a failure for this target.
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then exit 0; fi; exit $$rc

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow" $(PYTEST_ARGS)

bench-memory: $(STAMP) $(TINY)/tiny-llama.gguf
	$(BIN)/python benchmarks/memory_streaming.py --pages 200

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
