// The order a linear pass visits its output tiles. Every layer but one takes them in storage
// order; the q | k | v layer, given head_major_i, takes them head by head (the q tiles of head 0,
// its k tiles, its v tiles, then those of head 1, ...), so that the attention of a head can start
// as soon as its q, k and v are written while the MAC array computes the next head's.
// Head-major order needs whole tiles per head (HeadDim a multiple of Out); without it every
// layer keeps storage order (HeadMajor = 0) and attention waits for the whole q | k | v pass.
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
  input  wire logic                 head_major_i,
  input  wire logic [CountBits-1:0] visit_i,  // the pass's visit index of a tile
  output logic      [CountBits-1:0] tile_o    // that tile's index in storage order
);
  always_comb begin
    int unsigned head, third, sub;
    head = 32'(visit_i) / (3 * HeadTiles);
    third = (32'(visit_i) / HeadTiles) % 3;
    sub = 32'(visit_i) % HeadTiles;
    tile_o = HeadMajor && head_major_i ? CountBits'(third * ThirdTiles + head * HeadTiles + sub) : visit_i;
  end
endmodule

`default_nettype wire
