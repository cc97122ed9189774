// Combinational steps shared by the fixed-point function lanes (exp_lane, recip_lane,
// rsqrt_lane), as edgemoe.golden.fixed.nonlinear shares them between exp_neg, reciprocal and
// rsqrt. Every function works on FuncBits-bit words: callers widen their operands into that
// word and take the low bits of the result they need; synthesis trims the constant and unused
// bits, so the hardware keeps the callers' widths.
`default_nettype none

package fxp_func_pkg;
  // the word every helper works on (the generated tables are 64-bit words too)
  localparam int unsigned FuncBits = 64;

  // position of the leading one of v (0 for v = 0)
  function automatic int leading_one(input logic [FuncBits-1:0] v);
    int pos = 0;
    for (int k = 0; k < int'(FuncBits); k++) begin
      if (v[k]) pos = k;
    end
    return pos;
  endfunction

  // lo + rhu((hi - lo) * r, rb): linear interpolation between adjacent table entries lo and hi
  // at the rb-bit fraction r (0 <= r < 2**rb, rb >= 1), rounding half up
  function automatic logic signed [FuncBits-1:0] interpolate(
    input logic signed [FuncBits-1:0] lo,
    input logic signed [FuncBits-1:0] hi,
    input logic        [FuncBits-1:0] r,
    input int                         rb
  );
    logic signed [FuncBits-1:0] d;
    d = (hi - lo) * $signed(r) + (FuncBits'(1) <<< (rb - 1));
    return lo + (d >>> rb);
  endfunction

  // v clamped to [lo, hi]
  function automatic int clamp(input int v, input int lo, input int hi);
    return v < lo ? lo : (v > hi ? hi : v);
  endfunction

  // y * 2**-s: for s > 0 an arithmetic right shift, rounding half up when round_half_up (else
  // truncating); for s <= 0 a left shift by -s
  function automatic logic signed [FuncBits-1:0] scale_pow2(
    input logic signed [FuncBits-1:0] y,
    input int                         s,
    input bit                         round_half_up
  );
    if (s > 0) begin
      return (y + (round_half_up ? (FuncBits'(1) <<< (s - 1)) : '0)) >>> s;
    end
    return y <<< (-s);
  endfunction
endpackage

`default_nettype wire
