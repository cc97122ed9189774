// GELU of one activation, combinational: GELU(x) = ReLU(x) - delta(|x|), delta from the
// interpolated GeluDeltaTable over |x| < 2**GeluRangeLog2 and 0 beyond. Follows
// edgemoe.golden.fixed.nonlinear.gelu step by step (same widths, roundings and overflow):
//   a = |x|; beyond = a >= 2**(AF + g); i = a >> RB, r = a mod 2**RB (RB = AF + g - b);
//   d = fit(G[i] + cast((G[i+1] - G[i]) * r, RB, delta), delta); d = 0 where beyond;
//   y = cast((max(x, 0) << (F - AF)) - (d << (F - DF)), F - AF, act), F = max(AF, DF).
`default_nettype none

module gelu_lane
  import edgemoe_pkg::*;
(
  input  wire logic [ActBits-1:0] x_i,
  output logic      [ActBits-1:0] y_o
);
  localparam int AF = ActFracBits;
  localparam int DF = GeluDeltaFracBits;
  localparam int G = GeluRangeLog2;
  localparam int B = GeluTableBits;
  localparam int RB = AF + G - B;
  localparam int F = AF > DF ? AF : DF;
  localparam int TW = GeluDeltaTableWidth;  // table entry width (unsigned)
  localparam int AW = ActBits;
  localparam int RW = RB > 0 ? RB : 1;
  localparam int YW = (AW + F - AF > GeluDeltaBits + F - DF ? AW + F - AF : GeluDeltaBits + F - DF) + 2;

  if (AF + G < 0 || AF + G > AW - 1 || B < 1) begin : gen_bad_range
    $fatal(1, "%m: gelu_lane needs 0 <= ActFracBits + GeluRangeLog2 <= ActBits - 1 (got %0d)", AF + G);
  end
  if (GeluDeltaTableSize != (1 << B) + 1) begin : gen_bad_table
    $fatal(1, "%m: GeluDeltaTable has %0d entries, expected 2**GeluTableBits + 1", GeluDeltaTableSize);
  end

  // the table as a ROM of TW-bit entries (synthesis maps it to LUTs or block RAM)
  logic [TW-1:0] rom [GeluDeltaTableSize];
  initial begin
    for (int k = 0; k < int'(GeluDeltaTableSize); k++) rom[k] = GeluDeltaTable[k][TW-1:0];
  end

  logic [AW-1:0] a;
  logic          beyond;
  logic [B-1:0]  idx;
  logic [RW-1:0] r;
  logic signed [TW:0]      lo, hi, diff;
  logic signed [TW+RW+1:0] prod;
  logic [TW+1:0]           step;  // cast((hi - lo) * r, RB, delta), signed
  logic signed [TW+2:0]    d_sum;
  logic [GeluDeltaBits-1:0] d;
  logic signed [YW-1:0]    y_wide;

  assign a = x_i[AW-1] ? AW'(-x_i) : x_i;
  assign beyond = a >= AW'(1) << (AF + G);

  if (RB > 0) begin : gen_interp
    logic [AW-RB-1:0] idx_full;
    assign idx_full = a[AW-1:RB];
    assign idx = beyond ? '0 : idx_full[B-1:0];
    assign r = a[RB-1:0];
    // verilator lint_off UNUSEDSIGNAL
    logic unused_hi;  // idx_full above bit B only matters through `beyond`
    assign unused_hi = ^idx_full;
    // verilator lint_on UNUSEDSIGNAL
  end else begin : gen_no_interp
    assign idx = beyond ? '0 : B'(a << (-RB));
    assign r = '0;
  end

  always_comb begin
    lo   = (TW + 1)'(rom[(B + 1)'(idx)]);
    hi   = (TW + 1)'(rom[(B + 1)'(idx) + (B + 1)'(1)]);
    diff = hi - lo;
    prod = (TW + RW + 2)'(diff) * $signed({1'b0, r});
  end

  if (RB > 0) begin : gen_step
    fxp_requant #(
      .InBits(TW + RW + 2), .InFrac(RB), .InSigned(1'b1),
      .OutBits(TW + 2), .OutFrac(0), .OutSigned(1'b1),
      .RoundHalfUp(GeluDeltaRoundHalfUp), .Saturate(1'b1)
    ) u_step (
      .in_i(prod), .out_o(step), .clip_o()
    );
  end else begin : gen_no_step
    assign step = '0;
  end

  assign d_sum = (TW + 3)'(lo) + (TW + 3)'($signed(step));

  logic [GeluDeltaBits-1:0] d_fit;
  fxp_requant #(
    .InBits(TW + 3), .InFrac(0), .InSigned(1'b1),
    .OutBits(GeluDeltaBits), .OutFrac(0), .OutSigned(GeluDeltaSigned),
    .RoundHalfUp(GeluDeltaRoundHalfUp), .Saturate(GeluDeltaSaturate)
  ) u_delta (
    .in_i(d_sum), .out_o(d_fit), .clip_o()
  );
  assign d = beyond ? '0 : d_fit;

  always_comb begin
    y_wide = (x_i[AW-1] ? '0 : (YW'(x_i) <<< (F - AF)))
           - (YW'({1'b0, d}) <<< (F - DF));
  end

  fxp_requant #(
    .InBits(YW), .InFrac(F), .InSigned(1'b1),
    .OutBits(ActBits), .OutFrac(AF), .OutSigned(1'b1),
    .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
  ) u_out (
    .in_i(y_wide), .out_o(y_o), .clip_o()
  );
endmodule

`default_nettype wire
