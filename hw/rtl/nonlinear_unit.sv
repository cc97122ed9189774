// Lanes of one nonlinear function behind a valid/ready stream, one register stage:
//   Func 0: exp_lane (exp(x), x <= 0), Func 1: recip_lane (1/x), Func 2: rsqrt_lane (1/sqrt(x)).
// Formats default to the function's place in the datapath (softmax exp, softmax 1/sum,
// LayerNorm 1/sqrt(var + eps)). One beat per cycle; latency 1 cycle.
`default_nettype none

module nonlinear_unit
  import edgemoe_pkg::*;
#(
  parameter int unsigned Func           = 0,
  parameter int unsigned Lanes          = AttnP,
  parameter int unsigned XBits          = Func == 0 ? AttnScoreBits + 1 : Func == 1 ? SoftmaxSumBits : LnVarBits,
  parameter int          XFrac          = Func == 0 ? AttnScoreFracBits
                                        : Func == 1 ? SoftmaxSumFracBits : LnVarFracBits,
  parameter int unsigned OutBits        = Func == 0 ? ExpOutBits : Func == 1 ? SoftmaxRecipBits : LnRstdBits,
  parameter int          OutFrac        = Func == 0 ? ExpOutFracBits
                                        : Func == 1 ? SoftmaxRecipFracBits : LnRstdFracBits,
  parameter bit          OutSigned      = Func == 0 ? ExpOutSigned : Func == 1 ? SoftmaxRecipSigned : LnRstdSigned,
  parameter bit          OutRoundHalfUp = Func == 0 ? ExpOutRoundHalfUp
                                        : Func == 1 ? SoftmaxRecipRoundHalfUp : LnRstdRoundHalfUp,
  parameter bit          OutSaturate    = Func == 0 ? ExpOutSaturate
                                        : Func == 1 ? SoftmaxRecipSaturate : LnRstdSaturate
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
  if (Func > 2 || Lanes < 1) begin : gen_bad_params
    $fatal(1, "%m: nonlinear_unit needs Func 0 (exp), 1 (recip) or 2 (rsqrt) and Lanes >= 1, got %0d, %0d",
           Func, Lanes);
  end

  logic [Lanes*OutBits-1:0] y_d;

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    if (Func == 0) begin : gen_exp
      exp_lane #(
        .XBits(XBits), .XFrac(XFrac), .OutBits(OutBits), .OutFrac(OutFrac), .OutSigned(OutSigned),
        .OutRoundHalfUp(OutRoundHalfUp), .OutSaturate(OutSaturate)
      ) u_fn (
        .x_i(x_data_i[l*XBits +: XBits]), .y_o(y_d[l*OutBits +: OutBits])
      );
    end else if (Func == 1) begin : gen_recip
      recip_lane #(
        .XBits(XBits), .XFrac(XFrac), .OutBits(OutBits), .OutFrac(OutFrac), .OutSigned(OutSigned),
        .OutRoundHalfUp(OutRoundHalfUp), .OutSaturate(OutSaturate)
      ) u_fn (
        .x_i(x_data_i[l*XBits +: XBits]), .y_o(y_d[l*OutBits +: OutBits])
      );
    end else begin : gen_rsqrt
      rsqrt_lane #(
        .XBits(XBits), .XFrac(XFrac), .OutBits(OutBits), .OutFrac(OutFrac), .OutSigned(OutSigned),
        .OutRoundHalfUp(OutRoundHalfUp), .OutSaturate(OutSaturate)
      ) u_fn (
        .x_i(x_data_i[l*XBits +: XBits]), .y_o(y_d[l*OutBits +: OutBits])
      );
    end
  end

  stream_stage #(
    .Width(Lanes*OutBits + 1)
  ) u_out (
    .clk_i      (clk_i),
    .rst_i      (rst_i),
    .in_valid_i (x_valid_i),
    .in_ready_o (x_ready_o),
    .in_data_i  ({x_last_i, y_d}),
    .out_valid_o(y_valid_o),
    .out_ready_i(y_ready_i),
    .out_data_o ({y_last_o, y_data_o})
  );
endmodule

`default_nettype wire
