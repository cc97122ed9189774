// 1/sqrt(x) for x > 0, combinational. Follows edgemoe.golden.fixed.nonlinear.rsqrt step by step:
//   1. e = leading one of x; E = e - XF; par = E & 1; q = (E - par) >> 1
//   2. m = x normalised to [1, 4) with W fraction bits (truncating), x = m * 2**(2q)
//   3. y = S[i] + rhu((S[i+1] - S[i]) * r, W + 2 - b), i, r = the top b and the rest of m - 1
//   4. NewtonSteps times: s2 = rhu(y*y, W); a = rhu(m*s2, W); y = rhu(y * (3*2**W - a), W + 1)
//   5. y_o = fit(cast(y, W + q - OF, out)), the shift clamped to [-(OutBits + 1), W + 2]
`default_nettype none

module rsqrt_lane
  import edgemoe_pkg::*;
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

  function automatic int leading_one(input logic [XBits-1:0] v);
    int pos = 0;
    for (int k = 0; k < int'(XBits); k++) begin
      if (v[k]) pos = k;
    end
    return pos;
  endfunction

  // the table as a ROM of W + 1-bit entries (synthesis maps it to LUTs or block RAM)
  logic [W:0] rom [RsqrtTableSize];
  initial begin
    for (int k = 0; k < int'(RsqrtTableSize); k++) rom[k] = RsqrtTable[k][W:0];
  end

  int                   e, ee, q;
  logic                 par;
  logic [LW-1:0]        xn;
  logic [W+1:0]         m, v;
  logic [IW-1:0]        idx;
  logic [SH-1:0]        r;
  logic signed [W+2:0]  lo, hi;
  logic signed [W+SH+3:0] prod_d;
  logic signed [YW-1:0] y [NewtonSteps + 1];
  int                   s;
  logic signed [OW-1:0] yv;

  always_comb begin
    e = leading_one(x_i);
    ee = e - XFrac;
    par = ee[0];
    q = (ee - int'(par)) >>> 1;
  end

  assign xn = LW'(x_i) << (LW - 1 - e);
  assign m = par ? xn[LW-1 -: W + 2] : {1'b0, xn[LW-1 -: W + 1]};
  assign v = m - ((W + 2)'(1) << W);
  assign idx = IW'(v >> SH);
  assign r = v[SH-1:0];
  assign lo = (W + 3)'(rom[idx]);
  assign hi = (W + 3)'(rom[idx + IW'(1)]);
  assign prod_d = (W + SH + 4)'(hi - lo) * $signed({1'b0, r}) + ((W + SH + 4)'(1) <<< (SH - 1));
  assign y[0] = YW'(lo + (W + 3)'(prod_d >>> SH));

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

  always_comb begin
    s = W + q - OutFrac;
    if (s < SMin) s = SMin;
    if (s > SMax) s = SMax;
    if (s > 0) begin
      yv = (OW'(y[NewtonSteps]) + (OutRoundHalfUp ? (OW'(1) <<< (s - 1)) : '0)) >>> s;
    end else begin
      yv = OW'(y[NewtonSteps]) <<< (-s);
    end
  end

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
