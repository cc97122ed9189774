# edgemoe_bd.tcl - block design around the exported edgemoe_top IP -> .bit + .hwh for PYNQ.
#
#   vivado -mode batch -source hw/vivado/edgemoe_bd.tcl -tclargs <board> <ip_repo> <out_dir> [clock_mhz]
#
# <board>    zcu102 (xczu9eg-ffvb1156-2-e, the Edge-MoE board) or kv260 (Kria K26 SOM on the KV260
#            carrier, xck26-sfvc784-2LV-c: the smaller PYNQ board; the `tiny` config fits it)
# <ip_repo>  the folder of the IP exported by `make hls-export` (VLNV xilinx.com:hls:edgemoe_top:1.0)
# <out_dir>  receives edgemoe_<board>.bit and edgemoe_<board>.hwh (the pair pynq.Overlay loads)
# clock_mhz  the PL clock (default 300 on zcu102, 200 on kv260)
#
# The IP instance is edgemoe_top_0; its control registers sit at 0xA000_0000 (64 KiB) behind
# M_AXI_HPM0_FPD; its three AXI4 masters (m_axi_gmem0 weights, m_axi_gmem1 images,
# m_axi_gmem2 tokens) reach DDR through S_AXI_HP0..HP2_FPD.

if {[llength $argv] < 3} {
    puts stderr "usage: vivado -mode batch -source edgemoe_bd.tcl -tclargs <zcu102|kv260> <ip_repo> <out_dir> \[clock_mhz\]"
    exit 2
}
set board [lindex $argv 0]
set ip_repo [file normalize [lindex $argv 1]]
set out_dir [file normalize [lindex $argv 2]]

set vlnv xilinx.com:hls:edgemoe_top:1.0
set instance edgemoe_top_0
set ctrl_base 0xA0000000
set ctrl_range 64K
set maxi_ports {m_axi_gmem0 m_axi_gmem1 m_axi_gmem2}
set hp_ports {S_AXI_HP0_FPD S_AXI_HP1_FPD S_AXI_HP2_FPD}

switch -- $board {
    zcu102 {
        set part xczu9eg-ffvb1156-2-e
        set board_part [expr {[info exists ::env(EDGEMOE_BOARD_PART)] ? $::env(EDGEMOE_BOARD_PART) : "xilinx.com:zcu102:part0:3.4"}]
        set connections {}
        set default_mhz 300
    }
    kv260 {
        set part xck26-sfvc784-2LV-c
        set board_part [expr {[info exists ::env(EDGEMOE_BOARD_PART)] ? $::env(EDGEMOE_BOARD_PART) : "xilinx.com:kv260_som:part0:1.4"}]
        set connections {som240_1_connector xilinx.com:kv260_carrier:som240_1_connector:1.3}
        set default_mhz 200
    }
    default {
        puts stderr "edgemoe_bd.tcl: unknown board '$board' (zcu102 or kv260)"
        exit 2
    }
}
set clock_mhz [expr {[llength $argv] > 3 ? [lindex $argv 3] : $default_mhz}]
if {![file isdirectory $ip_repo]} {
    puts stderr "edgemoe_bd.tcl: IP repository $ip_repo does not exist; run `make hls-export` first"
    exit 1
}

set design edgemoe_$board
set proj_dir $out_dir/vivado_$board
create_project -force $design $proj_dir -part $part
set_property board_part $board_part [current_project]
if {$connections ne {}} {
    set_property board_connections $connections [current_project]
}
set_property ip_repo_paths [list $ip_repo] [current_project]
update_ip_catalog

create_bd_design $design
set ps [create_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e zynq_ultra_ps_e_0]
apply_bd_automation -rule xilinx.com:bd_rule:zynq_ultra_ps_e -config {apply_board_preset "1"} $ps
set_property -dict [list \
    CONFIG.PSU__USE__M_AXI_GP0 {1} \
    CONFIG.PSU__USE__M_AXI_GP1 {0} \
    CONFIG.PSU__USE__M_AXI_GP2 {0} \
    CONFIG.PSU__USE__S_AXI_GP2 {1} \
    CONFIG.PSU__USE__S_AXI_GP3 {1} \
    CONFIG.PSU__USE__S_AXI_GP4 {1} \
    CONFIG.PSU__USE__IRQ0 {1} \
    CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ $clock_mhz \
] $ps

set ip [create_bd_cell -type ip -vlnv $vlnv $instance]

# control: M_AXI_HPM0_FPD -> s_axi_control
apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
    Clk_master {/zynq_ultra_ps_e_0/pl_clk0} Clk_slave {/zynq_ultra_ps_e_0/pl_clk0} \
    Clk_xbar {/zynq_ultra_ps_e_0/pl_clk0} Master {/zynq_ultra_ps_e_0/M_AXI_HPM0_FPD} \
    Slave "/$instance/s_axi_control" intc_ip {New AXI Interconnect} master_apm {0}] \
    [get_bd_intf_pins $instance/s_axi_control]

# memory: one HP port per AXI4 master (S_AXI_GP2..GP4 are HP0..HP2 FPD)
foreach maxi $maxi_ports hp $hp_ports {
    apply_bd_automation -rule xilinx.com:bd_rule:axi4 -config [list \
        Clk_master {/zynq_ultra_ps_e_0/pl_clk0} Clk_slave {/zynq_ultra_ps_e_0/pl_clk0} \
        Clk_xbar {/zynq_ultra_ps_e_0/pl_clk0} Master "/$instance/$maxi" \
        Slave "/zynq_ultra_ps_e_0/$hp" intc_ip {New AXI SmartConnect} master_apm {0}] \
        [get_bd_intf_pins zynq_ultra_ps_e_0/$hp]
}

# the IP's interrupt line to the PS
connect_bd_net [get_bd_pins $instance/interrupt] [get_bd_pins zynq_ultra_ps_e_0/pl_ps_irq0]

assign_bd_address
set seg [get_bd_addr_segs -of_objects [get_bd_addr_spaces zynq_ultra_ps_e_0/Data] -filter "NAME =~ *$instance*"]
set_property offset $ctrl_base $seg
set_property range $ctrl_range $seg
validate_bd_design
save_bd_design

make_wrapper -files [get_files $design.bd] -top
add_files -norecurse [glob $proj_dir/$design.gen/sources_1/bd/$design/hdl/${design}_wrapper.v]
set_property top ${design}_wrapper [current_fileset]

launch_runs impl_1 -to_step write_bitstream -jobs 2
wait_on_run impl_1
if {[get_property PROGRESS [get_runs impl_1]] ne "100%"} {
    puts stderr "edgemoe_bd.tcl: implementation of $design failed; see $proj_dir"
    exit 1
}

file mkdir $out_dir
file copy -force [glob $proj_dir/$design.runs/impl_1/${design}_wrapper.bit] $out_dir/edgemoe_$board.bit
file copy -force [glob $proj_dir/$design.gen/sources_1/bd/$design/hw_handoff/$design.hwh] $out_dir/edgemoe_$board.hwh
open_run impl_1
report_utilization -file $out_dir/edgemoe_${board}_utilization.rpt
report_timing_summary -file $out_dir/edgemoe_${board}_timing.rpt
puts "edgemoe_bd.tcl: wrote $out_dir/edgemoe_$board.bit and $out_dir/edgemoe_$board.hwh"
exit 0
