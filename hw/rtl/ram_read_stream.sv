// Turns a stream of RAM addresses into a stream of the words read there, through a read port with
// one cycle of latency: an address is taken while fewer than two words are held or in flight
// (counting the one leaving in this cycle), so the output keeps one word per cycle and no word is
// lost under back-pressure. Each address carries User bits that
// come out with its word (last flags, row tags).
`default_nettype none

module ram_read_stream #(
  parameter int unsigned AddrBits = 1,
  parameter int unsigned Width    = 1,
  parameter int unsigned User     = 1
) (
  input  wire logic                clk_i,
  input  wire logic                rst_i,
  input  wire logic                a_valid_i,
  output logic                     a_ready_o,
  input  wire logic [AddrBits-1:0] a_addr_i,
  input  wire logic [User-1:0]     a_user_i,
  // the RAM's read port
  output logic                     rd_en_o,
  output logic      [AddrBits-1:0] rd_addr_o,
  input  wire logic [Width-1:0]    rd_data_i,
  // the words
  output logic                     d_valid_o,
  input  wire logic                d_ready_i,
  output logic      [Width-1:0]    d_data_o,
  output logic      [User-1:0]     d_user_o
);
  logic             pend_q, head_q, tail_q, take;
  logic [1:0]       count_q;
  logic [User-1:0]  pend_user_q;
  logic [Width-1:0] data_q [2];
  logic [User-1:0]  user_q [2];

  assign a_ready_o = 32'(count_q) + 32'(pend_q) < 2 + 32'(take);
  assign rd_en_o   = a_valid_i && a_ready_o;
  assign rd_addr_o = a_addr_i;
  assign d_valid_o = count_q != 2'd0;
  assign d_data_o  = data_q[head_q];
  assign d_user_o  = user_q[head_q];
  assign take      = d_valid_o && d_ready_i;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      pend_q  <= 1'b0;
      head_q  <= 1'b0;
      tail_q  <= 1'b0;
      count_q <= '0;
    end else begin
      pend_q <= rd_en_o;
      if (pend_q) tail_q <= !tail_q;
      if (take) head_q <= !head_q;
      count_q <= count_q + 2'(pend_q) - 2'(take);
    end
  end

  always_ff @(posedge clk_i) begin
    if (rd_en_o) pend_user_q <= a_user_i;
    if (pend_q) begin
      data_q[tail_q] <= rd_data_i;
      user_q[tail_q] <= pend_user_q;
    end
  end
endmodule

`default_nettype wire
