// Splits a transfer of Beats beats from a beat-aligned byte address into AXI4 INCR bursts of at
// most MaxBurst beats, none crossing a 4 KiB boundary: one burst beat (address, length - 1, last
// burst of the transfer) per burst, in address order. The same transfer always splits the same
// way, so a writer can run one splitter for AW and one for W.
`default_nettype none

module axi_burst_split #(
  parameter int unsigned AddrBits  = 64,
  parameter int unsigned BeatBytes = 32,
  parameter int unsigned MaxBurst  = 64,
  parameter int unsigned CountBits = 32
) (
  input  wire logic                 clk_i,
  input  wire logic                 rst_i,
  input  wire logic                 cmd_valid_i,
  output logic                      cmd_ready_o,
  input  wire logic [AddrBits-1:0]  cmd_addr_i,
  input  wire logic [CountBits-1:0] cmd_beats_i,
  output logic                      burst_valid_o,
  input  wire logic                 burst_ready_i,
  output logic      [AddrBits-1:0]  burst_addr_o,
  output logic      [7:0]           burst_len_o,
  output logic                      burst_last_o
);
  localparam int unsigned PageBeats = 4096 / BeatBytes;
  localparam int unsigned BeatShift = $clog2(BeatBytes);
  localparam int unsigned PageBits = $clog2(PageBeats) > 0 ? $clog2(PageBeats) : 1;

  if (BeatBytes < 2 || 2 ** BeatShift != BeatBytes || BeatBytes > 128 || MaxBurst < 1 || MaxBurst > 256
      || AddrBits <= 12 || CountBits < 1) begin : gen_bad_params
    $fatal(1, "%m: axi_burst_split needs a power-of-two 2 <= BeatBytes <= 128, 1 <= MaxBurst <= 256, AddrBits > 12 (%0d, %0d, %0d)",
           BeatBytes, MaxBurst, AddrBits);
  end

  typedef logic [CountBits-1:0] count_t;

  logic [AddrBits-1:0] addr_q;
  count_t              left_q;
  count_t              to_page, burst;

  always_comb begin
    // beats from addr_q to the next 4 KiB boundary (a whole page when addr_q sits on one)
    to_page = count_t'(PageBeats) - count_t'(addr_q[BeatShift+:PageBits]);
    burst = left_q;
    if (burst > count_t'(MaxBurst)) burst = count_t'(MaxBurst);
    if (burst > to_page) burst = to_page;
  end

  assign cmd_ready_o   = !burst_valid_o;
  assign burst_addr_o  = addr_q;
  assign burst_len_o   = 8'(burst - 1'b1);
  assign burst_last_o  = burst == left_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      burst_valid_o <= 1'b0;
    end else if (cmd_valid_i && cmd_ready_o) begin
      burst_valid_o <= cmd_beats_i != '0;
    end else if (burst_valid_o && burst_ready_i && burst_last_o) begin
      burst_valid_o <= 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (cmd_valid_i && cmd_ready_o) begin
      addr_q <= cmd_addr_i;
      left_q <= cmd_beats_i;
    end else if (burst_valid_o && burst_ready_i) begin
      addr_q <= addr_q + (AddrBits'(burst) << BeatShift);
      left_q <= left_q - burst;
    end
  end

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (!rst_i && cmd_valid_i && cmd_ready_o && cmd_addr_i[BeatShift-1:0] != '0) begin
      $error("%m: transfer address 0x%0h is not aligned to a %0d-byte beat", cmd_addr_i, BeatBytes);
    end
  end
`endif
endmodule

`default_nettype wire
