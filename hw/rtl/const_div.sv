// Exact division of a signed integer by a positive constant, pipelined, without a divider:
//   RoundHalfUp = 0: q = floor(n / Den)                 (toward -inf, also for negative n)
//   RoundHalfUp = 1: q = floor((2n + Den) / (2 Den))    (nearest, ties toward +inf)
// the rule of edgemoe.golden.fixed.layernorm.div_const, for every n in [NMin, NMax].
//
// How (all constants chosen at elaboration from the divisor and the bound on n):
//   a = 2n + Den (half up) or n (`rounded`); the divisor 2 Den or Den is Odd * 2**T
//   (OddFactor, TwoShift), and for floor division floor(a / (Odd 2**T)) =
//   floor(floor(a / 2**T) / Odd), so v = a >>> T (`shifted`), then divide by Odd.
//   A negative v is folded with floor(v / Odd) = ~floor(~v / Odd) (~v = -1 - v >= 0), so one
//   unsigned quotient floor(u / Odd) of u (`folded`) in [0, U] (FoldedMax) remains. It is
//   (u * M) >> S with M = ceil(2**S / Odd) (Magic) and the smallest S (MagicShift) such that
//   e * U < 2**S, e = M * Odd - 2**S (MagicError) (Granlund & Montgomery):
//   u * M / 2**S = u / Odd + u * e / (Odd 2**S) and the error term stays below 1 / Odd, so it
//   never carries past the next multiple of 1 / Odd.
//   The elaboration checks the inequality again and stops if it fails.
// Why not a sequential divider: LayerNorm needs two quotients per token, a token every
// D / Lanes cycles (12 at the edge-moe size); a radix-2 divider of these ~50-bit numerators
// needs ~50 cycles per quotient and would throttle the unit, while the multiply is a few DSPs.
//
// Pipeline: fixed latency of 3 cycles (fold, multiply, unfold), no stall, a new n every cycle;
// tag_i travels alongside (the caller's side band, e.g. the token slot).
`default_nettype none

module const_div #(
  parameter int unsigned         InBits      = 32,
  parameter longint unsigned     Den         = 3,
  parameter bit                  RoundHalfUp = 1'b0,
  parameter logic signed [127:0] NMin        = -(128'sd1 <<< (InBits - 1)),  // proven bounds of n
  parameter logic signed [127:0] NMax        = (128'sd1 <<< (InBits - 1)) - 128'sd1,
  parameter int unsigned         TagBits     = 1
) (
  input  wire logic               clk_i,
  input  wire logic               rst_i,
  input  wire logic               valid_i,
  input  wire logic [InBits-1:0]  n_i,  // signed
  input  wire logic [TagBits-1:0] tag_i,
  output logic                    valid_o,
  output logic      [InBits-1:0]  q_o,  // signed
  output logic      [TagBits-1:0] tag_o
);
  localparam logic [127:0] Divisor = RoundHalfUp ? 128'(Den) << 1 : 128'(Den);  // of the rounded n

  function automatic int trailing_zeros(input logic [127:0] v);
    for (int k = 0; k < 127; k++) begin
      if (v[k]) return k;
    end
    return 127;
  endfunction

  function automatic int bit_width(input logic [127:0] v);  // bits of an unsigned value, at least 1
    int w = 1;
    for (int k = 0; k < 128; k++) begin
      if (v[k]) w = k + 1;
    end
    return w;
  endfunction

  // smallest S with (ceil(2**S / odd) * odd - 2**S) * bound < 2**S (S = bits(bound) + bits(odd) is one)
  function automatic int magic_shift(input logic [127:0] odd, input logic [127:0] bound);
    logic [127:0] power, magic, error;
    for (int shift = 0; shift < 126; shift++) begin
      power = 128'd1 << shift;
      magic = (power + odd - 128'd1) / odd;
      error = magic * odd - power;
      if (error * bound < power) return shift;
    end
    return 127;
  endfunction

  localparam int TwoShift = trailing_zeros(Divisor);  // Divisor = OddFactor * 2**TwoShift
  localparam logic [127:0] OddFactor = Divisor >> TwoShift;
  localparam logic signed [127:0] RoundedMin = RoundHalfUp ? (NMin <<< 1) + $signed(128'(Den)) : NMin;
  localparam logic signed [127:0] RoundedMax = RoundHalfUp ? (NMax <<< 1) + $signed(128'(Den)) : NMax;
  localparam logic signed [127:0] ShiftedMin = RoundedMin >>> TwoShift;
  localparam logic signed [127:0] ShiftedMax = RoundedMax >>> TwoShift;
  localparam logic [127:0] FoldedPosMax = ShiftedMax > 0 ? ShiftedMax : '0;
  localparam logic [127:0] FoldedNegMax = ShiftedMin < 0 ? -128'sd1 - ShiftedMin : '0;
  localparam logic [127:0] FoldedMax = FoldedPosMax > FoldedNegMax ? FoldedPosMax : FoldedNegMax;
  localparam int MagicShift = magic_shift(OddFactor, FoldedMax);
  localparam logic [127:0] Magic = ((128'd1 << MagicShift) + OddFactor - 128'd1) / OddFactor;
  localparam logic [127:0] MagicError = Magic * OddFactor - (128'd1 << MagicShift);
  localparam int FoldedBits = bit_width(FoldedMax);
  localparam int MagicBits = bit_width(Magic);
  localparam int ProductBits = FoldedBits + MagicBits;
  localparam int QuotientBits = bit_width(FoldedMax / OddFactor);  // bits of the folded quotient
  localparam int DenBits = bit_width(128'(Den));
  localparam int WorkBits = (int'(InBits) > DenBits ? int'(InBits) : DenBits) + 2;  // 2n + Den, signed

  if (Den == 0 || InBits < 2 || NMin > NMax) begin : gen_bad_params
    $fatal(1, "%m: const_div needs Den > 0, InBits >= 2 and NMin <= NMax (Den %0d, InBits %0d)",
           Den, InBits);
  end
  if (NMin < -(128'sd1 <<< (InBits - 1))
      || NMax > (128'sd1 <<< (InBits - 1)) - 128'sd1) begin : gen_bad_bounds
    $fatal(1, "%m: const_div bounds [NMin, NMax] exceed the signed %0d-bit input", InBits);
  end
  if (FoldedBits + bit_width(OddFactor) > 120 || MagicShift > 124
      || MagicError * FoldedMax >= (128'd1 << MagicShift)) begin : gen_bad_magic
    $fatal(1, "%m: const_div found no exact multiplier for 1/%0d over |n| < 2**%0d", OddFactor, FoldedBits);
  end
  if (QuotientBits >= int'(InBits) || ProductBits > 128) begin : gen_bad_quotient
    $fatal(1, "%m: const_div quotient needs %0d bits, more than the %0d-bit output holds",
           QuotientBits + 1, InBits);
  end

  // ---------------------------------------------------------------- 1: round, shift, fold the sign
  logic signed [WorkBits-1:0] rounded, shifted;
  logic                       neg_d;
  logic [FoldedBits-1:0]      folded_d;

  assign rounded = RoundHalfUp ? (WorkBits'($signed(n_i)) <<< 1) + WorkBits'(Den) : WorkBits'($signed(n_i));
  assign shifted = rounded >>> TwoShift;
  assign neg_d = shifted[WorkBits-1];
  assign folded_d = FoldedBits'(neg_d ? ~shifted : shifted);  // < 2**FoldedBits for every n in [NMin, NMax]

  logic [FoldedBits-1:0]  folded_q;
  logic                   neg_q, neg2_q;
  logic [ProductBits-1:0] product_q;
  logic [2:0]             valid_q;
  logic [TagBits-1:0]     tag_q [2];

  // ---------------------------------------------------------------- 2: multiply, 3: shift and unfold
  logic [QuotientBits-1:0] quotient;
  assign quotient = product_q[MagicShift +: QuotientBits];  // product_q >> MagicShift < 2**QuotientBits

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      valid_q <= '0;
    end else begin
      valid_q <= {valid_q[1:0], valid_i};
    end
  end

  always_ff @(posedge clk_i) begin
    folded_q  <= folded_d;
    neg_q     <= neg_d;
    tag_q[0]  <= tag_i;
    product_q <= ProductBits'(folded_q) * ProductBits'(Magic);
    neg2_q    <= neg_q;
    tag_q[1]  <= tag_q[0];
    q_o       <= neg2_q ? ~InBits'(quotient) : InBits'(quotient);
    tag_o     <= tag_q[1];
  end

  assign valid_o = valid_q[2];

  // product_q below MagicShift and above the quotient; shifted beyond the proven bound
  logic unused_bits;
  assign unused_bits = ^{product_q, shifted};
endmodule

`default_nettype wire
