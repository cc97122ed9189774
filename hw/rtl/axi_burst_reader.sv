// AXI4 read master: a transfer of Beats beats from a beat-aligned byte address becomes a stream of
// beats on d (d_last_o on the transfer's last), fetched as INCR bursts of at most MaxBurst beats
// that never cross a 4 KiB boundary (axi_burst_split), with up to MaxOutstanding bursts in flight.
// R passes straight to d (rready = d_ready_i), so the interconnect and the consumer may stall at
// will. One ID, so data returns in request order. A new transfer is taken once the previous one
// has delivered its last beat. error_o holds after any R beat whose response was not OKAY.
// The m_axi_* ports keep the AXI signal names so that bus models bind to them by name.
`default_nettype none

module axi_burst_reader #(
  parameter int unsigned AddrBits       = 64,
  parameter int unsigned DataBits       = edgemoe_pkg::AxiBits,
  parameter int unsigned MaxBurst       = 64,
  parameter int unsigned MaxOutstanding = 4,
  parameter int unsigned CountBits      = 32
) (
  input  wire logic                 clk_i,
  input  wire logic                 rst_i,
  // transfers
  input  wire logic                 cmd_valid_i,
  output logic                      cmd_ready_o,
  input  wire logic [AddrBits-1:0]  cmd_addr_i,
  input  wire logic [CountBits-1:0] cmd_beats_i,
  // the data, in address order
  output logic                      d_valid_o,
  input  wire logic                 d_ready_i,
  output logic      [DataBits-1:0]  d_data_o,
  output logic                      d_last_o,
  output logic                      error_o,
  // AXI4 read channels
  output logic      [0:0]           m_axi_arid,
  output logic      [AddrBits-1:0]  m_axi_araddr,
  output logic      [7:0]           m_axi_arlen,
  output logic      [2:0]           m_axi_arsize,
  output logic      [1:0]           m_axi_arburst,
  output logic      [3:0]           m_axi_arcache,
  output logic      [2:0]           m_axi_arprot,
  output logic                      m_axi_arvalid,
  input  wire logic                 m_axi_arready,
  input  wire logic [0:0]           m_axi_rid,
  input  wire logic [DataBits-1:0]  m_axi_rdata,
  input  wire logic [1:0]           m_axi_rresp,
  input  wire logic                 m_axi_rlast,
  input  wire logic                 m_axi_rvalid,
  output logic                      m_axi_rready
);
  localparam int unsigned BeatBytes = DataBits / 8;
  localparam int unsigned InFlightBits = $clog2(MaxOutstanding + 1);

  if (DataBits < 16 || DataBits > 1024 || 2 ** $clog2(DataBits) != DataBits || MaxOutstanding < 1)
  begin : gen_bad_params
    $fatal(1, "%m: axi_burst_reader needs a power-of-two DataBits in 16..1024 and MaxOutstanding >= 1 (%0d, %0d)",
           DataBits, MaxOutstanding);
  end

  typedef logic [CountBits-1:0] count_t;

  count_t                  left_q;       // beats of the transfer not yet delivered on d
  logic [InFlightBits-1:0] in_flight_q;  // bursts requested whose last beat has not come
  logic                    burst_valid;
  logic                    ar_take, r_take, rlast_take;

  assign cmd_ready_o = left_q == '0;

  axi_burst_split #(
    .AddrBits (AddrBits),
    .BeatBytes(BeatBytes),
    .MaxBurst (MaxBurst),
    .CountBits(CountBits)
  ) u_split (
    .clk_i        (clk_i),
    .rst_i        (rst_i),
    .cmd_valid_i  (cmd_valid_i && cmd_ready_o),
    .cmd_ready_o  (),
    .cmd_addr_i   (cmd_addr_i),
    .cmd_beats_i  (cmd_beats_i),
    .burst_valid_o(burst_valid),
    .burst_ready_i(ar_take),
    .burst_addr_o (m_axi_araddr),
    .burst_len_o  (m_axi_arlen),
    .burst_last_o ()
  );

  assign m_axi_arid    = 1'b0;
  assign m_axi_arsize  = 3'($clog2(BeatBytes));
  assign m_axi_arburst = 2'b01;    // INCR
  assign m_axi_arcache = 4'b0011;  // normal, non-cacheable, bufferable (as Vitis m_axi)
  assign m_axi_arprot  = 3'b000;
  assign m_axi_arvalid = burst_valid && in_flight_q != InFlightBits'(MaxOutstanding);
  assign ar_take       = m_axi_arvalid && m_axi_arready;

  assign d_valid_o    = m_axi_rvalid;
  assign d_data_o     = m_axi_rdata;
  assign d_last_o     = left_q == count_t'(1);
  assign m_axi_rready = d_ready_i;
  assign r_take       = m_axi_rvalid && m_axi_rready;
  assign rlast_take   = r_take && m_axi_rlast;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      left_q      <= '0;
      in_flight_q <= '0;
      error_o     <= 1'b0;
    end else begin
      if (cmd_valid_i && cmd_ready_o) begin
        left_q <= cmd_beats_i;
      end else if (r_take) begin
        left_q <= left_q - 1'b1;
      end
      in_flight_q <= in_flight_q + InFlightBits'(ar_take) - InFlightBits'(rlast_take);
      if (r_take && m_axi_rresp != 2'b00) error_o <= 1'b1;
    end
  end

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (!rst_i) begin
      if (m_axi_rvalid && (in_flight_q == '0 || left_q == '0)) begin
        $error("%m: R beat with no read burst outstanding");
      end
      if (r_take && m_axi_rid != 1'b0) begin
        $error("%m: R beat of ID %0d; only ID 0 is issued", m_axi_rid);
      end
      if (r_take && d_last_o && !m_axi_rlast) begin
        $error("%m: the transfer's last beat is not the last of its burst");
      end
    end
  end
`endif
endmodule

`default_nettype wire
