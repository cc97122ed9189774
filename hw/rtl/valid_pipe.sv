// A valid bit and its side data delayed by Latency enabled cycles, beside a registered datapath
// that moves on the same enable: the valid bits are control state (reset), the side data rides
// in a pipe_reg (no reset). The fixed-latency pipelines of the units (stream_pipe, the lanes'
// waits) carry their valid and side bits through it.
`default_nettype none

module valid_pipe #(
  parameter int unsigned Latency  = 1,
  parameter int unsigned SideBits = 1
) (
  input  wire logic                clk_i,
  input  wire logic                rst_i,
  input  wire logic                en_i,
  input  wire logic                valid_i,
  input  wire logic [SideBits-1:0] side_i,
  output logic                     valid_o,
  output logic      [SideBits-1:0] side_o
);
  if (Latency < 1 || SideBits < 1) begin : gen_bad_params
    $fatal(1, "%m: valid_pipe needs Latency >= 1 and SideBits >= 1, got %0d, %0d", Latency, SideBits);
  end

  logic [Latency-1:0] valid_q;

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      valid_q <= '0;
    end else if (en_i) begin
      valid_q <= Latency'({valid_q, valid_i});
    end
  end
  assign valid_o = valid_q[Latency-1];

  pipe_reg #(.Width(SideBits), .Depth(Latency)) u_side (
    .clk_i(clk_i), .en_i(en_i), .d_i(side_i), .q_o(side_o)
  );
endmodule

`default_nettype wire
