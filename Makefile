# rxinbox: `make demo` and `make test` set everything up on a fresh machine, then run.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export GX_ANALYTICS_ENABLED := false
export ANONYMIZED_TELEMETRY := False
export HF_HUB_OFFLINE := 1

.PHONY: install demo test bench eval schemas clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: install  ## load the demo pharmacy and mailbox into .rxinbox/demo and sweep it
	RXINBOX_HOME=$${RXINBOX_HOME:-.rxinbox/demo} $(VENV)/bin/rxinbox demo

test: install  ## run the whole test suite
	$(PY) -m pytest

bench: install  ## throughput and memory: sweep of 10,000 generated messages, triage speed
	$(PY) -m evals.bench_sweep --messages 10000
	$(PY) -m evals.bench_triage

eval: install  ## quality: triage metrics, retrieval accuracy, grounding of drafts
	$(PY) -m evals.triage_eval
	$(PY) -m evals.retrieval_eval --check
	$(PY) -m evals.grounding_eval --check

schemas: install  ## regenerate the committed JSON Schemas
	$(PY) -m data_contracts.schema_export
	$(PY) -m policy_rules.loader

clean:
	rm -rf .rxinbox .pytest_cache
