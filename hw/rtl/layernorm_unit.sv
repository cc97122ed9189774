// LayerNorm over a token of Dim activations, Lanes per beat, in the order of operations of
// edgemoe.golden.fixed.layernorm:
//   pass 1 (tokens stream in and are written to the token buffer): sq = cast_ln_square(x*x),
//          S1 = sum x, S2 = sum sq (exact);
//   stats: mean = S1 / D to ln_mean, ex2 = S2 / D to ln_var (exact division by the constant D,
//          rounded by the cast: floor(n / D) or floor((2n + D) / 2D), by const_div's multiply and
//          shift); m2 = cast_ln_var(mean^2); var = max(ex2 - m2, 0); ve = fit_ln_var(var + eps);
//          rstd = rsqrt(ve) to ln_rstd;
//   pass 2 (from the buffer): z = cast_ln_norm((x - mean) * rstd); y = cast_act(z * gamma + beta).
//
// Structure: registered stages throughout, no stall inside pass 1 and the statistics.
//   pass 1:  input register -> squares (registered) -> sums S1, S2 (registered)      3 cycles
//   stats:   const_div (3) -> fit mean/ex2 -> mean^2 (fxp_mul, MulLatency) -> fit m2 -> var
//            -> var + eps, fit -> registered rsqrt_lane (RsqrtLatency)
//                                                           8 + MulLatency + RsqrtLatency cycles
//   pass 2:  buffer read -> (x - mean) * rstd -> z * gamma + beta -> cast to y        4 cycles,
//            one stall signal (output taken or empty) for the whole pass-2 pipeline.
// Last beat of a token in -> its first beat out: 15 + MulLatency + RsqrtLatency cycles.
// The token buffer is a ring of BufWords beats (a simple dual-port RAM of Lanes activations per
// word, synchronous read): a beat's word is free again once the beat has been read for pass 2.
// A beat stays B + 11 + MulLatency + RsqrtLatency cycles (B = D/Lanes), so with BufWords at least that many
// tokens stream in at one beat per cycle while earlier ones wait for their statistics and stream
// out; BufWords = B gives one token at a time. The statistics (mean, rstd) wait in a FIFO of
// TokensInUnit entries, one per token in the unit (first beat in .. last beat read:
// 2 B + 10 + MulLatency + RsqrtLatency cycles, so
// TokensInUnit = 2 + ceil((10 + MulLatency + RsqrtLatency) / B)).
// gamma and beta sit in one more RAM (B words of Lanes {beta, gamma} pairs); they load on the p
// stream, B beats, only while the unit is empty; tokens wait while a load is under way.
`default_nettype none

module layernorm_unit
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned Lanes = LinearOut,
  parameter int unsigned D     = Dim,
  // token buffer beats; the default holds a beat's B + 11 + MulLatency + RsqrtLatency cycles in the
  // unit (full rate)
  parameter int unsigned BufWords = 2 ** $clog2(D / Lanes + 11 + MulLatency + RsqrtLatency)
) (
  input  wire logic                      clk_i,
  input  wire logic                      rst_i,
  // gamma and beta, Lanes of each per beat, D/Lanes beats (accepted while no token is in the unit)
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
  localparam int unsigned BeatsPerToken = D / Lanes;
  // statistics registers after the quotients: fit, mean^2, fit m2, var, var + eps, rsqrt
  localparam int unsigned StatsSteps = 4 + MulLatency + RsqrtLatency;
  localparam int unsigned TokensInUnit = 2 + (BeatsPerToken + 9 + MulLatency + RsqrtLatency) / BeatsPerToken;  // tokens in the unit at full rate
  localparam int BeatIndexBits = $clog2(BeatsPerToken) > 0 ? $clog2(BeatsPerToken) : 1;
  localparam int BufAddrBits = $clog2(BufWords) > 0 ? $clog2(BufWords) : 1;
  localparam int TokenCountBits = $clog2(TokensInUnit + 1);
  localparam int TokenIndexBits = $clog2(TokensInUnit);
  localparam int DiffFracBits = ActFracBits > LnMeanFracBits ? ActFracBits : LnMeanFracBits;
  localparam int Sum1Bits = int'(ActBits) + $clog2(D) + 1;
  localparam int Sum2Bits = int'(LnSquareBits) + $clog2(D) + 1;
  localparam int DiffBits = (int'(ActBits) + DiffFracBits - ActFracBits > int'(LnMeanBits) + DiffFracBits - LnMeanFracBits ? int'(ActBits) + DiffFracBits - ActFracBits
                                                                            : int'(LnMeanBits) + DiffFracBits - LnMeanFracBits) + 1;
  localparam int NormProductBits = DiffBits + int'(LnRstdBits) + 1;
  localparam int AffineBits = (int'(LnNormBits + NormBits) > int'(NormBits) + LnNormFracBits ? int'(LnNormBits + NormBits)
                                                                         : int'(NormBits) + LnNormFracBits) + 1;
  localparam longint EpsRaw = longint'($rtoi(LnEps * (2.0 ** LnVarFracBits) + 0.5));

  // the divisions S1 / D and S2 / D at the casts' fraction bits: a left shift of the sum, or a
  // divisor D * 2**k; numerator bounds from the formats (S1 in D * act range, S2 in [0, D * sq max])
  localparam int MeanUp = LnMeanFracBits > ActFracBits ? LnMeanFracBits - ActFracBits : 0;
  localparam int Ex2Up = LnVarFracBits > LnSquareFracBits ? LnVarFracBits - LnSquareFracBits : 0;
  localparam int MeanNumBits = Sum1Bits + MeanUp;
  localparam int Ex2NumBits = Sum2Bits + 1 + Ex2Up;
  localparam longint unsigned MeanDen = longint'(D) << (ActFracBits > LnMeanFracBits ? ActFracBits - LnMeanFracBits : 0);
  localparam longint unsigned Ex2Den = longint'(D) << (LnSquareFracBits > LnVarFracBits ? LnSquareFracBits - LnVarFracBits : 0);
  localparam logic signed [127:0] MeanMin = ($signed(128'(D)) * -(128'sd1 <<< (ActBits - 1))) <<< MeanUp;
  localparam logic signed [127:0] MeanMax = ($signed(128'(D)) * ((128'sd1 <<< (ActBits - 1)) - 1)) <<< MeanUp;
  localparam logic signed [127:0] Ex2Max = ($signed(128'(D)) * ((128'sd1 <<< LnSquareBits) - 1)) <<< Ex2Up;

  if (BufWords < BeatsPerToken) begin : gen_bad_buffer
    $fatal(1, "%m: layernorm_unit needs BufWords (%0d) >= D/Lanes (%0d): a whole token must fit",
           BufWords, BeatsPerToken);
  end
  if (Lanes < 1 || D % Lanes != 0) begin : gen_bad_lanes
    $fatal(1, "%m: layernorm_unit needs D (%0d) to be a multiple of Lanes (%0d)", D, Lanes);
  end
  if (LnSquareSigned || LnVarSigned || LnRstdSigned || !LnMeanSigned || !LnNormSigned) begin : gen_bad_fmt
    $fatal(1, "%m: layernorm_unit expects unsigned ln_square/ln_var/ln_rstd and signed ln_mean/ln_norm");
  end

  // ---------------------------------------------------------------- control state
  logic [BufAddrBits:0]      occ_q;      // buffer words written and not yet read
  logic [TokenCountBits-1:0]    tok_q;      // tokens in the unit (first beat in .. last beat read)
  logic [TokenCountBits-1:0]    stats_q;    // of them, tokens whose statistics are done
  logic [TokenIndexBits-1:0]   sw_q, sr_q;  // statistics FIFO write / read index
  logic [BeatIndexBits-1:0]    wcnt_q, rcnt_q, pcnt_q;
  logic [BufAddrBits-1:0]    waddr_q, raddr_q;
  logic             x_take, p_take, adv, issue, tok_in, tok_out, o1_v_q;

  assign x_ready_o = pcnt_q == '0 && occ_q != (BufAddrBits + 1)'(BufWords) && (wcnt_q != '0 || tok_q != TokenCountBits'(TokensInUnit));
  assign p_ready_o = tok_q == '0 && !o1_v_q;
  assign x_take = x_valid_i && x_ready_o;
  assign p_take = p_valid_i && p_ready_o;
  assign adv = !y_valid_o || y_ready_i;  // the pass-2 pipeline moves
  assign issue = adv && stats_q != '0;
  assign tok_in = x_take && wcnt_q == '0;
  assign tok_out = issue && rcnt_q == BeatIndexBits'(BeatsPerToken - 1);

  // ---------------------------------------------------------------- the two RAMs
  logic [Lanes*ActBits-1:0]    tok_mem [BufWords];
  logic [2*Lanes*NormBits-1:0] norm_mem [BeatsPerToken];  // {beta, gamma} per beat
  logic [Lanes*ActBits-1:0]    xb_q;
  logic [2*Lanes*NormBits-1:0] gb_q;
  logic [BeatIndexBits-1:0]               o1_beat_q;

  always_ff @(posedge clk_i) begin
    if (x_take) tok_mem[waddr_q] <= x_data_i;
  end

  always_ff @(posedge clk_i) begin
    if (issue) xb_q <= tok_mem[raddr_q];
  end

  always_ff @(posedge clk_i) begin
    if (p_take) norm_mem[pcnt_q] <= {p_beta_i, p_gamma_i};
  end

  always_ff @(posedge clk_i) begin
    if (adv && o1_v_q) gb_q <= norm_mem[o1_beat_q];
  end

  // ---------------------------------------------------------------- pass 1: squares and sums
  logic                          x1_v_q, x1_first_q, x1_last_q, x2_v_q, x2_first_q, x2_last_q;
  logic [Lanes*ActBits-1:0]      x1_q;
  logic [Lanes*LnSquareBits-1:0] sq_d, sq_q;
  logic signed [Sum1Bits-1:0]         s1_beat, s1b_q, s1_q;
  logic [Sum2Bits-1:0]                s2_beat, s2_q;
  logic                          acc_done_q;

  for (genvar l = 0; l < Lanes; l++) begin : gen_square
    logic signed [ActBits-1:0]   xv;
    logic signed [2*ActBits-1:0] xx;
    assign xv = x1_q[l*ActBits +: ActBits];
    assign xx = (2 * ActBits)'(xv) * (2 * ActBits)'(xv);
    fxp_requant #(
      .InBits(2 * ActBits), .InFrac(2 * ActFracBits), .InSigned(1'b1),
      .OutBits(LnSquareBits), .OutFrac(LnSquareFracBits), .OutSigned(1'b0),
      .RoundHalfUp(LnSquareRoundHalfUp), .Saturate(LnSquareSaturate)
    ) u_sq (
      .in_i(xx), .out_o(sq_d[l*LnSquareBits +: LnSquareBits]), .clip_o()
    );
  end

  always_comb begin
    s1_beat = '0;
    s2_beat = '0;
    for (int l = 0; l < int'(Lanes); l++) begin
      s1_beat = s1_beat + Sum1Bits'($signed(x1_q[l*ActBits +: ActBits]));
      s2_beat = s2_beat + Sum2Bits'(sq_q[l*LnSquareBits +: LnSquareBits]);
    end
  end

  // ---------------------------------------------------------------- statistics
  logic                         mean_div_v;
  logic [MeanNumBits-1:0]            mean_div_q;
  logic [Ex2NumBits-1:0]             ex2_div_q;
  logic [LnMeanBits-1:0]        mean_d, mean1_q, mean_sq, mean_r;
  logic [LnVarBits-1:0]         ex2_d, ex21_q, ex2_sq, ex2_m2_q, m2_d, m2_q, var_d, var_q, ve_d, ve_q;
  logic signed [2*LnMeanBits-1:0] mm2;
  logic [LnRstdBits-1:0]        rstd_d;
  logic [StatsSteps:1]          st_v_q;
  logic [LnMeanBits-1:0]        stat_mean_q [TokensInUnit];
  logic [LnRstdBits-1:0]        stat_rstd_q [TokensInUnit];

  const_div #(
    .InBits(MeanNumBits), .Den(MeanDen), .RoundHalfUp(LnMeanRoundHalfUp),
    .NMin(MeanMin), .NMax(MeanMax), .TagBits(1)
  ) u_mean_div (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(acc_done_q), .n_i(MeanNumBits'(s1_q) <<< MeanUp), .tag_i(1'b0),
    .valid_o(mean_div_v), .q_o(mean_div_q), .tag_o()
  );

  const_div #(
    .InBits(Ex2NumBits), .Den(Ex2Den), .RoundHalfUp(LnVarRoundHalfUp),
    .NMin(128'sd0), .NMax(Ex2Max), .TagBits(1)
  ) u_ex2_div (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(acc_done_q), .n_i(Ex2NumBits'(s2_q) << Ex2Up), .tag_i(1'b0),
    .valid_o(), .q_o(ex2_div_q), .tag_o()
  );

  fxp_requant #(
    .InBits(MeanNumBits), .InFrac(0), .InSigned(1'b1),
    .OutBits(LnMeanBits), .OutFrac(0), .OutSigned(1'b1),
    .RoundHalfUp(1'b0), .Saturate(LnMeanSaturate)
  ) u_mean (
    .in_i(mean_div_q), .out_o(mean_d), .clip_o()
  );

  fxp_requant #(
    .InBits(Ex2NumBits), .InFrac(0), .InSigned(1'b1),
    .OutBits(LnVarBits), .OutFrac(0), .OutSigned(1'b0),
    .RoundHalfUp(1'b0), .Saturate(LnVarSaturate)
  ) u_ex2 (
    .in_i(ex2_div_q), .out_o(ex2_d), .clip_o()
  );

  fxp_requant #(
    .InBits(2 * LnMeanBits), .InFrac(2 * LnMeanFracBits), .InSigned(1'b1),
    .OutBits(LnVarBits), .OutFrac(LnVarFracBits), .OutSigned(1'b0),
    .RoundHalfUp(LnVarRoundHalfUp), .Saturate(LnVarSaturate)
  ) u_m2 (
    .in_i(mm2), .out_o(m2_d), .clip_o()
  );

  // the statistics pipeline never stalls: every register below moves on each cycle
  fxp_mul #(.ABits(LnMeanBits), .BBits(LnMeanBits)) u_mean_sq (
    .clk_i(clk_i), .en_i(1'b1), .a_i($signed(mean1_q)), .b_i($signed(mean1_q)), .p_o(mm2)
  );
  pipe_reg #(.Width(LnMeanBits + LnVarBits), .Depth(MulLatency)) u_mean_sq_wait (
    .clk_i(clk_i), .en_i(1'b1), .d_i({mean1_q, ex21_q}), .q_o({mean_sq, ex2_sq})
  );

  logic [LnVarBits:0] var_eps;
  assign var_d = ex2_m2_q > m2_q ? ex2_m2_q - m2_q : '0;
  assign var_eps = (LnVarBits + 1)'(var_q) + (LnVarBits + 1)'(EpsRaw);

  fxp_requant #(
    .InBits(LnVarBits + 1), .InFrac(0), .InSigned(1'b0),
    .OutBits(LnVarBits), .OutFrac(0), .OutSigned(1'b0),
    .RoundHalfUp(1'b0), .Saturate(LnVarSaturate)
  ) u_ve (
    .in_i(var_eps), .out_o(ve_d), .clip_o()
  );

  // the statistics pipeline never stalls: the rsqrt lane always advances, and the mean waits
  // beside it
  rsqrt_lane u_rsqrt (
    .clk_i(clk_i), .en_i(1'b1),
    .x_i(ve_q),
    .y_o(rstd_d)
  );
  // the mean waits beside fit m2, var, var + eps and the rsqrt lane
  pipe_reg #(.Width(LnMeanBits), .Depth(3 + RsqrtLatency)) u_mean_wait (
    .clk_i(clk_i), .en_i(1'b1), .d_i(mean_sq), .q_o(mean_r)
  );

  // ---------------------------------------------------------------- pass 2: normalise, scale, shift
  logic [LnMeanBits-1:0]          o1_mean_q;
  logic [LnRstdBits-1:0]          o1_rstd_q;
  logic                           o1_last_q, o2_v_q, o2_last_q, o3_v_q, o3_last_q;
  logic [Lanes*NormProductBits-1:0]           dr_d, dr_q;
  logic [Lanes*AffineBits-1:0]            acc_d, acc_q;
  logic [Lanes*ActBits-1:0]       y_d;

  for (genvar l = 0; l < Lanes; l++) begin : gen_norm
    logic signed [DiffBits-1:0]         d;
    logic signed [LnNormBits-1:0] z;
    logic signed [NormBits-1:0]   g, b;
    logic signed [NormProductBits-1:0]        dr;
    logic signed [AffineBits-1:0]         acc;
    assign d = (DiffBits'($signed(xb_q[l*ActBits +: ActBits])) <<< (DiffFracBits - ActFracBits)) - (DiffBits'($signed(o1_mean_q)) <<< (DiffFracBits - LnMeanFracBits));
    assign dr_d[l*NormProductBits +: NormProductBits] = NormProductBits'(d) * $signed({1'b0, o1_rstd_q});
    assign dr = dr_q[l*NormProductBits +: NormProductBits];
    fxp_requant #(
      .InBits(NormProductBits), .InFrac(DiffFracBits + LnRstdFracBits), .InSigned(1'b1),
      .OutBits(LnNormBits), .OutFrac(LnNormFracBits), .OutSigned(1'b1),
      .RoundHalfUp(LnNormRoundHalfUp), .Saturate(LnNormSaturate)
    ) u_z (
      .in_i(dr), .out_o(z), .clip_o()
    );
    assign g = gb_q[l*NormBits +: NormBits];
    assign b = gb_q[(Lanes + l)*NormBits +: NormBits];
    assign acc_d[l*AffineBits +: AffineBits] = AffineBits'(z) * AffineBits'(g) + (AffineBits'(b) <<< LnNormFracBits);
    assign acc = acc_q[l*AffineBits +: AffineBits];
    fxp_requant #(
      .InBits(AffineBits), .InFrac(LnNormFracBits + NormFracBits), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_y (
      .in_i(acc), .out_o(y_d[l*ActBits +: ActBits]), .clip_o()
    );
  end

  // ---------------------------------------------------------------- control registers
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      occ_q      <= '0;
      tok_q      <= '0;
      stats_q    <= '0;
      sw_q       <= '0;
      sr_q       <= '0;
      wcnt_q     <= '0;
      rcnt_q     <= '0;
      pcnt_q     <= '0;
      waddr_q    <= '0;
      raddr_q    <= '0;
      x1_v_q     <= 1'b0;
      x2_v_q     <= 1'b0;
      acc_done_q <= 1'b0;
      st_v_q     <= '0;
      o1_v_q     <= 1'b0;
      o2_v_q     <= 1'b0;
      o3_v_q     <= 1'b0;
      y_valid_o  <= 1'b0;
    end else begin
      if (p_take) begin
        pcnt_q <= pcnt_q == BeatIndexBits'(BeatsPerToken - 1) ? '0 : pcnt_q + 1'b1;
      end
      if (x_take) begin
        wcnt_q  <= wcnt_q == BeatIndexBits'(BeatsPerToken - 1) ? '0 : wcnt_q + 1'b1;
        waddr_q <= waddr_q == BufAddrBits'(BufWords - 1) ? '0 : waddr_q + 1'b1;
      end
      x1_v_q     <= x_take;
      x2_v_q     <= x1_v_q;
      acc_done_q <= x2_v_q && x2_last_q;
      st_v_q     <= {st_v_q[StatsSteps-1:1], mean_div_v};
      if (issue) begin
        rcnt_q  <= rcnt_q == BeatIndexBits'(BeatsPerToken - 1) ? '0 : rcnt_q + 1'b1;
        raddr_q <= raddr_q == BufAddrBits'(BufWords - 1) ? '0 : raddr_q + 1'b1;
      end
      if (x_take && !issue) occ_q <= occ_q + 1'b1;
      if (!x_take && issue) occ_q <= occ_q - 1'b1;
      if (tok_in && !tok_out) tok_q <= tok_q + 1'b1;
      if (!tok_in && tok_out) tok_q <= tok_q - 1'b1;
      if (st_v_q[StatsSteps] && !tok_out) stats_q <= stats_q + 1'b1;
      if (!st_v_q[StatsSteps] && tok_out) stats_q <= stats_q - 1'b1;
      if (st_v_q[StatsSteps]) sw_q <= sw_q == TokenIndexBits'(TokensInUnit - 1) ? '0 : sw_q + 1'b1;
      if (tok_out) sr_q <= sr_q == TokenIndexBits'(TokensInUnit - 1) ? '0 : sr_q + 1'b1;
      if (adv) begin
        o1_v_q    <= issue;
        o2_v_q    <= o1_v_q;
        o3_v_q    <= o2_v_q;
        y_valid_o <= o3_v_q;
      end
    end
  end

  // ---------------------------------------------------------------- datapath registers
  always_ff @(posedge clk_i) begin
    // pass 1
    if (x_take) begin
      x1_q       <= x_data_i;
      x1_first_q <= wcnt_q == '0;
      x1_last_q  <= wcnt_q == BeatIndexBits'(BeatsPerToken - 1);
    end
    sq_q       <= sq_d;
    s1b_q      <= s1_beat;
    x2_first_q <= x1_first_q;
    x2_last_q  <= x1_last_q;
    if (x2_v_q) begin
      s1_q <= (x2_first_q ? '0 : s1_q) + s1b_q;
      s2_q <= (x2_first_q ? '0 : s2_q) + s2_beat;
    end
    // statistics
    mean1_q      <= mean_d;
    ex21_q       <= ex2_d;
    m2_q         <= m2_d;
    ex2_m2_q     <= ex2_sq;
    var_q        <= var_d;
    ve_q         <= ve_d;
    if (st_v_q[StatsSteps]) begin
      stat_mean_q[sw_q] <= mean_r;
      stat_rstd_q[sw_q] <= rstd_d;
    end
    // pass 2
    if (issue) begin
      o1_mean_q <= stat_mean_q[sr_q];
      o1_rstd_q <= stat_rstd_q[sr_q];
      o1_beat_q <= rcnt_q;
      o1_last_q <= rcnt_q == BeatIndexBits'(BeatsPerToken - 1);
    end
    if (adv) begin
      dr_q      <= dr_d;
      o2_last_q <= o1_last_q;
      acc_q     <= acc_d;
      o3_last_q <= o2_last_q;
      y_data_o  <= y_d;
      y_last_o  <= o3_last_q;
    end
  end

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(2*Lanes*NormBits)) u_p_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(p_valid_i), .ready_i(p_ready_o), .data_i({p_gamma_i, p_beta_i})
  );
  stream_check #(.Width(Lanes*ActBits)) u_x_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(x_valid_i), .ready_i(x_ready_o), .data_i(x_data_i)
  );
`endif
endmodule

`default_nettype wire
