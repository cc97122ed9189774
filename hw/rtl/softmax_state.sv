// Single-pass softmax state: per lane (one query slot of the reordered attention) a running
// max m (AttnScore format) and running sum l (SoftmaxSum) updated once per key, in the key
// order the scores arrive in (edgemoe.golden.fixed.attention, the rotated sweep):
//   first key:      m = s, l = 1
//   s > m (new max): l = cast_sum(l * exp(m - s) + 1), m = s
//   otherwise:       l = cast_sum(l + exp(s - m))
// each update one multiply-add at fs + fe fraction bits and one cast (rounding, then overflow).
// After the row's last key the lane emits m, l and r = 1/l (recip_lane, SoftmaxRecip).
// One key step per cycle for all Lanes; the result 2 cycles after the last key.
`default_nettype none

module softmax_state
  import edgemoe_pkg::*;
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

  if (Lanes < 1 || SoftmaxSumSigned || ExpOutSigned || SoftmaxSumFracBits < 0 || ExpOutFracBits < 1) begin : gen_bad_params
    $fatal(1, "%m: softmax_state needs Lanes >= 1 and unsigned exp_out / softmax_sum formats");
  end

  logic adv, take, done_q;
  logic [Lanes*AttnScoreBits-1:0] m_q, m_d;
  logic [Lanes*SoftmaxSumBits-1:0] l_q, l_d;

  assign adv = !y_valid_o || y_ready_i;
  assign s_ready_o = adv;
  assign take = s_valid_i && s_ready_o;

  for (genvar j = 0; j < Lanes; j++) begin : gen_lane
    logic signed [AttnScoreBits-1:0] s, m;
    logic [SoftmaxSumBits-1:0]        l;
    logic                 is_new;
    logic signed [AttnScoreBits:0]   diff;
    logic [ExpOutBits-1:0] e;
    logic [MulAddBits-1:0]        mac;

    assign s = s_data_i[j*AttnScoreBits +: AttnScoreBits];
    assign m = m_q[j*AttnScoreBits +: AttnScoreBits];
    assign l = s_first_i ? '0 : l_q[j*SoftmaxSumBits +: SoftmaxSumBits];
    assign is_new = s_first_i || s > m;
    assign diff = is_new ? ((AttnScoreBits + 1)'(m) - (AttnScoreBits + 1)'(s)) : ((AttnScoreBits + 1)'(s) - (AttnScoreBits + 1)'(m));

    exp_lane u_exp (
      .x_i(s_first_i ? '0 : diff),
      .y_o(e)
    );

    always_comb begin
      if (is_new) begin
        mac = MulAddBits'(l) * MulAddBits'(e) + (MulAddBits'(1) << (SoftmaxSumFracBits + ExpOutFracBits)) + Half;
      end else begin
        mac = (MulAddBits'(l) << ExpOutFracBits) + (MulAddBits'(e) << SoftmaxSumFracBits) + Half;
      end
    end

    fxp_requant #(
      .InBits(MulAddBits + 1), .InFrac(ExpOutFracBits), .InSigned(1'b1),
      .OutBits(SoftmaxSumBits), .OutFrac(0), .OutSigned(1'b0),
      .RoundHalfUp(1'b0), .Saturate(SoftmaxSumSaturate)
    ) u_sum (
      .in_i({1'b0, mac}), .out_o(l_d[j*SoftmaxSumBits +: SoftmaxSumBits]), .clip_o()
    );

    assign m_d[j*AttnScoreBits +: AttnScoreBits] = is_new ? s : m;

    recip_lane u_recip (
      .x_i(y_sum_o[j*SoftmaxSumBits +: SoftmaxSumBits]),
      .y_o(y_recip_o[j*SoftmaxRecipBits +: SoftmaxRecipBits])
    );
  end

  always_ff @(posedge clk_i) begin
    if (take) begin
      m_q <= m_d;
      l_q <= l_d;
    end
  end

  // done_q: the state holds a finished row; it moves to the output register on the next step
  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      done_q    <= 1'b0;
      y_valid_o <= 1'b0;
    end else if (adv) begin
      done_q    <= take && s_last_i;
      y_valid_o <= done_q;
    end
  end

  always_ff @(posedge clk_i) begin
    if (adv && done_q) begin
      y_max_o <= m_q;
      y_sum_o <= l_q;
    end
  end

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(Lanes*AttnScoreBits + 2)) u_s_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(s_valid_i), .ready_i(s_ready_o), .data_i({s_first_i, s_last_i, s_data_i})
  );
`endif
endmodule

`default_nettype wire
