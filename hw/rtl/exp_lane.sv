// exp(x) for x <= 0 (x > 0 is clamped to 0, giving 1.0). Follows
// edgemoe.golden.fixed.nonlinear.exp_neg step by step: exp(x) = 2**-t, t = -x*log2(e) = n + u;
// 2**-u from the interpolated Exp2Table, 2**-n a right shift with the output's rounding.
//   1. a = min(max(-x, 0), 2**(XF + K) - 1), K = clog2(OF + 3)
//   2. aw = rhu(a, XF - W) (XF > W) or a << (W - XF)
//   3. t = rhu(aw * Log2e, W); n = t >> W; u = t mod 2**W
//   4. p = E[i] + rhu((E[i+1] - E[i]) * r, W - b), i = u >> (W - b), r = u mod 2**(W - b)
//   5. y = fit(cast(p, min(n, OF + 2) + W - OF, out), out)
// (W = WorkFracBits, b = ExpTableBits, XF = XFrac, OF = OutFrac.) One register per step
// (the multiplies in fxp_mul), y_o from a register, fxp_func_pkg::ExpLatency enabled cycles
// after x_i; en_i low holds every stage.
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
  input  wire logic               clk_i,
  input  wire logic               en_i,
  input  wire logic [XBits-1:0]   x_i,
  output logic      [OutBits-1:0] y_o
);
  localparam int WorkFrac = WorkFracBits;
  localparam int ClampIntBits = $clog2(OutFrac + 3);  // integer bits of the clamped magnitude
  localparam int MagBits = XFrac + ClampIntBits;  // bits of the clamped magnitude a
  localparam int NegBits = (int'(XBits) + 1 > MagBits ? int'(XBits) + 1 : MagBits) + 1;  // -x, signed
  localparam int MagWorkBits = ClampIntBits + WorkFrac + 1;  // aw, a at WorkFrac fraction bits
  localparam int TableEntryBits = WorkFrac + 1;  // Exp2Table and Log2eTable entries, unsigned
  localparam int ProductBits = MagWorkBits + TableEntryBits + 2;  // aw * log2(e), signed
  localparam int IntPartBits = ProductBits - 2 * WorkFrac;  // bits of n
  localparam int InterpBits = WorkFrac - int'(ExpTableBits);  // bits of the interpolation fraction r
  localparam int InterpProductBits = TableEntryBits + 1 + InterpBits + 1;  // (E[i+1] - E[i]) * r, signed
  localparam int OutLeftShift = OutFrac > WorkFrac ? OutFrac - WorkFrac : 0;
  localparam int ScaledBits = WorkFrac + OutLeftShift + 3;  // p << OutLeftShift, and after the shift
  localparam int MaxIntPart = OutFrac + 2;  // n beyond this shifts every bit out
  localparam int DistBits = $clog2(WorkFrac + 2 + OutLeftShift + 1);  // the shift's distance
  localparam int SideShiftBits = DistBits + 1;  // the shift passed on as {s > 0, distance}

  if (MagBits < 1 || MagBits > 62 || ClampIntBits + 2 * WorkFrac + 1 > 62 || ScaledBits > FuncBits)
  begin : gen_bad_widths
    $fatal(1, "%m: exp_lane input/work formats too wide (XFrac %0d, WorkFracBits %0d)", XFrac, WorkFrac);
  end
  if (Exp2TableSize != (1 << ExpTableBits) + 1 || InterpBits < 1) begin : gen_bad_table
    $fatal(1, "%m: Exp2Table needs 2**ExpTableBits + 1 entries and ExpTableBits < WorkFracBits");
  end

  // ---- 1. a = -x clamped to [0, 2**MagBits - 1]: 0 for x >= 0 (x's sign bit), all ones for
  // x <= -2**MagBits; the range test on x runs beside the negation, not after it
  logic [MagBits-1:0]        negx;  // the low bits of -x
  logic                      below;
  logic [MagBits-1:0]        a_d, a_q;

  assign negx = MagBits'(-NegBits'($signed(x_i)));
  assign below = NegBits'($signed(x_i)) <= -(NegBits'(1) <<< MagBits);

  always_comb begin
    if (!x_i[XBits-1]) begin
      a_d = '0;
    end else if (below) begin
      a_d = '1;
    end else begin
      a_d = negx;
    end
  end

  pipe_reg #(.Width(MagBits), .Depth(1)) u_a (.clk_i(clk_i), .en_i(en_i), .d_i(a_d), .q_o(a_q));

  // ---- 2., 3. aw (into the multiplier's input register), aw * log2(e)
  logic [MagWorkBits-1:0] aw;
  if (XFrac > WorkFrac) begin : gen_aw_round
    logic [MagBits:0] a_rounded;
    assign a_rounded = (MagBits + 1)'(a_q) + ((MagBits + 1)'(1) << (XFrac - WorkFrac - 1));
    assign aw = MagWorkBits'(a_rounded >> (XFrac - WorkFrac));
  end else begin : gen_aw_shift
    assign aw = MagWorkBits'(a_q) << (WorkFrac - XFrac);
  end

  logic signed [ProductBits-1:0] prod_t;
  fxp_mul #(.ABits(MagWorkBits + 1), .BBits(TableEntryBits + 1)) u_mul_log2e (
    .clk_i(clk_i), .en_i(en_i),
    .a_i($signed({1'b0, aw})), .b_i($signed({1'b0, Log2eTable[0][TableEntryBits-1:0]})),
    .p_o(prod_t)
  );

  // t = rhu(aw * log2(e), W): n its integer part, u its fraction
  logic [ProductBits-1:0]   t_rounded;
  logic [IntPartBits-1:0]   n_d;
  logic [WorkFrac-1:0]      u_d, u_q;
  // the shift: n clamped, + W + OutLeftShift - OutFrac, at most W + 2 + OutLeftShift
  logic [7:0]               s_d, s_q;
  assign t_rounded = prod_t + (ProductBits'(1) << (WorkFrac - 1));
  assign n_d = t_rounded[ProductBits-1:2*WorkFrac];
  assign u_d = t_rounded[2*WorkFrac-1:WorkFrac];
  assign s_d = (n_d > IntPartBits'(MaxIntPart)) ? 8'(MaxIntPart + WorkFrac + OutLeftShift - OutFrac)
                                                : 8'(n_d) + 8'(WorkFrac + OutLeftShift - OutFrac);
  logic unused_low;  // the rounded-off bits of aw * log2(e)
  assign unused_low = ^t_rounded[WorkFrac-1:0];

  pipe_reg #(.Width(WorkFrac + 8), .Depth(1)) u_t (
    .clk_i(clk_i), .en_i(en_i), .d_i({u_d, s_d}), .q_o({u_q, s_q})
  );

  // ---- 4. Exp2Table's two entries read from a registered ROM (r and the shift's distance beside
  // it), registered once more, then (E[i+1] - E[i]) * r: always interpolated
  logic [InterpBits-1:0]      r_t, r_q;
  logic [TableEntryBits-1:0]  lo_t, hi_t, lo_q, hi_q, lo_m;
  logic [SideShiftBits-1:0]   s_t, s_r;
  rom_pair #(
    .Entries(Exp2TableSize), .EntryBits(TableEntryBits), .IndexBits(ExpTableBits), .Table(Exp2Table)
  ) u_table (
    .clk_i(clk_i), .en_i(en_i), .idx_i(u_q[WorkFrac-1:InterpBits]), .lo_o(lo_t), .hi_o(hi_t)
  );
  pipe_reg #(.Width(InterpBits + SideShiftBits), .Depth(1)) u_table_side (
    .clk_i(clk_i), .en_i(en_i),
    .d_i({u_q[InterpBits-1:0], s_q > 0, DistBits'(pow2_distance(int'(s_q), OutRoundHalfUp))}),
    .q_o({r_t, s_t})
  );
  pipe_reg #(.Width(2 * TableEntryBits + InterpBits + SideShiftBits), .Depth(1)) u_entries (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_t, hi_t, r_t, s_t}), .q_o({lo_q, hi_q, r_q, s_r})
  );

  logic signed [InterpProductBits-1:0] d_m;
  logic [SideShiftBits-1:0] s_m, s_p;
  fxp_mul #(.ABits(TableEntryBits + 1), .BBits(InterpBits + 1)) u_mul_interp (
    .clk_i(clk_i), .en_i(en_i),
    .a_i((TableEntryBits + 1)'(hi_q) - (TableEntryBits + 1)'(lo_q)), .b_i($signed({1'b0, r_q})),
    .p_o(d_m)
  );
  pipe_reg #(.Width(TableEntryBits + SideShiftBits), .Depth(MulLatency)) u_interp_side (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_q, s_r}), .q_o({lo_m, s_m})
  );

  logic [TableEntryBits-1:0] p_d, p_q;
  assign p_d = TableEntryBits'(interpolate(FuncBits'(lo_m), FuncBits'(d_m), InterpBits));
  pipe_reg #(.Width(TableEntryBits + SideShiftBits), .Depth(1)) u_p (
    .clk_i(clk_i), .en_i(en_i), .d_i({p_d, s_m}), .q_o({p_q, s_p})
  );

  // ---- 5. p * 2**-s with the output's rounding (shift, then round), then the fit; s >= 0
  logic [ScaledBits-1:0] yt_d, yt_q, yv_d, yv_q;
  logic                  right_t;
  logic [OutBits-1:0]    y_d;
  assign yt_d = ScaledBits'(pow2_shift(FuncBits'(p_q) <<< OutLeftShift, 1'b1, int'(s_p[DistBits-1:0])));
  pipe_reg #(.Width(ScaledBits + 1), .Depth(1)) u_shift (
    .clk_i(clk_i), .en_i(en_i), .d_i({yt_d, s_p[DistBits]}), .q_o({yt_q, right_t})
  );
  assign yv_d = ScaledBits'(pow2_round(FuncBits'(yt_q), right_t, OutRoundHalfUp));
  pipe_reg #(.Width(ScaledBits), .Depth(1)) u_round (.clk_i(clk_i), .en_i(en_i), .d_i(yv_d), .q_o(yv_q));

  fxp_requant #(
    .InBits(ScaledBits), .InFrac(0), .InSigned(1'b0),
    .OutBits(OutBits), .OutFrac(0), .OutSigned(OutSigned),
    .RoundHalfUp(OutRoundHalfUp), .Saturate(OutSaturate)
  ) u_fit (
    .in_i(yv_q), .out_o(y_d), .clip_o()
  );
  pipe_reg #(.Width(OutBits), .Depth(1)) u_out (.clk_i(clk_i), .en_i(en_i), .d_i(y_d), .q_o(y_o));
endmodule

`default_nettype wire
