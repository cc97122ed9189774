// GELU unit: Lanes activations per beat through gelu_lane, one register stage, valid/ready.
// One beat per cycle; latency 1 cycle.
`default_nettype none

module gelu_unit
  import edgemoe_pkg::*;
#(
  parameter int unsigned Lanes = LinearOut
) (
  input  wire logic                     clk_i,
  input  wire logic                     rst_i,
  input  wire logic                     x_valid_i,
  output logic                          x_ready_o,
  input  wire logic [Lanes*ActBits-1:0] x_data_i,
  input  wire logic                     x_last_i,
  output logic                          y_valid_o,
  input  wire logic                     y_ready_i,
  output logic      [Lanes*ActBits-1:0] y_data_o,
  output logic                          y_last_o
);
  if (Lanes < 1) begin : gen_bad_lanes
    $fatal(1, "%m: gelu_unit needs Lanes >= 1, got %0d", Lanes);
  end

  logic [Lanes*ActBits-1:0] y_d;

  for (genvar l = 0; l < Lanes; l++) begin : gen_lane
    gelu_lane u_lane (
      .x_i(x_data_i[l*ActBits +: ActBits]),
      .y_o(y_d[l*ActBits +: ActBits])
    );
  end

  stream_stage #(
    .Width(Lanes*ActBits + 1)
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
