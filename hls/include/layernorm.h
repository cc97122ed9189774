// layernorm.h - LayerNorm over the token width, in the order of golden/fixed/layernorm.py.
//
// Two dataflow stages joined by streams. layernorm_stats: one pass over a token accumulates
// sum(x) and sum(cast_ln_square(x*x)) in exact wide adders;
// mean and E[x^2] are exact divisions by the constant dim rounded by their cast (div_const);
// var = max(E[x^2] - cast_ln_var(mean^2), 0); rstd = rsqrt(fit_ln_var(var + eps)). layernorm_apply:
// a second pass over the token (forwarded through a FIFO) gives
// y = cast_out(cast_ln_norm((x - mean) * rstd) * gamma + beta).
//
// Template parameters:
//   x_t     input tokens (act_t)
//   g_t     gamma and beta (norm_t)
//   out_t   output tokens (act_t)
//   Cfg     sizes: max_rows, dim (see layernorm_config); the ln_* formats come from the config
#pragma once

#include "edgemoe_types.h"
#include "nonlinear.h"

namespace edgemoe {

struct layernorm_config {
    static constexpr int max_rows = cfg::TOKENS;
    static constexpr int dim = cfg::DIM;
};

// floor(num / DEN) (toward -inf) or floor((2 num + DEN) / (2 DEN)) (round half up): the exact
// quotient by a constant, rounded as a cast with that rounding does (layernorm.div_const).
template <long long DEN>
inline wide_t div_const(wide_t num, bool half_up) {
#pragma HLS INLINE
    static_assert(DEN > 0, "div_const: the divisor must be a positive constant");
    const wide_t n = half_up ? wide_t(2 * num + DEN) : num;
    const wide_t d = half_up ? wide_t(2 * DEN) : wide_t(DEN);
    const wide_t q = n / d;  // toward zero
    return (n < 0 && q * d != n) ? wide_t(q - 1) : q;
}

// sum / DEN (sum with SF fraction bits) at out_t's fraction bits, rounded by out_t, then fitted.
template <class out_t, int SF, long long DEN>
inline out_t div_to(wide_t sum) {
#pragma HLS INLINE
    constexpr int shift = fixed_traits<out_t>::frac_bits - SF;
    constexpr bool half_up = rounds_half_up<out_t>::value;
    const wide_t q = shift >= 0 ? div_const<DEN>(sum << (shift >= 0 ? shift : 0), half_up)
                                : div_const<(DEN << (shift < 0 ? -shift : 0))>(sum, half_up);
    return fit<out_t>(q);
}

// The statistics of one token: its mean and 1/sqrt(var + eps).
struct LayerNormStats {
    ln_mean_t mean;
    ln_rstd_t rstd;
};

// Dataflow stage 1: read each token once, forward it on `row_out` and its statistics on `stats_out`.
template <class x_t, typename Cfg = layernorm_config>
void layernorm_stats(const x_t x[Cfg::max_rows][Cfg::dim], int rows, hls::stream<x_t>& row_out,
                     hls::stream<LayerNormStats>& stats_out) {
#pragma HLS INLINE off
    constexpr int D = Cfg::dim;
    constexpr int max_rows = Cfg::max_rows;
    constexpr int XF = fixed_traits<x_t>::frac_bits;
    constexpr int QF = fixed_traits<ln_square_t>::frac_bits;
    static_assert(D >= 1, "layernorm: needs at least one value per token");
    typedef ap_fixed<fixed_traits<x_t>::width + ceil_log2(D) + 1, fixed_traits<x_t>::int_bits + ceil_log2(D) + 1> sum1_t;
    typedef ap_ufixed<fixed_traits<ln_square_t>::width + ceil_log2(D) + 1,
                      fixed_traits<ln_square_t>::int_bits + ceil_log2(D) + 1>
        sum2_t;
    static_assert(fixed_traits<sum2_t>::width <= 63, "layernorm: the sum of squares exceeds 63 bits");
    // eps as a raw value of ln_var (round half up, saturating), as the golden model quantises it
    const ap_ufixed<fixed_traits<ln_var_t>::width, fixed_traits<ln_var_t>::int_bits, AP_RND, AP_SAT> eps = cfg::LN_EPS;
stats_rows:
    for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_rows
        // 1. one pass: sum and sum of squares
        sum1_t s1 = 0;
        sum2_t s2 = 0;
    stats_sums:
        for (int i = 0; i < D; i++) {
#pragma HLS PIPELINE II = 1
            const x_t v = x[r][i];
            s1 += v;
            s2 += ln_square_t(v * v);
            row_out.write(v);
        }
        // 2. mean and E[x^2]: exact divisions by the constant D
        LayerNormStats st;
        st.mean = div_to<ln_mean_t, XF, D>(to_raw(s1));
        const ln_var_t ex2 = div_to<ln_var_t, QF, D>(to_raw(s2));
        // 3. variance, clamped at 0 (rounding can make the difference negative)
        const ln_var_t m2 = st.mean * st.mean;
        const ln_var_t var = ex2 > m2 ? ln_var_t(ex2 - m2) : ln_var_t(0);
        // 4. + eps (saturating), 1/sqrt
        const ln_var_t ve = var + eps;
        st.rstd = rsqrt<ln_var_t, ln_rstd_t>(ve);
        stats_out.write(st);
    }
}

// Dataflow stage 2: normalise each forwarded token with its statistics, scale and shift.
template <class x_t, class g_t, class out_t, typename Cfg = layernorm_config>
void layernorm_apply(hls::stream<x_t>& row_in, hls::stream<LayerNormStats>& stats_in, int rows,
                     const g_t gamma[Cfg::dim], const g_t beta[Cfg::dim], out_t y[Cfg::max_rows][Cfg::dim]) {
#pragma HLS INLINE off
    constexpr int D = Cfg::dim;
    constexpr int max_rows = Cfg::max_rows;
apply_rows:
    for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_rows
        const LayerNormStats st = stats_in.read();
        // 5./6. z = cast_norm((x - mean) * rstd), y = cast_out(z * gamma + beta), sums exact
    apply_values:
        for (int i = 0; i < D; i++) {
#pragma HLS PIPELINE II = 1
            const ln_norm_t z = (row_in.read() - st.mean) * st.rstd;
            y[r][i] = z * gamma[i] + beta[i];
        }
    }
}

// LayerNorm of `rows` tokens: the two stages overlap (token r + 1's statistics while token r is
// normalised); the token FIFO holds two tokens, one being summed and one being applied.
template <class x_t, class g_t, class out_t, typename Cfg = layernorm_config>
void layernorm(const x_t x[Cfg::max_rows][Cfg::dim], int rows, const g_t gamma[Cfg::dim], const g_t beta[Cfg::dim],
               out_t y[Cfg::max_rows][Cfg::dim]) {
#pragma HLS INLINE off
#pragma HLS DATAFLOW
    constexpr int row_depth = 2 * Cfg::dim;
    hls::stream<x_t> rows_s("layernorm_rows");
    hls::stream<LayerNormStats> stats_s("layernorm_stats");
#pragma HLS STREAM variable = rows_s depth = row_depth
#pragma HLS STREAM variable = stats_s depth = 2
    layernorm_stats<x_t, Cfg>(x, rows, rows_s, stats_s);
    layernorm_apply<x_t, g_t, out_t, Cfg>(rows_s, stats_s, rows, gamma, beta, y);
}

}  // namespace edgemoe
