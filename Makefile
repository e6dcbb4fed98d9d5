# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(abspath $(VENV))/bin:$(PATH)
SNAKEMAKE_ARGS ?=
# Extra config files for `make demo`, layered over the demo profile's (e.g. CONFIG=my-runs.yaml).
CONFIG ?=
DEMO := snakemake --profile profiles/demo --configfile profiles/demo/workflow.yaml $(CONFIG)
PYTEST_ARGS ?=
# The torch build (docs/cluster.md, "CUDA build"): empty = PyPI's default wheel (CUDA 13.0 for
# torch 2.14.1); cu126, cu128, cu130 or cpu = that variant from the PyTorch index.
TORCH_CUDA ?=
TORCH_INDEX ?= https://download.pytorch.org/whl
# `torch==X+cu126`-style pins of the variant, beside requirements.txt's plain ones, so pip
# replaces a torch of another build that would satisfy the plain pin.
TORCH_PINS = $(if $(TORCH_CUDA),--extra-index-url $(TORCH_INDEX)/$(TORCH_CUDA) \
	$(foreach p,$(shell grep -E '^(torch|torchvision)==' requirements.txt),$(p)+$(TORCH_CUDA)))

.PHONY: demo test test-fast slurm-setup report-setup bench lint format clean-demo

# Reinstalled when TORCH_CUDA changes (the stamp names the build).
$(VENV)/.installed: requirements.txt pyproject.toml $(VENV)/.torch-$(or $(TORCH_CUDA),default)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt $(TORCH_PINS)
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# Another build than the venv's (an older stamp): remove its torch, which the plain pins
# would keep, so that the install above fetches the one asked for.
$(VENV)/.torch-%:
	if ls $(VENV)/.torch-* >/dev/null 2>&1; then \
		rm -f $(VENV)/.torch-* && $(PY) -m pip uninstall --quiet -y torch torchvision; fi
	mkdir -p $(VENV) && touch $@

# The workflow, then its HTML report (figures and tables of every run) in results/report.html.
demo: $(VENV)/.installed
	$(DEMO) $(SNAKEMAKE_ARGS)
	$(DEMO) $(SNAKEMAKE_ARGS) --report results/report.html

# Lint first: CI runs `make test` (.ci/run), so a lint finding fails it before the tests run.
test: $(VENV)/.installed lint slurm-setup report-setup
	$(PY) -m pytest $(PYTEST_ARGS)

# The unit tests only, without the Snakemake and SLURM runs (a few minutes): while editing.
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not workflow and not slurm" $(PYTEST_ARGS)

# For tests/test_slurm.py: Debian's slurmctld, slurmd and munge, installed when missing (as
# root with apt). Never fails `make test`: the SLURM test skips with the reason recorded here.
slurm-setup:
	-@bash tests/slurm/setup.sh build/slurm-setup.txt

# For the report test (tests/test_workflow.py): Debian's chromium, installed the same way.
# Never fails `make test`: that test skips with the reason recorded here.
report-setup:
	-@bash tests/report/setup.sh build/report-setup.txt

bench: $(VENV)/.installed
	$(PY) scripts/bench.py $(BENCH_ARGS)

lint: $(VENV)/.installed
	ruff check rocksr scripts tests
	snakemake --lint
	snakefmt --check Snakefile rules

format: $(VENV)/.installed
	snakefmt Snakefile rules

clean-demo:
	rm -rf results/demo results/synthetic results/data results/logs results/benchmarks
