// 1/sqrt(x) for x > 0. Follows edgemoe.golden.fixed.nonlinear.rsqrt step by step:
//   1. e = leading one of x; E = e - XF; par = E & 1; q = (E - par) >> 1
//   2. m = x normalised to [1, 4) with W fraction bits (truncating), x = m * 2**(2q)
//   3. y = S[i] + rhu((S[i+1] - S[i]) * r, W + 2 - b), i, r = the top b and the rest of m - 1
//   4. NewtonSteps times: s2 = rhu(y*y, W); a = rhu(m*s2, W); y = rhu(y * (3*2**W - a), W + 1)
//   5. y_o = fit(cast(y, W + q - OF, out)), the shift clamped to [-(OutBits + 1), W + 2]
// (W = WorkFracBits, b = RsqrtTableBits, XF = XFrac, OF = OutFrac.) One register per step
// (the multiplies in fxp_mul), y_o from a register, fxp_func_pkg::RsqrtLatency enabled cycles
// after x_i; en_i low holds every stage.
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
  input  wire logic               clk_i,
  input  wire logic               en_i,
  input  wire logic [XBits-1:0]   x_i,  // positive
  output logic      [OutBits-1:0] y_o
);
  localparam int WorkFrac = WorkFracBits;
  localparam int InterpBits = WorkFrac + 2 - int'(RsqrtTableBits);  // bits of the interpolation fraction r
  localparam int NormalisedBits = int'(XBits) > WorkFrac + 2 ? int'(XBits) : WorkFrac + 2;  // x normalised
  localparam int MantBits = WorkFrac + 2;  // m in [1, 4)
  localparam int NewtonBits = WorkFrac + 4;  // y and the Newton terms, signed
  localparam int NewtonProductBits = 2 * NewtonBits;
  localparam int InterpProductBits = WorkFrac + 2 + InterpBits + 1;  // (S[i+1] - S[i]) * r, signed
  localparam int MinShift = -(int'(OutBits) + 1);
  localparam int MaxShift = WorkFrac + 2;
  localparam int ShiftBits = 8;  // the clamped output shift, signed
  localparam int DistBits = $clog2((MaxShift > -MinShift ? MaxShift : -MinShift) + 1);  // its distance
  localparam int SideShiftBits = DistBits + 1;  // the shift passed on as {direction, distance}
  localparam int ScaledBits = WorkFrac + 1 + int'(OutBits) + 3;  // y after the widest left shift, signed
  localparam int IndexBits = $clog2(RsqrtTableSize);  // table index

  if (RsqrtTableSize != 3 * (1 << (RsqrtTableBits - 2)) + 1 || InterpBits < 1 || RsqrtTableBits < 2)
  begin : gen_bad_table
    $fatal(1, "%m: RsqrtTable needs 3 * 2**(RsqrtTableBits - 2) + 1 entries");
  end
  if (XBits > FuncBits || ScaledBits > FuncBits || MaxShift >= 2 ** (ShiftBits - 1)
      || -MinShift > 2 ** (ShiftBits - 1)) begin : gen_bad_widths
    $fatal(1, "%m: rsqrt_lane works on at most %0d bits (XBits %0d, output path %0d)", FuncBits, XBits,
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

  // ---- 2. E, its parity and q; m = x normalised; the output shift, clamped
  int                          ee, q;
  logic                        par;
  logic [NormalisedBits-1:0]         xn;
  logic [MantBits-1:0]         m_d, m_q, v;
  logic signed [ShiftBits-1:0] sh_d, sh_q;
  always_comb begin
    ee = int'(e_q) - XFrac;
    par = ee[0];
    q = (ee - int'(par)) >>> 1;
  end
  assign xn = NormalisedBits'(x_q) << lz_q;
  assign m_d = par ? xn[NormalisedBits-1 -: MantBits] : {1'b0, xn[NormalisedBits-1 -: MantBits - 1]};
  assign sh_d = ShiftBits'(clamp(WorkFrac + q - OutFrac, MinShift, MaxShift));
  pipe_reg #(.Width(MantBits + ShiftBits), .Depth(1)) u_norm (
    .clk_i(clk_i), .en_i(en_i), .d_i({m_d, sh_d}), .q_o({m_q, sh_q})
  );

  // ---- 3. RsqrtTable's two entries read from a registered ROM (r, m and the shift's direction
  // and distance beside it), registered once more, then the interpolation multiply
  logic [InterpBits-1:0]       r_t, r_q;
  logic [WorkFrac:0]           lo_t, hi_t, lo_q, hi_q, lo_m;
  logic [MantBits-1:0]         m_r, m_t, m_m;
  logic [SideShiftBits-1:0]    sh_r, sh_t, sh_m;
  assign v = {m_q[MantBits-1 -: 2] - 2'd1, m_q[WorkFrac-1:0]};  // m - 2**W on m's top two bits, no carry chain
  rom_pair #(
    .Entries(RsqrtTableSize), .EntryBits(WorkFrac + 1), .IndexBits(IndexBits), .Table(RsqrtTable)
  ) u_table (
    .clk_i(clk_i), .en_i(en_i), .idx_i(IndexBits'(v >> InterpBits)), .lo_o(lo_t), .hi_o(hi_t)
  );
  pipe_reg #(.Width(InterpBits + MantBits + SideShiftBits), .Depth(1)) u_table_side (
    .clk_i(clk_i), .en_i(en_i),
    .d_i({v[InterpBits-1:0], m_q, sh_q > 0, DistBits'(pow2_distance(int'(sh_q), OutRoundHalfUp))}),
    .q_o({r_t, m_r, sh_r})
  );
  pipe_reg #(.Width(2 * (WorkFrac + 1) + InterpBits + MantBits + SideShiftBits), .Depth(1)) u_entries (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_t, hi_t, r_t, m_r, sh_r}), .q_o({lo_q, hi_q, r_q, m_t, sh_t})
  );

  logic signed [InterpProductBits-1:0] d_m;
  fxp_mul #(.ABits(WorkFrac + 2), .BBits(InterpBits + 1)) u_mul_interp (
    .clk_i(clk_i), .en_i(en_i),
    .a_i((WorkFrac + 2)'(hi_q) - (WorkFrac + 2)'(lo_q)), .b_i($signed({1'b0, r_q})), .p_o(d_m)
  );
  pipe_reg #(.Width(WorkFrac + 1 + MantBits + SideShiftBits), .Depth(MulLatency)) u_interp_side (
    .clk_i(clk_i), .en_i(en_i), .d_i({lo_q, m_t, sh_t}), .q_o({lo_m, m_m, sh_m})
  );

  // y[0], m and the shift enter the Newton steps; each step passes them on registered
  localparam int SideBits = MantBits + SideShiftBits;
  logic signed [NewtonBits-1:0] y [NewtonSteps + 1] /* verilator split_var */;
  logic [SideBits-1:0]          side [NewtonSteps + 1] /* verilator split_var */;  // {m, shift}
  pipe_reg #(.Width(NewtonBits + SideBits), .Depth(1)) u_seed (
    .clk_i(clk_i), .en_i(en_i),
    .d_i({NewtonBits'(interpolate(FuncBits'(lo_m), FuncBits'(d_m), InterpBits)), m_m, sh_m}),
    .q_o({y[0], side[0]})
  );

  // ---- 4. Newton steps: s2 = rhu(y * y, W); a = rhu(m * s2, W); c = 3 * 2**W - a;
  // y = rhu(y * c, W + 1). c is one subtraction: K - floor((p + h) / 2**W) =
  // floor((K 2**W + 2**W - 1 - h - p) / 2**W) (NewtonC)
  localparam logic signed [NewtonProductBits-1:0] NewtonC =
      (NewtonProductBits'(3) <<< (2 * WorkFrac)) + (NewtonProductBits'(1) <<< WorkFrac) - 1
      - (NewtonProductBits'(1) <<< (WorkFrac - 1));
  for (genvar k = 0; k < int'(NewtonSteps); k++) begin : gen_newton
    logic signed [NewtonProductBits-1:0] yy, ms, yc;
    logic signed [NewtonBits-1:0]        s2_d, s2_q, c_d, c_q, y_yy, y_s2, y_ms, y_c;
    logic [SideBits-1:0]                 side_yy, side_s2, side_ms, side_c, side_yc;
    logic [MantBits-1:0]                 m_s2;

    fxp_mul #(.ABits(NewtonBits), .BBits(NewtonBits)) u_mul_yy (
      .clk_i(clk_i), .en_i(en_i), .a_i(y[k]), .b_i(y[k]), .p_o(yy)
    );
    pipe_reg #(.Width(NewtonBits + SideBits), .Depth(MulLatency)) u_yy_side (
      .clk_i(clk_i), .en_i(en_i), .d_i({y[k], side[k]}), .q_o({y_yy, side_yy})
    );
    assign s2_d = NewtonBits'((yy + (NewtonProductBits'(1) <<< (WorkFrac - 1))) >>> WorkFrac);
    pipe_reg #(.Width(2 * NewtonBits + SideBits), .Depth(1)) u_s2 (
      .clk_i(clk_i), .en_i(en_i), .d_i({s2_d, y_yy, side_yy}), .q_o({s2_q, y_s2, side_s2})
    );

    assign m_s2 = side_s2[SideBits-1 -: MantBits];
    fxp_mul #(.ABits(NewtonBits), .BBits(NewtonBits)) u_mul_ms (
      .clk_i(clk_i), .en_i(en_i), .a_i(NewtonBits'($signed({1'b0, m_s2}))), .b_i(s2_q), .p_o(ms)
    );
    pipe_reg #(.Width(NewtonBits + SideBits), .Depth(MulLatency)) u_ms_side (
      .clk_i(clk_i), .en_i(en_i), .d_i({y_s2, side_s2}), .q_o({y_ms, side_ms})
    );
    assign c_d = NewtonBits'((NewtonC - ms) >>> WorkFrac);
    pipe_reg #(.Width(2 * NewtonBits + SideBits), .Depth(1)) u_c (
      .clk_i(clk_i), .en_i(en_i), .d_i({c_d, y_ms, side_ms}), .q_o({c_q, y_c, side_c})
    );

    fxp_mul #(.ABits(NewtonBits), .BBits(NewtonBits)) u_mul_yc (
      .clk_i(clk_i), .en_i(en_i), .a_i(y_c), .b_i(c_q), .p_o(yc)
    );
    pipe_reg #(.Width(SideBits), .Depth(MulLatency)) u_yc_side (
      .clk_i(clk_i), .en_i(en_i), .d_i(side_c), .q_o(side_yc)
    );
    pipe_reg #(.Width(NewtonBits + SideBits), .Depth(1)) u_y (
      .clk_i(clk_i), .en_i(en_i),
      .d_i({NewtonBits'((yc + (NewtonProductBits'(1) <<< WorkFrac)) >>> (WorkFrac + 1)), side_yc}),
      .q_o({y[k+1], side[k+1]})
    );
  end

  // ---- 5. y * 2**-shift with the output's rounding (shift, then round), then the fit
  logic signed [ScaledBits-1:0] yt_d, yt_q, yv_d, yv_q;
  logic [OutBits-1:0]           y_d;
  logic                         right_y, right_t;
  assign right_y = side[NewtonSteps][DistBits];
  assign yt_d = ScaledBits'(pow2_shift(FuncBits'(y[NewtonSteps]), right_y, int'(side[NewtonSteps][DistBits-1:0])));
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

  logic unused_bits;  // bits below the mantissa are truncated; v's top bits only via idx; the
                      // mantissa beyond the last Newton step
  assign unused_bits = ^{xn, ee, side[NewtonSteps][SideBits-1 -: MantBits]};
endmodule

`default_nettype wire
