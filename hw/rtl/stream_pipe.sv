// The control of a fixed-latency pipeline behind a valid/ready stream: the whole pipeline
// advances (en_o) whenever its output register is empty or taken, so a stalled consumer holds
// every stage and bubbles move on. valid and the side bits (e.g. last) travel Latency stages
// beside the data, which the caller's registered lanes compute with en_o. The caller checks its
// input stream's hold rule (stream_check) on its data and side bits together.
// One beat per cycle; latency Latency cycles.
`default_nettype none

module stream_pipe #(
  parameter int unsigned Latency  = 1,
  parameter int unsigned SideBits = 1
) (
  input  wire logic                clk_i,
  input  wire logic                rst_i,
  input  wire logic                in_valid_i,
  output logic                     in_ready_o,
  input  wire logic [SideBits-1:0] in_side_i,
  output logic                     out_valid_o,
  input  wire logic                out_ready_i,
  output logic      [SideBits-1:0] out_side_o,
  output logic                     en_o
);
  if (Latency < 1 || SideBits < 1) begin : gen_bad_params
    $fatal(1, "%m: stream_pipe needs Latency >= 1 and SideBits >= 1, got %0d, %0d", Latency, SideBits);
  end

  assign en_o = !out_valid_o || out_ready_i;
  assign in_ready_o = en_o;

  valid_pipe #(.Latency(Latency), .SideBits(SideBits)) u_valid (
    .clk_i(clk_i), .rst_i(rst_i), .en_i(en_o),
    .valid_i(in_valid_i), .side_i(in_side_i), .valid_o(out_valid_o), .side_o(out_side_o)
  );
endmodule

`default_nettype wire
