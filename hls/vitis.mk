# hls/vitis.mk - the Vitis HLS / Vivado flow (included by the top Makefile).
#
#   make hls-csim     C-simulation of edgemoe_top against the fixed reference's vectors (vitis_hls)
#   make hls-synth    C-synthesis: RTL + latency/resource reports (vitis_hls)
#   make hls-cosim    co-simulation of the synthesized RTL with the same vectors (vitis_hls)
#   make hls-export   IP catalog export, VLNV xilinx.com:hls:edgemoe_top:1.0 (vitis_hls)
#   make bitstream    block design + implementation -> .bit + .hwh for BOARD (vivado)
#
# Part and clock come from the config (hw.part, hw.clock_mhz) unless HLS_PART / HLS_CLOCK_MHZ
# are set, e.g. `make hls-synth PRESET=tiny HLS_CLOCK_MHZ=250`.
VITIS_HLS ?= vitis_hls
VIVADO ?= vivado
HLS_PRESET ?= $(PRESET)
HLS_CONFIG ?=
HLS_PART ?=
HLS_CLOCK_MHZ ?=
HLS_OUT ?= build/$(HLS_PRESET)/hls
BOARD ?= zcu102
BOARD_CLOCK_MHZ ?=
# The part of each board of hw/vivado/edgemoe_bd.tcl (the IP is synthesized for it).
BOARD_PART_zcu102 := xczu9eg-ffvb1156-2-e
BOARD_PART_kv260 := xck26-sfvc784-2LV-c
BIT_OUT ?= build/$(HLS_PRESET)/bitstream
HLS_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,$(PYTHON))

HLS_GEN_ARGS = --preset $(HLS_PRESET) $(if $(HLS_CONFIG),--config $(HLS_CONFIG)) --out $(HLS_OUT) \
	$(if $(HLS_PART),--part $(HLS_PART)) $(if $(HLS_CLOCK_MHZ),--clock-mhz $(HLS_CLOCK_MHZ))
HLS_RUN = $(VITIS_HLS) -f hls/scripts/run_hls.tcl -tclargs
HLS_IP_REPO = $(HLS_OUT)/proj/$(HLS_PRESET)/impl/ip

# Stop with a clear message when a vendor tool is missing (before any other work).
define require_tool
	@command -v $(1) >/dev/null 2>&1 || { \
	  echo "error: '$(1)' is not on PATH; $(2) needs $(3)."; \
	  echo "       Install it and source its settings64.sh (or set $(4)=/path/to/$(1)), then rerun."; \
	  exit 1; }
endef

.PHONY: hls-csim hls-synth hls-cosim hls-export bitstream

# One Vitis HLS step of edgemoe_top: $(1) the step (csim, synth, cosim or export; the target is
# hls-$(1)), $(2) what it does, $(3) extra arguments of the project generation (--vectors).
define hls_step
	$(call require_tool,$(VITIS_HLS),make hls-$(1),Vitis HLS (2022.2 or later),VITIS_HLS)
	@echo "== hls-$(1): $(2)"
	$(HLS_PYTHON) -m edgemoe.host.vitis $(HLS_GEN_ARGS)$(if $(3), $(3))
	$(HLS_RUN) $(1) $(HLS_OUT)/settings.tcl
endef
comma := ,

hls-csim:
	$(call hls_step,csim,vectors from the fixed reference$(comma) then C-simulation of edgemoe_top ($(HLS_PRESET)),--vectors)

hls-synth:
	$(call hls_step,synth,C-synthesis of edgemoe_top ($(HLS_PRESET)); reports in $(HLS_OUT)/proj/$(HLS_PRESET)/syn/report)

hls-cosim:
	$(call hls_step,cosim,C-synthesis$(comma) then RTL co-simulation against the reference's vectors ($(HLS_PRESET)),--vectors)

hls-export:
	$(call hls_step,export,IP catalog export of edgemoe_top ($(HLS_PRESET)) into $(HLS_IP_REPO))

bitstream:
	$(call require_tool,$(VIVADO),make bitstream,Vivado (2022.2 or later),VIVADO)
	$(call require_tool,$(VITIS_HLS),make bitstream,Vitis HLS for the IP export,VITIS_HLS)
	@echo "== bitstream: $(BOARD) with edgemoe_top ($(HLS_PRESET)) -> $(BIT_OUT)/edgemoe_$(BOARD).bit + .hwh"
	@test -n "$(BOARD_PART_$(BOARD))" || { echo "error: unknown BOARD '$(BOARD)' (zcu102 or kv260)"; exit 1; }
	$(MAKE) --no-print-directory hls-export HLS_PART=$(or $(HLS_PART),$(BOARD_PART_$(BOARD))) \
	  HLS_CLOCK_MHZ=$(or $(HLS_CLOCK_MHZ),$(BOARD_CLOCK_MHZ))
	$(VIVADO) -mode batch -nojournal -nolog -source hw/vivado/edgemoe_bd.tcl \
	  -tclargs $(BOARD) $(HLS_IP_REPO) $(BIT_OUT) $(BOARD_CLOCK_MHZ)
