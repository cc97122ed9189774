// AXI4 write master: a transfer of Beats beats to a beat-aligned byte address takes its data from
// the d stream and writes it as INCR bursts of at most MaxBurst beats that never cross a 4 KiB
// boundary, up to MaxOutstanding bursts awaiting their response. Two axi_burst_split instances
// split the transfer the same way: one issues AW, the other paces W (a burst's W beats follow its
// AW; wlast on each burst's last beat). Whole beats (wstrb all ones). A new transfer is taken once
// every response of the previous one has come back: cmd_ready_o high means the data is in memory.
// error_o holds after any B response that was not OKAY.
// The m_axi_* ports keep the AXI signal names so that bus models bind to them by name.
`default_nettype none

module axi_burst_writer #(
  parameter int unsigned AddrBits       = 64,
  parameter int unsigned DataBits       = edgemoe_pkg::AxiBits,
  parameter int unsigned MaxBurst       = 64,
  parameter int unsigned MaxOutstanding = 4,
  parameter int unsigned CountBits      = 32
) (
  input  wire logic                  clk_i,
  input  wire logic                  rst_i,
  // transfers
  input  wire logic                  cmd_valid_i,
  output logic                       cmd_ready_o,
  input  wire logic [AddrBits-1:0]   cmd_addr_i,
  input  wire logic [CountBits-1:0]  cmd_beats_i,
  // the data, in address order
  input  wire logic                  d_valid_i,
  output logic                       d_ready_o,
  input  wire logic [DataBits-1:0]   d_data_i,
  output logic                       error_o,
  // AXI4 write channels
  output logic      [0:0]            m_axi_awid,
  output logic      [AddrBits-1:0]   m_axi_awaddr,
  output logic      [7:0]            m_axi_awlen,
  output logic      [2:0]            m_axi_awsize,
  output logic      [1:0]            m_axi_awburst,
  output logic      [3:0]            m_axi_awcache,
  output logic      [2:0]            m_axi_awprot,
  output logic                       m_axi_awvalid,
  input  wire logic                  m_axi_awready,
  output logic      [DataBits-1:0]   m_axi_wdata,
  output logic      [DataBits/8-1:0] m_axi_wstrb,
  output logic                       m_axi_wlast,
  output logic                       m_axi_wvalid,
  input  wire logic                  m_axi_wready,
  input  wire logic [0:0]            m_axi_bid,
  input  wire logic [1:0]            m_axi_bresp,
  input  wire logic                  m_axi_bvalid,
  output logic                       m_axi_bready
);
  localparam int unsigned BeatBytes = DataBits / 8;
  localparam int unsigned InFlightBits = $clog2(MaxOutstanding + 1);

  if (DataBits < 16 || DataBits > 1024 || 2 ** $clog2(DataBits) != DataBits || MaxOutstanding < 1)
  begin : gen_bad_params
    $fatal(1, "%m: axi_burst_writer needs a power-of-two DataBits in 16..1024 and MaxOutstanding >= 1 (%0d, %0d)",
           DataBits, MaxOutstanding);
  end

  logic                    aw_valid, aw_take, aw_cmd_ready;
  logic                    w_burst_valid, w_cmd_ready, w_take, wlast_take, b_take;
  logic [7:0]              w_len;
  logic [7:0]              w_beat_q;      // beat of the current W burst
  logic [InFlightBits-1:0] awaiting_b_q;  // bursts whose AW went out and whose B has not come
  logic [InFlightBits-1:0] w_credit_q;    // bursts whose AW went out and whose W has not all gone

  assign cmd_ready_o = aw_cmd_ready && w_cmd_ready && awaiting_b_q == '0;

  axi_burst_split #(
    .AddrBits (AddrBits),
    .BeatBytes(BeatBytes),
    .MaxBurst (MaxBurst),
    .CountBits(CountBits)
  ) u_split_aw (
    .clk_i        (clk_i),
    .rst_i        (rst_i),
    .cmd_valid_i  (cmd_valid_i && cmd_ready_o),
    .cmd_ready_o  (aw_cmd_ready),
    .cmd_addr_i   (cmd_addr_i),
    .cmd_beats_i  (cmd_beats_i),
    .burst_valid_o(aw_valid),
    .burst_ready_i(aw_take),
    .burst_addr_o (m_axi_awaddr),
    .burst_len_o  (m_axi_awlen),
    .burst_last_o ()
  );

  axi_burst_split #(
    .AddrBits (AddrBits),
    .BeatBytes(BeatBytes),
    .MaxBurst (MaxBurst),
    .CountBits(CountBits)
  ) u_split_w (
    .clk_i        (clk_i),
    .rst_i        (rst_i),
    .cmd_valid_i  (cmd_valid_i && cmd_ready_o),
    .cmd_ready_o  (w_cmd_ready),
    .cmd_addr_i   (cmd_addr_i),
    .cmd_beats_i  (cmd_beats_i),
    .burst_valid_o(w_burst_valid),
    .burst_ready_i(wlast_take),
    .burst_addr_o (),
    .burst_len_o  (w_len),
    .burst_last_o ()
  );

  assign m_axi_awid    = 1'b0;
  assign m_axi_awsize  = 3'($clog2(BeatBytes));
  assign m_axi_awburst = 2'b01;    // INCR
  assign m_axi_awcache = 4'b0011;  // normal, non-cacheable, bufferable (as Vitis m_axi)
  assign m_axi_awprot  = 3'b000;
  assign m_axi_awvalid = aw_valid && awaiting_b_q != InFlightBits'(MaxOutstanding);
  assign aw_take       = m_axi_awvalid && m_axi_awready;

  assign m_axi_wvalid = d_valid_i && w_burst_valid && w_credit_q != '0;
  assign m_axi_wdata  = d_data_i;
  assign m_axi_wstrb  = '1;
  assign m_axi_wlast  = w_beat_q == w_len;
  assign d_ready_o    = m_axi_wready && w_burst_valid && w_credit_q != '0;
  assign w_take       = m_axi_wvalid && m_axi_wready;
  assign wlast_take   = w_take && m_axi_wlast;

  assign m_axi_bready = 1'b1;
  assign b_take       = m_axi_bvalid;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      w_beat_q     <= '0;
      awaiting_b_q <= '0;
      w_credit_q   <= '0;
      error_o      <= 1'b0;
    end else begin
      if (wlast_take) begin
        w_beat_q <= '0;
      end else if (w_take) begin
        w_beat_q <= w_beat_q + 1'b1;
      end
      awaiting_b_q <= awaiting_b_q + InFlightBits'(aw_take) - InFlightBits'(b_take);
      w_credit_q   <= w_credit_q + InFlightBits'(aw_take) - InFlightBits'(wlast_take);
      if (b_take && m_axi_bresp != 2'b00) error_o <= 1'b1;
    end
  end

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (!rst_i) begin
      if (m_axi_bvalid && awaiting_b_q == '0) begin
        $error("%m: B response with no write burst outstanding");
      end
      if (m_axi_bvalid && m_axi_bid != 1'b0) begin
        $error("%m: B response of ID %0d; only ID 0 is issued", m_axi_bid);
      end
    end
  end
`endif
endmodule

`default_nettype wire
