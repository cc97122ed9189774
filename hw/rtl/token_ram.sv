// A token buffer: a simple dual-port RAM of Words words of WordBits bits, one write port and one
// read port with a registered output (the read data follows the address by one cycle).
`default_nettype none

module token_ram #(
  parameter int unsigned Words = 2,
  parameter int unsigned WordBits = 1,
  localparam int unsigned AddrBits = Words > 1 ? $clog2(Words) : 1
) (
  input  wire logic                clk_i,
  input  wire logic                wr_en_i,
  input  wire logic [AddrBits-1:0] wr_addr_i,
  input  wire logic [WordBits-1:0] wr_data_i,
  input  wire logic                rd_en_i,
  input  wire logic [AddrBits-1:0] rd_addr_i,
  output logic      [WordBits-1:0] rd_data_o
);
  if (Words < 1 || WordBits < 1) begin : gen_bad_size
    $fatal(1, "%m: token_ram needs Words, WordBits >= 1 (%0d, %0d)", Words, WordBits);
  end

  logic [WordBits-1:0] mem [Words];

  always_ff @(posedge clk_i) begin
    if (wr_en_i) mem[wr_addr_i] <= wr_data_i;
    if (rd_en_i) rd_data_o <= mem[rd_addr_i];
  end

`ifndef SYNTHESIS
  always_ff @(posedge clk_i) begin
    if (wr_en_i && 32'(wr_addr_i) >= Words) $error("%m: write at %0d of %0d words", wr_addr_i, Words);
    if (rd_en_i && 32'(rd_addr_i) >= Words) $error("%m: read at %0d of %0d words", rd_addr_i, Words);
  end
`endif
endmodule

`default_nettype wire
