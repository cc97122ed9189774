// nonlinear.h - the project's fixed-point nonlinear functions: exp, reciprocal, rsqrt, GELU, softmax.
//
// Integer algorithms of golden/fixed/nonlinear.py, step for step (its docstrings number the
// steps; the comments here follow that numbering): shifts, adds, integer multiplies, leading-one
// detection and lookups with linear interpolation in the generated tables (cfg::EXP2_TABLE,
// RECIP_TABLE, RSQRT_TABLE, GELU_DELTA_TABLE, LOG2E_TABLE), then Newton steps. No hls_math.
//
// Every function has a raw form, on a raw integer (wide_t) with its fraction bits as a template
// parameter, and a typed form on ap_fixed values. The result type out_t decides the final
// cast: its fraction bits, rounding (AP_RND = round half up, AP_TRN = toward -inf) and
// overflow mode (AP_SAT / AP_WRAP), like the golden model's Cast.
//
// Internal values are held in wide_t (64-bit two's complement); the golden model asserts that
// every intermediate fits 63 bits for the config's work_frac_bits, so nothing here wraps.
#pragma once

#include "edgemoe_types.h"

namespace edgemoe {

typedef ap_int<64> wide_t;

// The parameters of the nonlinear units, from the generated config.
struct nonlinear_config {
    static constexpr int work_frac_bits = cfg::WORK_FRAC_BITS;
    static constexpr int exp_table_bits = cfg::EXP_TABLE_BITS;
    static constexpr int recip_table_bits = cfg::RECIP_TABLE_BITS;
    static constexpr int rsqrt_table_bits = cfg::RSQRT_TABLE_BITS;
    static constexpr int newton_steps = cfg::NEWTON_STEPS;
    static constexpr int gelu_table_bits = cfg::GELU_TABLE_BITS;
    static constexpr int gelu_range_log2 = cfg::GELU_RANGE_LOG2;
};

// Rounding of a Cast: the quantisation mode of its ap_fixed type.
template <class T>
struct rounds_half_up {
    static constexpr bool value = T::qmode == AP_RND;
};

// ---- integer steps shared by the functions ---------------------------------------------------

// Position e of the leading one of an N-bit x > 0 (2^e <= x < 2^(e+1)): a priority encoder.
template <int N>
inline int leading_one_of(ap_uint<N> x) {
#pragma HLS INLINE
    int e = 0;
leading_one_of_bits:
    for (int i = 0; i < N; i++) {
#pragma HLS UNROLL
        if (x[i]) e = i;
    }
    return e;
}

// Interpolation in a ufix(W + 1, 1) table with a FB-bit fraction: T[i] + rhu((T[i+1] - T[i]) * r, FB).
template <int W, int IB, int FB>
inline ap_uint<W + 1> lerp_unit(const long long* table, ap_uint<IB> i, ap_uint<FB> r) {
#pragma HLS INLINE
    static_assert(FB >= 1, "lerp_unit: needs at least one fraction bit");
    const ap_uint<W + 1> lo = table[i];
    const ap_uint<W + 1> hi = table[i + 1];
    const ap_int<W + 2> step = ap_int<W + 2>(hi) - ap_int<W + 2>(lo);
    const ap_int<W + 3 + FB> slope = step * r;
    const ap_int<W + 3 + FB> half = ap_int<W + 3 + FB>(1) << (FB - 1);
    return ap_int<W + 2>(lo) + ap_int<W + 2>((slope + half) >> FB);
}

// v * 2^-s rounded half up or truncated toward -inf for s > 0; v << -s (exact) for s <= 0.
inline wide_t shift_round(wide_t v, int s, bool half_up) {
#pragma HLS INLINE
    if (s <= 0) return v << (-s);
    if (half_up) v += wide_t(1) << (s - 1);
    return v >> s;
}

// A raw value already at out_t's fraction bits, brought into out_t by its overflow mode.
template <class out_t>
inline out_t fit(wide_t raw) {
#pragma HLS INLINE
    typedef ap_fixed<64, 64 - fixed_traits<out_t>::frac_bits> holder_t;
    holder_t h;
    h.range(63, 0) = raw.range(63, 0);
    return out_t(h);  // same fraction bits: no rounding, only out_t's saturation or wrap
}

// cast(v, s, out): drop s fraction bits with out_t's rounding, then out_t's overflow mode.
template <class out_t>
inline out_t cast_raw(wide_t v, int s) {
#pragma HLS INLINE
    return fit<out_t>(shift_round(v, s, rounds_half_up<out_t>::value));
}

// ---- exp ------------------------------------------------------------------------------------

// exp(x) for x <= 0 (x > 0 gives 1.0); x has XF fraction bits. Steps of nonlinear.exp_neg, each
// value in the width its docstring gives (K + W bits after step 2, a K+W+1 by W+1 multiplier).
template <int XF, class out_t, typename Cfg = nonlinear_config>
out_t exp_neg_raw(wide_t x) {
#pragma HLS INLINE
    constexpr int W = Cfg::work_frac_bits;
    constexpr int b = Cfg::exp_table_bits;
    constexpr int OF = fixed_traits<out_t>::frac_bits;
    constexpr int K = ceil_log2(OF + 3);  // bit_length(OF + 2)
    constexpr int AB = XF + K;            // bits of a
    constexpr int WB = K + W + 1;         // bits of a at W fraction bits (one carry bit of rounding)
    static_assert(K + 2 * W + 1 <= 62, "exp_neg: K + 2W + 1 bits exceed the 64-bit datapath");
    static_assert(AB <= 62, "exp_neg: the input has too many fraction bits");
    static_assert(1 <= b && b < W, "exp_neg: the exp2 table needs 1..W-1 index bits");
    static_assert(cfg::EXP2_TABLE_FRAC_BITS == W && cfg::LOG2E_TABLE_FRAC_BITS == W,
                  "exp_neg: the exp2 and log2e tables must have W fraction bits");
    typedef ap_uint<AB> a_t;
    typedef ap_uint<WB> aw_t;
    typedef ap_uint<W + 1> unit_t;  // ufix(W + 1, 1): tables, 2^-u
    // 1. a = max(-x, 0), clamped below 2^(XF + K)
    const wide_t neg = -x;
    const a_t a = neg <= 0 ? a_t(0) : neg >= (wide_t(1) << AB) ? a_t(~a_t(0)) : a_t(neg);
    // 2. to W fraction bits
    aw_t aw;
    if (XF > W) {
        const ap_uint<AB + 1> rounded = ap_uint<AB + 1>(a) + (ap_uint<AB + 1>(1) << (XF > W ? XF - W - 1 : 0));
        aw = rounded >> (XF > W ? XF - W : 0);
    } else {
        aw = aw_t(a) << (XF > W ? 0 : W - XF);
    }
    // 3. t = rhu(a * log2(e), W)
    const unit_t log2e = cfg::LOG2E_TABLE[0];
    const ap_uint<WB + W + 1> prod = aw * log2e;
    const ap_uint<WB + 1> t = (ap_uint<WB + W + 2>(prod) + (ap_uint<WB + W + 2>(1) << (W - 1))) >> W;
    // 4. integer part n and W-bit fraction u
    ap_uint<WB + 1 - W> n = t >> W;
    const ap_uint<W> u = t;
    // 5. p = 2^-u: table E at the top b bits of u, interpolated by the other W - b bits
    const ap_uint<b> i = u >> (W - b);
    const ap_uint<W - b> r = u;
    const unit_t p = lerp_unit<W, b, W - b>(cfg::EXP2_TABLE, i, r);
    // 6. 2^-n as a right shift with out_t's rounding, n clamped where the result is 0 anyway
    if (n > OF + 2) n = OF + 2;
    return cast_raw<out_t>(wide_t(p), n.to_int() + W - OF);
}

template <class x_t, class out_t>
out_t exp_neg(x_t x) {
#pragma HLS INLINE
    return exp_neg_raw<fixed_traits<x_t>::frac_bits, out_t>(to_raw(x));
}

// ---- reciprocal and rsqrt -------------------------------------------------------------------

// cast(y, s, out) for y in ufix(W+1, 1), s clamped to [-(out bits + 1), W + 2] (exact clamp).
template <class out_t, typename Cfg = nonlinear_config>
inline out_t denormalise(wide_t y, int s) {
#pragma HLS INLINE
    constexpr int W = Cfg::work_frac_bits;
    constexpr int OB = fixed_traits<out_t>::width;
    static_assert(W + OB + 3 <= 63, "denormalise: the output is too wide for the W datapath");
    if (s < -(OB + 1)) s = -(OB + 1);
    if (s > W + 2) s = W + 2;
    return cast_raw<out_t>(y, s);
}

// 1/x for an XW-bit x > 0 with XF fraction bits. Steps of nonlinear.reciprocal; mantissa, seed
// and Newton iterates in W + 1 .. W + 3 bits, products of about 2W bits.
template <int XF, int XW, class out_t, typename Cfg = nonlinear_config>
out_t reciprocal_raw(ap_uint<XW> x) {
#pragma HLS INLINE
    constexpr int W = Cfg::work_frac_bits;
    constexpr int b = Cfg::recip_table_bits;
    constexpr int OF = fixed_traits<out_t>::frac_bits;
    constexpr int MW = max2(XW, W + 1);
    static_assert(1 <= b && b < W, "reciprocal: the recip table needs 1..W-1 index bits");
    static_assert(cfg::RECIP_TABLE_FRAC_BITS == W, "reciprocal: the recip table must have W fraction bits");
    // 1. leading one; 2. mantissa m in [1, 2) with W fraction bits (truncating)
    const int e = leading_one_of<XW>(x);
    const ap_uint<MW> xm = x;
    const ap_uint<W + 1> m = e >= W ? ap_uint<MW>(xm >> (e - W)) : ap_uint<MW>(xm << (W - e));
    // 3. seed from the table
    const ap_uint<W> v = m;  // m - 2^W
    ap_int<W + 3> y = lerp_unit<W, b, W - b>(cfg::RECIP_TABLE, ap_uint<b>(v >> (W - b)), ap_uint<W - b>(v));
    // 4. Newton: y <- y (2 - m y)
    const ap_int<W + 3> two = ap_int<W + 3>(1) << (W + 1);
reciprocal_newton:
    for (int k = 0; k < Cfg::newton_steps; k++) {
#pragma HLS UNROLL
        const ap_int<2 * W + 5> my = m * y;
        const ap_int<W + 3> a = (my + (ap_int<2 * W + 5>(1) << (W - 1))) >> W;
        const ap_int<2 * W + 7> yc = y * ap_int<W + 4>(two - a);
        y = (yc + (ap_int<2 * W + 7>(1) << (W - 1))) >> W;
    }
    // 5. 1/x = y * 2^(XF - e)
    return denormalise<out_t, Cfg>(wide_t(y), W + e - XF - OF);
}

template <class x_t, class out_t>
out_t reciprocal(x_t x) {
#pragma HLS INLINE
    static_assert(!fixed_traits<x_t>::is_signed, "reciprocal: the input format must be unsigned (x > 0)");
    return reciprocal_raw<fixed_traits<x_t>::frac_bits, fixed_traits<x_t>::width, out_t>(
        ap_uint<fixed_traits<x_t>::width>(to_raw(x)));
}

// 1/sqrt(x) for an XW-bit x > 0 with XF fraction bits. Steps of nonlinear.rsqrt.
template <int XF, int XW, class out_t, typename Cfg = nonlinear_config>
out_t rsqrt_raw(ap_uint<XW> x) {
#pragma HLS INLINE
    constexpr int W = Cfg::work_frac_bits;
    constexpr int b = Cfg::rsqrt_table_bits;
    constexpr int OF = fixed_traits<out_t>::frac_bits;
    constexpr int sh = W + 2 - b;
    constexpr int MW = max2(XW, W + 2);
    static_assert(sh >= 1, "rsqrt: the rsqrt table has more index bits than W + 1");
    static_assert(cfg::RSQRT_TABLE_FRAC_BITS == W, "rsqrt: the rsqrt table must have W fraction bits");
    // 1. leading one, exponent, parity and half exponent
    const int e = leading_one_of<XW>(x);
    const int E = e - XF;
    const int par = E & 1;
    const int q = (E - par) >> 1;
    // 2. mantissa in [1, 4) with W fraction bits (truncating)
    const int shift = e - W - par;
    const ap_uint<MW> xm = x;
    const ap_uint<W + 2> m = shift >= 0 ? ap_uint<MW>(xm >> shift) : ap_uint<MW>(xm << -shift);
    // 3. seed from the table
    const ap_uint<W + 2> v = m - (ap_uint<W + 2>(1) << W);
    ap_int<W + 3> y = lerp_unit<W, b, sh>(cfg::RSQRT_TABLE, ap_uint<b>(v >> sh), ap_uint<sh>(v));
    // 4. Newton: y <- y (3 - m y^2) / 2
    const ap_int<W + 4> three = ap_int<W + 4>(3) << W;
rsqrt_newton:
    for (int k = 0; k < Cfg::newton_steps; k++) {
#pragma HLS UNROLL
        const ap_int<2 * W + 6> yy = y * y;
        const ap_int<W + 4> s2 = (yy + (ap_int<2 * W + 6>(1) << (W - 1))) >> W;
        const ap_int<2 * W + 7> ms = m * s2;
        const ap_int<W + 4> a = (ms + (ap_int<2 * W + 7>(1) << (W - 1))) >> W;
        const ap_int<2 * W + 8> yc = y * ap_int<W + 5>(three - a);
        y = (yc + (ap_int<2 * W + 8>(1) << W)) >> (W + 1);
    }
    // 5. 1/sqrt(x) = y * 2^-q
    return denormalise<out_t, Cfg>(wide_t(y), W + q - OF);
}

template <class x_t, class out_t>
out_t rsqrt(x_t x) {
#pragma HLS INLINE
    static_assert(!fixed_traits<x_t>::is_signed, "rsqrt: the input format must be unsigned (x > 0)");
    return rsqrt_raw<fixed_traits<x_t>::frac_bits, fixed_traits<x_t>::width, out_t>(
        ap_uint<fixed_traits<x_t>::width>(to_raw(x)));
}

// ---- GELU -----------------------------------------------------------------------------------

// GELU(x) = ReLU(x) - delta(|x|), delta interpolated in GELU_DELTA_TABLE (delta_t) and 0 for
// |x| >= 2^gelu_range_log2; the result is cast to act_t. Steps of nonlinear.gelu.
template <class act_t, class delta_t = gelu_delta_t, typename Cfg = nonlinear_config>
act_t gelu(act_t x_value) {
#pragma HLS INLINE
    constexpr int AF = fixed_traits<act_t>::frac_bits;
    constexpr int DF = fixed_traits<delta_t>::frac_bits;
    constexpr int g = Cfg::gelu_range_log2;
    constexpr int b = Cfg::gelu_table_bits;
    constexpr int RB = AF + g - b;
    constexpr int F = max2(AF, DF);
    static_assert(fixed_traits<act_t>::width + F - AF <= 62, "gelu: the activation is too wide for 64 bits");
    static_assert(DF == cfg::GELU_DELTA_TABLE_FRAC_BITS, "gelu: delta_t must be the format of GELU_DELTA_TABLE");
    constexpr int AW = fixed_traits<act_t>::width;
    constexpr int DW = cfg::GELU_DELTA_TABLE_WIDTH;
    constexpr int IB = RB > 0 ? AW - RB : AW;  // bits of the table index before the range check
    static_assert(DW + F - DF <= AW + F - AF, "gelu: the delta table is wider than the activation datapath");
    typedef ap_uint<DW> entry_t;
    const ap_int<AW> x = to_raw(x_value);
    // 1. a = |x| (AW unsigned bits hold |min|); 2. past the table?
    const ap_uint<AW> a = x < 0 ? ap_uint<AW>(-ap_int<AW + 1>(x)) : ap_uint<AW>(x);
    const bool beyond = AF + g >= 0 ? (AF + g >= AW ? false : a >= (ap_uint<AW + 1>(1) << (AF + g >= 0 ? AF + g : 0)))
                                    : true;
    // 3./4. interpolated delta, cast with delta's rounding, then delta's overflow
    ap_int<DW + 2> d;
    if (RB > 0) {
        const ap_uint<IB> i = beyond ? ap_uint<IB>(0) : ap_uint<IB>(a >> (RB > 0 ? RB : 0));
        const entry_t lo = cfg::GELU_DELTA_TABLE[i];
        const entry_t hi = cfg::GELU_DELTA_TABLE[i + 1];
        const ap_uint<(RB > 0 ? RB : 1)> frac = a;
        const ap_int<DW + 1> step = ap_int<DW + 1>(hi) - ap_int<DW + 1>(lo);
        const ap_int<DW + 2 + (RB > 0 ? RB : 1)> slope = step * frac;
        d = ap_int<DW + 2>(lo) + ap_int<DW + 2>(shift_round(wide_t(slope), RB, rounds_half_up<delta_t>::value));
    } else {
        d = entry_t(cfg::GELU_DELTA_TABLE[beyond ? 0 : (a << (RB > 0 ? 0 : -RB)).to_int()]);
    }
    const delta_t delta = beyond ? delta_t(0) : fit<delta_t>(wide_t(d));
    // 5. ReLU(x) - delta, exact at F fraction bits, one cast to act_t
    const ap_int<AW + F - AF + 1> relu = x > 0 ? ap_int<AW + F - AF + 1>(x) : ap_int<AW + F - AF + 1>(0);
    const ap_int<AW + F - AF + 2> y = (relu << (F - AF)) - (ap_int<AW + F - AF + 2>(to_raw(delta)) << (F - DF));
    return cast_raw<act_t>(wide_t(y), F - AF);
}

// ---- softmax --------------------------------------------------------------------------------

// Two-pass softmax of n values (n <= N): max, exp(x - max), sum, one reciprocal, multiply.
// Steps of nonlinear.softmax; exp_t, sum_t, recip_t are formats.exp_out / softmax_sum / softmax_recip.
template <class x_t, class out_t, int N, class exp_t = exp_out_t, class sum_t = softmax_sum_t,
          class recip_t = softmax_recip_t>
void softmax(const x_t x[N], out_t p[N], int n) {
#pragma HLS INLINE off
    static_assert(N >= 1, "softmax: needs at least one value");
    constexpr int XF = fixed_traits<x_t>::frac_bits;
    // 1. maximum
    x_t mx = x[0];
softmax_max:
    for (int j = 1; j < n; j++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = N
#pragma HLS PIPELINE II = 1
        if (x[j] > mx) mx = x[j];
    }
    // 2. exp(x - max); 3. every term cast into the sum format, summed exactly, then saturated
    exp_t e[N];
    typedef ap_ufixed<fixed_traits<sum_t>::width + ceil_log2(N) + 1, fixed_traits<sum_t>::int_bits + ceil_log2(N) + 1>
        total_t;
    total_t total = 0;
softmax_exp:
    for (int j = 0; j < n; j++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = N
#pragma HLS PIPELINE II = 1
        e[j] = exp_neg_raw<XF, exp_t>(to_raw(x[j]) - to_raw(mx));
        total += sum_t(e[j]);
    }
    const sum_t s = total;
    // 4. one reciprocal; 5. p = e * (1/s)
    const recip_t r = reciprocal<sum_t, recip_t>(s);
softmax_scale:
    for (int j = 0; j < n; j++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = N
#pragma HLS PIPELINE II = 1
        p[j] = e[j] * r;
    }
}

}  // namespace edgemoe
