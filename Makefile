# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
SNAKEMAKE_ARGS ?=
# Extra config files for `make demo`, layered over the demo profile's (e.g. CONFIG=my-runs.yaml).
CONFIG ?=
DEMO := snakemake --profile profiles/demo --configfile profiles/demo/workflow.yaml $(CONFIG)
PYTEST_ARGS ?=

.PHONY: demo test slurm-setup bench lint format clean-demo

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The workflow, then its HTML report (figures and tables of every run) in results/report.html.
demo: $(VENV)/.installed
	$(DEMO) $(SNAKEMAKE_ARGS)
	$(DEMO) $(SNAKEMAKE_ARGS) --report results/report.html

test: $(VENV)/.installed slurm-setup
	$(PY) -m pytest $(PYTEST_ARGS)

# For tests/test_slurm.py: Debian's slurmctld, slurmd and munge, installed when missing (as
# root with apt). Never fails `make test`: the SLURM test skips with the reason recorded here.
slurm-setup:
	-@bash tests/slurm/setup.sh build/slurm-setup.txt

bench: $(VENV)/.installed
	$(PY) scripts/bench.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	snakemake --lint
	snakefmt --check Snakefile rules

format: $(VENV)/.installed
	snakefmt Snakefile rules

clean-demo:
	rm -rf results/demo results/synthetic results/data results/logs results/benchmarks
