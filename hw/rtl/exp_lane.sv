// exp(x) for x <= 0 (x > 0 is clamped to 0, giving 1.0), combinational. Follows
// edgemoe.golden.fixed.nonlinear.exp_neg step by step: exp(x) = 2**-t, t = -x*log2(e) = n + u;
// 2**-u from the interpolated Exp2Table, 2**-n a right shift with the output's rounding.
//   1. a = min(max(-x, 0), 2**(XF + K) - 1), K = clog2(OF + 3)
//   2. aw = rhu(a, XF - W) (XF > W) or a << (W - XF)
//   3. t = rhu(aw * Log2e, W); n = t >> W; u = t mod 2**W
//   4. p = E[i] + rhu((E[i+1] - E[i]) * r, W - b), i = u >> (W - b), r = u mod 2**(W - b)
//   5. y = fit(cast(p, min(n, OF + 2) + W - OF, out), out)
`default_nettype none

module exp_lane
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned XBits          = AttnScoreBits + 1,  // x - max is one bit wider than x
  parameter int          XFrac          = AttnScoreFracBits,
  parameter int unsigned OutBits        = ExpOutBits,
  parameter int          OutFrac        = ExpOutFracBits,
  parameter bit          OutSigned      = ExpOutSigned,
  parameter bit          OutRoundHalfUp = ExpOutRoundHalfUp,
  parameter bit          OutSaturate    = ExpOutSaturate
) (
  input  wire logic [XBits-1:0]   x_i,
  output logic      [OutBits-1:0] y_o
);
  localparam int W = WorkFracBits;
  localparam int B = ExpTableBits;
  localparam int OF = OutFrac;
  localparam int K = $clog2(OF + 3);
  localparam int AB = XFrac + K;  // bits of the clamped magnitude
  localparam int CW = (int'(XBits) + 1 > AB ? int'(XBits) + 1 : AB) + 1;
  localparam int AWW = K + W + 1;
  localparam int TW = W + 1;
  localparam int TPW = AWW + TW;  // aw * log2(e)
  localparam int NW = TPW - 2 * W;  // bits of n
  localparam int RB = W - B;
  localparam int LS = OF > W ? OF - W : 0;
  localparam int YW = W + LS + 3;
  localparam int NMax = OF + 2;

  if (AB < 1 || AB > 62 || K + 2 * W + 1 > 62 || YW > FuncBits) begin : gen_bad_widths
    $fatal(1, "%m: exp_lane input/work formats too wide (XFrac %0d, W %0d)", XFrac, W);
  end
  if (Exp2TableSize != (1 << B) + 1 || RB < 1) begin : gen_bad_table
    $fatal(1, "%m: Exp2Table needs 2**ExpTableBits + 1 entries and ExpTableBits < WorkFracBits");
  end

  logic signed [CW-1:0] negx;
  logic [AB-1:0]        a;
  logic [AWW-1:0]       aw;
  logic [TPW-1:0]       prod_t;
  logic [TPW-W-1:0]     t;
  logic [NW-1:0]        n;
  logic [W-1:0]         u;
  logic [TW-1:0]        p;
  logic [7:0]           s;  // n clamped, + W + LS - OF: at most W + 2 + LS
  logic [YW-1:0]        yv;

  assign negx = -CW'($signed(x_i));

  always_comb begin
    if (negx <= 0) begin
      a = '0;
    end else if (negx > CW'((CW'(1) <<< AB) - 1)) begin
      a = '1;
    end else begin
      a = negx[AB-1:0];
    end
  end

  if (XFrac > W) begin : gen_aw_round
    logic [AB:0] a_rounded;
    assign a_rounded = (AB + 1)'(a) + ((AB + 1)'(1) << (XFrac - W - 1));
    assign aw = AWW'(a_rounded >> (XFrac - W));
  end else begin : gen_aw_shift
    assign aw = AWW'(a) << (W - XFrac);
  end

  assign prod_t = TPW'(aw) * TPW'(Log2eTable[0][TW-1:0]) + (TPW'(1) << (W - 1));
  assign t = prod_t[TPW-1:W];
  assign n = t[TPW-W-1:W];
  assign u = t[W-1:0];
  logic unused_low;  // the rounded-off bits of aw * log2(e)
  assign unused_low = ^prod_t[W-1:0];

  // Exp2Table read as a ROM of TW-bit entries (synthesis maps it to LUTs), always interpolated
  logic [B-1:0]  idx;
  logic [RB-1:0] r;
  assign idx = u[W-1:RB];
  assign r = u[RB-1:0];
  assign p = TW'(interpolate(FuncBits'(Exp2Table[(B + 1)'(idx)][TW-1:0]),
                             FuncBits'(Exp2Table[(B + 1)'(idx) + (B + 1)'(1)][TW-1:0]), FuncBits'(r), RB));

  always_comb begin
    s = (n > NW'(NMax)) ? 8'(NMax + W + LS - OF) : 8'(n) + 8'(W + LS - OF);
    yv = YW'(scale_pow2(FuncBits'(p) <<< LS, int'(s), OutRoundHalfUp));
  end

  fxp_requant #(
    .InBits(YW), .InFrac(0), .InSigned(1'b0),
    .OutBits(OutBits), .OutFrac(0), .OutSigned(OutSigned),
    .RoundHalfUp(OutRoundHalfUp), .Saturate(OutSaturate)
  ) u_fit (
    .in_i(yv), .out_o(y_o), .clip_o()
  );
endmodule

`default_nettype wire
