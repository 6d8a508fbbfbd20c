# Bias Mirror: two commands on a fresh machine.
#   make demo   the kiosk on the shipped models and a generated demo clip
#   make test   lint, types and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA ?= ../shared/datasets/faces64
WIDER ?= ../shared/datasets/wider-demog

# The shipped recipe (make models); `make recheck` trains it on the other half of wider-demog.
MODEL_FLAGS := --method balanced --augment wild-context --learning-rate 1e-3 --right-learning-rate 5e-4 \
	--data $(DATA) --wider $(WIDER) --wider-train --seeds 0 1 2 --epochs 12 --right-epochs 20 \
	--latent-dim 32 --width 16 --convs-per-stage 2
SEED_RUNS = $(1)/runs/s0 $(1)/runs/s1 $(1)/runs/s2

.PHONY: demo test lint bench models recheck assets install uninstall clean help

help:
	@echo "make demo    run the kiosk on the shipped models and a generated demo clip"
	@echo "make test    ruff, mypy and pytest (creates .venv)"
	@echo "make bench   latency / fps / memory benchmarks"
	@echo "make install install the kiosk as a systemd service (root; INSTALL_ARGS=--x11 --coral ...)"
	@echo "make models  train, evaluate and export the shipped bundles (DATA=$(DATA) WIDER=$(WIDER))"
	@echo "make recheck after make models: the recipe trained on half B, every face judged by the run that did not see it"
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

# One pytest worker per core, at most 4 (each may import TensorFlow, ~1 GB): half the wall time
# on a 2-core machine, since many tests wait on a broker, a thread or a timeout. Every test keeps
# its own broker port, state and cache folders, so workers never share a file. `pytest` alone
# runs serially, for debugging.
test: lint
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/pytest -n auto --maxprocesses 4 --dist worksteal

bench: $(VENV)/.runtime
	$(BIN)/bias-mirror bench

models: $(VENV)/.all
	$(BIN)/bias-mirror-export all $(MODEL_FLAGS) --out assets/models

# After `make models` (its checkpoints): the same recipe trained on half B of wider-demog's
# photos, then the report again with every face judged by the seed-k models that did not see its
# photo; the right-hand card's label follows the re-check (about as long as make models;
# assets/models/README.md "Re-check of 2026-12-07").
recheck: $(VENV)/.all
	$(BIN)/bias-mirror-export all $(MODEL_FLAGS) --wider-train-half B --work checkpoints/half-b \
		--out checkpoints/half-b/out
	$(BIN)/bias-mirror-export report --data $(DATA) --wider $(WIDER) --wider-train \
		--runs $(call SEED_RUNS,checkpoints) --works checkpoints checkpoints checkpoints \
		--cross-runs $(call SEED_RUNS,checkpoints/half-b) --out assets/models/report --ship-to assets/models

# Files generated from code: the default config (from the schema) and the README's screenshots.
assets: $(VENV)/.runtime
	$(BIN)/python -m installation.tools.default_config
	SDL_VIDEODRIVER=dummy SDL_AUDIODRIVER=dummy $(BIN)/python -m installation.tools.screenshots

# The kiosk as a systemd service: user, /opt/bias-mirror (+ venv), /etc/bias-mirror, the unit.
install:
	bash systemd/install.sh $(INSTALL_ARGS)

uninstall:
	bash systemd/install.sh --uninstall $(INSTALL_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
