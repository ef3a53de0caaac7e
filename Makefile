# gridcoop — every command sets up what it needs (idempotently) and then runs.
#   make test   set up, compile, run the whole test suite
#   make demo   set up, compile, run the co-op on a self-started local anvil
#   make bench  set up, compile, run the benchmarks (writes bench/results.json)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SOLC_VERSION := 0.8.28
SOLCX_DIR := $(HOME)/.solcx
SOLCX_BIN := $(SOLCX_DIR)/solc-v$(SOLC_VERSION)
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# Debian's mbpoll (a Modbus client), unpacked into .tools/ without root, to check the meter
# simulator against a third-party Modbus master (tests/meters/test_bridge_units.py); Debian's
# Mosquitto 2.0 MQTT broker with the two libraries it links that a bare Debian lacks (ldd: libwrap,
# libdlt), which the MQTT tests and `make bench-scale` start on loopback ports (.venv/bin/mosquitto);
# and Debian's PostgreSQL 15 server (initdb, postgres), which the tests and benchmarks start on
# loopback ports as an unprivileged user (gridcoop_sdk/postgres.py) to run the keeper's store on it.
PG_BIN := .tools/root/usr/lib/postgresql/15/bin
DEB_PACKAGES := mbpoll=1.4.11+dfsg-2 libmodbus5=3.1.6-2.1 \
	mosquitto=2.0.11-1.2+deb12u2 libwrap0=7.6.q-32 libdlt2=2.18.8-6 postgresql-15=15.18-0+deb12u1
DEB_STAMP := .tools/.installed
ARTIFACTS := .build/__local__.json
SOURCES := $(shell find contracts -name '*.sol' -not -path '*/.cache/*' 2>/dev/null)

export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help setup build test test-full demo bench bench-scale lint clean solc slither

help:
	@echo "make test   - set up (venv, npm, compiler), compile, run all tests"
	@echo "make test-full - make test plus the heaviest fault/load profiles (GRIDCOOP_TEST_FULL=1)"
	@echo "make demo   - set up, compile, run the co-op on a self-started anvil"
	@echo "make bench  - set up, compile, run benchmarks -> bench/results.json"
	@echo "make bench-scale - 10,000 meters through Mosquitto -> 2 MQTT relay workers -> anvil -> bench/results.json"
	@echo "make lint   - ruff over the Python code"
	@echo "make slither - Slither static analysis of contracts/ (fails on medium/high findings)"
	@echo "make clean  - remove build outputs (keeps .venv and node_modules)"

$(PY_STAMP): requirements.lock pyproject.toml
	@echo "==> python venv ($(VENV)) with pinned packages"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip==24.3.1
	@$(BIN)/python -m pip install -q -r requirements.lock
	@$(BIN)/python -m pip install -q --no-deps -e .
	@touch $@
	@ln -sf ../../node_modules/.bin/anvil $(BIN)/anvil
	@ln -sf ../../node_modules/.bin/forge $(BIN)/forge

$(NPM_STAMP): package.json package-lock.json
	@echo "==> npm packages (solc-js, anvil, forge, OpenZeppelin) from package-lock.json"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The solc-js facade, installed where py-solc-x and ape-solidity look for solc $(SOLC_VERSION).
# Always rewritten (cheap) so it points at this checkout.
solc: $(NPM_STAMP)
	@mkdir -p $(SOLCX_DIR)
	@printf '#!/bin/sh\nexec node "%s/tools/solc/solc.js" "$$@"\n' "$(CURDIR)" > $(SOLCX_BIN).tmp
	@chmod +x $(SOLCX_BIN).tmp && mv -f $(SOLCX_BIN).tmp $(SOLCX_BIN)

setup: $(PY_STAMP) $(NPM_STAMP) solc $(DEB_STAMP)

$(DEB_STAMP): Makefile $(PY_STAMP)
	@echo "==> Debian packages for the tests ($(DEB_PACKAGES)), unpacked into .tools/"
	@rm -rf .tools && mkdir -p .tools/debs
	@cd .tools/debs && apt-get download -q=2 $(DEB_PACKAGES) 2>&1 | grep -v "unsandboxed as root" || true
	@for d in .tools/debs/*.deb; do dpkg-deb -x "$$d" .tools/root; done
	@test -x .tools/root/usr/bin/mbpoll || { echo "mbpoll could not be downloaded from Debian (apt-get download $(DEB_PACKAGES))"; exit 1; }
	@printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/.tools/root/usr/lib/x86_64-linux-gnu" exec "%s/.tools/root/usr/bin/mbpoll" "$$@"\n' "$(CURDIR)" "$(CURDIR)" > $(BIN)/mbpoll
	@chmod +x $(BIN)/mbpoll
	@test -x .tools/root/usr/sbin/mosquitto || { echo "mosquitto could not be downloaded from Debian (apt-get download $(DEB_PACKAGES))"; exit 1; }
	@printf '#!/bin/sh\nLD_LIBRARY_PATH="%s/.tools/root/usr/lib/x86_64-linux-gnu" exec "%s/.tools/root/usr/sbin/mosquitto" "$$@"\n' "$(CURDIR)" "$(CURDIR)" > $(BIN)/mosquitto
	@chmod +x $(BIN)/mosquitto
	@test -x $(PG_BIN)/postgres -a -x $(PG_BIN)/initdb || { echo "PostgreSQL could not be downloaded from Debian (apt-get download $(DEB_PACKAGES))"; exit 1; }
	@missing=$$(ldd $(PG_BIN)/postgres $(PG_BIN)/initdb | grep 'not found' | sort -u); [ -z "$$missing" ] || \
	  { echo "PostgreSQL needs shared libraries this machine lacks (apt-get install them):"; echo "$$missing"; exit 1; }
	@touch $@

$(ARTIFACTS): $(SOURCES) ape-config.yaml | setup
	@echo "==> compiling contracts (ape compile, solc $(SOLC_VERSION) via solc-js)"
	@$(BIN)/ape compile
	@touch $@

build: setup $(ARTIFACTS)

# pytest runs on PYTEST_WORKERS processes (pytest-xdist; each worker its own anvil, ports and temp
# dirs) while Slither and the forge fuzz/invariant tests run beside it; their output is shown after
# pytest's (out/static-checks.log). Each stage prints its time; any failure fails `make test`.
# Four workers on two cores: most of the suite waits on nodes, services and their clocks, not on the
# CPU (pytest alone, 2026-12-04: 334 s with 2 workers, 193 s with 3, 142 s with 4).
PYTEST_WORKERS ?= 4

test: build
	@mkdir -p out; t0=$$(date +%s); \
	( s=$$(date +%s); $(MAKE) --no-print-directory slither || exit 1; \
	  echo "==> Slither stage: $$(( $$(date +%s) - s )) s"; \
	  echo "==> Solidity fuzz tests (forge, through the solc-js facade)"; s=$$(date +%s); \
	  forge test $(FORGE_ARGS) || exit 1; echo "==> forge stage: $$(( $$(date +%s) - s )) s" \
	) > out/static-checks.log 2>&1 & static=$$!; \
	echo "==> Python tests (pytest -n $(PYTEST_WORKERS) against real anvil nodes; Slither and forge run beside it)"; \
	s=$$(date +%s); $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS); py=$$?; \
	echo "==> pytest stage: $$(( $$(date +%s) - s )) s"; \
	wait $$static; st=$$?; echo "==> Slither and forge (run beside pytest):"; cat out/static-checks.log; \
	echo "==> make test: $$(( $$(date +%s) - t0 )) s after set-up and compile (pytest $$([ $$py = 0 ] && echo passed || echo FAILED), Slither+forge $$([ $$st = 0 ] && echo passed || echo FAILED))"; \
	[ $$py = 0 ] && [ $$st = 0 ]

# Heaviest profiles: SIGKILL loop over 3 seeds x 8 intervals, the bench-size load test (docs/hardening.md).
test-full: build
	GRIDCOOP_TEST_FULL=1 $(MAKE) --no-print-directory test

demo: build
	$(BIN)/gridcoop demo $(DEMO_ARGS)

bench: build
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# 10,000 simulated meters (sign + publish) -> Mosquitto -> 2 relay workers -> anvil; a relay worker
# SIGKILLed and restarted and the broker restarted mid-run (docs/scaling.md). SCALE_ARGS: --meters N ...
bench-scale: build
	$(BIN)/python -m bench.scale $(SCALE_ARGS)
	$(BIN)/python -m bench.scale --store postgresql $(SCALE_ARGS)

# Slither static analysis (docs/static-analysis.md). crytic-compile drives `forge build` (through
# the solc-js facade, see foundry.toml) into its own out/slither so forge test's cache is untouched;
# slither.config.json holds the filters and fails on medium/high findings. The stamp skips the
# analysis when no contract, config or pinned tool changed since the last clean pass.
SLITHER_STAMP := out/slither.passed
SLITHER_DEPS := $(SOURCES) slither.config.json foundry.toml package-lock.json requirements.lock

slither: setup $(SLITHER_STAMP)

$(SLITHER_STAMP): $(SLITHER_DEPS) | setup
	@echo "==> Slither static analysis of contracts/ (through forge; fails on medium/high findings)"
	@ln -sf ../../tools/solc/solc $(BIN)/solc
	@rm -f $@; start=$$(date +%s); \
	  FOUNDRY_OUT=out/slither FOUNDRY_CACHE_PATH=out/slither-cache $(BIN)/slither . $(SLITHER_ARGS) \
	  || { echo "Slither found medium/high issues (or failed) - see docs/static-analysis.md to triage"; exit 1; }; \
	  echo "==> Slither passed in $$(( $$(date +%s) - start )) s"
	@touch $@

lint: setup
	$(BIN)/ruff check gridcoop gridcoop_sdk meter_bridge keeper coop_demo scripts tests bench

clean:
	rm -rf .build bench/results.json .pytest_cache
