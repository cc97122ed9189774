// 1/sqrt(x) for x > 0, combinational. Follows edgemoe.golden.fixed.nonlinear.rsqrt step by step:
//   1. e = leading one of x; E = e - XF; par = E & 1; q = (E - par) >> 1
//   2. m = x normalised to [1, 4) with W fraction bits (truncating), x = m * 2**(2q)
//   3. y = S[i] + rhu((S[i+1] - S[i]) * r, W + 2 - b), i, r = the top b and the rest of m - 1
//   4. NewtonSteps times: s2 = rhu(y*y, W); a = rhu(m*s2, W); y = rhu(y * (3*2**W - a), W + 1)
//   5. y_o = fit(cast(y, W + q - OF, out)), the shift clamped to [-(OutBits + 1), W + 2]
`default_nettype none

module rsqrt_lane
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned XBits          = LnVarBits,
  parameter int          XFrac          = LnVarFracBits,
  parameter int unsigned OutBits        = LnRstdBits,
  parameter int          OutFrac        = LnRstdFracBits,
  parameter bit          OutSigned      = LnRstdSigned,
  parameter bit          OutRoundHalfUp = LnRstdRoundHalfUp,
  parameter bit          OutSaturate    = LnRstdSaturate
) (
  input  wire logic [XBits-1:0]   x_i,  // positive
  output logic      [OutBits-1:0] y_o
);
  localparam int W = WorkFracBits;
  localparam int B = RsqrtTableBits;
  localparam int SH = W + 2 - B;
  localparam int LW = int'(XBits) > W + 2 ? int'(XBits) : W + 2;
  localparam int YW = W + 4;
  localparam int PW = 2 * YW + 2;
  localparam int SMin = -(int'(OutBits) + 1);
  localparam int SMax = W + 2;
  localparam int OW = W + 1 + int'(OutBits) + 3;
  localparam int IW = $clog2(RsqrtTableSize);  // table index

  if (RsqrtTableSize != 3 * (1 << (B - 2)) + 1 || SH < 1 || B < 2) begin : gen_bad_table
    $fatal(1, "%m: RsqrtTable needs 3 * 2**(RsqrtTableBits - 2) + 1 entries");
  end
  if (XBits > FuncBits || OW > FuncBits) begin : gen_bad_widths
    $fatal(1, "%m: rsqrt_lane works on at most %0d bits (XBits %0d, output path %0d)", FuncBits, XBits, OW);
  end

  int                   e, ee, q;
  logic                 par;
  logic [LW-1:0]        xn;
  logic [W+1:0]         m, v;
  logic [IW-1:0]        idx;
  logic [SH-1:0]        r;
  logic signed [YW-1:0] y [NewtonSteps + 1] /* verilator split_var */;  // the Newton steps
  logic signed [OW-1:0] yv;

  always_comb begin
    e = leading_one(FuncBits'(x_i));
    ee = e - XFrac;
    par = ee[0];
    q = (ee - int'(par)) >>> 1;
  end

  assign xn = LW'(x_i) << (LW - 1 - e);
  assign m = par ? xn[LW-1 -: W + 2] : {1'b0, xn[LW-1 -: W + 1]};
  assign v = m - ((W + 2)'(1) << W);
  assign idx = IW'(v >> SH);
  assign r = v[SH-1:0];
  // RsqrtTable read as a ROM of W + 1-bit entries (synthesis maps it to LUTs)
  assign y[0] = YW'(interpolate(FuncBits'(RsqrtTable[idx][W:0]), FuncBits'(RsqrtTable[idx + IW'(1)][W:0]),
                                FuncBits'(r), SH));

  for (genvar k = 0; k < int'(NewtonSteps); k++) begin : gen_newton
    logic signed [PW-1:0] yy, ms, yc;
    logic signed [YW-1:0] s2, a, c;
    assign yy = PW'(y[k]) * PW'(y[k]) + (PW'(1) <<< (W - 1));
    assign s2 = YW'(yy >>> W);
    assign ms = PW'($signed({1'b0, m})) * PW'(s2) + (PW'(1) <<< (W - 1));
    assign a = YW'(ms >>> W);
    assign c = (YW'(3) <<< W) - a;
    assign yc = PW'(y[k]) * PW'(c) + (PW'(1) <<< W);
    assign y[k+1] = YW'(yc >>> (W + 1));
  end

  assign yv = OW'(scale_pow2(FuncBits'(y[NewtonSteps]), clamp(W + q - OutFrac, SMin, SMax), OutRoundHalfUp));

  fxp_requant #(
    .InBits(OW), .InFrac(0), .InSigned(1'b1),
    .OutBits(OutBits), .OutFrac(0), .OutSigned(OutSigned),
    .RoundHalfUp(OutRoundHalfUp), .Saturate(OutSaturate)
  ) u_fit (
    .in_i(yv), .out_o(y_o), .clip_o()
  );

  logic unused_bits;  // bits below the mantissa are truncated; v's top bits only via idx
  assign unused_bits = ^{xn, ee};
endmodule

`default_nettype wire
