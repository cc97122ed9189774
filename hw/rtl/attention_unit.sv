// Reordered attention for one head and one group of Slots queries (edgemoe.golden.fixed.attention):
// Slots query slots share one stream of key rows, then one stream of value rows.
//   q stream: the Slots query rows of the group (slot 0 first), HeadSize/BeatLanes beats of
//             BeatLanes values each.
//             They fill one shift chain; during the K pass each slot's BeatsPerRow beats rotate in place,
//             one step per K beat, so each slot's block of the current beat sits at a fixed tap.
//   k stream: NumTokens + Slots - 1 key rows in stream order key (r mod NumTokens),
//             r = 0..NumTokens+Slots-2, BeatLanes values a beat.
//             A delay line of (Slots-1) rows gives slot j the row that entered Slots-1-j rows earlier,
//             so at step t = r - (Slots-1) every slot j sees key (t + j) mod NumTokens: the rotated sweep.
//             Per step: s_j = cast_score((q_j . k) * scale) (exact dot product and product by
//             the constant scale = round(HeadDim**-0.5) in attn_scale), then the running max and
//             sum of softmax_state; the Slots scores of a step are kept as one word of a score RAM
//             (one write port, one registered read port) for the second pass.
//   v stream: the same NumTokens + Slots - 1 rows of V; per step p_j = cast_prob(exp(s_j - m_j) * (1/l_j)),
//             out_j += p_j * v (exact wide accumulators, per slot a ring of BeatsPerRow beats of BeatLanes
//             lanes that turns by one beat per V beat). ceil(Slots / BeatsPerRow) exp lanes serve the Slots
//             slots: slot j works (j mod BeatsPerRow) beats behind the stream, so at most one slot per
//             lane starts a row on any beat; min(Slots, BeatsPerRow) - 1 + ProbLatency cycles after the
//             last V beat drain it (ProbLatency: the lanes' pipeline, exp then e * (1/l) then the cast).
//   o stream: out_j = cast_act(out_j), Slots rows of HeadDim/BeatLanes beats (o_last_o on the last one).
// Slots * BeatLanes MACs per cycle in both passes (one K or V beat per cycle). Both passes are pipelined
// behind the beat they take (K: products, dot-product sum, scale and cast; V: score read, then
// probability, then MAC); the pipelines never stall, so the streams keep one beat per cycle.
`default_nettype none

module attention_unit
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned Slots     = AttnP,      // query slots sharing the key stream
  parameter int unsigned BeatLanes = AttnBlock,  // elements of a q, k, v or o beat
  parameter int unsigned HeadSize  = HeadDim,
  parameter int unsigned NumTokens = Tokens
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_i,
  input  wire logic                     q_valid_i,
  output logic                          q_ready_o,
  input  wire logic [BeatLanes*ActBits-1:0]   q_data_i,
  input  wire logic                     k_valid_i,
  output logic                          k_ready_o,
  input  wire logic [BeatLanes*ActBits-1:0]   k_data_i,
  input  wire logic                     v_valid_i,
  output logic                          v_ready_o,
  input  wire logic [BeatLanes*ActBits-1:0]   v_data_i,
  output logic                          o_valid_o,
  input  wire logic                     o_ready_i,
  output logic      [BeatLanes*ActBits-1:0]   o_data_o,
  output logic                          o_last_o
);
  localparam int unsigned BeatsPerRow = HeadSize / BeatLanes;  // beats per row
  localparam int unsigned StreamRows = NumTokens + Slots - 1;  // rows per K or V stream
  // the probability pipeline (registered exp lane, e * (1/l), cast) in ticks; V waits as long
  localparam int unsigned ProbLatency = ExpLatency + MulLatency + 1;
  // beats in the key/value delay line
  localparam int unsigned DelayBeats = (Slots - 1) * BeatsPerRow + ProbLatency;
  localparam int BeatIndexBits = $clog2(BeatsPerRow) > 0 ? $clog2(BeatsPerRow) : 1;
  localparam int RowCountBits = $clog2(StreamRows + 1);
  localparam int TokenIndexBits = $clog2(NumTokens) > 0 ? $clog2(NumTokens) : 1;
  localparam int SlotIndexBits = $clog2(Slots) > 0 ? $clog2(Slots) : 1;
  localparam int DotBits = 2 * ActBits + $clog2(HeadSize) + 1;
  localparam int ScaledBits = DotBits + AttnScaleBits + 1;
  localparam int AccBits = AttnProbBits + ActBits + $clog2(NumTokens) + 2;
  localparam longint ScaleRaw = longint'($rtoi((2.0 ** AttnScaleFracBits) / $sqrt(real'(HeadSize)) + 0.5));

  if (Slots < 1 || Slots > NumTokens || BeatLanes < 1 || HeadSize % BeatLanes != 0) begin : gen_bad_params
    $fatal(1, "%m: needs 1 <= Slots (%0d) <= NumTokens (%0d), BeatLanes (%0d) | HeadSize (%0d)",
           Slots, NumTokens, BeatLanes, HeadSize);
  end

  typedef enum logic [2:0] {StQ, StK, StSm, StV, StOut} state_e;
  state_e state_q;

  logic [BeatIndexBits-1:0]  blk_q;
  logic [RowCountBits-1:0]  row_q;
  logic [SlotIndexBits-1:0] slot_q;
  logic           row_end;

  // ---------------------------------------------------------------- queries
  // qsh_q[(Slots-1-j)*BeatsPerRow + BeatsPerRow-1 .. (Slots-1-j)*BeatsPerRow]: the BeatsPerRow beats of
  // slot j, the beat due next on top.
  // Loading shifts the whole chain; each K beat turns every slot's segment by one, so the beat
  // that was on top (the block of the K beat just taken) is at the segment's bottom afterwards.
  logic [Slots*BeatsPerRow-1:0][BeatLanes*ActBits-1:0] qsh_q;
  logic q_take, k_take, v_take;
  assign q_ready_o = state_q == StQ;
  assign q_take = q_valid_i && q_ready_o;

  always_ff @(posedge clk_i) begin
    if (q_take) begin
      qsh_q[0] <= q_data_i;
      for (int i = 1; i < int'(Slots * BeatsPerRow); i++) qsh_q[i] <= qsh_q[i-1];
    end else if (k_take) begin
      for (int j = 0; j < int'(Slots); j++) begin
        qsh_q[j*BeatsPerRow] <= qsh_q[j*BeatsPerRow + BeatsPerRow - 1];
        for (int b = 1; b < int'(BeatsPerRow); b++) qsh_q[j*BeatsPerRow + b] <= qsh_q[j*BeatsPerRow + b - 1];
      end
    end
  end

  // ---------------------------------------------------------------- shared K / V beat stream
  // hist_q[i]: the beat taken i beats before the last one. In the cycle after a take, slot j's
  // beat of that take is hist_q[(Slots-1-j)*BeatsPerRow] whether or not another beat is taken then.
  logic              kv_take, kv_valid;
  logic [BeatLanes*ActBits-1:0] kv_data;
  logic [DelayBeats:0][BeatLanes*ActBits-1:0] hist_q;
  logic              drain_tick;  // pass 2: the delay line moves on after the last V beat
  logic              stepping;  // this row is a step of every slot (r >= Slots - 1)
  logic [RowCountBits-1:0]     step;

  assign kv_valid = state_q == StK ? k_valid_i : v_valid_i;
  assign kv_data = state_q == StK ? k_data_i : v_data_i;
  assign k_ready_o = state_q == StK;
  assign v_ready_o = state_q == StV;
  assign kv_take = kv_valid && (k_ready_o || v_ready_o);
  assign k_take = kv_take && state_q == StK;
  assign v_take = kv_take && state_q == StV;
  assign row_end = blk_q == BeatIndexBits'(BeatsPerRow - 1);
  assign stepping = row_q >= RowCountBits'(Slots - 1);
  assign step = row_q - RowCountBits'(Slots - 1);

  always_ff @(posedge clk_i) begin
    if (kv_take || drain_tick) begin
      hist_q[0] <= kv_data;  // drain ticks shift in a don't-care beat
      for (int i = 1; i <= int'(DelayBeats); i++) hist_q[i] <= hist_q[i-1];
    end
  end

  // ---------------------------------------------------------------- pass 1: scores
  // k1: the beat taken last cycle (operands in qsh_q / hist_q); k2: its Slots partial dot products
  // in part_q; k3: dot_q holds a finished row's dot products; then the score cast into score_q.
  logic          k1_valid_q, k1_first_q, k1_last_q;
  logic          k2_valid_q, k2_first_q, k2_last_q;
  logic          k3_valid_q;
  logic [RowCountBits-1:0] k1_step_q, k2_step_q, k3_step_q;
  logic [Slots*AttnScoreBits-1:0] score_d, score_q;
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
      sm_last_q  <= k3_step_q == RowCountBits'(NumTokens - 1);
    end
  end

  for (genvar j = 0; j < Slots; j++) begin : gen_dot
    logic signed [DotBits-1:0] part, part_q, dot_q;
    logic signed [ScaledBits-1:0]  scaled;
    logic [BeatLanes*ActBits-1:0]      kb, qb;
    assign kb = hist_q[(Slots - 1 - j) * BeatsPerRow];
    assign qb = qsh_q[(Slots - 1 - j) * BeatsPerRow];
    always_comb begin
      part = '0;
      for (int i = 0; i < int'(BeatLanes); i++) begin
        part = part + DotBits'($signed(qb[i*ActBits +: ActBits]))
                    * DotBits'($signed(kb[i*ActBits +: ActBits]));
      end
    end
    always_ff @(posedge clk_i) begin
      if (k1_valid_q) part_q <= part;
      if (k2_valid_q) dot_q <= (k2_first_q ? '0 : dot_q) + part_q;
    end
    assign scaled = ScaledBits'(dot_q) * ScaledBits'(ScaleRaw);
    fxp_requant #(
      .InBits(ScaledBits), .InFrac(2 * ActFracBits + AttnScaleFracBits), .InSigned(1'b1),
      .OutBits(AttnScoreBits), .OutFrac(AttnScoreFracBits), .OutSigned(1'b1),
      .RoundHalfUp(AttnScoreRoundHalfUp), .Saturate(AttnScoreSaturate)
    ) u_score (
      .in_i(scaled), .out_o(score_d[j*AttnScoreBits +: AttnScoreBits]), .clip_o()
    );
  end

  // score RAM: word t holds the Slots scores of step t
  logic [Slots*AttnScoreBits-1:0] sbuf [NumTokens];
  logic [Slots*AttnScoreBits-1:0] s_rd_q;
  logic            s_rd;

  always_ff @(posedge clk_i) begin
    if (k3_valid_q) sbuf[k3_step_q[TokenIndexBits-1:0]] <= score_d;
  end

  always_ff @(posedge clk_i) begin
    if (s_rd) s_rd_q <= sbuf[step[TokenIndexBits-1:0]];
  end

  logic                  sm_ready, sm_out_valid;
  logic [Slots*AttnScoreBits-1:0]       sm_max;
  logic [Slots*SoftmaxRecipBits-1:0]       sm_recip;
  logic [Slots*AttnScoreBits-1:0]       m_q;
  logic [Slots*SoftmaxRecipBits-1:0]       r_q;

  softmax_state #(
    .Lanes(Slots)
  ) u_softmax (
    .clk_i, .rst_i,
    .s_valid_i(sm_valid_q), .s_ready_o(sm_ready), .s_data_i(score_q),
    .s_first_i(sm_first_q), .s_last_i(sm_last_q),
    .y_valid_o(sm_out_valid), .y_ready_i(1'b1),
    .y_max_o(sm_max), .y_sum_o(), .y_recip_o(sm_recip)  // the sum only feeds 1/sum inside
  );

  always_ff @(posedge clk_i) begin
    if (sm_out_valid) begin
      m_q <= sm_max;
      r_q <= sm_recip;
    end
  end

  // ---------------------------------------------------------------- pass 2: probabilities times V
  // A step's Slots probabilities are needed once per row of BeatsPerRow beats, so
  // ExpLanes = ceil(Slots / BeatsPerRow) exp lanes serve them: slot j = l*BeatsPerRow + d works
  // LagBeats = d beats late (it reads its V beat LagBeats taps further down the delay line) and
  // feeds its probability into lane l on the tick where its own row starts, i.e. on beat d of the
  // stream. The lane (registered exp lane, e * (1/l), the cast)
  // advances on ticks and delivers it ProbLatency ticks later, when the slot's V beat has moved
  // ProbLatency taps further down the delay line. Ticks are the V beats and then
  // DrainCycles + ProbLatency more cycles that only shift the delay line and the lanes, so the
  // late slots finish their last row.
  // v1: the tick of last cycle (V in hist_q, the probability of that row leaving its lane);
  // v2: probability and V in prob_q / v2_q; then the MAC into the slot's accumulator ring.
  localparam int unsigned ExpLanes = (Slots + BeatsPerRow - 1) / BeatsPerRow;
  localparam int unsigned DrainCycles = (Slots < BeatsPerRow ? Slots : BeatsPerRow) - 1;
  localparam int unsigned TickEnd = StreamRows * BeatsPerRow + DrainCycles + ProbLatency;
  localparam int TickBits = $clog2(TickEnd + 1);

  logic [TickBits-1:0] tick_q;
  logic          tick;
  logic [BeatIndexBits-1:0] sel_q;  // blk of the last tick: slot l*BeatsPerRow + sel_q starts a row in lane l
  logic [ExpLanes-1:0][AttnProbBits-1:0] lane_prob;
  logic [Slots-1:0]  v_busy;
  logic out_turn;  // an output beat leaves: every ring turns by one beat

  assign drain_tick = state_q == StOut && tick_q != TickBits'(TickEnd);
  assign tick = v_take || drain_tick;
  assign s_rd = v_take && stepping && blk_q == '0;

  always_ff @(posedge clk_i) begin
    if (state_q == StSm) tick_q <= '0;
    else if (tick) tick_q <= tick_q + 1'b1;
    if (tick) sel_q <= blk_q;
  end

  // the probabilities fed on tick k leave the pipeline on tick k + ProbLatency, with their sel
  logic [BeatIndexBits-1:0] sel_p;
  pipe_reg #(.Width(BeatIndexBits), .Depth(ProbLatency)) u_sel_wait (
    .clk_i(clk_i), .en_i(tick), .d_i(sel_q), .q_o(sel_p)
  );

  for (genvar l = 0; l < ExpLanes; l++) begin : gen_prob
    logic [BeatsPerRow-1:0][AttnScoreBits-1:0] s_opt, m_opt;
    logic [BeatsPerRow-1:0][SoftmaxRecipBits-1:0] r_opt;
    logic signed [AttnScoreBits-1:0]   s, m;
    logic signed [AttnScoreBits:0]     diff;
    logic [ExpOutBits-1:0]          e;
    logic [SoftmaxRecipBits-1:0]    r_e;
    logic signed [ExpOutBits+SoftmaxRecipBits+1:0] er;
    logic [AttnProbBits-1:0]        prob_d;

    for (genvar b = 0; b < BeatsPerRow; b++) begin : gen_opt
      if (l * BeatsPerRow + b < Slots) begin : gen_slot
        assign s_opt[b] = s_rd_q[(l*BeatsPerRow + b)*AttnScoreBits +: AttnScoreBits];
        assign m_opt[b] = m_q[(l*BeatsPerRow + b)*AttnScoreBits +: AttnScoreBits];
        assign r_opt[b] = r_q[(l*BeatsPerRow + b)*SoftmaxRecipBits +: SoftmaxRecipBits];
      end else begin : gen_none
        assign s_opt[b] = '0;
        assign m_opt[b] = '0;
        assign r_opt[b] = '0;
      end
    end

    assign s = s_opt[sel_q];
    assign m = m_opt[sel_q];
    assign diff = (AttnScoreBits + 1)'(s) - (AttnScoreBits + 1)'(m);
    exp_lane u_exp (
      .clk_i(clk_i), .en_i(tick), .x_i(diff), .y_o(e)
    );
    pipe_reg #(.Width(SoftmaxRecipBits), .Depth(ExpLatency)) u_recip_wait (
      .clk_i(clk_i), .en_i(tick), .d_i(r_opt[sel_q]), .q_o(r_e)
    );
    fxp_mul #(.ABits(ExpOutBits + 1), .BBits(SoftmaxRecipBits + 1)) u_mul_er (
      .clk_i(clk_i), .en_i(tick), .a_i($signed({1'b0, e})), .b_i($signed({1'b0, r_e})), .p_o(er)
    );
    fxp_requant #(
      .InBits(ExpOutBits + SoftmaxRecipBits), .InFrac(ExpOutFracBits + SoftmaxRecipFracBits), .InSigned(1'b0),
      .OutBits(AttnProbBits), .OutFrac(AttnProbFracBits), .OutSigned(1'b0),
      .RoundHalfUp(AttnProbRoundHalfUp), .Saturate(AttnProbSaturate)
    ) u_prob (
      .in_i(er[ExpOutBits+SoftmaxRecipBits-1:0]), .out_o(prob_d), .clip_o()
    );
    pipe_reg #(.Width(AttnProbBits), .Depth(1)) u_prob_reg (
      .clk_i(clk_i), .en_i(tick), .d_i(prob_d), .q_o(lane_prob[l])
    );
    logic unused_er;  // e and 1/l are >= 0: the product's top bits are 0
    assign unused_er = ^er[ExpOutBits+SoftmaxRecipBits+1:ExpOutBits+SoftmaxRecipBits];
  end

  logic [Slots-1:0][BeatLanes*AccBits-1:0] acc_head;

  for (genvar j = 0; j < Slots; j++) begin : gen_av
    localparam int unsigned LagBeats = j % BeatsPerRow;  // beats this slot works behind the stream
    logic                     v1_valid_q, v1_first_q, v2_valid_q, v2_first_q;
    logic [AttnProbBits-1:0]            prob_q;
    logic [BeatLanes*ActBits-1:0]        v2_q;
    logic [BeatsPerRow-1:0][BeatLanes*AccBits-1:0] acc_q;  // acc_q[0]: the beat due next
    logic [BeatLanes*AccBits-1:0]      acc_d;

    always_ff @(posedge clk_i) begin
      if (rst_i) begin
        v1_valid_q <= 1'b0;
        v2_valid_q <= 1'b0;
      end else begin
        v1_valid_q <= tick && tick_q >= TickBits'(LagBeats + (Slots - 1) * BeatsPerRow + ProbLatency)
                           && tick_q < TickBits'(LagBeats + StreamRows * BeatsPerRow + ProbLatency);
        v2_valid_q <= v1_valid_q;
      end
    end

    always_ff @(posedge clk_i) begin
      if (tick) v1_first_q <= tick_q < TickBits'(LagBeats + Slots * BeatsPerRow + ProbLatency);
      if (v1_valid_q) begin
        v2_first_q <= v1_first_q;
        v2_q       <= hist_q[(Slots - 1 - j) * BeatsPerRow + LagBeats + ProbLatency];
        if (sel_p == BeatIndexBits'(LagBeats)) prob_q <= lane_prob[j / BeatsPerRow];
      end
    end

    for (genvar i = 0; i < BeatLanes; i++) begin : gen_mac
      logic signed [AccBits-1:0] base;
      assign base = v2_first_q ? '0 : $signed(acc_q[0][i*AccBits +: AccBits]);
      assign acc_d[i*AccBits +: AccBits] =
          base + AccBits'($signed({1'b0, prob_q})) * AccBits'($signed(v2_q[i*ActBits +: ActBits]));
    end

    always_ff @(posedge clk_i) begin
      if (v2_valid_q || out_turn) begin
        acc_q[BeatsPerRow-1] <= v2_valid_q ? acc_d : acc_q[0];
        for (int b = 0; b + 1 < int'(BeatsPerRow); b++) acc_q[b] <= acc_q[b+1];
      end
    end

    assign acc_head[j] = acc_q[0];
    assign v_busy[j] = v1_valid_q || v2_valid_q;
  end

  // ---------------------------------------------------------------- output
  logic out_free, out_go, drained;
  logic [BeatLanes*ActBits-1:0]   o_d;
  logic [BeatLanes*AccBits-1:0] o_acc;

  assign drained = v_busy == '0 && tick_q == TickBits'(TickEnd);
  assign out_free = !o_valid_o || o_ready_i;
  assign out_go = state_q == StOut && drained;
  assign out_turn = out_go && out_free;
  assign o_acc = acc_head[slot_q];

  for (genvar i = 0; i < BeatLanes; i++) begin : gen_out
    fxp_requant #(
      .InBits(AccBits), .InFrac(AttnProbFracBits + ActFracBits), .InSigned(1'b1),
      .OutBits(ActBits), .OutFrac(ActFracBits), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_out (
      .in_i(o_acc[i*AccBits +: AccBits]), .out_o(o_d[i*ActBits +: ActBits]), .clip_o()
    );
  end

  always_ff @(posedge clk_i) begin
    if (out_turn) begin
      o_data_o <= o_d;
      o_last_o <= slot_q == SlotIndexBits'(Slots - 1) && row_end;
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
            slot_q <= slot_q == SlotIndexBits'(Slots - 1) ? '0 : slot_q + 1'b1;
            if (slot_q == SlotIndexBits'(Slots - 1)) state_q <= StK;
          end
        end
        StK, StV: if (kv_take) begin
          blk_q <= row_end ? '0 : blk_q + 1'b1;
          if (row_end) begin
            row_q <= row_q == RowCountBits'(StreamRows - 1) ? '0 : row_q + 1'b1;
            if (row_q == RowCountBits'(StreamRows - 1)) state_q <= state_q == StK ? StSm : StOut;
          end
        end
        StSm: if (sm_out_valid) state_q <= StV;  // the final running max and 1/sum are in
        StOut: if (out_turn) begin
          blk_q <= row_end ? '0 : blk_q + 1'b1;
          if (row_end) begin
            slot_q <= slot_q == SlotIndexBits'(Slots - 1) ? '0 : slot_q + 1'b1;
            if (slot_q == SlotIndexBits'(Slots - 1)) state_q <= StQ;
          end
        end
        default: state_q <= StQ;
      endcase
    end
  end

`ifndef SYNTHESIS
  // Assumptions, checked in simulation: the K pass offers softmax_state one score word per step
  // and never waits (softmax_state takes a word every cycle), and hands it its results the
  // cycle they are valid (y_ready_i is tied high).
  always_ff @(posedge clk_i) begin
    if (!rst_i && sm_valid_q && !sm_ready) begin
      $error("%m: softmax_state refused a score word; the K pass cannot wait for it");
    end
  end
`endif

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(BeatLanes*ActBits)) u_q_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(q_valid_i), .ready_i(q_ready_o), .data_i(q_data_i)
  );
  stream_check #(.Width(BeatLanes*ActBits)) u_k_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(k_valid_i), .ready_i(k_ready_o), .data_i(k_data_i)
  );
  stream_check #(.Width(BeatLanes*ActBits)) u_v_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(v_valid_i), .ready_i(v_ready_o), .data_i(v_data_i)
  );
`endif
endmodule

`default_nettype wire
