// p = a * b, both signed and at most 35 bits, as up to four partial products of 18 x 18 bits
// (a 17-bit unsigned low chunk and a signed high chunk per operand), so each partial product is
// one DSP48E2 or one ECP5 MULT18X18D. The chunks' input registers, the products' registers,
// then one adder level per register (the high chunk's row, then the two rows): latency
// fxp_func_pkg::MulLatency enabled cycles.
`default_nettype none

module fxp_mul
  import fxp_func_pkg::*;
#(
  parameter int unsigned ABits      = 18,
  parameter int unsigned BBits      = 18
) (
  input  wire logic                          clk_i,
  input  wire logic                          en_i,
  input  wire logic signed [ABits-1:0]       a_i,
  input  wire logic signed [BBits-1:0]       b_i,
  output logic      signed [ABits+BBits-1:0] p_o
);
  localparam int unsigned ChunkBits = 17;  // the unsigned low chunk; the high chunk is signed, <= 18 bits
  localparam int unsigned MaxBits = 2 * ChunkBits + 1;
  localparam int unsigned AChunks = ABits > ChunkBits + 1 ? 2 : 1;
  localparam int unsigned BChunks = BBits > ChunkBits + 1 ? 2 : 1;
  localparam int unsigned ProductBits = ABits + BBits;

  if (ABits < 2 || BBits < 2 || ABits > MaxBits || BBits > MaxBits) begin : gen_bad_widths
    $fatal(1, "%m: fxp_mul takes signed operands of 2..%0d bits, got %0d x %0d", MaxBits, ABits, BBits);
  end
  if (MulLatency != 4) begin : gen_bad_latency
    $fatal(1, "%m: fxp_mul has 4 register levels, fxp_func_pkg::MulLatency says %0d", MulLatency);
  end

  // chunk i of a signed operand as an 18-bit signed value: the low chunk zero-extended, the
  // top chunk (the rest, sign included) sign-extended
  function automatic logic signed [ChunkBits:0] chunk(input logic signed [MaxBits-1:0] operand, input int i,
                                                      input int chunks);
    if (i == chunks - 1) return (ChunkBits + 1)'(operand >>> (ChunkBits * i));
    return $signed({1'b0, ChunkBits'(operand >>> (ChunkBits * i))});
  endfunction

  logic signed [ABits-1:0] a_q;
  logic signed [BBits-1:0] b_q;
  pipe_reg #(.Width(ABits + BBits), .Depth(1)) u_in (
    .clk_i(clk_i), .en_i(en_i), .d_i({a_i, b_i}), .q_o({a_q, b_q})
  );

  // partial products pp[i][j] = chunk i of a times chunk j of b, weight 2**(17 (i + j))
  logic signed [2*ChunkBits+1:0] pp_d [AChunks][BChunks];
  logic signed [2*ChunkBits+1:0] pp_q [AChunks][BChunks];
  for (genvar i = 0; i < AChunks; i++) begin : gen_a
    for (genvar j = 0; j < BChunks; j++) begin : gen_b
      assign pp_d[i][j] = chunk(MaxBits'(a_q), i, AChunks) * chunk(MaxBits'(b_q), j, BChunks);
      pipe_reg #(.Width(2 * ChunkBits + 2), .Depth(1)) u_pp (
        .clk_i(clk_i), .en_i(en_i), .d_i(pp_d[i][j]), .q_o(pp_q[i][j])
      );
    end
  end

  // rows: row i = sum_j pp[i][j] * 2**(17 j); then p = sum_i row i * 2**(17 i). Every sum is
  // taken modulo 2**ProductBits, where the exact product fits.
  logic signed [ProductBits-1:0] row_d [AChunks];
  logic signed [ProductBits-1:0] row_q [AChunks];
  logic signed [ProductBits-1:0] p_d;
  always_comb begin
    for (int i = 0; i < int'(AChunks); i++) begin
      row_d[i] = '0;
      for (int j = 0; j < int'(BChunks); j++) row_d[i] += ProductBits'(pp_q[i][j]) <<< (ChunkBits * j);
    end
  end
  for (genvar i = 0; i < AChunks; i++) begin : gen_row
    pipe_reg #(.Width(ProductBits), .Depth(1)) u_row (
      .clk_i(clk_i), .en_i(en_i), .d_i(row_d[i]), .q_o(row_q[i])
    );
  end
  always_comb begin
    p_d = '0;
    for (int i = 0; i < int'(AChunks); i++) p_d += row_q[i] <<< (ChunkBits * i);
  end
  pipe_reg #(.Width(ProductBits), .Depth(1)) u_out (
    .clk_i(clk_i), .en_i(en_i), .d_i(p_d), .q_o(p_o)
  );
endmodule

`default_nettype wire
