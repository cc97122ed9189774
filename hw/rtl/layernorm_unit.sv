// LayerNorm over a token of Dim activations, Lanes per beat, in the order of operations of
// edgemoe.golden.fixed.layernorm:
//   pass 1 (tokens stream in, held in the token buffer): sq = cast_ln_square(x*x),
//          S1 = sum x, S2 = sum sq (exact);
//   stats: mean = S1 / D to ln_mean, ex2 = S2 / D to ln_var (exact division by the constant D,
//          rounded by the cast: floor(n / D) or floor((2n + D) / 2D)); m2 = cast_ln_var(mean^2);
//          var = max(ex2 - m2, 0); ve = fit_ln_var(var + eps); rstd = rsqrt(ve) to ln_rstd;
//   pass 2 (from the buffer): z = cast_ln_norm((x - mean) * rstd); y = cast_act(z * gamma + beta).
// gamma/beta (formats.norm) load on the p stream, Dim/Lanes beats, between tokens.
// A token takes Dim/Lanes cycles in, 2 cycles of statistics and Dim/Lanes cycles out.
`default_nettype none

module layernorm_unit
  import edgemoe_pkg::*;
#(
  parameter int unsigned Lanes = LinearOut,
  parameter int unsigned D     = Dim
) (
  input  wire logic                      clk_i,
  input  wire logic                      rst_i,
  // gamma and beta, Lanes of each per beat, D/Lanes beats (accepted between tokens)
  input  wire logic                      p_valid_i,
  output logic                           p_ready_o,
  input  wire logic [Lanes*NormBits-1:0] p_gamma_i,
  input  wire logic [Lanes*NormBits-1:0] p_beta_i,
  // tokens in, D/Lanes beats each
  input  wire logic                      x_valid_i,
  output logic                           x_ready_o,
  input  wire logic [Lanes*ActBits-1:0]  x_data_i,
  // normalised tokens out; y_last_o on the last beat of a token
  output logic                           y_valid_o,
  input  wire logic                      y_ready_i,
  output logic      [Lanes*ActBits-1:0]  y_data_o,
  output logic                           y_last_o
);
  localparam int unsigned Beats = D / Lanes;
  localparam int unsigned BW = $clog2(Beats) > 0 ? $clog2(Beats) : 1;
  localparam int FA = ActFracBits;
  localparam int FQ = LnSquareFracBits;
  localparam int FM = LnMeanFracBits;
  localparam int FV = LnVarFracBits;
  localparam int FR = LnRstdFracBits;
  localparam int FZ = LnNormFracBits;
  localparam int FN = NormFracBits;
  localparam int FD = FA > FM ? FA : FM;
  localparam int S1W = int'(ActBits) + $clog2(D) + 1;
  localparam int S2W = int'(LnSquareBits) + $clog2(D) + 1;
  localparam int DW = (int'(ActBits) + FD - FA > int'(LnMeanBits) + FD - FM ? int'(ActBits) + FD - FA
                                                                            : int'(LnMeanBits) + FD - FM) + 1;
  localparam int ZPW = DW + int'(LnRstdBits) + 1;
  localparam int GW = (int'(LnNormBits + NormBits) > int'(NormBits) + FZ ? int'(LnNormBits + NormBits)
                                                                         : int'(NormBits) + FZ) + 1;
  localparam longint EpsRaw = longint'($rtoi(LnEps * (2.0 ** FV) + 0.5));

  if (Lanes < 1 || D % Lanes != 0) begin : gen_bad_lanes
    $fatal(1, "%m: layernorm_unit needs D (%0d) to be a multiple of Lanes (%0d)", D, Lanes);
  end
  if (LnSquareSigned || LnVarSigned || LnRstdSigned || !LnMeanSigned || !LnNormSigned) begin : gen_bad_fmt
    $fatal(1, "%m: layernorm_unit expects unsigned ln_square/ln_var/ln_rstd and signed ln_mean/ln_norm");
  end

  // floor(n / den) for a positive constant den (toward -inf, also for negative n)
  function automatic logic signed [S2W+FM+2:0] floor_div(input logic signed [S2W+FM+2:0] n, input longint den);
    logic signed [S2W+FM+2:0] dd;
    dd = (S2W + FM + 3)'(den);
    if (n >= 0) return n / dd;
    return -((-n + dd - 1) / dd);
  endfunction

  // n / den at the given rounding (exact quotient, then rounded)
  function automatic logic signed [S2W+FM+2:0] div_round(input logic signed [S2W+FM+2:0] n, input longint den,
                                                         input bit half_up);
    if (half_up) return floor_div(2 * n + (S2W + FM + 3)'(den), 2 * den);
    return floor_div(n, den);
  endfunction

  typedef enum logic [1:0] {StAcc, StStats1, StStats2, StOut} state_e;
  state_e state_q;

  logic [Lanes*ActBits-1:0]  buf_q [Beats];
  logic [Lanes*NormBits-1:0] gamma_q [Beats];
  logic [Lanes*NormBits-1:0] beta_q [Beats];
  logic [BW-1:0]             wcnt_q, rcnt_q, pcnt_q;
  logic signed [S1W-1:0]     s1_q, s1_beat;
  logic [S2W-1:0]            s2_q, s2_beat;
  logic [LnMeanBits-1:0]     mean_q, mean_d;
  logic [LnVarBits-1:0]      ex2_q, ex2_d, m2_d, ve_d;
  logic [LnRstdBits-1:0]     rstd_q, rstd_d;
  logic                      x_take, p_take, out_free;

  assign x_ready_o = state_q == StAcc;
  assign p_ready_o = state_q == StAcc && wcnt_q == '0;
  assign x_take = x_valid_i && x_ready_o;
  assign p_take = p_valid_i && p_ready_o;
  assign out_free = !y_valid_o || y_ready_i;

  // ---------------------------------------------------------------- pass 1: sums of one beat
  logic [Lanes*LnSquareBits-1:0] sq_beat;

  for (genvar l = 0; l < Lanes; l++) begin : gen_square
    logic signed [ActBits-1:0]     xv;
    logic signed [2*ActBits-1:0]   xx;
    assign xv = x_data_i[l*ActBits +: ActBits];
    assign xx = (2 * ActBits)'(xv) * (2 * ActBits)'(xv);
    fxp_requant #(
      .InBits(2 * ActBits), .InFrac(2 * FA), .InSigned(1'b1),
      .OutBits(LnSquareBits), .OutFrac(FQ), .OutSigned(1'b0),
      .RoundHalfUp(LnSquareRoundHalfUp), .Saturate(LnSquareSaturate)
    ) u_sq (
      .in_i(xx), .out_o(sq_beat[l*LnSquareBits +: LnSquareBits]), .clip_o()
    );
  end

  always_comb begin
    s1_beat = '0;
    s2_beat = '0;
    for (int l = 0; l < int'(Lanes); l++) begin
      s1_beat = s1_beat + S1W'($signed(x_data_i[l*ActBits +: ActBits]));
      s2_beat = s2_beat + S2W'(sq_beat[l*LnSquareBits +: LnSquareBits]);
    end
  end

  // ---------------------------------------------------------------- statistics
  logic signed [S2W+FM+2:0] mean_q_wide, ex2_wide;
  logic signed [2*LnMeanBits-1:0] mm;

  always_comb begin
    if (FM >= FA) begin
      mean_q_wide = div_round((S2W + FM + 3)'(s1_q) <<< (FM - FA), longint'(D), LnMeanRoundHalfUp);
    end else begin
      mean_q_wide = div_round((S2W + FM + 3)'(s1_q), longint'(D) << (FA - FM), LnMeanRoundHalfUp);
    end
    if (FV >= FQ) begin
      ex2_wide = div_round((S2W + FM + 3)'($signed({1'b0, s2_q})) <<< (FV - FQ), longint'(D), LnVarRoundHalfUp);
    end else begin
      ex2_wide = div_round((S2W + FM + 3)'($signed({1'b0, s2_q})), longint'(D) << (FQ - FV), LnVarRoundHalfUp);
    end
  end

  fxp_requant #(
    .InBits(S2W + FM + 3), .InFrac(0), .InSigned(1'b1),
    .OutBits(LnMeanBits), .OutFrac(0), .OutSigned(1'b1),
    .RoundHalfUp(1'b0), .Saturate(LnMeanSaturate)
  ) u_mean (
    .in_i(mean_q_wide), .out_o(mean_d), .clip_o()
  );

  fxp_requant #(
    .InBits(S2W + FM + 3), .InFrac(0), .InSigned(1'b1),
    .OutBits(LnVarBits), .OutFrac(0), .OutSigned(1'b0),
    .RoundHalfUp(1'b0), .Saturate(LnVarSaturate)
  ) u_ex2 (
    .in_i(ex2_wide), .out_o(ex2_d), .clip_o()
  );

  assign mm = (2 * LnMeanBits)'($signed(mean_q)) * (2 * LnMeanBits)'($signed(mean_q));

  fxp_requant #(
    .InBits(2 * LnMeanBits), .InFrac(2 * FM), .InSigned(1'b1),
    .OutBits(LnVarBits), .OutFrac(FV), .OutSigned(1'b0),
    .RoundHalfUp(LnVarRoundHalfUp), .Saturate(LnVarSaturate)
  ) u_m2 (
    .in_i(mm), .out_o(m2_d), .clip_o()
  );

  logic [LnVarBits:0] var_eps;
  assign var_eps = (ex2_q > m2_d ? (LnVarBits + 1)'(ex2_q - m2_d) : '0) + (LnVarBits + 1)'(EpsRaw);

  fxp_requant #(
    .InBits(LnVarBits + 1), .InFrac(0), .InSigned(1'b0),
    .OutBits(LnVarBits), .OutFrac(0), .OutSigned(1'b0),
    .RoundHalfUp(1'b0), .Saturate(LnVarSaturate)
  ) u_ve (
    .in_i(var_eps), .out_o(ve_d), .clip_o()
  );

  rsqrt_lane u_rsqrt (
    .x_i(ve_d),
    .y_o(rstd_d)
  );

  // ---------------------------------------------------------------- pass 2: normalise, scale, shift
  logic [Lanes*ActBits-1:0]  xb;
  logic [Lanes*NormBits-1:0] gb, bb;
  logic [Lanes*ActBits-1:0]  y_d;

  assign xb = buf_q[rcnt_q];
  assign gb = gamma_q[rcnt_q];
  assign bb = beta_q[rcnt_q];

  for (genvar l = 0; l < Lanes; l++) begin : gen_norm
    logic signed [DW-1:0]          d;
    logic signed [ZPW-1:0]         dr;
    logic signed [LnNormBits-1:0]  z;
    logic signed [GW-1:0]          acc;
    logic signed [NormBits-1:0]    g, b;
    assign d = (DW'($signed(xb[l*ActBits +: ActBits])) <<< (FD - FA)) - (DW'($signed(mean_q)) <<< (FD - FM));
    assign dr = ZPW'(d) * $signed({1'b0, rstd_q});
    fxp_requant #(
      .InBits(ZPW), .InFrac(FD + FR), .InSigned(1'b1),
      .OutBits(LnNormBits), .OutFrac(FZ), .OutSigned(1'b1),
      .RoundHalfUp(LnNormRoundHalfUp), .Saturate(LnNormSaturate)
    ) u_z (
      .in_i(dr), .out_o(z), .clip_o()
    );
    assign g = gb[l*NormBits +: NormBits];
    assign b = bb[l*NormBits +: NormBits];
    assign acc = GW'(z) * GW'(g) + (GW'(b) <<< FZ);
    fxp_requant #(
      .InBits(GW), .InFrac(FZ + FN), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(FA), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_y (
      .in_i(acc), .out_o(y_d[l*ActBits +: ActBits]), .clip_o()
    );
  end

  // ---------------------------------------------------------------- control
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      state_q   <= StAcc;
      wcnt_q    <= '0;
      rcnt_q    <= '0;
      pcnt_q    <= '0;
      y_valid_o <= 1'b0;
    end else begin
      if (p_take) begin
        pcnt_q <= pcnt_q == BW'(Beats - 1) ? '0 : pcnt_q + 1'b1;
      end
      if (out_free) begin
        y_valid_o <= state_q == StOut;
      end
      unique case (state_q)
        StAcc: begin
          if (x_take) begin
            wcnt_q <= wcnt_q == BW'(Beats - 1) ? '0 : wcnt_q + 1'b1;
            if (wcnt_q == BW'(Beats - 1)) state_q <= StStats1;
          end
        end
        StStats1: state_q <= StStats2;
        StStats2: state_q <= StOut;
        StOut: begin
          if (out_free) begin
            rcnt_q <= rcnt_q == BW'(Beats - 1) ? '0 : rcnt_q + 1'b1;
            if (rcnt_q == BW'(Beats - 1)) state_q <= StAcc;
          end
        end
        default: state_q <= StAcc;
      endcase
    end
  end

  always_ff @(posedge clk_i) begin
    if (p_take) begin
      gamma_q[pcnt_q] <= p_gamma_i;
      beta_q[pcnt_q]  <= p_beta_i;
    end
    if (x_take) begin
      buf_q[wcnt_q] <= x_data_i;
      s1_q <= (wcnt_q == '0 ? '0 : s1_q) + s1_beat;
      s2_q <= (wcnt_q == '0 ? '0 : s2_q) + s2_beat;
    end
    if (state_q == StStats1) begin
      mean_q <= mean_d;
      ex2_q  <= ex2_d;
    end
    if (state_q == StStats2) begin
      rstd_q <= rstd_d;
    end
    if (state_q == StOut && out_free) begin
      y_data_o <= y_d;
      y_last_o <= rcnt_q == BW'(Beats - 1);
    end
  end
endmodule

`default_nettype wire
