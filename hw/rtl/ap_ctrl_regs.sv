// The AXI4-Lite control slave of the accelerator: the ap_ctrl_hs register map of the Vitis HLS
// top, every offset from the generated edgemoe_layout_pkg (host/layout.py register_map).
//   CTRL       ap_start (bit 0, set by a write of 1, held until the core takes the call on
//              ap_ready, then cleared unless auto_restart), ap_done (1, set when a call ends,
//              cleared by a read), ap_idle (2, the core's), ap_ready (3, set with ap_done,
//              cleared by a read), auto_restart (7, read-write)
//   GIE        global interrupt enable (bit 0);  IER  ap_done / ap_ready interrupt enables
//   ISR        ap_done (0) / ap_ready (1) status, set when the event happens while enabled,
//              toggled by writing 1; interrupt_o = GIE & (ISR != 0)
//   WEIGHTS, IMAGES, TOKENS   64-bit pointers (two words); TASK, BATCH   32-bit arguments
//   CONFIG_ID  read-only, ConfigId of the package, written when a call ends; CONFIG_ID_CTRL
//              bit 0 its ap_vld, cleared by a read
//   counters   PerfCounters read-only 64-bit words from RegPerfFirst: counters_i, as the core
//              holds them (it keeps them still between calls)
// Unmapped offsets read 0 and ignore writes; the address selects a word, wstrb its bytes; every
// response is OKAY (as the Vitis slave).
// The s_axi_control_* ports keep the AXI signal names (no _i/_o suffix) so that bus models and
// the Vitis-generated top bind to them by name.
`default_nettype none

module ap_ctrl_regs
  import edgemoe_pkg::*;
  import edgemoe_layout_pkg::*;
#(
  parameter int unsigned AddrBits = $clog2(RegAddrRange)
) (
  input  wire logic                clk_i,
  input  wire logic                rst_i,
  // AXI4-Lite slave
  input  wire logic [AddrBits-1:0] s_axi_control_awaddr,
  input  wire logic                s_axi_control_awvalid,
  output logic                     s_axi_control_awready,
  input  wire logic [31:0]         s_axi_control_wdata,
  input  wire logic [3:0]          s_axi_control_wstrb,
  input  wire logic                s_axi_control_wvalid,
  output logic                     s_axi_control_wready,
  output logic      [1:0]          s_axi_control_bresp,
  output logic                     s_axi_control_bvalid,
  input  wire logic                s_axi_control_bready,
  input  wire logic [AddrBits-1:0] s_axi_control_araddr,
  input  wire logic                s_axi_control_arvalid,
  output logic                     s_axi_control_arready,
  output logic      [31:0]         s_axi_control_rdata,
  output logic      [1:0]          s_axi_control_rresp,
  output logic                     s_axi_control_rvalid,
  input  wire logic                s_axi_control_rready,
  // the core's ap_ctrl_hs handshake: ap_start_o holds until ap_ready_i; ap_done_i and ap_ready_i
  // are one-cycle pulses at the end of a call
  output logic                     ap_start_o,
  input  wire logic                ap_ready_i,
  input  wire logic                ap_done_i,
  input  wire logic                ap_idle_i,
  output logic      [63:0]         weights_o,
  output logic      [63:0]         images_o,
  output logic      [63:0]         tokens_o,
  output logic      [31:0]         task_o,
  output logic      [31:0]         batch_o,
  input  wire logic [PerfCounters*64-1:0] counters_i,
  output logic                     interrupt_o
);
  if (AddrBits < $clog2(RegAddrRange)) begin : gen_bad_addr
    $fatal(1, "%m: ap_ctrl_regs needs AddrBits >= %0d for the register map, got %0d",
           $clog2(RegAddrRange), AddrBits);
  end

  typedef logic [AddrBits-3:0] word_t;  // a register's word index (byte offset / 4)

  function automatic word_t word_of(int unsigned offset);
    return word_t'(offset >> 2);
  endfunction

  // ---------------------------------------------------------------- write channel
  logic        aw_full_q, w_full_q;
  word_t       waddr_q;
  logic [31:0] wdata_q;
  logic [3:0]  wstrb_q;
  logic        wr_en;  // the write of the held address and data happens in this cycle

  assign s_axi_control_awready = !aw_full_q && !s_axi_control_bvalid;
  assign s_axi_control_wready  = !w_full_q && !s_axi_control_bvalid;
  assign s_axi_control_bresp   = 2'b00;
  assign wr_en = aw_full_q && w_full_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      aw_full_q            <= 1'b0;
      w_full_q             <= 1'b0;
      s_axi_control_bvalid <= 1'b0;
    end else begin
      if (wr_en) begin
        aw_full_q            <= 1'b0;
        w_full_q             <= 1'b0;
        s_axi_control_bvalid <= 1'b1;
      end else begin
        if (s_axi_control_awvalid && s_axi_control_awready) aw_full_q <= 1'b1;
        if (s_axi_control_wvalid && s_axi_control_wready) w_full_q <= 1'b1;
      end
      if (s_axi_control_bvalid && s_axi_control_bready) s_axi_control_bvalid <= 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (s_axi_control_awvalid && s_axi_control_awready) waddr_q <= s_axi_control_awaddr[AddrBits-1:2];
    if (s_axi_control_wvalid && s_axi_control_wready) begin
      wdata_q <= s_axi_control_wdata;
      wstrb_q <= s_axi_control_wstrb;
    end
  end

  function automatic logic [31:0] merge(logic [31:0] old, logic [31:0] data, logic [3:0] strb);
    for (int b = 0; b < 4; b++) begin
      if (strb[b]) old[8*b+:8] = data[8*b+:8];
    end
    return old;
  endfunction

  // a write of the held word to register word `offset`
  function automatic logic hit(int unsigned offset);
    return wr_en && waddr_q == word_of(offset);
  endfunction

  // ---------------------------------------------------------------- read channel
  logic rd_en;  // the read of s_axi_control_araddr is taken in this cycle
  word_t raddr;

  assign s_axi_control_arready = !s_axi_control_rvalid;
  assign s_axi_control_rresp   = 2'b00;
  assign rd_en = s_axi_control_arvalid && s_axi_control_arready;
  assign raddr = s_axi_control_araddr[AddrBits-1:2];

  function automatic logic read_of(int unsigned offset);
    return rd_en && raddr == word_of(offset);
  endfunction

  // ---------------------------------------------------------------- registers
  logic        auto_restart_q, done_q, ready_q, gie_q, id_valid_q;
  logic [1:0]  ier_q, isr_q;
  logic [31:0] config_id_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      ap_start_o     <= 1'b0;
      auto_restart_q <= 1'b0;
      done_q         <= 1'b0;
      ready_q        <= 1'b0;
      gie_q          <= 1'b0;
      ier_q          <= '0;
      isr_q          <= '0;
      id_valid_q     <= 1'b0;
      config_id_q    <= '0;
    end else begin
      if (hit(RegCtrl) && wstrb_q[0] && wdata_q[CtrlApStartBit]) begin
        ap_start_o <= 1'b1;
      end else if (ap_ready_i) begin
        ap_start_o <= auto_restart_q;
      end
      if (hit(RegCtrl) && wstrb_q[0]) auto_restart_q <= wdata_q[CtrlAutoRestartBit];
      if (ap_done_i) begin
        done_q <= 1'b1;
      end else if (read_of(RegCtrl)) begin
        done_q <= 1'b0;
      end
      if (ap_ready_i) begin
        ready_q <= 1'b1;
      end else if (read_of(RegCtrl)) begin
        ready_q <= 1'b0;
      end
      if (hit(RegGie) && wstrb_q[0]) gie_q <= wdata_q[0];
      if (hit(RegIer) && wstrb_q[0]) ier_q <= wdata_q[1:0];
      isr_q <= (isr_q ^ (hit(RegIsr) && wstrb_q[0] ? wdata_q[1:0] : 2'b00))
               | (ier_q & {ap_ready_i, ap_done_i});
      if (ap_done_i) begin
        config_id_q <= ConfigId;
        id_valid_q  <= 1'b1;
      end else if (read_of(RegConfigIdCtrl)) begin
        id_valid_q <= 1'b0;
      end
    end
  end

  // the arguments: plain read-write words (the reserved word after TASK and BATCH reads 0)
  localparam int unsigned Args = 8;
  localparam int unsigned ArgOffset [Args] = '{
    RegWeights, RegWeights + 4, RegImages, RegImages + 4, RegTokens, RegTokens + 4, RegTask, RegBatch
  };
  logic [31:0] args_q [Args];
  always_ff @(posedge clk_i) begin
    for (int a = 0; a < Args; a++) begin
      if (rst_i) begin
        args_q[a] <= '0;
      end else if (hit(ArgOffset[a])) begin
        args_q[a] <= merge(args_q[a], wdata_q, wstrb_q);
      end
    end
  end

  assign weights_o = {args_q[1], args_q[0]};
  assign images_o  = {args_q[3], args_q[2]};
  assign tokens_o  = {args_q[5], args_q[4]};
  assign task_o    = args_q[6];
  assign batch_o   = args_q[7];
  assign interrupt_o = gie_q && isr_q != 2'b00;

  logic [31:0] rdata;
  always_comb begin
    rdata = '0;
    for (int a = 0; a < Args; a++) begin
      if (raddr == word_of(ArgOffset[a])) rdata = args_q[a];
    end
    if (raddr == word_of(RegCtrl)) begin
      rdata[CtrlApStartBit]     = ap_start_o;
      rdata[CtrlApDoneBit]      = done_q;
      rdata[CtrlApIdleBit]      = ap_idle_i;
      rdata[CtrlApReadyBit]     = ready_q;
      rdata[CtrlAutoRestartBit] = auto_restart_q;
    end
    if (raddr == word_of(RegGie)) rdata[0] = gie_q;
    if (raddr == word_of(RegIer)) rdata[1:0] = ier_q;
    if (raddr == word_of(RegIsr)) rdata[1:0] = isr_q;
    if (raddr == word_of(RegConfigId)) rdata = config_id_q;
    if (raddr == word_of(RegConfigIdCtrl)) rdata[0] = id_valid_q;
    for (int c = 0; c < PerfCounters; c++) begin
      if (raddr == word_of(RegPerfFirst + 8 * c)) rdata = counters_i[64*c +: 32];
      if (raddr == word_of(RegPerfFirst + 8 * c + 4)) rdata = counters_i[64*c + 32 +: 32];
    end
  end

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      s_axi_control_rvalid <= 1'b0;
    end else if (rd_en) begin
      s_axi_control_rvalid <= 1'b1;
    end else if (s_axi_control_rready) begin
      s_axi_control_rvalid <= 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (rd_en) s_axi_control_rdata <= rdata;
  end

  logic unused_byte_addr;  // the byte within a word: wstrb selects the bytes of a write
  assign unused_byte_addr = ^{s_axi_control_awaddr[1:0], s_axi_control_araddr[1:0]};

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (!rst_i && ap_ready_i && !ap_start_o) begin
      $error("%m: ap_ready without ap_start: the core took a call nobody started");
    end
  end
`endif
endmodule

`default_nettype wire
