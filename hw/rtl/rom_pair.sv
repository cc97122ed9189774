// Entries idx and idx + 1 of a table (the two ends of an interpolation segment), read with a
// register: a synchronous ROM that synthesis maps to block RAM (ECP5 EBR, UltraScale+ BRAM) or
// to LUTs, read in cycles with en_i set, so the lookup is one step of its own. The function lanes
// read their generated tables through it.
`default_nettype none

module rom_pair #(
  parameter int unsigned        Entries    = 2,
  parameter int unsigned        EntryBits  = 1,  // the low bits of each 64-bit table word
  parameter int unsigned        IndexBits  = 1,
  parameter logic signed [63:0] Table [Entries] = '{default: '0}
) (
  input  wire logic                 clk_i,
  input  wire logic                 en_i,
  input  wire logic [IndexBits-1:0] idx_i,  // idx_i + 1 < Entries
  output logic      [EntryBits-1:0] lo_o,
  output logic      [EntryBits-1:0] hi_o
);
  localparam int unsigned AddrBits = $clog2(Entries);

  if (Entries < 2 || EntryBits < 1 || EntryBits > 64 || IndexBits < 1 || IndexBits > AddrBits)
  begin : gen_bad_params
    $fatal(1, "%m: rom_pair needs 2 <= Entries, 1 <= EntryBits <= 64, 1 <= IndexBits <= clog2(Entries), got %0d, %0d, %0d",
           Entries, EntryBits, IndexBits);
  end

  logic [EntryBits-1:0] rom [Entries];
  initial begin
    for (int k = 0; k < int'(Entries); k++) rom[k] = Table[k][EntryBits-1:0];
  end

  logic [AddrBits-1:0] lo_addr, hi_addr;
  assign lo_addr = AddrBits'(idx_i);
  assign hi_addr = AddrBits'(idx_i) + AddrBits'(1);

  always_ff @(posedge clk_i) begin
    if (en_i) begin
      lo_o <= rom[lo_addr];
      hi_o <= rom[hi_addr];
    end
  end
endmodule

`default_nettype wire
