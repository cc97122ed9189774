// Reordered attention for one head and one group of P queries (edgemoe.golden.fixed.attention):
// P query slots share one stream of key rows, then one stream of value rows.
//   q stream: the P query rows of the group (slot 0 first), HeadDim/Blk beats of Blk values each.
//   k stream: N + P - 1 key rows in stream order key (r mod N), r = 0..N+P-2, Blk values a beat.
//             A delay line of (P-1) rows gives slot j the row that entered P-1-j rows earlier,
//             so at step t = r - (P-1) every slot j sees key (t + j) mod N: the rotated sweep.
//             Per step: s_j = cast_score((q_j . k) * scale) (exact dot product and product by
//             the constant scale = round(HeadDim**-0.5) in attn_scale), then the running max and
//             sum of softmax_state; scores are kept for the second pass.
//   v stream: the same N + P - 1 rows of V; per step p_j = cast_prob(exp(s_j - m_j) * (1/l_j)),
//             out_j += p_j * v (exact wide accumulators).
//   o stream: out_j = cast_act(out_j), P rows of HeadDim/Blk beats (o_last_o on the last one).
// P * Blk MACs per cycle in both passes (one K or V beat per cycle).
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
  localparam int PW_ = $clog2(P) > 0 ? $clog2(P) : 1;
  localparam int FA = ActFracBits;
  localparam int AB = ActBits;
  localparam int DotW = 2 * AB + $clog2(Hd) + 1;
  localparam int ScW = DotW + AttnScaleBits + 1;
  localparam int SB = AttnScoreBits;
  localparam int EB = ExpOutBits;
  localparam int PB = AttnProbBits;
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
  logic [Blk*AB-1:0] qbuf [P][Bpr];
  logic q_take;
  assign q_ready_o = state_q == StQ;
  assign q_take = q_valid_i && q_ready_o;

  always_ff @(posedge clk_i) begin
    if (q_take) qbuf[slot_q][blk_q] <= q_data_i;
  end

  // ---------------------------------------------------------------- shared K / V beat stream
  logic              kv_take, kv_valid;
  logic [Blk*AB-1:0] kv_data;
  logic [Blk*AB-1:0] dline [Delay + 1];  // dline[0]: the current beat
  logic              stepping;  // this row is a step of every slot (r >= P - 1)
  logic [RW-1:0]     step;

  assign kv_valid = state_q == StK ? k_valid_i : v_valid_i;
  assign kv_data = state_q == StK ? k_data_i : v_data_i;
  assign k_ready_o = state_q == StK;
  assign v_ready_o = state_q == StV;
  assign kv_take = kv_valid && (k_ready_o || v_ready_o);
  assign row_end = blk_q == BW'(Bpr - 1);
  assign stepping = row_q >= RW'(P - 1);
  assign step = row_q - RW'(P - 1);
  assign dline[0] = kv_data;

  if (Delay > 0) begin : gen_delay
    logic [Blk*AB-1:0] hist_q [Delay];
    always_ff @(posedge clk_i) begin
      if (kv_take) begin
        hist_q[0] <= kv_data;
        for (int i = 1; i < int'(Delay); i++) hist_q[i] <= hist_q[i-1];
      end
    end
    for (genvar i = 1; i <= Delay; i++) begin : gen_tap
      assign dline[i] = hist_q[i-1];
    end
  end

  // ---------------------------------------------------------------- pass 1: scores
  logic [P*SB-1:0]   score_d, score_q;
  logic              sm_valid_q, sm_first_q, sm_last_q;
  logic [SB-1:0]     sbuf [N][P];
  logic signed [DotW-1:0] dot_q [P];

  for (genvar j = 0; j < P; j++) begin : gen_dot
    logic signed [DotW-1:0] part, total;
    logic signed [ScW-1:0]  scaled;
    logic [Blk*AB-1:0]      kb, qb;
    assign kb = dline[(P - 1 - j) * Bpr];
    assign qb = qbuf[j][blk_q];
    always_comb begin
      part = '0;
      for (int i = 0; i < int'(Blk); i++) begin
        part = part + DotW'($signed(qb[i*AB +: AB])) * DotW'($signed(kb[i*AB +: AB]));
      end
    end
    assign total = (blk_q == '0 ? '0 : dot_q[j]) + part;
    assign scaled = ScW'(total) * ScW'(ScaleRaw);
    fxp_requant #(
      .InBits(ScW), .InFrac(2 * FA + AttnScaleFracBits), .InSigned(1'b1),
      .OutBits(SB), .OutFrac(AttnScoreFracBits), .OutSigned(1'b1),
      .RoundHalfUp(AttnScoreRoundHalfUp), .Saturate(AttnScoreSaturate)
    ) u_score (
      .in_i(scaled), .out_o(score_d[j*SB +: SB]), .clip_o()
    );
    always_ff @(posedge clk_i) begin
      if (kv_take && state_q == StK) dot_q[j] <= total;
    end
  end

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      sm_valid_q <= 1'b0;
    end else begin
      sm_valid_q <= kv_take && state_q == StK && row_end && stepping;
    end
  end

  always_ff @(posedge clk_i) begin
    if (kv_take && state_q == StK && row_end && stepping) begin
      score_q    <= score_d;
      sm_first_q <= step == '0;
      sm_last_q  <= step == RW'(N - 1);
      for (int j = 0; j < int'(P); j++) sbuf[step[$clog2(N)-1:0]][j] <= score_d[j*SB +: SB];
    end
  end

  logic                      sm_ready, sm_out_valid;
  logic [P*SB-1:0]           sm_max;
  logic [P*SoftmaxSumBits-1:0] sm_sum;
  logic [P*SoftmaxRecipBits-1:0] sm_recip;
  logic [P*SB-1:0]           m_q;
  logic [P*SoftmaxRecipBits-1:0] r_q;

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
  logic signed [AccW-1:0] acc_q [P][Hd];

  for (genvar j = 0; j < P; j++) begin : gen_av
    logic signed [SB-1:0]     s, m;
    logic signed [SB:0]       diff;
    logic [EB-1:0]            e;
    logic [EB+SoftmaxRecipBits-1:0] er;
    logic [PB-1:0]            prob;
    logic [Blk*AB-1:0]        vb;
    assign s = sbuf[step[$clog2(N)-1:0]][j];
    assign m = m_q[j*SB +: SB];
    assign diff = (SB + 1)'(s) - (SB + 1)'(m);
    exp_lane u_exp (
      .x_i(diff), .y_o(e)
    );
    assign er = (EB + SoftmaxRecipBits)'(e) * (EB + SoftmaxRecipBits)'(r_q[j*SoftmaxRecipBits +: SoftmaxRecipBits]);
    fxp_requant #(
      .InBits(EB + SoftmaxRecipBits), .InFrac(ExpOutFracBits + SoftmaxRecipFracBits), .InSigned(1'b0),
      .OutBits(PB), .OutFrac(AttnProbFracBits), .OutSigned(1'b0),
      .RoundHalfUp(AttnProbRoundHalfUp), .Saturate(AttnProbSaturate)
    ) u_prob (
      .in_i(er), .out_o(prob), .clip_o()
    );
    assign vb = dline[(P - 1 - j) * Bpr];
    for (genvar i = 0; i < Blk; i++) begin : gen_mac
      always_ff @(posedge clk_i) begin
        if (state_q == StSm) begin
          for (int b = 0; b < int'(Bpr); b++) acc_q[j][b*Blk + i] <= '0;
        end else if (kv_take && state_q == StV && stepping) begin
          acc_q[j][int'(blk_q)*Blk + i] <= acc_q[j][int'(blk_q)*Blk + i]
            + AccW'($signed({1'b0, prob})) * AccW'($signed(vb[i*AB +: AB]));
        end
      end
    end
  end

  // ---------------------------------------------------------------- output
  logic out_free, out_take_next;
  logic [Blk*AB-1:0] o_d;

  assign out_free = !o_valid_o || o_ready_i;
  assign out_take_next = state_q == StOut && out_free;

  for (genvar i = 0; i < Blk; i++) begin : gen_out
    fxp_requant #(
      .InBits(AccW), .InFrac(AttnProbFracBits + FA), .InSigned(1'b1),
      .OutBits(AB), .OutFrac(FA), .OutSigned(1'b1),
      .RoundHalfUp(ActRoundHalfUp), .Saturate(ActSaturate)
    ) u_out (
      .in_i(acc_q[slot_q][int'(blk_q)*Blk + i]), .out_o(o_d[i*AB +: AB]), .clip_o()
    );
  end

  always_ff @(posedge clk_i) begin
    if (out_take_next) begin
      o_data_o <= o_d;
      o_last_o <= slot_q == PW_'(P - 1) && row_end;
    end
  end

  // ---------------------------------------------------------------- control
  logic seen_sm;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      state_q   <= StQ;
      blk_q     <= '0;
      row_q     <= '0;
      slot_q    <= '0;
      seen_sm   <= 1'b0;
      o_valid_o <= 1'b0;
    end else begin
      if (out_free) o_valid_o <= state_q == StOut;
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
        StSm: begin  // wait for the final running max and sum
          if (sm_out_valid) seen_sm <= 1'b1;
          if (seen_sm) begin
            seen_sm <= 1'b0;
            state_q <= StV;
          end
        end
        StOut: if (out_free) begin
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
