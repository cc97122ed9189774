// moe_router: the MoE routing unit.
//
// Per token it takes the stream of E gate logits (formats.act, expert 0 first), computes the
// softmax over all experts exactly as edgemoe.golden.fixed.nonlinear.softmax (max; sum of
// cast(exp(x - max)) in softmax_sum; one reciprocal into softmax_recip; multiply; cast to
// gate_score), selects the top-k experts on the raw scores (best first, ties to the lower expert
// index) and emits per token its k experts and scores (stream r). At the end of a block of
// NumTokens tokens it emits the active-expert list, ascending, with each queue's length (stream a),
// and the per-expert token queues, experts ascending and tokens in token order (stream q): the
// routing of edgemoe.golden.fixed.moe.route (patch reordering).
//
// Datapath: one exp lane, one reciprocal lane, one multiplier, one top-k insertion step, in
// stages that each hold one token: A gathers the logits and their maximum (one logit per cycle),
// B runs exp and the sum (one expert per cycle), S holds the exps and the sum while the
// reciprocal is taken on the way into C, C scales and selects (one expert per cycle) and writes
// the token into the queues. Every stage hands over in its last cycle: one token per NumExperts
// cycles, the rate of the input. The queues are double-buffered: while one block drains on a
// and q, the next block is routed into the other bank. Without stalls a token's r beat leaves
// 3 * NumExperts + 2 cycles after its first logit, and a block's last q beat NumTokens * NumTopK - 1
// cycles (plus one per expert without tokens) after its last r beat.
//
// Ports (valid/ready streams; data and valid hold until accepted):
//   x  in:  x_data_i = one logit (formats.act); NumExperts beats per token, NumTokens tokens per block.
//   r  out: r_token_o (index in the block), r_expert_o / r_score_o = NumTopK experts and raw
//           gate_score values, best first (rank 0 in the low bits), r_last_o on the block's last.
//   a  out: one beat per active expert (ascending): a_expert_o, a_count_o (queue length),
//           a_last_o on the last active expert of the block.
//   q  out: one beat per queued token: q_expert_o, q_token_o, q_end_o on the last token of that
//           expert's queue, q_last_o on the last beat of the block.
`default_nettype none

module moe_router
  import edgemoe_pkg::*;
#(
  parameter int unsigned NumExperts = edgemoe_pkg::Experts,
  parameter int unsigned NumTopK    = edgemoe_pkg::TopK,
  parameter int unsigned NumTokens  = edgemoe_pkg::Tokens,
  localparam int unsigned ExpW   = NumExperts > 1 ? $clog2(NumExperts) : 1,
  localparam int unsigned TokW   = NumTokens > 1 ? $clog2(NumTokens) : 1,
  localparam int unsigned CntW   = $clog2(NumTokens + 1),
  localparam int unsigned AddrW  = $clog2(2 * NumTokens)
) (
  input  wire logic                         clk_i,
  input  wire logic                         rst_i,
  input  wire logic                         x_valid_i,
  output logic                              x_ready_o,
  input  wire logic [ActBits-1:0]           x_data_i,
  output logic                              r_valid_o,
  input  wire logic                         r_ready_i,
  output logic      [TokW-1:0]              r_token_o,
  output logic      [NumTopK*ExpW-1:0]         r_expert_o,
  output logic      [NumTopK*GateScoreBits-1:0] r_score_o,
  output logic                              r_last_o,
  output logic                              a_valid_o,
  input  wire logic                         a_ready_i,
  output logic      [ExpW-1:0]              a_expert_o,
  output logic      [CntW-1:0]              a_count_o,
  output logic                              a_last_o,
  output logic                              q_valid_o,
  input  wire logic                         q_ready_i,
  output logic      [ExpW-1:0]              q_expert_o,
  output logic      [TokW-1:0]              q_token_o,
  output logic                              q_end_o,
  output logic                              q_last_o
);
  localparam int unsigned AB = ActBits;
  localparam int unsigned EB = ExpOutBits;
  localparam int unsigned SB = SoftmaxSumBits;
  localparam int unsigned RB = SoftmaxRecipBits;
  localparam int unsigned GB = GateScoreBits;
  localparam int unsigned PW = EB + RB + 2;  // e * (1/sum), both sign-extended by one bit
  localparam logic [ExpW-1:0] LastExpert = ExpW'(NumExperts - 1);
  localparam logic [TokW-1:0] LastToken = TokW'(NumTokens - 1);

  if (NumExperts < 2 || NumTopK < 1 || NumTokens < 2) begin : gen_bad_sizes
    $fatal(1, "%m: moe_router needs NumExperts >= 2, NumTopK >= 1 and NumTokens >= 2, got %0d, %0d, %0d",
           NumExperts, NumTopK, NumTokens);
  end
  if (NumTopK > NumExperts) begin : gen_bad_topk
    $fatal(1, "%m: moe_router NumTopK %0d exceeds NumExperts %0d (each token picks NumTopK distinct experts)",
           NumTopK, NumExperts);
  end

  // ------------------------------------------------------------------------------------------
  // Stage A: gather one token's logits and their maximum
  // ------------------------------------------------------------------------------------------
  logic [AB-1:0]        a_x_q [NumExperts];
  logic signed [AB-1:0] a_max_q;
  logic [ExpW-1:0]      a_j_q;
  logic                 a_full_q;
  logic                 x_fire, a_take;

  // ------------------------------------------------------------------------------------------
  // Stage B: e_j = exp(x_j - max), s = sum of cast(e_j, softmax_sum) (saturating)
  // ------------------------------------------------------------------------------------------
  logic [AB-1:0]        b_x_q [NumExperts];
  logic signed [AB-1:0] b_max_q;
  logic [EB-1:0]        b_e_q [NumExperts];
  logic [SB-1:0]        b_sum_q;
  logic [ExpW-1:0]      b_j_q;
  logic                 b_busy_q;
  logic                 b_last, b_free, b_hand, b_step;
  logic signed [AB:0]   b_diff;
  logic [EB-1:0]        b_exp;
  logic [SB-1:0]        b_term, b_sum_d;
  logic [SB:0]          b_acc;

  // ------------------------------------------------------------------------------------------
  // Stage S: the token's exps and sum; 1/sum is taken as the token moves on into C
  // ------------------------------------------------------------------------------------------
  logic [EB-1:0]        s_e_q [NumExperts];
  logic [SB-1:0]        s_sum_q;
  logic                 s_full_q;
  logic                 s_take, s_free;
  logic [RB-1:0]        s_recip;

  // ------------------------------------------------------------------------------------------
  // Stage C: p_j = cast(e_j * r, gate_score), running top-k; then the token leaves on r
  // ------------------------------------------------------------------------------------------
  logic [EB-1:0]           c_e_q [NumExperts];
  logic [RB-1:0]           c_r_q;
  logic [ExpW-1:0]         c_j_q;
  logic                    c_busy_q;
  logic [NumTopK-1:0]         c_best_v_q, c_ins_v;
  logic [NumTopK*GB-1:0]      c_best_s_q, c_ins_s;
  logic [NumTopK*ExpW-1:0]    c_best_i_q, c_ins_i;
  logic signed [EB:0]      c_e_ext;
  logic signed [RB:0]      c_r_ext;
  logic signed [PW-1:0]    c_prod;
  logic [GB-1:0]           c_p;
  logic                    c_last, c_free, c_step, c_emit, emit_ok;

  // ------------------------------------------------------------------------------------------
  // Queues: per expert one memory (one write, one read port) of two banks of token indices,
  // bank b at addresses b * NumTokens ..; the queue lengths per bank in registers
  // ------------------------------------------------------------------------------------------
  logic [TokW-1:0]   q_rdata [NumExperts];
  logic [AddrW-1:0]  q_raddr;
  logic [CntW-1:0]   cnt_q [2][NumExperts];
  logic [1:0]        full_q;
  logic              wb_q, rb_q;
  logic [TokW-1:0]   tok_q;
  logic [NumExperts-1:0] active;
  logic [ExpW-1:0]   a_ptr_q, q_e_q;
  logic [TokW-1:0]   q_i_q;
  logic              a_done_q, q_done_q;
  logic [CntW-1:0]   a_cnt, q_cnt;
  logic              a_fire, q_fire, a_skip, q_skip, q_elast, a_fin, q_fin, release_bank;

  // ---- stage A
  assign a_take = a_full_q && b_free;
  assign x_ready_o = !a_full_q || a_take;
  assign x_fire = x_valid_i && x_ready_o;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      a_full_q <= 1'b0;
      a_j_q    <= '0;
    end else begin
      if (a_take) a_full_q <= 1'b0;
      if (x_fire) begin
        if (a_j_q == LastExpert) begin
          a_full_q <= 1'b1;
          a_j_q    <= '0;
        end else begin
          a_j_q <= a_j_q + 1'b1;
        end
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (x_fire) begin
      a_x_q[a_j_q] <= x_data_i;
      if (a_j_q == '0 || $signed(x_data_i) > a_max_q) a_max_q <= $signed(x_data_i);
    end
  end

  // ---- stage B
  assign b_last = b_j_q == LastExpert;
  assign b_hand = b_busy_q && b_last && s_free;  // the last exp goes straight into S
  assign b_step = b_busy_q && (!b_last || s_free);
  assign b_free = !b_busy_q || b_hand;
  assign b_diff = (AB + 1)'($signed(b_x_q[b_j_q])) - (AB + 1)'(b_max_q);

  exp_lane #(
    .XBits(AB + 1), .XFrac(ActFracBits), .OutBits(EB), .OutFrac(ExpOutFracBits),
    .OutSigned(ExpOutSigned), .OutRoundHalfUp(ExpOutRoundHalfUp), .OutSaturate(ExpOutSaturate)
  ) u_exp (
    .x_i(b_diff), .y_o(b_exp)
  );

  fxp_requant #(
    .InBits(EB), .InFrac(ExpOutFracBits), .InSigned(ExpOutSigned),
    .OutBits(SB), .OutFrac(SoftmaxSumFracBits), .OutSigned(SoftmaxSumSigned),
    .RoundHalfUp(SoftmaxSumRoundHalfUp), .Saturate(SoftmaxSumSaturate)
  ) u_term (
    .in_i(b_exp), .out_o(b_term), .clip_o()
  );

  // terms are >= 0: saturating every add equals saturating the exact total
  assign b_acc = (SB + 1)'({SoftmaxSumSigned & b_sum_q[SB-1], b_sum_q})
               + (SB + 1)'({SoftmaxSumSigned & b_term[SB-1], b_term});

  fxp_requant #(
    .InBits(SB + 1), .InFrac(0), .InSigned(SoftmaxSumSigned),
    .OutBits(SB), .OutFrac(0), .OutSigned(SoftmaxSumSigned),
    .RoundHalfUp(1'b0), .Saturate(SoftmaxSumSaturate)
  ) u_sum (
    .in_i(b_acc), .out_o(b_sum_d), .clip_o()
  );

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      b_busy_q <= 1'b0;
      b_j_q    <= '0;
    end else begin
      if (b_step && !b_last) b_j_q <= b_j_q + 1'b1;
      if (b_hand) b_busy_q <= 1'b0;
      if (a_take) begin
        b_busy_q <= 1'b1;
        b_j_q    <= '0;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (b_step) begin
      b_e_q[b_j_q] <= b_exp;
      b_sum_q      <= b_sum_d;
    end
    if (a_take) begin
      b_x_q   <= a_x_q;
      b_max_q <= a_max_q;
      b_sum_q <= '0;
    end
  end

  // ---- stage S
  assign s_take = s_full_q && c_free;
  assign s_free = !s_full_q || s_take;

  recip_lane #(
    .XBits(SB), .XFrac(SoftmaxSumFracBits), .OutBits(RB), .OutFrac(SoftmaxRecipFracBits),
    .OutSigned(SoftmaxRecipSigned), .OutRoundHalfUp(SoftmaxRecipRoundHalfUp),
    .OutSaturate(SoftmaxRecipSaturate)
  ) u_recip (
    .x_i(s_sum_q), .y_o(s_recip)
  );

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      s_full_q <= 1'b0;
    end else begin
      if (s_take) s_full_q <= 1'b0;
      if (b_hand) s_full_q <= 1'b1;
    end
  end

  always_ff @(posedge clk_i) begin
    if (b_hand) begin
      s_e_q                 <= b_e_q;
      s_e_q[NumExperts - 1] <= b_exp;
      s_sum_q               <= b_sum_d;
    end
  end

  // ---- stage C
  assign c_last  = c_j_q == LastExpert;
  assign emit_ok = (!r_valid_o || r_ready_i) && !full_q[wb_q];
  assign c_emit  = c_busy_q && c_last && emit_ok;
  assign c_step  = c_busy_q && (!c_last || emit_ok);
  assign c_free  = !c_busy_q || c_emit;

  assign c_e_ext = {ExpOutSigned & c_e_q[c_j_q][EB-1], c_e_q[c_j_q]};
  assign c_r_ext = {SoftmaxRecipSigned & c_r_q[RB-1], c_r_q};
  assign c_prod  = PW'(c_e_ext) * PW'(c_r_ext);

  fxp_requant #(
    .InBits(PW), .InFrac(ExpOutFracBits + SoftmaxRecipFracBits), .InSigned(1'b1),
    .OutBits(GB), .OutFrac(GateScoreFracBits), .OutSigned(GateScoreSigned),
    .RoundHalfUp(GateScoreRoundHalfUp), .Saturate(GateScoreSaturate)
  ) u_score (
    .in_i(c_prod), .out_o(c_p), .clip_o()
  );

  topk_insert #(
    .TopK(NumTopK), .ScoreBits(GB), .ScoreSigned(GateScoreSigned), .IndexBits(ExpW)
  ) u_topk (
    .valid_i(c_best_v_q), .score_i(c_best_s_q), .index_i(c_best_i_q),
    .cand_score_i(c_p), .cand_index_i(c_j_q),
    .valid_o(c_ins_v), .score_o(c_ins_s), .index_o(c_ins_i)
  );

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      c_busy_q   <= 1'b0;
      c_j_q      <= '0;
      c_best_v_q <= '0;
    end else begin
      if (c_step) begin
        c_best_v_q <= c_ins_v;
        if (!c_last) c_j_q <= c_j_q + 1'b1;
      end
      if (c_emit) c_busy_q <= 1'b0;
      if (s_take) begin
        c_busy_q   <= 1'b1;
        c_j_q      <= '0;
        c_best_v_q <= '0;
      end
    end
  end

  always_ff @(posedge clk_i) begin
    if (c_step) begin
      c_best_s_q <= c_ins_s;
      c_best_i_q <= c_ins_i;
    end
    if (s_take) begin
      c_e_q <= s_e_q;
      c_r_q <= s_recip;
    end
  end

  // ---- routing output r (one register stage)
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      r_valid_o <= 1'b0;
    end else if (c_emit) begin
      r_valid_o <= 1'b1;
    end else if (r_ready_i) begin
      r_valid_o <= 1'b0;
    end
  end

  always_ff @(posedge clk_i) begin
    if (c_emit) begin
      r_token_o  <= tok_q;
      r_expert_o <= c_ins_i;
      r_score_o  <= c_ins_s;
      r_last_o   <= tok_q == LastToken;
    end
  end

  // ---- queue memories: the emitted token joins the queue of each of its (distinct) experts
  assign q_raddr = AddrW'(q_i_q) + (rb_q ? AddrW'(NumTokens) : '0);

  for (genvar e = 0; e < int'(NumExperts); e++) begin : gen_queue
    logic [TokW-1:0]  mem_q [2 * NumTokens];
    logic             chosen;
    logic [AddrW-1:0] waddr;

    always_comb begin
      chosen = 1'b0;
      for (int k = 0; k < int'(NumTopK); k++) begin
        if (c_ins_i[k*ExpW +: ExpW] == ExpW'(e)) chosen = 1'b1;
      end
    end
    assign waddr = AddrW'(cnt_q[wb_q][e]) + (wb_q ? AddrW'(NumTokens) : '0);

    always_ff @(posedge clk_i) begin
      if (c_emit && chosen) mem_q[waddr] <= tok_q;
    end
    assign q_rdata[e] = mem_q[q_raddr];
  end

  // ---- drain of bank rb on a and q
  always_comb begin
    for (int e = 0; e < int'(NumExperts); e++) active[e] = cnt_q[rb_q][e] != '0;
  end

  function automatic logic none_above(input logic [NumExperts-1:0] mask, input logic [ExpW-1:0] e);
    logic none = 1'b1;
    for (int k = 0; k < int'(NumExperts); k++) begin
      if (k > int'(e) && mask[k]) none = 1'b0;
    end
    return none;
  endfunction

  assign a_cnt      = cnt_q[rb_q][a_ptr_q];
  assign a_valid_o  = full_q[rb_q] && !a_done_q && a_cnt != '0;
  assign a_expert_o = a_ptr_q;
  assign a_count_o  = a_cnt;
  assign a_last_o   = none_above(active, a_ptr_q);
  assign a_fire     = a_valid_o && a_ready_i;
  assign a_skip     = full_q[rb_q] && !a_done_q && a_cnt == '0;

  assign q_cnt      = cnt_q[rb_q][q_e_q];
  assign q_valid_o  = full_q[rb_q] && !q_done_q && q_cnt != '0;
  assign q_expert_o = q_e_q;
  assign q_token_o  = q_rdata[q_e_q];
  assign q_end_o    = CntW'(q_i_q) == q_cnt - 1'b1;
  assign q_elast    = none_above(active, q_e_q);
  assign q_last_o   = q_end_o && q_elast;
  assign q_fire     = q_valid_o && q_ready_i;
  assign q_skip     = full_q[rb_q] && !q_done_q && q_cnt == '0;

  // the bank is released in the cycle its last beats leave, so the drain keeps up with the input
  assign a_fin = a_done_q || (a_fire && a_last_o);
  assign q_fin = q_done_q || (q_fire && q_last_o);
  assign release_bank = full_q[rb_q] && a_fin && q_fin;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      full_q   <= '0;
      wb_q     <= 1'b0;
      rb_q     <= 1'b0;
      tok_q    <= '0;
      cnt_q    <= '{default: '0};
      a_ptr_q  <= '0;
      a_done_q <= 1'b0;
      q_e_q    <= '0;
      q_i_q    <= '0;
      q_done_q <= 1'b0;
    end else begin
      if (c_emit) begin
        for (int k = 0; k < int'(NumTopK); k++) begin
          cnt_q[wb_q][c_ins_i[k*ExpW +: ExpW]] <= cnt_q[wb_q][c_ins_i[k*ExpW +: ExpW]] + 1'b1;
        end
        if (tok_q == LastToken) begin
          tok_q        <= '0;
          full_q[wb_q] <= 1'b1;
          wb_q         <= !wb_q;
        end else begin
          tok_q <= tok_q + 1'b1;
        end
      end
      if (a_fire && a_last_o) a_done_q <= 1'b1;
      else if (a_fire || a_skip) a_ptr_q <= a_ptr_q + 1'b1;
      if (q_fire && q_last_o) begin
        q_done_q <= 1'b1;
      end else if (q_skip || (q_fire && q_end_o)) begin
        q_e_q <= q_e_q + 1'b1;
        q_i_q <= '0;
      end else if (q_fire) begin
        q_i_q <= q_i_q + 1'b1;
      end
      if (release_bank) begin
        full_q[rb_q] <= 1'b0;
        cnt_q[rb_q]  <= '{default: '0};
        rb_q         <= !rb_q;
        a_ptr_q      <= '0;
        a_done_q     <= 1'b0;
        q_e_q        <= '0;
        q_i_q        <= '0;
        q_done_q     <= 1'b0;
      end
    end
  end

  // ---- stream rule checks (simulation only)
`ifndef SYNTHESIS
  logic x_wait_q, r_wait_q, a_wait_q, q_wait_q;
  logic [AB-1:0]                x_hold_q;
  logic [TokW+NumTopK*(ExpW+GB):0] r_hold_q;
  logic [ExpW+CntW:0]           a_hold_q;
  logic [ExpW+TokW+1:0]         q_hold_q;
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      x_wait_q <= 1'b0;
      r_wait_q <= 1'b0;
      a_wait_q <= 1'b0;
      q_wait_q <= 1'b0;
    end else begin
      if (x_wait_q) assert (x_valid_i && x_hold_q == x_data_i)
        else $error("%m: x changed before it was accepted");
      if (r_wait_q) assert (r_valid_o && r_hold_q == {r_token_o, r_expert_o, r_score_o, r_last_o})
        else $error("%m: r changed before it was accepted");
      if (a_wait_q) assert (a_valid_o && a_hold_q == {a_expert_o, a_count_o, a_last_o})
        else $error("%m: a changed before it was accepted");
      if (q_wait_q) assert (q_valid_o && q_hold_q == {q_expert_o, q_token_o, q_end_o, q_last_o})
        else $error("%m: q changed before it was accepted");
      x_wait_q <= x_valid_i && !x_ready_o;
      r_wait_q <= r_valid_o && !r_ready_i;
      a_wait_q <= a_valid_o && !a_ready_i;
      q_wait_q <= q_valid_o && !q_ready_i;
    end
    x_hold_q <= x_data_i;
    r_hold_q <= {r_token_o, r_expert_o, r_score_o, r_last_o};
    a_hold_q <= {a_expert_o, a_count_o, a_last_o};
    q_hold_q <= {q_expert_o, q_token_o, q_end_o, q_last_o};
  end
`endif
endmodule

`default_nettype wire
