# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: demo test bench lint format clean-demo

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: $(VENV)/.installed
	snakemake --profile profiles/demo $(SNAKEMAKE_ARGS)

test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed
	$(PY) scripts/bench.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	snakemake --lint
	snakefmt --check Snakefile rules

format: $(VENV)/.installed
	snakefmt Snakefile rules

clean-demo:
	rm -rf results/demo results/synthetic results/data results/logs results/benchmarks
