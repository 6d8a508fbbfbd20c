# Bias Mirror: two commands on a fresh machine.
#   make demo   the kiosk on the shipped models and a generated demo clip
#   make test   lint, types and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/datasets/faces64
WIDER ?= ../shared/datasets/wider-demog

.PHONY: demo test lint bench models assets clean help

help:
	@echo "make demo    run the kiosk on the shipped models and a generated demo clip"
	@echo "make test    ruff, mypy and pytest (creates .venv)"
	@echo "make bench   latency / fps / memory benchmarks"
	@echo "make models  train, evaluate and export the shipped bundles (DATA=$(DATA) WIDER=$(WIDER))"
	@echo "make assets  regenerate assets/config/default.yaml and the README screenshots from code"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# One stamp per extra set, so `make demo` never pulls TensorFlow.
$(VENV)/.runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[runtime]'
	@touch $@

$(VENV)/.all: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[runtime,train,dev]'
	@touch $@ $(VENV)/.runtime

demo: $(VENV)/.runtime
	$(BIN)/bias-mirror demo

lint: $(VENV)/.all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/pytest

bench: $(VENV)/.runtime
	$(BIN)/bias-mirror bench

models: $(VENV)/.all
	$(BIN)/bias-mirror-export all --data $(DATA) --wider $(WIDER) --out assets/models --seeds 0 1 2 --epochs 12 --latent-dim 32 \
		--width 16 --convs-per-stage 2

# Files generated from code: the default config (from the schema) and the README's screenshots.
assets: $(VENV)/.runtime
	$(BIN)/python -m installation.tools.default_config
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/python -m installation.tools.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
