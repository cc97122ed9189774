// Steps shared by the fixed-point function lanes (exp_lane, recip_lane, rsqrt_lane, gelu_lane),
// as edgemoe.golden.fixed.nonlinear shares them between exp_neg, reciprocal, rsqrt and gelu, and
// the lanes' latencies, which their consumers read from here. Every function works on
// FuncBits-bit words: callers widen their operands into that word and take the low bits of the
// result they need; synthesis trims the constant and unused bits, so the hardware keeps the
// callers' widths.
`default_nettype none

package fxp_func_pkg;
  import edgemoe_pkg::NewtonSteps;

  // the word every helper works on (the generated tables are 64-bit words too)
  localparam int unsigned FuncBits = 64;

  // ---- latencies, in enabled cycles from x_i to y_o (each unit reads the ones it uses)
  /* verilator lint_off UNUSEDPARAM */
  localparam int unsigned MulLatency = 4;  // fxp_mul: input, product, row and sum registers

  // exp_lane: clamp; aw * log2(e); n, u; table read (rom_pair) and its entries; interpolation
  // multiply; interpolated value; shift, rounding, fit
  localparam int unsigned ExpLatency = 8 + 2 * MulLatency;

  // recip_lane: leading one; normalise; table read (rom_pair) and its entries; interpolation
  // multiply; seed; per Newton step m * y, 2 - m y, y * (2 - m y), rounding; shift, rounding, fit
  localparam int unsigned RecipLatency = 8 + MulLatency + NewtonSteps * (2 + 2 * MulLatency);

  // rsqrt_lane: as recip_lane, with three multiplies per Newton step (y * y, m * y**2, y * c)
  localparam int unsigned RsqrtLatency = 8 + MulLatency + NewtonSteps * (3 + 3 * MulLatency);

  // gelu_lane: |x|; table read (rom_pair) and its entries; interpolation multiply; step cast;
  // delta; ReLU - delta; fit
  localparam int unsigned GeluLatency = 7 + MulLatency;
  /* verilator lint_on UNUSEDPARAM */

  // position of the leading one of v (0 for v = 0)
  function automatic int leading_one(input logic [FuncBits-1:0] v);
    int pos = 0;
    for (int k = 0; k < int'(FuncBits); k++) begin
      if (v[k]) pos = k;
    end
    return pos;
  endfunction

  // the left shift that brings the leading one of v (width bits) to bit width - 1, width - 1 for
  // v = 0: width - 1 - leading_one(v), each position's shift a constant of the priority encoder
  function automatic int normalise_shift(input logic [FuncBits-1:0] v, input int width);
    int shift = width - 1;
    for (int k = 0; k < width; k++) begin
      if (v[k]) shift = width - 1 - k;
    end
    return shift;
  endfunction

  // lo + rhu(d, rb) for the product d = (hi - lo) * r of the linear interpolation between
  // adjacent table entries lo and hi at the rb-bit fraction r (rb >= 1), rounding half up
  function automatic logic signed [FuncBits-1:0] interpolate(
    input logic signed [FuncBits-1:0] lo,
    input logic signed [FuncBits-1:0] d,
    input int                         rb
  );
    return lo + ((d + (FuncBits'(1) <<< (rb - 1))) >>> rb);
  endfunction

  // v clamped to [lo, hi]
  function automatic int clamp(input int v, input int lo, input int hi);
    return v < lo ? lo : (v > hi ? hi : v);
  endfunction

  // y * 2**-s in two steps, pow2_shift then pow2_round: for s > 0 an arithmetic right shift,
  // rounding half up when round_half_up (else truncating); for s <= 0 a left shift by -s. With
  // rounding the shift stops one bit short and pow2_round adds one and drops that bit, since
  // floor((y + 2**(s-1)) / 2**s) = floor((floor(y / 2**(s-1)) + 1) / 2): no step adds a bit at a
  // variable position. The shift takes the direction (s > 0) and pow2_distance(s), which the
  // lanes register a step ahead, so the shift step is the shifters alone.
  function automatic int unsigned pow2_distance(input int s, input bit round_half_up);
    return s > 0 ? (round_half_up ? s - 1 : s) : -s;
  endfunction

  function automatic logic signed [FuncBits-1:0] pow2_shift(
    input logic signed [FuncBits-1:0] y,
    input bit                         right,
    input int unsigned                distance
  );
    return right ? y >>> distance : y <<< distance;
  endfunction

  function automatic logic signed [FuncBits-1:0] pow2_round(
    input logic signed [FuncBits-1:0] t,
    input bit                         right,
    input bit                         round_half_up
  );
    return right && round_half_up ? (t + FuncBits'(1)) >>> 1 : t;
  endfunction
endpackage

`default_nettype wire
