// Simulation check of one valid/ready stream's rule: once valid is up, valid and data hold
// until ready takes them. Streaming units instantiate it on each input stream they assume
// follows the rule; it has no logic in synthesis.
`default_nettype none

module stream_check #(
  parameter int unsigned Width = 1
) (
  input  wire logic             clk_i,
  input  wire logic             rst_i,
  input  wire logic             valid_i,
  input  wire logic             ready_i,
  input  wire logic [Width-1:0] data_i
);
  if (Width < 1) begin : gen_bad_width
    $fatal(1, "%m: stream_check needs Width >= 1, got %0d", Width);
  end

`ifndef SYNTHESIS
  logic             waiting_q;  // valid was up and not taken in the last cycle
  logic [Width-1:0] data_q;

  always_ff @(posedge clk_i) begin
    waiting_q <= !rst_i && valid_i && !ready_i;
    data_q    <= data_i;
    if (waiting_q && !valid_i) begin
      $error("%m: valid dropped before ready took the beat");
    end
    if (waiting_q && valid_i && data_i != data_q) begin
      $error("%m: data changed while valid waited for ready");
    end
  end
`endif
endmodule

`default_nettype wire
