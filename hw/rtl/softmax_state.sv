// Single-pass softmax state: per lane (one query slot of the reordered attention) a running
// max m (AttnScore format) and running sum l (SoftmaxSum) updated once per key, in the key
// order the scores arrive in (edgemoe.golden.fixed.attention, the rotated sweep):
//   first key:      m = s, l = 1
//   s > m (new max): l = cast_sum(l * exp(m - s) + 1), m = s
//   otherwise:       l = cast_sum(l + exp(s - m))
// each update one multiply-add at fs + fe fraction bits and one cast (rounding, then overflow).
// After the row's last key the lane emits m, l and r = 1/l (recip_lane, SoftmaxRecip).
//
// Only the running max is a one-cycle recurrence: the exp argument (m - s or s - m) depends on
// m alone, so it enters a registered exp_lane in the cycle the key is taken, and the sum's
// recurrence (per cycle, on a new max one multiply-add and its cast, otherwise one saturating
// add) runs ExpLatency cycles behind it, fed by the exp results and the step's flags. 1/l of a finished row goes through a registered
// recip_lane. One key step per cycle for all Lanes; the whole pipeline moves together while the
// output register is empty or taken (y_ready_i). The result ExpLatency + RecipLatency + 1 cycles
// after the row's last key.
`default_nettype none

module softmax_state
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter int unsigned Lanes = AttnP
) (
  input  wire logic                              clk_i,
  input  wire logic                              rst_i,
  // scores of one key step, one per lane; first/last key of the row
  input  wire logic                              s_valid_i,
  output logic                                   s_ready_o,
  input  wire logic [Lanes*AttnScoreBits-1:0]    s_data_i,
  input  wire logic                              s_first_i,
  input  wire logic                              s_last_i,
  // final state per lane
  output logic                                   y_valid_o,
  input  wire logic                              y_ready_i,
  output logic      [Lanes*AttnScoreBits-1:0]    y_max_o,
  output logic      [Lanes*SoftmaxSumBits-1:0]   y_sum_o,
  output logic      [Lanes*SoftmaxRecipBits-1:0] y_recip_o
);
  localparam int MulAddBits = SoftmaxSumBits + ExpOutBits + 2;  // l * e + addend, unsigned
  localparam logic [MulAddBits-1:0] Half = (SoftmaxSumRoundHalfUp && ExpOutFracBits > 0) ? MulAddBits'(1) << (ExpOutFracBits - 1) : '0;
  // e * 2**fs + Half, and l plus its part above the lsb, unsigned
  localparam int AddendBits = (int'(ExpOutBits) + SoftmaxSumFracBits > ExpOutFracBits
                               ? int'(ExpOutBits) + SoftmaxSumFracBits : ExpOutFracBits) + 1;
  localparam int OldSumBits = (int'(SoftmaxSumBits) > AddendBits ? int'(SoftmaxSumBits) : AddendBits) + 1;
  // the first key's sum, cast(0 * e + 1) = fit(1.0) (Half is below the cast's lsb)
  localparam logic [SoftmaxSumBits-1:0] FirstSum = SoftmaxSumFracBits < int'(SoftmaxSumBits)
                                                 ? SoftmaxSumBits'(1) << SoftmaxSumFracBits
                                                 : (SoftmaxSumSaturate ? '1 : '0);

  if (Lanes < 1 || SoftmaxSumSigned || ExpOutSigned || SoftmaxSumFracBits < 0 || ExpOutFracBits < 1) begin : gen_bad_params
    $fatal(1, "%m: softmax_state needs Lanes >= 1 and unsigned exp_out / softmax_sum formats");
  end

  logic adv, take;
  logic [Lanes*AttnScoreBits-1:0] m_q, m_d;

  assign adv = !y_valid_o || y_ready_i;
  assign s_ready_o = adv;
  assign take = s_valid_i && s_ready_o;

  // ---- the running max, and the step's flags beside the exp lanes
  logic                  e_valid;  // the step whose exps leave the lanes
  logic                  e_first, e_last;  // and its flags
  logic [Lanes-1:0]      is_new_d, e_is_new;
  logic [Lanes*AttnScoreBits-1:0] e_max;  // the running max after that step

  valid_pipe #(.Latency(ExpLatency), .SideBits(2 + Lanes + Lanes*AttnScoreBits)) u_step_flags (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(adv), .valid_i(take),
    .side_i({s_first_i, s_last_i, is_new_d, m_d}), .valid_o(e_valid), .side_o({e_first, e_last, e_is_new, e_max})
  );

  // ---- the running sum, ExpLatency cycles behind the max
  logic [Lanes*SoftmaxSumBits-1:0] l_q, l_d;
  logic                            done_q;

  for (genvar j = 0; j < Lanes; j++) begin : gen_lane
    logic signed [AttnScoreBits-1:0] s, m;
    logic signed [AttnScoreBits:0]   diff;
    logic [SoftmaxSumBits-1:0]       l;
    logic [ExpOutBits-1:0]           e;

    assign s = s_data_i[j*AttnScoreBits +: AttnScoreBits];
    assign m = m_q[j*AttnScoreBits +: AttnScoreBits];
    assign is_new_d[j] = s_first_i || s > m;
    assign diff = is_new_d[j] ? ((AttnScoreBits + 1)'(m) - (AttnScoreBits + 1)'(s))
                              : ((AttnScoreBits + 1)'(s) - (AttnScoreBits + 1)'(m));
    assign m_d[j*AttnScoreBits +: AttnScoreBits] = is_new_d[j] ? s : m;

    exp_lane u_exp (
      .clk_i(clk_i), .en_i(adv),
      .x_i(s_first_i ? '0 : diff),
      .y_o(e)
    );

    // The recurrence holds the least it can: the first key's 1.0 is loaded (not computed from a
    // zero l), and an old max's step l + e is the saturating add of l and the cast's share of e,
    // ((e << fs) + Half) >> fe, computed off the loop: (l << fe) has no bits below the lsb.
    logic [MulAddBits-1:0]     mac_new;
    logic [AddendBits-1:0]     e_term;
    logic [OldSumBits-1:0]     add_old;
    logic [SoftmaxSumBits-1:0] l_new, l_old;
    assign l = l_q[j*SoftmaxSumBits +: SoftmaxSumBits];
    assign mac_new = MulAddBits'(l) * MulAddBits'(e) + (MulAddBits'(1) << (SoftmaxSumFracBits + ExpOutFracBits)) + Half;
    assign e_term = (AddendBits'(e) << SoftmaxSumFracBits) + AddendBits'(Half);
    assign add_old = OldSumBits'(l) + OldSumBits'(e_term >> ExpOutFracBits);

    fxp_requant #(
      .InBits(MulAddBits + 1), .InFrac(ExpOutFracBits), .InSigned(1'b1),
      .OutBits(SoftmaxSumBits), .OutFrac(0), .OutSigned(1'b0),
      .RoundHalfUp(1'b0), .Saturate(SoftmaxSumSaturate)
    ) u_sum_new (
      .in_i({1'b0, mac_new}), .out_o(l_new), .clip_o()
    );
    fxp_requant #(
      .InBits(OldSumBits + 1), .InFrac(0), .InSigned(1'b1),
      .OutBits(SoftmaxSumBits), .OutFrac(0), .OutSigned(1'b0),
      .RoundHalfUp(1'b0), .Saturate(SoftmaxSumSaturate)
    ) u_sum_old (
      .in_i({1'b0, add_old}), .out_o(l_old), .clip_o()
    );
    assign l_d[j*SoftmaxSumBits +: SoftmaxSumBits] = e_first ? FirstSum : (e_is_new[j] ? l_new : l_old);

    recip_lane u_recip (
      .clk_i(clk_i), .en_i(adv),
      .x_i(l_q[j*SoftmaxSumBits +: SoftmaxSumBits]),
      .y_o(y_recip_o[j*SoftmaxRecipBits +: SoftmaxRecipBits])
    );
  end

  always_ff @(posedge clk_i) begin
    if (adv && take) m_q <= m_d;
  end

  // done_q: l_q and max_q hold a finished row, which enters the reciprocal lanes
  logic [Lanes*AttnScoreBits-1:0] max_q;
  always_ff @(posedge clk_i) begin
    if (adv && e_valid) l_q <= l_d;
    if (adv && e_valid && e_last) max_q <= e_max;
  end

  // ---- 1/l: the finished rows' m and l wait beside the reciprocal lanes
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      done_q <= 1'b0;
    end else if (adv) begin
      done_q <= e_valid && e_last;
    end
  end

  valid_pipe #(.Latency(RecipLatency), .SideBits(Lanes*(AttnScoreBits + SoftmaxSumBits))) u_row (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(adv), .valid_i(done_q),
    .side_i({max_q, l_q}), .valid_o(y_valid_o), .side_o({y_max_o, y_sum_o})
  );

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(Lanes*AttnScoreBits + 2)) u_s_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(s_valid_i), .ready_i(s_ready_o), .data_i({s_first_i, s_last_i, s_data_i})
  );
`endif
endmodule

`default_nettype wire
