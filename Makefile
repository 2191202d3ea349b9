# Leasehold — `make help` lists the targets. The README's two commands are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
CRATE := assignment/partition-core
export PATH := $(CURDIR)/$(VENV)/bin:$(HOME)/.cargo/bin:$(PATH)

.PHONY: help install system-deps run test test-fast lint protos protos-check bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml $(shell find $(CRATE)/src proto -name '*.rs' -o -name '*.proto') $(CRATE)/Cargo.toml $(CRATE)/build.rs
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed ## Create .venv, build the Rust extension (release) and install everything

system-deps: ## Install ZooKeeper, PostgreSQL and bubblewrap from Debian's packages when missing
	bash scripts/system-deps.sh

run: install ## Build, start the whole platform on this machine (leasehold dev), deploy and invoke a sample
	$(VENV)/bin/leasehold dev --data-dir .leasehold --sample

test: install system-deps lint test-fast ## Everything CI runs: lint, Rust tests, the whole Python suite

test-fast: install ## Rust and Python tests without lint
	cd $(CRATE) && cargo test --quiet
	$(PY) -m pytest

lint: install ## ruff, mypy --strict, stubtest, cargo fmt/clippy, proto drift
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
	$(PY) -m mypy.stubtest assignment._core --allowlist assignment/stubtest-allowlist.txt
	cd $(CRATE) && cargo fmt --check && cargo clippy --quiet --all-targets --all-features -- -D warnings
	$(PY) proto/gen_protos.py --check

protos: ## Regenerate the Python protobuf modules and stubs from proto/
	$(PY) proto/gen_protos.py

bench: install ## Run the benchmarks (tests/benchmarks) and print their tables
	$(PY) -m pytest tests/benchmarks -m benchmark -s -p no:cacheprovider

clean: ## Remove the venv and build outputs
	rm -rf $(VENV) $(CRATE)/target assignment/_core*.so .mypy_cache .pytest_cache .ruff_cache
