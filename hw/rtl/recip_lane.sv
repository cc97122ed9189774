// 1/x for x > 0. Follows edgemoe.golden.fixed.nonlinear.reciprocal step by step:
//   1. e = position of the leading one of x
//   2. m = x normalised to [1, 2) with W fraction bits (truncating)
//   3. y = R[i] + rhu((R[i+1] - R[i]) * r, W - b), i, r = the top b and the rest of m - 1
//   4. NewtonSteps times: y = rhu(y * (2**(W+1) - rhu(m * y, W)), W)
//   5. y_o = fit(cast(y, W + e - XF - OF, out)), the shift clamped to [-(OutBits + 1), W + 2]
// (W = WorkFracBits, b = RecipTableBits, XF = XFrac, OF = OutFrac.) x = 0 gives the all-ones
// mantissa path (the golden model rejects it as an error). One register per step (the
// multiplies in fxp_mul), y_o from a register, fxp_func_pkg::RecipLatency enabled cycles after
// x_i; en_i low holds every stage.
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
  input  wire logic               clk_i,
  input  wire logic               en_i,
  input  wire logic [XBits-1:0]   x_i,  // positive (an unsigned or a signed format)
  output logic      [OutBits-1:0] y_o
);
  localparam int WorkFrac = WorkFracBits;
  localparam int InterpBits = WorkFrac - int'(RecipTableBits);  // bits of the interpolation fraction r
  localparam int NormalisedBits = int'(XBits) > WorkFrac + 1 ? int'(XBits) : WorkFrac + 1;  // x normalised
  localparam int NewtonBits = WorkFrac + 3;  // y and the Newton terms, signed
  localparam int NewtonProductBits = 2 * NewtonBits;
  localparam int InterpProductBits = WorkFrac + 2 + InterpBits + 1;  // (R[i+1] - R[i]) * r, signed
  localparam int MinShift = -(int'(OutBits) + 1);
  localparam int MaxShift = WorkFrac + 2;
  localparam int ShiftBits = 8;  // the clamped output shift, signed
  localparam int DistBits = $clog2((MaxShift > -MinShift ? MaxShift : -MinShift) + 1);  // its distance
  localparam int SideShiftBits = DistBits + 1;  // the shift passed on as {direction, distance}
  localparam int ScaledBits = WorkFrac + 1 + int'(OutBits) + 3;  // y after the widest left shift, signed

  if (RecipTableSize != (1 << RecipTableBits) + 1 || InterpBits < 1) begin : gen_bad_table
    $fatal(1, "%m: RecipTable needs 2**RecipTableBits + 1 entries and RecipTableBits < WorkFracBits");
  end
  if (XBits > FuncBits || ScaledBits > FuncBits || MaxShift >= 2 ** (ShiftBits - 1)
      || -MinShift > 2 ** (ShiftBits - 1)) begin : gen_bad_widths
    $fatal(1, "%m: recip_lane works on at most %0d bits (XBits %0d, output path %0d)", FuncBits, XBits,
           ScaledBits);
  end

  // ---- 1. e = leading one of x, and the normalising shift NormalisedBits - 1 - e
  logic [XBits-1:0] x_q;
  logic [7:0]       e_q, lz_q;
  pipe_reg #(.Width(XBits + 16), .Depth(1)) u_lead (
    .clk_i(clk_i), .en_i(en_i),
    .d_i({x_i, 8'(leading_one(FuncBits'(x_i))), 8'(normalise_shift(FuncBits'(x_i), NormalisedBits))}),
    .q_o({x_q, e_q, lz_q})
  );

  // ---- 2. m = x normalised; the output shift, clamped
  logic [NormalisedBits-1:0]        xn;
  logic [WorkFrac:0]          m_d, m_q;
  logic signed [ShiftBits-1:0] sh_d, sh_q;
  assign xn = NormalisedBits'(x_q) << lz_q;
  assign m_d = xn[NormalisedBits-1 -: WorkFrac + 1];
  assign sh_d = ShiftBits'(clamp(WorkFrac + int'(e_q) - XFrac - OutFrac, MinShift, MaxShift));
  pipe_reg #(.Width(WorkFrac + 1 + ShiftBits), .Depth(1)) u_norm (
    .clk_i(clk_i), .en_i(en_i), .d_i({m_d, sh_d}), .q_o({m_q, sh_q})
  );
  logic unused_xn;  // bits below the mantissa are truncated
  assign unused_xn = ^xn;

  // ---- 3. RecipTable's two entries read from a registered ROM (r, m and the shift's direction
  // and distance beside it), registered once more, then the interpolation multiply
  logic [InterpBits-1:0]       r_t, r_q;
  logic [WorkFrac:0]           lo_t, hi_t, lo_q, hi_q, lo_m;
  logic [WorkFrac:0]           m_r, m_t;
  logic [SideShiftBits-1:0]    sh_r, sh_t;
  rom_pair #(
    .Entries(RecipTableSize), .EntryBits(WorkFrac + 1), .IndexBits(RecipTableBits), .Table(RecipTable)
  ) u_table (
    .clk_i(clk_i), .en_i(en_i), .idx_i(m_q[WorkFrac-1 -: RecipTableBits]), .lo_o(lo_t), .hi_o(hi_t)
  );
  pipe_reg #(.Width(InterpBits + WorkFrac + 1 + SideShiftBits), .Depth(1)) u_table_side (
    .clk_i(clk_i), .en_i(en_i),
    .d_i({m_q[InterpBits-1:0], m_q, sh_q > 0, DistBits'(pow2_distance(int'(sh_q), OutRoundHalfUp))}),
    .q_o({r_t, m_r, sh_r})
  );
  pipe_reg #(.Width(3 * (WorkFrac + 1) + InterpBits + SideShiftBits), .Depth(1)) u_entries (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_t, hi_t, r_t, m_r, sh_r}), .q_o({lo_q, hi_q, r_q, m_t, sh_t})
  );

  logic signed [InterpProductBits-1:0] d_m;
  logic [WorkFrac:0]                   m_m;
  logic [SideShiftBits-1:0]            sh_m;
  fxp_mul #(.ABits(WorkFrac + 2), .BBits(InterpBits + 1)) u_mul_interp (
    .clk_i(clk_i), .en_i(en_i),
    .a_i((WorkFrac + 2)'(hi_q) - (WorkFrac + 2)'(lo_q)), .b_i($signed({1'b0, r_q})), .p_o(d_m)
  );
  pipe_reg #(.Width(2 * (WorkFrac + 1) + SideShiftBits), .Depth(MulLatency)) u_interp_side (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_q, m_t, sh_t}), .q_o({lo_m, m_m, sh_m})
  );

  // y[0], m and the shift enter the Newton steps; each step passes them on registered
  logic signed [NewtonBits-1:0]   y [NewtonSteps + 1] /* verilator split_var */;
  logic [WorkFrac:0]              m [NewtonSteps + 1] /* verilator split_var */;
  logic [SideShiftBits-1:0]       sh [NewtonSteps + 1] /* verilator split_var */;
  pipe_reg #(.Width(NewtonBits + WorkFrac + 1 + SideShiftBits), .Depth(1)) u_seed (
    .clk_i(clk_i), .en_i(en_i),
    .d_i({NewtonBits'(interpolate(FuncBits'(lo_m), FuncBits'(d_m), InterpBits)), m_m, sh_m}),
    .q_o({y[0], m[0], sh[0]})
  );

  // ---- 4. Newton steps: m * y; c = 2**(W+1) - rhu(m * y, W); y * c; y = rhu(y * c, W). c is one
  // subtraction: K - floor((p + h) / 2**W) = floor((K 2**W + 2**W - 1 - h - p) / 2**W) (NewtonC)
  localparam logic signed [NewtonProductBits-1:0] NewtonC =
      (NewtonProductBits'(1) <<< (2 * WorkFrac + 1)) + (NewtonProductBits'(1) <<< WorkFrac) - 1
      - (NewtonProductBits'(1) <<< (WorkFrac - 1));
  for (genvar k = 0; k < int'(NewtonSteps); k++) begin : gen_newton
    logic signed [NewtonProductBits-1:0] my, yc;
    logic signed [NewtonBits-1:0]        c_d, c_q, y_my, y_c;
    logic [WorkFrac:0]                   m_my, m_c, m_yc;
    logic [SideShiftBits-1:0]            sh_my, sh_c, sh_yc;

    fxp_mul #(.ABits(NewtonBits), .BBits(NewtonBits)) u_mul_my (
      .clk_i(clk_i), .en_i(en_i), .a_i(NewtonBits'($signed({1'b0, m[k]}))), .b_i(y[k]), .p_o(my)
    );
    pipe_reg #(.Width(NewtonBits + WorkFrac + 1 + SideShiftBits), .Depth(MulLatency)) u_my_side (
      .clk_i(clk_i), .en_i(en_i), .d_i({y[k], m[k], sh[k]}), .q_o({y_my, m_my, sh_my})
    );
    assign c_d = NewtonBits'((NewtonC - my) >>> WorkFrac);
    pipe_reg #(.Width(2 * NewtonBits + WorkFrac + 1 + SideShiftBits), .Depth(1)) u_c (
      .clk_i(clk_i), .en_i(en_i), .d_i({c_d, y_my, m_my, sh_my}), .q_o({c_q, y_c, m_c, sh_c})
    );
    fxp_mul #(.ABits(NewtonBits), .BBits(NewtonBits)) u_mul_yc (
      .clk_i(clk_i), .en_i(en_i), .a_i(y_c), .b_i(c_q), .p_o(yc)
    );
    pipe_reg #(.Width(WorkFrac + 1 + SideShiftBits), .Depth(MulLatency)) u_yc_side (
      .clk_i(clk_i), .en_i(en_i), .d_i({m_c, sh_c}), .q_o({m_yc, sh_yc})
    );
    pipe_reg #(.Width(NewtonBits + WorkFrac + 1 + SideShiftBits), .Depth(1)) u_y (
      .clk_i(clk_i), .en_i(en_i),
      .d_i({NewtonBits'((yc + (NewtonProductBits'(1) <<< (WorkFrac - 1))) >>> WorkFrac), m_yc, sh_yc}),
      .q_o({y[k+1], m[k+1], sh[k+1]})
    );
  end

  // ---- 5. y * 2**-shift with the output's rounding (shift, then round), then the fit
  logic signed [ScaledBits-1:0] yt_d, yt_q, yv_d, yv_q;
  logic [OutBits-1:0]           y_d;
  logic                         right_y, right_t;
  assign right_y = sh[NewtonSteps][DistBits];
  assign yt_d = ScaledBits'(pow2_shift(FuncBits'(y[NewtonSteps]), right_y, int'(sh[NewtonSteps][DistBits-1:0])));
  pipe_reg #(.Width(ScaledBits + 1), .Depth(1)) u_shift (
    .clk_i(clk_i), .en_i(en_i), .d_i({yt_d, right_y}), .q_o({yt_q, right_t})
  );
  assign yv_d = ScaledBits'(pow2_round(FuncBits'(yt_q), right_t, OutRoundHalfUp));
  pipe_reg #(.Width(ScaledBits), .Depth(1)) u_round (.clk_i(clk_i), .en_i(en_i), .d_i(yv_d), .q_o(yv_q));

  fxp_requant #(
    .InBits(ScaledBits), .InFrac(0), .InSigned(1'b1),
    .OutBits(OutBits), .OutFrac(0), .OutSigned(OutSigned),
    .RoundHalfUp(OutRoundHalfUp), .Saturate(OutSaturate)
  ) u_fit (
    .in_i(yv_q), .out_o(y_d), .clip_o()
  );
  pipe_reg #(.Width(OutBits), .Depth(1)) u_out (.clk_i(clk_i), .en_i(en_i), .d_i(y_d), .q_o(y_o));

  if (NewtonSteps == 0) begin : gen_no_newton
    logic unused_m;  // the mantissa feeds only the Newton steps
    assign unused_m = ^m[0];
  end
endmodule

`default_nettype wire
