# One-command entry points. Everything installs into .venv; llama-cpp-python is built from
# source (about 8 minutes on 2 cores) for the instruction sets this machine proves it runs
# (pipeline/devtools/cpu.py: no -march=native, no AMX a hypervisor refuses) and kept under
# ~/.cache/extract/llama-wheels/ per flag set. CUDA: make install LLAMA_CMAKE_ARGS=-DGGML_CUDA=on

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TINY   := models/tiny
DEMO_OUT ?= out/demo
PYTEST_ARGS ?=
LLAMA_VERSION ?= 0.3.36
LLAMA_CMAKE_ARGS ?=

.PHONY: help install install-models reinstall-llama doctor demo demo-vlm review test test-slow lint bench-memory \
	bench-eval bench-build image clean

help:
	@echo "make demo       install, pull the 1.5B text model, extract the sample invoices, show the records"
	@echo "make demo-vlm   the same through the VLM path with a tiny random-weight model (values are noise)"
	@echo "make test       install test dependencies and the 0.5B model, run lint and the test suite"
	@echo "make test-slow  also run the slow tests (200-page memory run)"
	@echo "make review     review the demo's flagged documents in a browser (after make demo)"
	@echo "make lint       ruff + mypy"
	@echo "make image      build the container image (docker or podman; IMAGE=extract:latest)"
	@echo "make doctor     does the installed llama.cpp run on this CPU (the start-up probe, on demand)"
	@echo "make reinstall-llama  rebuild llama-cpp-python for this machine (LLAMA_CMAKE_ARGS=-DGGML_CUDA=on for CUDA)"
	@echo "make bench-memory  streaming memory benchmark (200 pages)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	@echo "installing extract (building llama-cpp-python the first time: ~8 min) ..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python pipeline/devtools/cpu.py install $(BIN)/python $(LLAMA_VERSION)
	$(BIN)/python -m pip install --quiet -e ".[test,models-small]"
	$(BIN)/extract models pull qwen2.5-coder-0.5b
	@touch $(STAMP)

install: $(STAMP)

reinstall-llama: | $(BIN)/python
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python pipeline/devtools/cpu.py install $(BIN)/python $(LLAMA_VERSION)

doctor: $(STAMP)
	$(BIN)/extract doctor

MODELS_STAMP := $(VENV)/.models
$(MODELS_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[test,models]"
	$(BIN)/extract models pull qwen2.5-coder-1.5b
	@touch $(MODELS_STAMP)

install-models: $(MODELS_STAMP)

data/samples/invoice-001-classic.pdf: | $(STAMP)
	$(BIN)/extract samples generate data/samples

$(TINY)/tiny-llama.gguf: | $(STAMP)
	$(BIN)/extract models make-tiny $(TINY)

demo: $(MODELS_STAMP) data/samples/invoice-001-classic.pdf
	$(BIN)/extract run --schema schemas/invoice.json data/samples --output $(DEMO_OUT) \
		--model qwen2.5-coder-1.5b --backend text --samples 1
	$(BIN)/extract show $(DEMO_OUT)
	$(BIN)/extract eval --truth data/samples $(DEMO_OUT)
	@echo ""
	@echo "Real values: Qwen2.5-Coder-1.5B (text backend: PDF text layer, OCR for the scan and the PNG),"
	@echo "scored against the ground truth in data/samples/*.json."
	@echo "tables: $(DEMO_OUT)/{documents,pages,errors}/run_date=*/  manifests: $(DEMO_OUT)/_runs/"
	@echo "(incremental: running it again skips the documents already done; rm -rf $(DEMO_OUT) to redo them)"

demo-vlm: $(STAMP) data/samples/invoice-001-classic.pdf $(TINY)/tiny-llama.gguf
	$(BIN)/extract run --schema schemas/invoice.json data/samples --output out/demo-vlm \
		--model $(TINY)/tiny-llama.gguf --mmproj $(TINY)/tiny-mmproj.gguf
	$(BIN)/extract show out/demo-vlm
	@echo ""
	@echo "NOTE: this model is a tiny RANDOM-WEIGHT VLM: it exercises the real VLM pipeline"
	@echo "(render -> llama.cpp mtmd -> grammar -> validation -> Parquet) but its values are noise."
	@echo "tables: out/demo-vlm/{documents,pages,errors}/run_date=*/"

review: $(STAMP)
	$(BIN)/extract review $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/mypy pipeline

# "No tests ran" (pytest's exit code 5) is a failure too: a typo in PYTEST_ARGS must not pass.
test: lint
	$(BIN)/extract doctor
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m "slow or not slow" $(PYTEST_ARGS)

bench-memory: $(STAMP) $(TINY)/tiny-llama.gguf
	$(BIN)/python benchmarks/memory_streaming.py --pages 200

bench-eval: $(MODELS_STAMP)
	$(BIN)/python benchmarks/eval_models.py

IMAGE ?= localhost/extract:latest
image:
	$(PYTHON) pipeline/devtools/image.py build --tag $(IMAGE) --llama-cmake-args "$(LLAMA_CMAKE_ARGS)"

bench-build: $(STAMP)
	$(BIN)/python benchmarks/llama_build.py --version $(LLAMA_VERSION)

clean:
	rm -rf out .pytest_cache .mypy_cache .ruff_cache
