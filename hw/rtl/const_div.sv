// Exact division of a signed integer by a positive constant, pipelined, without a divider:
//   RoundHalfUp = 0: q = floor(n / Den)                 (toward -inf, also for negative n)
//   RoundHalfUp = 1: q = floor((2n + Den) / (2 Den))    (nearest, ties toward +inf)
// the rule of edgemoe.golden.fixed.layernorm.div_const, for every n in [NMin, NMax].
//
// How (all constants chosen at elaboration from the divisor and the bound on n):
//   a = 2n + Den (half up) or n; the divisor 2 Den or Den is Odd * 2**T, and for floor division
//   floor(a / (Odd 2**T)) = floor(floor(a / 2**T) / Odd), so v = a >>> T, then divide by Odd.
//   A negative v is folded with floor(v / Odd) = ~floor(~v / Odd) (~v = -1 - v >= 0), so one
//   unsigned quotient floor(u / Odd) of u in [0, U] remains. It is (u * M) >> S with
//   M = ceil(2**S / Odd) and the smallest S such that e * U < 2**S, e = M * Odd - 2**S
//   (Granlund & Montgomery): u * M / 2**S = u / Odd + u * e / (Odd 2**S) and the error term
//   stays below 1 / Odd, so it never carries past the next multiple of 1 / Odd.
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
  localparam logic [127:0] DenW = RoundHalfUp ? 128'(Den) << 1 : 128'(Den);

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

  // smallest S with (ceil(2**S / odd) * odd - 2**S) * u < 2**S (it exists: S = bits(u) + bits(odd))
  function automatic int magic_shift(input logic [127:0] odd, input logic [127:0] u);
    logic [127:0] p, m, e;
    for (int s = 0; s < 126; s++) begin
      p = 128'd1 << s;
      m = (p + odd - 128'd1) / odd;
      e = m * odd - p;
      if (e * u < p) return s;
    end
    return 127;
  endfunction

  localparam int T = trailing_zeros(DenW);
  localparam logic [127:0] Odd = DenW >> T;
  localparam logic signed [127:0] AMin = RoundHalfUp ? (NMin <<< 1) + $signed(128'(Den)) : NMin;
  localparam logic signed [127:0] AMax = RoundHalfUp ? (NMax <<< 1) + $signed(128'(Den)) : NMax;
  localparam logic signed [127:0] VMin = AMin >>> T;
  localparam logic signed [127:0] VMax = AMax >>> T;
  localparam logic [127:0] UPos = VMax > 0 ? VMax : '0;
  localparam logic [127:0] UNeg = VMin < 0 ? -128'sd1 - VMin : '0;
  localparam logic [127:0] U = UPos > UNeg ? UPos : UNeg;  // bound of the folded operand
  localparam int S = magic_shift(Odd, U);
  localparam logic [127:0] M = ((128'd1 << S) + Odd - 128'd1) / Odd;
  localparam logic [127:0] E = M * Odd - (128'd1 << S);
  localparam int UW = bit_width(U);
  localparam int MW = bit_width(M);
  localparam int PW = UW + MW;
  localparam int QW = bit_width(U / Odd);  // bits of the folded quotient
  localparam int AW = (int'(InBits) > bit_width(128'(Den)) ? int'(InBits) : bit_width(128'(Den))) + 2;

  if (Den == 0 || InBits < 2 || NMin > NMax) begin : gen_bad_params
    $fatal(1, "%m: const_div needs Den > 0, InBits >= 2 and NMin <= NMax (Den %0d, InBits %0d)", Den, InBits);
  end
  if (NMin < -(128'sd1 <<< (InBits - 1)) || NMax > (128'sd1 <<< (InBits - 1)) - 128'sd1) begin : gen_bad_bounds
    $fatal(1, "%m: const_div bounds [NMin, NMax] exceed the signed %0d-bit input", InBits);
  end
  if (UW + bit_width(Odd) > 120 || S > 124 || E * U >= (128'd1 << S)) begin : gen_bad_magic
    $fatal(1, "%m: const_div found no exact multiplier for 1/%0d over |n| < 2**%0d", Odd, UW);
  end
  if (QW >= int'(InBits) || PW > 128) begin : gen_bad_quotient
    $fatal(1, "%m: const_div quotient needs %0d bits, more than the %0d-bit output holds", QW + 1, InBits);
  end

  // ---------------------------------------------------------------- 1: round, shift, fold the sign
  logic signed [AW-1:0] a, v;
  logic                 neg_d;
  logic [UW-1:0]        u_d;

  assign a = RoundHalfUp ? (AW'($signed(n_i)) <<< 1) + AW'(Den) : AW'($signed(n_i));
  assign v = a >>> T;
  assign neg_d = v[AW-1];
  assign u_d = UW'(neg_d ? ~v : v);  // < 2**UW for every n in [NMin, NMax]

  logic [UW-1:0]        u_q;
  logic                 neg_q, neg2_q;
  logic [PW-1:0]        p_q;
  logic [2:0]           valid_q;
  logic [TagBits-1:0]   tag_q [2];

  // ---------------------------------------------------------------- 2: multiply, 3: shift and unfold
  logic [QW-1:0] q;
  assign q = p_q[S +: QW];  // p_q >> S < 2**QW

  always_ff @(posedge clk_i) begin
    if (rst_i) begin
      valid_q <= '0;
    end else begin
      valid_q <= {valid_q[1:0], valid_i};
    end
  end

  always_ff @(posedge clk_i) begin
    u_q      <= u_d;
    neg_q    <= neg_d;
    tag_q[0] <= tag_i;
    p_q      <= PW'(u_q) * PW'(M);
    neg2_q   <= neg_q;
    tag_q[1] <= tag_q[0];
    q_o      <= neg2_q ? ~InBits'(q) : InBits'(q);
    tag_o    <= tag_q[1];
  end

  assign valid_o = valid_q[2];

  logic unused_bits;  // p_q below S and above the quotient; a and v beyond the proven bound
  assign unused_bits = ^{p_q, v};
endmodule

`default_nettype wire
