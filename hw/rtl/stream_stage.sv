// One register stage on a valid/ready stream: data and valid hold until accepted, and a new beat
// enters in the cycle the held one leaves (one beat per cycle, latency 1 cycle).
`default_nettype none

module stream_stage #(
  parameter int unsigned Width = 1
) (
  input  wire logic             clk_i,
  input  wire logic             rst_i,
  input  wire logic             in_valid_i,
  output logic                  in_ready_o,
  input  wire logic [Width-1:0] in_data_i,
  output logic                  out_valid_o,
  input  wire logic             out_ready_i,
  output logic      [Width-1:0] out_data_o
);
  if (Width < 1) begin : gen_bad_width
    $fatal(1, "%m: stream_stage needs Width >= 1, got %0d", Width);
  end

  assign in_ready_o = !out_valid_o || out_ready_i;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      out_valid_o <= 1'b0;
    end else if (in_ready_o) begin
      out_valid_o <= in_valid_i;
    end
  end

  always_ff @(posedge clk_i) begin
    if (in_ready_o && in_valid_i) begin
      out_data_o <= in_data_i;
    end
  end

`ifndef SYNTHESIS
  // Input streams follow the valid/ready rule (valid and data hold until taken): checked in simulation.
  stream_check #(.Width(Width)) u_in_check (
    .clk_i(clk_i), .rst_i(rst_i), .valid_i(in_valid_i), .ready_i(in_ready_o), .data_i(in_data_i)
  );
`endif
endmodule

`default_nettype wire
