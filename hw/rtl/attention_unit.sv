// Reordered attention for one head and one group of P queries (edgemoe.golden.fixed.attention):
// P query slots share one stream of key rows, then one stream of value rows.
//   q stream: the P query rows of the group (slot 0 first), HeadDim/Blk beats of Blk values each.
//             They fill one shift chain; during the K pass each slot's Bpr beats rotate in place,
//             one step per K beat, so each slot's block of the current beat sits at a fixed tap.
//   k stream: N + P - 1 key rows in stream order key (r mod N), r = 0..N+P-2, Blk values a beat.
//             A delay line of (P-1) rows gives slot j the row that entered P-1-j rows earlier,
//             so at step t = r - (P-1) every slot j sees key (t + j) mod N: the rotated sweep.
//             Per step: s_j = cast_score((q_j . k) * scale) (exact dot product and product by
//             the constant scale = round(HeadDim**-0.5) in attn_scale), then the running max and
//             sum of softmax_state; the P scores of a step are kept as one word of a score RAM
//             (one write port, one registered read port) for the second pass.
//   v stream: the same N + P - 1 rows of V; per step p_j = cast_prob(exp(s_j - m_j) * (1/l_j)),
//             out_j += p_j * v (exact wide accumulators, per slot a ring of Bpr beats of Blk
//             lanes that turns by one beat per V beat). ceil(P / Bpr) exp lanes serve the P
//             slots: slot j works (j mod Bpr) beats behind the stream, so at most one slot per
//             lane starts a row on any beat; min(P, Bpr) - 1 cycles after the last V beat drain it.
//   o stream: out_j = cast_act(out_j), P rows of HeadDim/Blk beats (o_last_o on the last one).
// P * Blk MACs per cycle in both passes (one K or V beat per cycle). Both passes are pipelined
// behind the beat they take (K: products, dot-product sum, scale and cast; V: score read, then
// probability, then MAC); the pipelines never stall, so the streams keep one beat per cycle.
`default_nettype none

module attention_unit
  import edgemoe_pkg::*;
#(
  parameter int unsigned P   = AttnP,
  parameter int unsigned Blk = AttnBlock,
  parameter int unsigned Hd  = HeadDim,
  parameter int unsigned N   = Tokens
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_i,
  input  wire logic                     q_valid_i,
  output logic                          q_ready_o,
  input  wire logic [Blk*ActBits-1:0]   q_data_i,
  input  wire logic                     k_valid_i,
  output logic                          k_ready_o,
  input  wire logic [Blk*ActBits-1:0]   k_data_i,
  input  wire logic                     v_valid_i,
  output logic                          v_ready_o,
  input  wire logic [Blk*ActBits-1:0]   v_data_i,
  output logic                          o_valid_o,
  input  wire logic                     o_ready_i,
  output logic      [Blk*ActBits-1:0]   o_data_o,
  output logic                          o_last_o
);
  localparam int unsigned Bpr = Hd / Blk;  // beats per row
  localparam int unsigned Rows = N + P - 1;  // rows per K or V stream
  localparam int unsigned Delay = (P - 1) * Bpr;  // beats in the key/value delay line
  localparam int BW = $clog2(Bpr) > 0 ? $clog2(Bpr) : 1;
  localparam int RW = $clog2(Rows + 1);
  localparam int NW = $clog2(N) > 0 ? $clog2(N) : 1;
  localparam int PW_ = $clog2(P) > 0 ? $clog2(P) : 1;
  localparam int FA = ActFracBits;
  localparam int AB = ActBits;
  localparam int DotW = 2 * AB + $clog2(Hd) + 1;
  localparam int ScW = DotW + AttnScaleBits + 1;
  localparam int SB = AttnScoreBits;
  localparam int EB = ExpOutBits;
  localparam int PB = AttnProbBits;
  localparam int RB = SoftmaxRecipBits;
  localparam int AccW = PB + AB + $clog2(N) + 2;
  localparam longint ScaleRaw = longint'($rtoi((2.0 ** AttnScaleFracBits) / $sqrt(real'(Hd)) + 0.5));

  if (P < 1 || P > N || Blk < 1 || Hd % Blk != 0) begin : gen_bad_params
    $fatal(1, "%m: attention_unit needs 1 <= P (%0d) <= N (%0d) and HeadDim (%0d) a multiple of Blk (%0d)",
           P, N, Hd, Blk);
  end

  typedef enum logic [2:0] {StQ, StK, StSm, StV, StOut} state_e;
  state_e state_q;

  logic [BW-1:0]  blk_q;
  logic [RW-1:0]  row_q;
  logic [PW_-1:0] slot_q;
  logic           row_end;

  // ---------------------------------------------------------------- queries
  // qsh_q[(P-1-j)*Bpr + Bpr-1 .. (P-1-j)*Bpr]: the Bpr beats of slot j, the beat due next on top.
  // Loading shifts the whole chain; each K beat turns every slot's segment by one, so the beat
  // that was on top (the block of the K beat just taken) is at the segment's bottom afterwards.
  logic [P*Bpr-1:0][Blk*AB-1:0] qsh_q;
  logic q_take, k_take, v_take;
  assign q_ready_o = state_q == StQ;
  assign q_take = q_valid_i && q_ready_o;

  always_ff @(posedge clk_i) begin
    if (q_take) begin
      qsh_q[0] <= q_data_i;
      for (int i = 1; i < int'(P * Bpr); i++) qsh_q[i] <= qsh_q[i-1];
    end else if (k_take) begin
      for (int j = 0; j < int'(P); j++) begin
        qsh_q[j*Bpr] <= qsh_q[j*Bpr + Bpr - 1];
        for (int b = 1; b < int'(Bpr); b++) qsh_q[j*Bpr + b] <= qsh_q[j*Bpr + b - 1];
      end
    end
  end

  // ---------------------------------------------------------------- shared K / V beat stream
  // hist_q[i]: the beat taken i beats before the last one. In the cycle after a take, slot j's
  // beat of that take is hist_q[(P-1-j)*Bpr] whether or not another beat is taken then.
  logic              kv_take, kv_valid;
  logic [Blk*AB-1:0] kv_data;
  logic [Delay:0][Blk*AB-1:0] hist_q;
  logic              drain_tick;  // pass 2: the delay line moves on after the last V beat
  logic              stepping;  // this row is a step of every slot (r >= P - 1)
  logic [RW-1:0]     step;

  assign kv_valid = state_q == StK ? k_valid_i : v_valid_i;
  assign kv_data = state_q == StK ? k_data_i : v_data_i;
  assign k_ready_o = state_q == StK;
  assign v_ready_o = state_q == StV;
  assign kv_take = kv_valid && (k_ready_o || v_ready_o);
  assign k_take = kv_take && state_q == StK;
  assign v_take = kv_take && state_q == StV;
  assign row_end = blk_q == BW'(Bpr - 1);
  assign stepping = row_q >= RW'(P - 1);
  assign step = row_q - RW'(P - 1);

  always_ff @(posedge clk_i) begin
    if (kv_take || drain_tick) begin
      hist_q[0] <= kv_data;  // drain ticks shift in a don't-care beat
      for (int i = 1; i <= int'(Delay); i++) hist_q[i] <= hist_q[i-1];
    end
  end

  // ---------------------------------------------------------------- pass 1: scores
  // k1: the beat taken last cycle (operands in qsh_q / hist_q); k2: its P partial dot products
  // in part_q; k3: dot_q holds a finished row's dot products; then the score cast into score_q.
  logic          k1_valid_q, k1_first_q, k1_last_q;
  logic          k2_valid_q, k2_first_q, k2_last_q;
  logic          k3_valid_q;
  logic [RW-1:0] k1_step_q, k2_step_q, k3_step_q;
  logic [P*SB-1:0] score_d, score_q;
  logic            sm_valid_q, sm_first_q, sm_last_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      k1_valid_q <= 1'b0;
      k2_valid_q <= 1'b0;
      k3_valid_q <= 1'b0;
      sm_valid_q <= 1'b0;
    end else begin
      k1_valid_q <= k_take && stepping;
      k2_valid_q <= k1_valid_q;
      k3_valid_q <= k2_valid_q && k2_last_q;
      sm_valid_q <= k3_valid_q;
    end
  end

  always_ff @(posedge clk_i) begin
    if (k_take) begin
      k1_first_q <= blk_q == '0;
      k1_last_q  <= row_end;
      k1_step_q  <= step;
    end
    if (k1_valid_q) begin
      k2_first_q <= k1_first_q;
      k2_last_q  <= k1_last_q;
      k2_step_q  <= k1_step_q;
    end
    if (k2_valid_q && k2_last_q) k3_step_q <= k2_step_q;
    if (k3_valid_q) begin
      score_q    <= score_d;
      sm_first_q <= k3_step_q == '0;
      sm_last_q  <= k3_step_q == RW'(N - 1);
    end
  end

  for (genvar j = 0; j < P; j++) begin : gen_dot
    logic signed [DotW-1:0] part, part_q, dot_q;
    logic signed [ScW-1:0]  scaled;
    logic [Blk*AB-1:0]      kb, qb;
    assign kb = hist_q[(P - 1 - j) * Bpr];
    assign qb = qsh_q[(P - 1 - j) * Bpr];
    always_comb begin
      part = '0;
      for (int i = 0; i < int'(Blk); i++) begin
        part = part + DotW'($signed(qb[i*AB +: AB])) * DotW'($signed(kb[i*AB +: AB]));
      end
    end
    always_ff @(posedge clk_i) begin
      if (k1_valid_q) part_q <= part;
      if (k2_valid_q) dot_q <= (k2_first_q ? '0 : dot_q) + part_q;
    end
    assign scaled = ScW'(dot_q) * ScW'(ScaleRaw);
    fxp_requant #(
      .InBits(ScW), .InFrac(2 * FA + AttnScaleFracBits), .InSigned(1'b1),
      .OutBits(SB), .OutFrac(AttnScoreFracBits), .OutSigned(1'b1),
      .RoundHalfUp(AttnScoreRoundHalfUp), .Saturate(AttnScoreSaturate)
    ) u_score (
      .in_i(scaled), .out_o(score_d[j*SB +: SB]), .clip_o()
    );
  end

  // score RAM: word t holds the P scores of step t
  logic [P*SB-1:0] sbuf [N];
  logic [P*SB-1:0] s_rd_q;
  logic            s_rd;

  always_ff @(posedge clk_i) begin
    if (k3_valid_q) sbuf[k3_step_q[NW-1:0]] <= score_d;
  end

  always_ff @(posedge clk_i) begin
    if (s_rd) s_rd_q <= sbuf[step[NW-1:0]];
  end

  logic                  sm_ready, sm_out_valid;
  logic [P*SB-1:0]       sm_max;
  logic [P*SoftmaxSumBits-1:0] sm_sum;
  logic [P*RB-1:0]       sm_recip;
  logic [P*SB-1:0]       m_q;
  logic [P*RB-1:0]       r_q;

  softmax_state #(
    .Lanes(P)
  ) u_softmax (
    .clk_i, .rst_i,
    .s_valid_i(sm_valid_q), .s_ready_o(sm_ready), .s_data_i(score_q),
    .s_first_i(sm_first_q), .s_last_i(sm_last_q),
    .y_valid_o(sm_out_valid), .y_ready_i(1'b1),
    .y_max_o(sm_max), .y_sum_o(sm_sum), .y_recip_o(sm_recip)
  );

  always_ff @(posedge clk_i) begin
    if (sm_out_valid) begin
      m_q <= sm_max;
      r_q <= sm_recip;
    end
  end

  // ---------------------------------------------------------------- pass 2: probabilities times V
  // A step's P probabilities are needed once per row of Bpr beats, so Lanes2 = ceil(P / Bpr)
  // exp lanes serve them: slot j = l*Bpr + d works D = d beats late (it reads its V beat D taps
  // further down the delay line) and computes its probability in lane l on the tick where its own
  // row starts, i.e. on blk d of the stream. Ticks are the V beats and then Drain more cycles
  // that only shift the delay line, so the late slots finish their last row.
  // v1: the tick of last cycle (V in hist_q, the row's scores in s_rd_q, read on its blk 0);
  // v2: probability and V in prob_q / v2_q; then the MAC into the slot's accumulator ring.
  localparam int unsigned Lanes2 = (P + Bpr - 1) / Bpr;
  localparam int unsigned Drain = (P < Bpr ? P : Bpr) - 1;
  localparam int unsigned TickEnd = Rows * Bpr + Drain;
  localparam int TW = $clog2(TickEnd + 1);

  logic [TW-1:0] tick_q;
  logic          tick;
  logic [BW-1:0] sel_q;  // blk of the last tick: slot l*Bpr + sel_q starts a row in lane l
  logic [Lanes2-1:0][PB-1:0] lane_prob;
  logic [P-1:0]  v_busy;
  logic out_turn;  // an output beat leaves: every ring turns by one beat

  assign drain_tick = state_q == StOut && tick_q != TW'(TickEnd);
  assign tick = v_take || drain_tick;
  assign s_rd = v_take && stepping && blk_q == '0;

  always_ff @(posedge clk_i) begin
    if (state_q == StSm) tick_q <= '0;
    else if (tick) tick_q <= tick_q + 1'b1;
    if (tick) sel_q <= blk_q;
  end

  for (genvar l = 0; l < Lanes2; l++) begin : gen_prob
    logic [Bpr-1:0][SB-1:0] s_opt, m_opt;
    logic [Bpr-1:0][RB-1:0] r_opt;
    logic signed [SB-1:0]   s, m;
    logic signed [SB:0]     diff;
    logic [EB-1:0]          e;
    logic [EB+RB-1:0]       er;

    for (genvar b = 0; b < Bpr; b++) begin : gen_opt
      if (l * Bpr + b < P) begin : gen_slot
        assign s_opt[b] = s_rd_q[(l*Bpr + b)*SB +: SB];
        assign m_opt[b] = m_q[(l*Bpr + b)*SB +: SB];
        assign r_opt[b] = r_q[(l*Bpr + b)*RB +: RB];
      end else begin : gen_none
        assign s_opt[b] = '0;
        assign m_opt[b] = '0;
        assign r_opt[b] = '0;
      end
    end

    assign s = s_opt[sel_q];
    assign m = m_opt[sel_q];
    assign diff = (SB + 1)'(s) - (SB + 1)'(m);
    exp_lane u_exp (
      .x_i(diff), .y_o(e)
    );
    assign er = (EB + RB)'(e) * (EB + RB)'(r_opt[sel_q]);
    fxp_requant #(
      .InBits(EB + RB), .InFrac(ExpOutFracBits + SoftmaxRecipFracBits), .InSigned(1'b0),
      .OutBits(PB), .OutFrac(AttnProbFracBits), .OutSigned(1'b0),
      .RoundHalfUp(AttnProbRoundHalfUp), .Saturate(AttnProbSaturate)
    ) u_prob (
      .in_i(er), .out_o(lane_prob[l]), .clip_o()
    );
  end

  logic [P-1:0][Blk*AccW-1:0] acc_head;

  for (genvar j = 0; j < P; j++) begin : gen_av
    localparam int unsigned D = j % Bpr;  // beats this slot works behind the stream
    logic                     v1_valid_q, v1_first_q, v2_valid_q, v2_first_q;
    logic [PB-1:0]            prob_q;
    logic [Blk*AB-1:0]        v2_q;
    logic [Bpr-1:0][Blk*AccW-1:0] acc_q;  // acc_q[0]: the beat due next
    logic [Blk*AccW-1:0]      acc_d;

    always_ff @(posedge clk_i) begin
      if (rst_i) begin
        v1_valid_q <= 1'b0;
        v2_valid_q <= 1'b0;
      end else begin
        v1_valid_q <= tick && tick_q >= TW'(D + (P - 1) * Bpr) && tick_q < TW'(D + Rows * Bpr);
        v2_valid_q <= v1_valid_q;
      end
    end

    always_ff @(posedge clk_i) begin
      if (tick) v1_first_q <= tick_q < TW'(D + P * Bpr);
      if (v1_valid_q) begin
        v2_first_q <= v1_first_q;
        v2_q       <= hist_q[(P - 1 - j) * Bpr + D];
        if (sel_q == BW'(D)) prob_q <= lane_prob[j / Bpr];
      end
    end

    for (genvar i = 0; i < Blk; i++) begin : gen_mac
      logic signed [AccW-1:0] base;
      assign base = v2_first_q ? '0 : $signed(acc_q[0][i*AccW +: AccW]);
      assign acc_d[i*AccW +: AccW] = base + AccW'($signed({1'b0, prob_q})) * AccW'($signed(v2_q[i*AB +: AB]));
    end

    always_ff @(posedge clk_i) begin
      if (v2_valid_q || out_turn) begin
        acc_q[Bpr-1] <= v2_valid_q ? acc_d : acc_q[0];
        for (int b = 0; b + 1 < int'(Bpr); b++) acc_q[b] <= acc_q[b+1];
      end
    end

    assign acc_head[j] = acc_q[0];
    assign v_busy[j] = v1_valid_q || v2_valid_q;
  end

  // ---------------------------------------------------------------- output
  logic out_free, out_go, drained;
  logic [Blk*AB-1:0]   o_d;
  logic [Blk*AccW-1:0] o_acc;

  assign drained = v_busy == '0 && tick_q == TW'(TickEnd);
  assign out_free = !o_valid_o || o_ready_i;
  assign out_go = state_q == StOut && drained;
  assign out_turn = out_go && out_free;
  assign o_acc = acc_head[slot_q];

  for (genvar i = 0; i < Blk; i++) begin : gen_out
    fxp_requant #(
      .InBits(AccW), .InFrac(AttnProbFracBits + FA), .InSigned(1'b1),
      .OutBits(AB), .OutFrac(FA), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_out (
      .in_i(o_acc[i*AccW +: AccW]), .out_o(o_d[i*AB +: AB]), .clip_o()
    );
  end

  always_ff @(posedge clk_i) begin
    if (out_turn) begin
      o_data_o <= o_d;
      o_last_o <= slot_q == PW_'(P - 1) && row_end;
    end
  end

  // ---------------------------------------------------------------- control
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      state_q   <= StQ;
      blk_q     <= '0;
      row_q     <= '0;
      slot_q    <= '0;
      o_valid_o <= 1'b0;
    end else begin
      if (out_free) o_valid_o <= out_go;
      unique case (state_q)
        StQ: if (q_take) begin
          blk_q <= row_end ? '0 : blk_q + 1'b1;
          if (row_end) begin
            slot_q <= slot_q == PW_'(P - 1) ? '0 : slot_q + 1'b1;
            if (slot_q == PW_'(P - 1)) state_q <= StK;
          end
        end
        StK, StV: if (kv_take) begin
          blk_q <= row_end ? '0 : blk_q + 1'b1;
          if (row_end) begin
            row_q <= row_q == RW'(Rows - 1) ? '0 : row_q + 1'b1;
            if (row_q == RW'(Rows - 1)) state_q <= state_q == StK ? StSm : StOut;
          end
        end
        StSm: if (sm_out_valid) state_q <= StV;  // the final running max and 1/sum are in
        StOut: if (out_turn) begin
          blk_q <= row_end ? '0 : blk_q + 1'b1;
          if (row_end) begin
            slot_q <= slot_q == PW_'(P - 1) ? '0 : slot_q + 1'b1;
            if (slot_q == PW_'(P - 1)) state_q <= StQ;
          end
        end
        default: state_q <= StQ;
      endcase
    end
  end

  logic unused_ok;
  assign unused_ok = ^{sm_ready, sm_sum};
endmodule

`default_nettype wire
