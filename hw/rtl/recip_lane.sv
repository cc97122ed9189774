// 1/x for x > 0, combinational. Follows edgemoe.golden.fixed.nonlinear.reciprocal step by step:
//   1. e = position of the leading one of x
//   2. m = x normalised to [1, 2) with W fraction bits (truncating)
//   3. y = R[i] + rhu((R[i+1] - R[i]) * r, W - b), i, r = the top b and the rest of m - 1
//   4. NewtonSteps times: y = rhu(y * (2**(W+1) - rhu(m * y, W)), W)
//   5. y_o = fit(cast(y, W + e - XF - OF, out)), the shift clamped to [-(OutBits + 1), W + 2]
// x = 0 gives the all-ones mantissa path (the golden model rejects it as an error).
`default_nettype none

module recip_lane
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned XBits          = SoftmaxSumBits,
  parameter int          XFrac          = SoftmaxSumFracBits,
  parameter int unsigned OutBits        = SoftmaxRecipBits,
  parameter int          OutFrac        = SoftmaxRecipFracBits,
  parameter bit          OutSigned      = SoftmaxRecipSigned,
  parameter bit          OutRoundHalfUp = SoftmaxRecipRoundHalfUp,
  parameter bit          OutSaturate    = SoftmaxRecipSaturate
) (
  input  wire logic [XBits-1:0]   x_i,  // positive (an unsigned or a signed format)
  output logic      [OutBits-1:0] y_o
);
  localparam int W = WorkFracBits;
  localparam int B = RecipTableBits;
  localparam int RB = W - B;
  localparam int LW = int'(XBits) > W + 1 ? int'(XBits) : W + 1;
  localparam int YW = W + 3;  // y and the Newton terms, signed
  localparam int PW = 2 * YW + 2;
  localparam int SMin = -(int'(OutBits) + 1);
  localparam int SMax = W + 2;
  localparam int OW = W + 1 + int'(OutBits) + 3;  // y after the widest left shift, signed

  if (RecipTableSize != (1 << B) + 1 || RB < 1) begin : gen_bad_table
    $fatal(1, "%m: RecipTable needs 2**RecipTableBits + 1 entries and RecipTableBits < WorkFracBits");
  end
  if (XBits > FuncBits || OW > FuncBits) begin : gen_bad_widths
    $fatal(1, "%m: recip_lane works on at most %0d bits (XBits %0d, output path %0d)", FuncBits, XBits, OW);
  end

  int                   e;
  logic [LW-1:0]        xn;
  logic [W:0]           m;
  logic [B-1:0]         idx;
  logic [RB-1:0]        r;
  logic signed [YW-1:0] y [NewtonSteps + 1] /* verilator split_var */;  // the Newton steps
  logic signed [OW-1:0] yv;

  assign e = leading_one(FuncBits'(x_i));
  assign xn = LW'(x_i) << (LW - 1 - e);
  assign m = xn[LW-1 -: W + 1];
  assign idx = m[W-1 -: B];
  assign r = m[RB-1:0];
  // RecipTable read as a ROM of W + 1-bit entries (synthesis maps it to LUTs)
  assign y[0] = YW'(interpolate(FuncBits'(RecipTable[(B + 1)'(idx)][W:0]),
                                FuncBits'(RecipTable[(B + 1)'(idx) + (B + 1)'(1)][W:0]),
                                FuncBits'(r), RB));

  for (genvar k = 0; k < int'(NewtonSteps); k++) begin : gen_newton
    logic signed [PW-1:0] my, yc;
    logic signed [YW-1:0] a, c;
    assign my = PW'($signed({1'b0, m})) * PW'(y[k]) + (PW'(1) <<< (W - 1));
    assign a = YW'(my >>> W);
    assign c = (YW'(1) <<< (W + 1)) - a;
    assign yc = PW'(y[k]) * PW'(c) + (PW'(1) <<< (W - 1));
    assign y[k+1] = YW'(yc >>> W);
  end

  assign yv = OW'(scale_pow2(FuncBits'(y[NewtonSteps]), clamp(W + e - XFrac - OutFrac, SMin, SMax),
                             OutRoundHalfUp));

  fxp_requant #(
    .InBits(OW), .InFrac(0), .InSigned(1'b1),
    .OutBits(OutBits), .OutFrac(0), .OutSigned(OutSigned),
    .RoundHalfUp(OutRoundHalfUp), .Saturate(OutSaturate)
  ) u_fit (
    .in_i(yv), .out_o(y_o), .clip_o()
  );

  logic unused_xn;  // bits below the mantissa are truncated
  assign unused_xn = ^xn;
endmodule

`default_nettype wire
