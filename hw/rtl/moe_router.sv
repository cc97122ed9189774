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
// stages: A gathers the logits and their maximum (one logit per cycle), B feeds x - max into a
// registered exp lane (one expert per cycle) and sums the exps as they leave it ExpLatency
// cycles later, S queues finished tokens (their exps and sum) while the sum goes through a
// registered reciprocal lane (RecipLatency cycles), C scales and selects (one expert per cycle)
// and writes the token into the queues: its scores p_j = cast(e_j * 1/sum) leave a registered
// multiplier ScoreLatency cycles after their issue and enter the running top-k there. B and C
// each take a new token while the last expert of the previous one is still in their pipeline,
// S holds enough tokens to cover the reciprocal's latency: one token per NumExperts cycles, the
// rate of the input. The queues are double-buffered: while one block drains on a and q, the
// next block is routed into the other bank. Without stalls a token's r beat leaves
// 3 * NumExperts + 2 + ExpLatency + RecipLatency + ScoreLatency cycles after its first logit (at
// least; more when S waits for C), and a block's last q beat NumTokens * NumTopK - 1 cycles
// (plus one per expert without tokens) after its last r beat.
//
// Ports (valid/ready streams; data and valid hold until accepted):
//   x  in:  x_data_i = one logit (formats.act); NumExperts beats per token, NumTokens tokens per block.
//   r  out: r_token_o (index in the block), r_expert_o / r_score_o = NumTopK experts and raw
//           gate_score values, best first (rank 0 in the low bits), r_last_o on the block's last.
//   active out: one beat per active expert (ascending): active_expert_o, active_count_o (queue length),
//           active_last_o on the last active expert of the block.
//   queue  out: one beat per queued token: queue_expert_o, queue_token_o, queue_end_o on the last token of that
//           expert's queue, queue_last_o on the last beat of the block.
`default_nettype none

module moe_router
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned NumExperts = edgemoe_pkg::Experts,
  parameter int unsigned NumTopK    = edgemoe_pkg::TopK,
  parameter int unsigned NumTokens  = edgemoe_pkg::Tokens,
  localparam int unsigned ExpertBits   = NumExperts > 1 ? $clog2(NumExperts) : 1,
  localparam int unsigned TokenBits   = NumTokens > 1 ? $clog2(NumTokens) : 1,
  localparam int unsigned CountBits   = $clog2(NumTokens + 1),
  localparam int unsigned AddrBits  = $clog2(2 * NumTokens)
) (
  input  wire logic                         clk_i,
  input  wire logic                         rst_i,
  input  wire logic                         x_valid_i,
  output logic                              x_ready_o,
  input  wire logic [ActBits-1:0]           x_data_i,
  output logic                              r_valid_o,
  input  wire logic                         r_ready_i,
  output logic      [TokenBits-1:0]              r_token_o,
  output logic      [NumTopK*ExpertBits-1:0]         r_expert_o,
  output logic      [NumTopK*GateScoreBits-1:0] r_score_o,
  output logic                              r_last_o,
  output logic                              active_valid_o,
  input  wire logic                         active_ready_i,
  output logic      [ExpertBits-1:0]              active_expert_o,
  output logic      [CountBits-1:0]              active_count_o,
  output logic                              active_last_o,
  output logic                              queue_valid_o,
  input  wire logic                         queue_ready_i,
  output logic      [ExpertBits-1:0]              queue_expert_o,
  output logic      [TokenBits-1:0]              queue_token_o,
  output logic                              queue_end_o,
  output logic                              queue_last_o
);
  localparam int unsigned ProbProductBits = ExpOutBits + SoftmaxRecipBits + 2;  // e * (1/sum), both sign-extended by one bit
  localparam logic [ExpertBits-1:0] LastExpert = ExpertBits'(NumExperts - 1);
  localparam logic [TokenBits-1:0] LastToken = TokenBits'(NumTokens - 1);

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
  logic [ActBits-1:0]        a_x_q [NumExperts];
  logic signed [ActBits-1:0] a_max_q;
  logic [ExpertBits-1:0]      a_j_q;
  logic                 a_full_q;
  logic                 x_fire, a_take;

  // ------------------------------------------------------------------------------------------
  // Stage B: e_j = exp(x_j - max) in a registered exp lane, s = sum of cast(e_j, softmax_sum)
  // (saturating) as the exps leave the lane; the lane, its side bits and the sum move on b_en
  // ------------------------------------------------------------------------------------------
  logic [ActBits-1:0]        b_x_q [NumExperts];  // the token's logits, the next to issue first
  logic signed [ActBits-1:0] b_max_q;
  logic [ExpOutBits-1:0]        b_e_q [NumExperts];
  logic [SoftmaxSumBits-1:0]        b_sum_q;
  logic [ExpertBits-1:0]      b_j_q;
  logic                 b_busy_q;
  logic                 b_en, b_issue, b_last, b_free, b_hand;
  logic signed [ActBits:0]   b_diff;
  logic [ExpOutBits-1:0]        b_exp;
  logic [SoftmaxSumBits-1:0]        b_term, b_sum_d;
  logic [SoftmaxSumBits:0]          b_acc;
  logic [ExpertBits-1:0]      b_out_j;  // the expert whose exp leaves the lane
  logic                 b_out_valid, b_out_last;

  // ------------------------------------------------------------------------------------------
  // Stage S: a queue of up to SDepth finished tokens (exps, and 1/sum once the reciprocal lane
  // has it); the lane is fed the sum as the token enters and runs on every cycle
  // ------------------------------------------------------------------------------------------
  // tokens S holds: one arrives every NumExperts cycles and stays RecipLatency + 2
  localparam int unsigned SDepth = (RecipLatency + NumExperts) / NumExperts + 1;
  localparam int unsigned SIndexBits = $clog2(SDepth) > 0 ? $clog2(SDepth) : 1;
  logic [ExpOutBits-1:0]        s_e_q [SDepth][NumExperts];
  logic [SoftmaxRecipBits-1:0]  s_r_q [SDepth];
  logic [SIndexBits-1:0]        s_wr_q, s_rd_q, s_rr;  // token in, token out; the reciprocal's slot
  logic [SIndexBits:0]          s_cnt_q, s_done_q;  // tokens in S; of them, with their reciprocal
  logic                 s_take, s_free, s_recip_in;
  logic [SoftmaxRecipBits-1:0]        s_recip;

  // ------------------------------------------------------------------------------------------
  // Stage C: p_j = cast(e_j * r, gate_score) in a registered multiplier (one expert per enabled
  // cycle), the running top-k as the scores leave it ScoreLatency cycles later; then the token
  // leaves on r. The multiplier, its side bits and the top-k move on c_en.
  // ------------------------------------------------------------------------------------------
  localparam int unsigned ScoreLatency = MulLatency + 1;  // the product, then the cast
  logic [ExpOutBits-1:0]           c_e_q [NumExperts];
  logic [SoftmaxRecipBits-1:0]           c_r_q;
  logic [ExpertBits-1:0]         c_j_q;
  logic                    c_busy_q;
  logic [NumTopK-1:0]         c_best_v_q, c_ins_v;
  logic [NumTopK*GateScoreBits-1:0]      c_best_s_q, c_ins_s;
  logic [NumTopK*ExpertBits-1:0]    c_best_i_q, c_ins_i;
  logic signed [ExpOutBits:0]      c_e_ext;
  logic signed [SoftmaxRecipBits:0]      c_r_ext;
  logic signed [ProbProductBits-1:0]    c_prod;
  logic [GateScoreBits-1:0]           c_p_d, c_p;
  logic                    c_en, c_issue, c_last, c_free, c_step, c_emit, emit_ok;
  logic [ExpertBits-1:0]      c_out_j;  // the expert whose score leaves it
  logic                 c_out_valid, c_out_first, c_out_last;

  // ------------------------------------------------------------------------------------------
  // Queues: per expert one memory (one write, one read port) of two banks of token indices,
  // bank b at addresses b * NumTokens ..; the queue lengths per bank in registers
  // ------------------------------------------------------------------------------------------
  logic [TokenBits-1:0]   queue_rdata [NumExperts];
  logic [AddrBits-1:0]  queue_raddr;
  logic [CountBits-1:0]   cnt_q [2][NumExperts];
  logic [1:0]        full_q;
  logic              wb_q, rb_q;
  logic [TokenBits-1:0]   tok_q;
  logic [NumExperts-1:0] active;
  logic [ExpertBits-1:0]   active_ptr_q, queue_e_q;
  logic [TokenBits-1:0]   queue_i_q;
  logic              active_done_q, queue_done_q;
  logic [CountBits-1:0]   active_cnt, queue_cnt;
  logic              active_fire, queue_fire, active_skip, queue_skip, queue_elast, active_fin, queue_fin, release_bank;

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
  // issue: one expert per enabled cycle into the exp lane; A hands over on the last issue
  assign b_last = b_j_q == LastExpert;
  assign b_issue = b_busy_q && b_en;
  assign b_free = !b_busy_q || (b_issue && b_last);
  assign b_diff = (ActBits + 1)'($signed(b_x_q[0])) - (ActBits + 1)'(b_max_q);
  // the lane holds only while a token's last exp waits for room in S
  assign b_hand = b_out_valid && b_out_last && s_free;
  assign b_en = !(b_out_valid && b_out_last) || s_free;

  exp_lane #(
    .XBits(ActBits + 1), .XFrac(ActFracBits), .OutBits(ExpOutBits), .OutFrac(ExpOutFracBits),
    .OutSigned(ExpOutSigned), .OutRoundHalfUp(ExpOutRoundHalfUp), .OutSaturate(ExpOutSaturate)
  ) u_exp (
    .clk_i(clk_i), .en_i(b_en), .x_i(b_diff), .y_o(b_exp)
  );

  // the issued experts beside the exp lane
  valid_pipe #(.Latency(ExpLatency), .SideBits(ExpertBits + 1)) u_exp_side (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(b_en), .valid_i(b_issue),
    .side_i({b_j_q, b_last}), .valid_o(b_out_valid), .side_o({b_out_j, b_out_last})
  );

  fxp_requant #(
    .InBits(ExpOutBits), .InFrac(ExpOutFracBits), .InSigned(ExpOutSigned),
    .OutBits(SoftmaxSumBits), .OutFrac(SoftmaxSumFracBits), .OutSigned(SoftmaxSumSigned),
    .RoundHalfUp(SoftmaxSumRoundHalfUp), .Saturate(SoftmaxSumSaturate)
  ) u_term (
    .in_i(b_exp), .out_o(b_term), .clip_o()
  );

  // terms are >= 0: saturating every add equals saturating the exact total; a token's first
  // exp starts the sum
  logic [SoftmaxSumBits-1:0] b_base;
  assign b_base = b_out_j == '0 ? '0 : b_sum_q;
  assign b_acc = (SoftmaxSumBits + 1)'({SoftmaxSumSigned & b_base[SoftmaxSumBits-1], b_base})
               + (SoftmaxSumBits + 1)'({SoftmaxSumSigned & b_term[SoftmaxSumBits-1], b_term});

  fxp_requant #(
    .InBits(SoftmaxSumBits + 1), .InFrac(0), .InSigned(SoftmaxSumSigned),
    .OutBits(SoftmaxSumBits), .OutFrac(0), .OutSigned(SoftmaxSumSigned),
    .RoundHalfUp(1'b0), .Saturate(SoftmaxSumSaturate)
  ) u_sum (
    .in_i(b_acc), .out_o(b_sum_d), .clip_o()
  );

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      b_busy_q  <= 1'b0;
      b_j_q     <= '0;
    end else begin
      if (b_issue) b_j_q <= b_last ? '0 : b_j_q + 1'b1;
      if (b_issue && b_last) b_busy_q <= 1'b0;
      if (a_take) b_busy_q <= 1'b1;
    end
  end

  always_ff @(posedge clk_i) begin
    if (b_en && b_out_valid) begin
      b_e_q[b_out_j] <= b_exp;
      b_sum_q        <= b_sum_d;
    end
    // the logits move down one place per issue, so the exp lane's input reads no index
    if (a_take) begin
      b_x_q   <= a_x_q;
      b_max_q <= a_max_q;
    end else if (b_issue) begin
      for (int k = 0; k + 1 < int'(NumExperts); k++) b_x_q[k] <= b_x_q[k+1];
    end
  end

  // ---- stage S
  assign s_free = s_cnt_q != (SIndexBits + 1)'(SDepth);
  assign s_take = s_done_q != '0 && c_free;
  // the sums in the reciprocal lane, each with the slot its token took
  valid_pipe #(.Latency(RecipLatency), .SideBits(SIndexBits)) u_recip_wait (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(1'b1), .valid_i(b_hand),
    .side_i(s_wr_q), .valid_o(s_recip_in), .side_o(s_rr)
  );

  recip_lane #(
    .XBits(SoftmaxSumBits), .XFrac(SoftmaxSumFracBits),
    .OutBits(SoftmaxRecipBits), .OutFrac(SoftmaxRecipFracBits), .OutSigned(SoftmaxRecipSigned),
    .OutRoundHalfUp(SoftmaxRecipRoundHalfUp), .OutSaturate(SoftmaxRecipSaturate)
  ) u_recip (
    .clk_i(clk_i), .en_i(1'b1), .x_i(b_sum_d), .y_o(s_recip)
  );

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      s_wr_q    <= '0;
      s_rd_q    <= '0;
      s_cnt_q   <= '0;
      s_done_q  <= '0;
    end else begin
      if (b_hand) s_wr_q <= s_wr_q == SIndexBits'(SDepth - 1) ? '0 : s_wr_q + 1'b1;
      if (s_take) s_rd_q <= s_rd_q == SIndexBits'(SDepth - 1) ? '0 : s_rd_q + 1'b1;
      s_cnt_q  <= s_cnt_q + (SIndexBits + 1)'(b_hand) - (SIndexBits + 1)'(s_take);
      s_done_q <= s_done_q + (SIndexBits + 1)'(s_recip_in) - (SIndexBits + 1)'(s_take);
    end
  end

  always_ff @(posedge clk_i) begin
    if (b_hand) begin
      s_e_q[s_wr_q]                 <= b_e_q;
      s_e_q[s_wr_q][NumExperts - 1] <= b_exp;
    end
    if (s_recip_in) s_r_q[s_rr] <= s_recip;
  end

  // ---- stage C
  // issue: one expert per enabled cycle into the multiplier; S hands over on the last issue
  assign c_last  = c_j_q == LastExpert;
  assign c_issue = c_busy_q && c_en;
  assign c_free  = !c_busy_q || (c_issue && c_last);
  // the multiplier holds only while a token's last score waits to leave
  assign emit_ok = (!r_valid_o || r_ready_i) && !full_q[wb_q];
  assign c_emit  = c_out_valid && c_out_last && emit_ok;
  assign c_en    = !(c_out_valid && c_out_last) || emit_ok;
  assign c_step  = c_out_valid && c_en;

  assign c_e_ext = {ExpOutSigned & c_e_q[c_j_q][ExpOutBits-1], c_e_q[c_j_q]};
  assign c_r_ext = {SoftmaxRecipSigned & c_r_q[SoftmaxRecipBits-1], c_r_q};
  fxp_mul #(.ABits(ExpOutBits + 1), .BBits(SoftmaxRecipBits + 1)) u_mul_score (
    .clk_i(clk_i), .en_i(c_en), .a_i(c_e_ext), .b_i(c_r_ext), .p_o(c_prod)
  );

  fxp_requant #(
    .InBits(ProbProductBits), .InFrac(ExpOutFracBits + SoftmaxRecipFracBits), .InSigned(1'b1),
    .OutBits(GateScoreBits), .OutFrac(GateScoreFracBits), .OutSigned(GateScoreSigned),
    .RoundHalfUp(GateScoreRoundHalfUp), .Saturate(GateScoreSaturate)
  ) u_score (
    .in_i(c_prod), .out_o(c_p_d), .clip_o()
  );
  pipe_reg #(.Width(GateScoreBits), .Depth(1)) u_score_reg (
    .clk_i(clk_i), .en_i(c_en), .d_i(c_p_d), .q_o(c_p)
  );
  // the issued experts beside the multiplier
  valid_pipe #(.Latency(ScoreLatency), .SideBits(ExpertBits + 2)) u_score_side (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(c_en), .valid_i(c_issue),
    .side_i({c_j_q, c_j_q == '0, c_last}), .valid_o(c_out_valid), .side_o({c_out_j, c_out_first, c_out_last})
  );

  // a token's first score starts the top-k afresh (the flag comes registered, off the loop)
  topk_insert #(
    .TopK(NumTopK), .ScoreBits(GateScoreBits), .ScoreSigned(GateScoreSigned), .IndexBits(ExpertBits)
  ) u_topk (
    .valid_i(c_out_first ? '0 : c_best_v_q), .score_i(c_best_s_q), .index_i(c_best_i_q),
    .cand_score_i(c_p), .cand_index_i(c_out_j),
    .valid_o(c_ins_v), .score_o(c_ins_s), .index_o(c_ins_i)
  );

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      c_busy_q   <= 1'b0;
      c_j_q      <= '0;
      c_best_v_q <= '0;
    end else begin
      if (c_issue) c_j_q <= c_last ? '0 : c_j_q + 1'b1;
      if (c_issue && c_last) c_busy_q <= 1'b0;
      if (s_take) c_busy_q <= 1'b1;
      if (c_step) c_best_v_q <= c_ins_v;
    end
  end

  always_ff @(posedge clk_i) begin
    if (c_step) begin
      c_best_s_q <= c_ins_s;
      c_best_i_q <= c_ins_i;
    end
    if (s_take) begin
      c_e_q <= s_e_q[s_rd_q];
      c_r_q <= s_r_q[s_rd_q];
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
  assign queue_raddr = AddrBits'(queue_i_q) + (rb_q ? AddrBits'(NumTokens) : '0);

  for (genvar e = 0; e < int'(NumExperts); e++) begin : gen_queue
    logic [TokenBits-1:0]  mem_q [2 * NumTokens];
    logic             chosen;
    logic [AddrBits-1:0] waddr;

    always_comb begin
      chosen = 1'b0;
      for (int k = 0; k < int'(NumTopK); k++) begin
        if (c_ins_i[k*ExpertBits +: ExpertBits] == ExpertBits'(e)) chosen = 1'b1;
      end
    end
    assign waddr = AddrBits'(cnt_q[wb_q][e]) + (wb_q ? AddrBits'(NumTokens) : '0);

    always_ff @(posedge clk_i) begin
      if (c_emit && chosen) mem_q[waddr] <= tok_q;
    end
    assign queue_rdata[e] = mem_q[queue_raddr];
  end

  // ---- drain of bank rb on a and q
  always_comb begin
    for (int e = 0; e < int'(NumExperts); e++) active[e] = cnt_q[rb_q][e] != '0;
  end

  function automatic logic none_above(input logic [NumExperts-1:0] mask, input logic [ExpertBits-1:0] e);
    logic none = 1'b1;
    for (int k = 0; k < int'(NumExperts); k++) begin
      if (k > int'(e) && mask[k]) none = 1'b0;
    end
    return none;
  endfunction

  assign active_cnt      = cnt_q[rb_q][active_ptr_q];
  assign active_valid_o  = full_q[rb_q] && !active_done_q && active_cnt != '0;
  assign active_expert_o = active_ptr_q;
  assign active_count_o  = active_cnt;
  assign active_last_o   = none_above(active, active_ptr_q);
  assign active_fire     = active_valid_o && active_ready_i;
  assign active_skip     = full_q[rb_q] && !active_done_q && active_cnt == '0;

  assign queue_cnt      = cnt_q[rb_q][queue_e_q];
  assign queue_valid_o  = full_q[rb_q] && !queue_done_q && queue_cnt != '0;
  assign queue_expert_o = queue_e_q;
  assign queue_token_o  = queue_rdata[queue_e_q];
  assign queue_end_o    = CountBits'(queue_i_q) == queue_cnt - 1'b1;
  assign queue_elast    = none_above(active, queue_e_q);
  assign queue_last_o   = queue_end_o && queue_elast;
  assign queue_fire     = queue_valid_o && queue_ready_i;
  assign queue_skip     = full_q[rb_q] && !queue_done_q && queue_cnt == '0;

  // the bank is released in the cycle its last beats leave, so the drain keeps up with the input
  assign active_fin = active_done_q || (active_fire && active_last_o);
  assign queue_fin = queue_done_q || (queue_fire && queue_last_o);
  assign release_bank = full_q[rb_q] && active_fin && queue_fin;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      full_q   <= '0;
      wb_q     <= 1'b0;
      rb_q     <= 1'b0;
      tok_q    <= '0;
      cnt_q    <= '{default: '0};
      active_ptr_q  <= '0;
      active_done_q <= 1'b0;
      queue_e_q    <= '0;
      queue_i_q    <= '0;
      queue_done_q <= 1'b0;
    end else begin
      if (c_emit) begin
        for (int k = 0; k < int'(NumTopK); k++) begin
          cnt_q[wb_q][c_ins_i[k*ExpertBits +: ExpertBits]] <= cnt_q[wb_q][c_ins_i[k*ExpertBits +: ExpertBits]] + 1'b1;
        end
        if (tok_q == LastToken) begin
          tok_q        <= '0;
          full_q[wb_q] <= 1'b1;
          wb_q         <= !wb_q;
        end else begin
          tok_q <= tok_q + 1'b1;
        end
      end
      if (active_fire && active_last_o) active_done_q <= 1'b1;
      else if (active_fire || active_skip) active_ptr_q <= active_ptr_q + 1'b1;
      if (queue_fire && queue_last_o) begin
        queue_done_q <= 1'b1;
      end else if (queue_skip || (queue_fire && queue_end_o)) begin
        queue_e_q <= queue_e_q + 1'b1;
        queue_i_q <= '0;
      end else if (queue_fire) begin
        queue_i_q <= queue_i_q + 1'b1;
      end
      if (release_bank) begin
        full_q[rb_q] <= 1'b0;
        cnt_q[rb_q]  <= '{default: '0};
        rb_q         <= !rb_q;
        active_ptr_q      <= '0;
        active_done_q     <= 1'b0;
        queue_e_q        <= '0;
        queue_i_q        <= '0;
        queue_done_q     <= 1'b0;
      end
    end
  end

  // ---- stream rule checks (simulation only)
`ifndef SYNTHESIS
  logic x_wait_q, r_wait_q, active_wait_q, queue_wait_q;
  logic [ActBits-1:0]                x_hold_q;
  logic [TokenBits+NumTopK*(ExpertBits+GateScoreBits):0] r_hold_q;
  logic [ExpertBits+CountBits:0]           active_hold_q;
  logic [ExpertBits+TokenBits+1:0]         queue_hold_q;
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      x_wait_q <= 1'b0;
      r_wait_q <= 1'b0;
      active_wait_q <= 1'b0;
      queue_wait_q <= 1'b0;
    end else begin
      if (x_wait_q) assert (x_valid_i && x_hold_q == x_data_i)
        else $error("%m: x changed before it was accepted");
      if (r_wait_q) assert (r_valid_o && r_hold_q == {r_token_o, r_expert_o, r_score_o, r_last_o})
        else $error("%m: r changed before it was accepted");
      if (active_wait_q) assert (active_valid_o && active_hold_q == {active_expert_o, active_count_o, active_last_o})
        else $error("%m: a changed before it was accepted");
      if (queue_wait_q) assert (queue_valid_o && queue_hold_q == {queue_expert_o, queue_token_o, queue_end_o, queue_last_o})
        else $error("%m: q changed before it was accepted");
      x_wait_q <= x_valid_i && !x_ready_o;
      r_wait_q <= r_valid_o && !r_ready_i;
      active_wait_q <= active_valid_o && !active_ready_i;
      queue_wait_q <= queue_valid_o && !queue_ready_i;
    end
    x_hold_q <= x_data_i;
    r_hold_q <= {r_token_o, r_expert_o, r_score_o, r_last_o};
    active_hold_q <= {active_expert_o, active_count_o, active_last_o};
    queue_hold_q <= {queue_expert_o, queue_token_o, queue_end_o, queue_last_o};
  end
`endif

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(ActBits)) u_x_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(x_valid_i), .ready_i(x_ready_o), .data_i(x_data_i)
  );
`endif
endmodule

`default_nettype wire
