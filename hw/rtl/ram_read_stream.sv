// Turns a stream of RAM addresses into a stream of the words read there, through a read port with
// one cycle of latency: an address is taken while fewer than two words are held or in flight
// (counting the one leaving in this cycle), so the output keeps one word per cycle and no word is
// lost under back-pressure. Each address carries UserBits side-band bits that come out with its
// word (last flags, row tags).
`default_nettype none

module ram_read_stream #(
  parameter int unsigned AddrBits = 1,
  parameter int unsigned WordBits = 1,
  parameter int unsigned UserBits = 1
) (
  input  wire logic                clk_i,
  input  wire logic                rst_i,
  // the addresses
  input  wire logic                addr_valid_i,
  output logic                     addr_ready_o,
  input  wire logic [AddrBits-1:0] addr_i,
  input  wire logic [UserBits-1:0] addr_user_i,
  // the RAM's read port
  output logic                     rd_en_o,
  output logic      [AddrBits-1:0] rd_addr_o,
  input  wire logic [WordBits-1:0] rd_data_i,
  // the words
  output logic                     word_valid_o,
  input  wire logic                word_ready_i,
  output logic      [WordBits-1:0] word_o,
  output logic      [UserBits-1:0] word_user_o
);
  logic                pend_q, head_q, tail_q, take;
  logic [1:0]          count_q;
  logic [UserBits-1:0] pend_user_q;
  logic [WordBits-1:0] data_q [2];
  logic [UserBits-1:0] user_q [2];

  assign addr_ready_o = 32'(count_q) + 32'(pend_q) < 2 + 32'(take);
  assign rd_en_o      = addr_valid_i && addr_ready_o;
  assign rd_addr_o    = addr_i;
  assign word_valid_o = count_q != 2'd0;
  assign word_o       = data_q[head_q];
  assign word_user_o  = user_q[head_q];
  assign take         = word_valid_o && word_ready_i;

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
    if (rd_en_o) pend_user_q <= addr_user_i;
    if (pend_q) begin
      data_q[tail_q] <= rd_data_i;
      user_q[tail_q] <= pend_user_q;
    end
  end

`ifndef SYNTHESIS
  // The address stream follows the valid/ready rule (valid and data hold until taken).
  stream_check #(.Width(AddrBits + UserBits)) u_addr_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(addr_valid_i), .ready_i(addr_ready_o),
    .data_i({addr_user_i, addr_i})
  );
`endif
endmodule

`default_nettype wire
