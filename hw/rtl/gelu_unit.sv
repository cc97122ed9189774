// GELU unit: Lanes activations per beat through registered gelu_lanes behind a valid/ready
// stream (stream_pipe advances every lane together). One beat per cycle; latency
// fxp_func_pkg::GeluLatency cycles.
`default_nettype none

module gelu_unit
  import edgemoe_pkg::*;
  import fxp_func_pkg::*;
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

  logic en;

  stream_pipe #(
    .Latency(GeluLatency), .SideBits(1)
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
    gelu_lane u_lane (
      .clk_i(clk_i), .en_i(en),
      .x_i(x_data_i[l*ActBits +: ActBits]),
      .y_o(y_data_o[l*ActBits +: ActBits])
    );
  end

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(Lanes*ActBits + 1)) u_x_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(x_valid_i), .ready_i(x_ready_o), .data_i({x_last_i, x_data_i})
  );
`endif
endmodule

`default_nettype wire
