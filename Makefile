# Monorepo of seven independently versioned packages. `make help` lists the targets.
# PKG=<pip-name>[,<pip-name>...] selects packages (default: all of ci/packages.txt).
# Every pip call passes -c ci/constraints.txt (torch==2.13.0, the CPU build).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
CONSTRAINTS := ci/constraints.txt
PIP := $(VPY) -m pip --disable-pip-version-check
ALL_PKGS := $(shell awk '!/^\#/ && NF {print $$1}' ci/packages.txt)
comma := ,
PKG ?=
PKGS := $(if $(strip $(PKG)),$(subst $(comma), ,$(PKG)),$(ALL_PKGS))
PKG_ARG := $(if $(strip $(PKG)),--pkg "$(PKG)",)
BENCH_ARGS ?=

.PHONY: help venv install lint test test-isolated bench demo wheel-check gpu-check gpu-wheels clean distclean

help: ## list the targets
	@echo "usage: make TARGET [PKG=name[,name...]]   packages: $(ALL_PKGS)"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.venv-ready: ci/requirements-dev.txt ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c $(CONSTRAINTS) -r ci/requirements-dev.txt
	touch $@

venv: $(VENV)/.venv-ready ## create .venv with the development tools (pytest, ruff, mypy, deptry)

install: venv ## install the selected packages editable, with their [test] extras, into .venv
	$(PIP) install -q -c $(CONSTRAINTS) --no-build-isolation $(foreach p,$(PKGS),-e "packages/$(p)[test]")

lint: install ## ruff check + format check, deptry per package, mypy per package
	$(VENV)/bin/ruff check ci $(foreach p,$(PKGS),packages/$(p))
	$(VENV)/bin/ruff format --check ci $(foreach p,$(PKGS),packages/$(p))
	@for p in $(PKGS); do \
	  echo "deptry packages/$$p/src"; \
	  (cd packages/$$p && ../../$(VENV)/bin/deptry src) || exit 1; \
	done
	@for p in $(PKGS); do \
	  echo "mypy packages/$$p/src"; \
	  $(VENV)/bin/mypy --config-file mypy.ini packages/$$p/src || exit 1; \
	done

test: install ## check package consistency, then run each package's tests in its own pytest process
	$(VPY) ci/check_packages.py
	$(VPY) ci/run_tests.py --python $(VPY) $(PKG_ARG)

test-isolated: venv ## each package's wheel alone in a fresh venv, its non-slow tests run outside the tree
	$(PYTHON) ci/test_isolated.py --build-python $(VPY) $(PKG_ARG)

bench: install ## run benchmarks/run.py of the selected packages (BENCH_ARGS="--quick" for the smoke run)
	@status=0; for p in $(PKGS); do \
	  echo "== bench $$p"; \
	  (cd packages/$$p && ../../$(VPY) benchmarks/run.py $(BENCH_ARGS)) || status=1; \
	done; exit $$status

demo: install ## run each package's `demo` verb in turn and report which are not ready
	$(VPY) ci/run_demos.py --venv $(VENV) $(PKG_ARG)

wheel-check: venv ## build each wheel, install it away from the source tree, import it, run its --help
	$(PYTHON) ci/wheel_check.py --build-python $(VPY) $(PKG_ARG)

gpu-check: ## the one script for a lent GPU machine (uses $(PYTHON) with torch; no venv, no network)
	$(PYTHON) ci/gpu_check.py --out build/gpu-check $(PKG_ARG)

gpu-wheels: venv ## download TRL and the wheels it needs beyond the GPU image into .gpu-wheels/ (carry it there)
	$(VPY) ci/gpu_check.py --fetch-wheels .gpu-wheels

clean: ## remove build outputs and caches (keeps .venv)
	rm -rf build dist
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -o -name '*.egg-info' -o -name .pytest_cache \
	  -o -name .ruff_cache -o -name .mypy_cache \) -type d -print0 | xargs -0 rm -rf

distclean: clean ## clean, and remove .venv too
	rm -rf $(VENV)
