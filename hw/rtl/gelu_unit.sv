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

  assign x_ready_o = !y_valid_o || y_ready_i;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      y_valid_o <= 1'b0;
    end else if (x_ready_o) begin
      y_valid_o <= x_valid_i;
    end
  end

  always_ff @(posedge clk_i) begin
    if (x_ready_o && x_valid_i) begin
      y_data_o <= y_d;
      y_last_o <= x_last_i;
    end
  end
endmodule

`default_nettype wire
