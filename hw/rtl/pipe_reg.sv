// Depth pipeline registers in series that move on only in cycles with en_i set (so a stalled
// consumer holds the whole pipeline). The function lanes build their steps and their side delays
// from it, and the units the delays beside the lanes.
`default_nettype none

module pipe_reg #(
  parameter int unsigned Width = 1,
  parameter int unsigned Depth = 1
) (
  input  wire logic             clk_i,
  input  wire logic             en_i,
  input  wire logic [Width-1:0] d_i,
  output logic      [Width-1:0] q_o
);
  if (Width < 1 || Depth < 1) begin : gen_bad_params
    $fatal(1, "%m: pipe_reg needs Width >= 1 and Depth >= 1, got %0d, %0d", Width, Depth);
  end

  logic [Width-1:0] stage_q [Depth];
  always_ff @(posedge clk_i) begin
    if (en_i) begin
      stage_q[0] <= d_i;
      for (int k = 1; k < int'(Depth); k++) stage_q[k] <= stage_q[k-1];
    end
  end
  assign q_o = stage_q[Depth-1];
endmodule

`default_nettype wire
