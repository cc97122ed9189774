# run_hls.tcl - the Vitis HLS flow of the edgemoe accelerator top.
#
#   vitis_hls -f hls/scripts/run_hls.tcl -tclargs <step> <settings.tcl>
#
# <step> is one of csim, synth, cosim, export (each runs the steps it needs before it);
# <settings.tcl> is generated from the config by `python -m edgemoe.host.vitis` (the make
# targets hls-csim, hls-synth, hls-cosim and hls-export do both) and sets:
#   EDGEMOE_ROOT      the checkout (sources are relative to it)
#   EDGEMOE_GEN_DIR   the folder holding edgemoe_config.h, edgemoe_layout.h and the test vectors
#   EDGEMOE_CONFIG    the config name (the solution is named after it)
#   EDGEMOE_PART      the FPGA part (default from the config: hw.part)
#   EDGEMOE_CLOCK_NS  the clock period (default from the config: 1000 / hw.clock_mhz)
#   EDGEMOE_PROJECT   the project folder

if {[llength $argv] != 2} {
    puts stderr "usage: vitis_hls -f run_hls.tcl -tclargs <csim|synth|cosim|export> <settings.tcl>"
    exit 2
}
set step [lindex $argv 0]
set settings [lindex $argv 1]
if {[lsearch -exact {csim synth cosim export} $step] < 0} {
    puts stderr "run_hls.tcl: unknown step '$step' (csim, synth, cosim or export)"
    exit 2
}
source $settings

# -- the design: the top and every header it reaches
set top edgemoe_top
set sources [list hls/src/edgemoe_top.cpp]
set tb_sources [list hls/tb/edgemoe_top_tb.cpp]
set include_dirs [list hls/include hls/src]
set tb_data [list weights.bin images.bin tokens_expected.bin vectors.txt]

set cflags "-std=c++14 -I$EDGEMOE_GEN_DIR"
foreach dir $include_dirs {
    append cflags " -I$EDGEMOE_ROOT/$dir"
}

open_project -reset $EDGEMOE_PROJECT
set_top $top
foreach src $sources {
    add_files $EDGEMOE_ROOT/$src -cflags $cflags
}
foreach src $tb_sources {
    add_files -tb $EDGEMOE_ROOT/$src -cflags "$cflags -DEDGEMOE_TB_DIR=\\\"$EDGEMOE_GEN_DIR\\\""
}
# the vectors exist after `python -m edgemoe.host.vitis --vectors` (csim and cosim need them)
foreach f $tb_data {
    if {[file exists $EDGEMOE_GEN_DIR/$f]} {
        add_files -tb $EDGEMOE_GEN_DIR/$f
    } elseif {$step eq "csim" || $step eq "cosim"} {
        puts stderr "run_hls.tcl: $EDGEMOE_GEN_DIR/$f is missing; generate it with python -m edgemoe.host.vitis --vectors"
        exit 1
    }
}

open_solution -reset $EDGEMOE_CONFIG -flow_target vivado
set_part $EDGEMOE_PART
create_clock -period $EDGEMOE_CLOCK_NS -name default
# s_axilite argument offsets are pinned by the pragmas (64-bit m_axi addresses: the Vitis default).
config_export -format ip_catalog -vendor xilinx.com -library hls -version 1.0 -ipname $top \
    -display_name "edgemoe accelerator ($EDGEMOE_CONFIG)" -rtl verilog

if {$step eq "csim"} {
    csim_design
    exit 0
}
csynth_design
if {$step eq "cosim"} {
    cosim_design -rtl verilog -trace_level none
}
if {$step eq "export"} {
    export_design -format ip_catalog -output $EDGEMOE_PROJECT/edgemoe_top_ip.zip
}
exit 0
