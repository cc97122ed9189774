// The order a linear pass visits its output tiles, as the storage index of the tile being
// visited. Every layer but one takes its tiles in storage order; the q | k | v layer, given
// head_major_i, takes them head by head (the q tiles of head 0, its k tiles, its v tiles, then
// those of head 1, ...), so that the attention of a head can start as soon as its q, k and v
// are written while the MAC array computes the next head's. Head-major order needs whole tiles
// per head (HeadDim a multiple of Out); without it every layer keeps storage order and attention
// waits for the whole q | k | v pass.
//
// A walk: start_i (with head_major_i) puts it at visit 0, tile 0; each advance_i moves it to the
// next visit. The index is a register stepped by an add of one of three constants, so no
// division or multiply lies between the visit counter and the addresses that use it.
`default_nettype none

module tile_order
  import edgemoe_pkg::*;
#(
  parameter int unsigned Out = LinearOut,
  parameter int unsigned CountBits = 16,
  localparam bit HeadMajor = HeadDim % Out == 0,
  localparam int unsigned HeadTiles = HeadMajor ? HeadDim / Out : 1,  // tiles of one head's q (or k, v)
  localparam int unsigned ThirdTiles = Dim / Out                     // tiles of all heads' q (or k, v)
) (
  input  wire logic                 clk_i,
  input  wire logic                 start_i,       // the walk restarts at tile 0
  input  wire logic                 head_major_i,  // with start_i: head by head (else storage order)
  input  wire logic                 advance_i,     // the next visit
  output logic      [CountBits-1:0] tile_o         // the storage index of the tile visited
);
  localparam int unsigned SubBits = HeadTiles > 1 ? $clog2(HeadTiles) : 1;
  logic               head_major_q;
  logic [SubBits-1:0] sub_q;    // tile within the head's q, k or v
  logic [1:0]         third_q;  // q, k or v
  always_ff @(posedge clk_i) begin
    if (start_i) begin
      head_major_q <= HeadMajor && head_major_i;
      sub_q        <= '0;
      third_q      <= '0;
      tile_o       <= '0;
    end else if (advance_i) begin
      if (!head_major_q || 32'(sub_q) != HeadTiles - 1) begin
        sub_q  <= head_major_q ? sub_q + 1'b1 : sub_q;
        tile_o <= tile_o + 1'b1;
      end else begin
        sub_q   <= '0;
        third_q <= third_q == 2'd2 ? 2'd0 : third_q + 1'b1;
        // q to k and k to v: the same head a third further; v to q: the next head's first tile
        tile_o  <= third_q == 2'd2 ? tile_o - CountBits'(2 * ThirdTiles - 1)
                                   : tile_o + CountBits'(ThirdTiles - HeadTiles + 1);
      end
    end
  end
endmodule

`default_nettype wire
