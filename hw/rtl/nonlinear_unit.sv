// Lanes of one nonlinear function behind a valid/ready stream, one register stage:
//   Func NonlinearFunctionExpScore: exp_lane (exp(x), x <= 0), NonlinearFunctionReciprocal:
//   recip_lane (1/x), NonlinearFunctionRsqrt: rsqrt_lane (1/sqrt(x)) (edgemoe_pkg's codes).
// Formats default to the function's place in the datapath (softmax exp, softmax 1/sum,
// LayerNorm 1/sqrt(var + eps)). The lanes are registered; stream_pipe advances them together.
// One beat per cycle; latency Latency cycles (fxp_func_pkg's latency of the function's lane).
`default_nettype none

module nonlinear_unit
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
#(
  parameter nonlinear_function_e Func   = NonlinearFunctionExpScore,
  parameter int unsigned Lanes          = AttnP,
  parameter int unsigned XBits          = Func == NonlinearFunctionExpScore ? AttnScoreBits + 1
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxSumBits : LnVarBits,
  parameter int          XFrac          = Func == NonlinearFunctionExpScore ? AttnScoreFracBits
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxSumFracBits : LnVarFracBits,
  parameter int unsigned OutBits        = Func == NonlinearFunctionExpScore ? ExpOutBits
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxRecipBits : LnRstdBits,
  parameter int          OutFrac        = Func == NonlinearFunctionExpScore ? ExpOutFracBits
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxRecipFracBits
                                        : LnRstdFracBits,
  parameter bit          OutSigned      = Func == NonlinearFunctionExpScore ? ExpOutSigned
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxRecipSigned : LnRstdSigned,
  parameter bit          OutRoundHalfUp = Func == NonlinearFunctionExpScore ? ExpOutRoundHalfUp
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxRecipRoundHalfUp
                                        : LnRstdRoundHalfUp,
  parameter bit          OutSaturate    = Func == NonlinearFunctionExpScore ? ExpOutSaturate
                                        : Func == NonlinearFunctionReciprocal ? SoftmaxRecipSaturate
                                        : LnRstdSaturate
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_i,
  input  wire logic                     x_valid_i,
  output logic                          x_ready_o,
  input  wire logic [Lanes*XBits-1:0]   x_data_i,
  input  wire logic                     x_last_i,
  output logic                          y_valid_o,
  input  wire logic                     y_ready_i,
  output logic      [Lanes*OutBits-1:0] y_data_o,
  output logic                          y_last_o
);
  if (!(Func inside {NonlinearFunctionExpScore, NonlinearFunctionReciprocal, NonlinearFunctionRsqrt})
      || Lanes < 1) begin : gen_bad_params
    $fatal(1, "%m: nonlinear_unit needs Func exp score, reciprocal or rsqrt and Lanes >= 1, got %0d, %0d",
           Func, Lanes);
  end

  localparam int unsigned Latency = Func == NonlinearFunctionExpScore ? ExpLatency
                                  : Func == NonlinearFunctionReciprocal ? RecipLatency
                                  : RsqrtLatency;

  logic en;

  stream_pipe #(
    .Latency(Latency), .SideBits(1)
  ) u_pipe (
    .clk_i      (clk_i),
    .rst_i      (rst_i),
    .in_valid_i (x_valid_i),
    .in_ready_o (x_ready_o),
    .in_side_i  (x_last_i),
    .out_valid_o(y_valid_o),
    .out_ready_i(y_ready_i),
    .out_side_o (y_last_o),
    .en_o       (en)
  );

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    if (Func == NonlinearFunctionExpScore) begin : gen_exp
      exp_lane #(
        .XBits(XBits), .XFrac(XFrac), .OutBits(OutBits), .OutFrac(OutFrac), .OutSigned(OutSigned),
        .OutRoundHalfUp(OutRoundHalfUp), .OutSaturate(OutSaturate)
      ) u_fn (
        .clk_i(clk_i), .en_i(en), .x_i(x_data_i[l*XBits +: XBits]), .y_o(y_data_o[l*OutBits +: OutBits])
      );
    end else if (Func == NonlinearFunctionReciprocal) begin : gen_recip
      recip_lane #(
        .XBits(XBits), .XFrac(XFrac), .OutBits(OutBits), .OutFrac(OutFrac), .OutSigned(OutSigned),
        .OutRoundHalfUp(OutRoundHalfUp), .OutSaturate(OutSaturate)
      ) u_fn (
        .clk_i(clk_i), .en_i(en), .x_i(x_data_i[l*XBits +: XBits]), .y_o(y_data_o[l*OutBits +: OutBits])
      );
    end else begin : gen_rsqrt
      rsqrt_lane #(
        .XBits(XBits), .XFrac(XFrac), .OutBits(OutBits), .OutFrac(OutFrac), .OutSigned(OutSigned),
        .OutRoundHalfUp(OutRoundHalfUp), .OutSaturate(OutSaturate)
      ) u_fn (
        .clk_i(clk_i), .en_i(en), .x_i(x_data_i[l*XBits +: XBits]), .y_o(y_data_o[l*OutBits +: OutBits])
      );
    end
  end

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(Lanes*XBits + 1)) u_x_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(x_valid_i), .ready_i(x_ready_o), .data_i({x_last_i, x_data_i})
  );
`endif
endmodule

`default_nettype wire
