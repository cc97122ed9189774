// attention.h - reordered multi-head attention with the single-pass (online) softmax.
//
// The schedule of golden/fixed/attention.py, which is part of the numeric contract because the
// running sum is rounded after every key:
//   * per head, queries go in groups of P = Cfg::p; slot j of group g holds query g*P + j
//     (slots past the last token idle);
//   * at step t = 0..N-1 slot j reads key (t + j) mod N. The key rows move through a shift
//     register of P rows (slot j reads at step t the row slot j+1 read at step t-1), so one K
//     row enters per step whatever P is: constant bandwidth;
//   * pass 1 (Q.K^T): s = cast_score((q.k) * scale) (dot product and scale exact), then per slot
//     the running max m and sum l: on a new max (or the first key) l = cast_sum(l * exp(m - s) + 1),
//     m = s; otherwise l = cast_sum(l + exp(s - m)); then r = reciprocal(l);
//   * pass 2 (A.V, V rows through the same kind of shift register):
//     p = cast_prob(exp(s - m) * r), out = cast_act(sum_k p_k v_k) with the sum exact.
// Each slot computes Cfg::block products of its dot product per cycle: P * block MACs per cycle.
//
// Template parameters:
//   act_t  q, k, v and output (formats.act); score/exp/sum/recip/prob formats come from the config
//   Cfg    sizes: tokens, dim, heads, head_dim, p, block (see attention_config)
#pragma once

#include "edgemoe_types.h"
#include "nonlinear.h"

namespace edgemoe {

struct attention_config {
    static constexpr int tokens = cfg::TOKENS;
    static constexpr int dim = cfg::DIM;
    static constexpr int heads = cfg::HEADS;
    static constexpr int head_dim = cfg::HEAD_DIM;
    static constexpr int p = cfg::ATTN_P;
    static constexpr int block = cfg::ATTN_BLOCK;
};

// round(2^F / sqrt(d)) half up, exactly: the largest n with (2n - 1)^2 d <= 2^(2F + 2).
constexpr unsigned long long isqrt_scale(int F, int d) {
    unsigned long long lo = 0, hi = 1ULL << (F + 1);
    while (lo < hi) {
        const unsigned long long mid = (lo + hi + 1) / 2;
        const unsigned long long odd = 2 * mid - 1;
        if (odd * odd * (unsigned long long)d <= (1ULL << (2 * F + 2)))
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

// The score scale head_dim^-0.5 in scale_t (round half up, saturating), as golden attention.score_scale.
template <class scale_t, int head_dim>
inline scale_t score_scale() {
#pragma HLS INLINE
    constexpr int F = fixed_traits<scale_t>::frac_bits;
    static_assert(2 * F + 2 <= 62, "score_scale: attn_scale has too many fraction bits for the exact rounding");
    constexpr unsigned long long raw = isqrt_scale(F, head_dim);
    constexpr unsigned long long max_raw = (1ULL << fixed_traits<scale_t>::width) - 1;
    return from_raw<scale_t>(raw > max_raw ? max_raw : raw);
}

// i mod N for 0 <= i < 2N: the key a slot reads in the rotated order.
template <int N>
inline int rotated(int i) {
#pragma HLS INLINE
    return i >= N ? i - N : i;
}

// The shift register of P rows that carries K (pass 1) or V (pass 2) through the query slots,
// each row one head's columns of `src`, one new row entering slot P-1 per step. rotation_prime
// fills slots 1..P-1 with rows 0..P-2 before step 0.
//   act_t  the row values (formats.act); Cfg  sizes: tokens, dim, head_dim, p (attention_config)
template <class act_t, typename Cfg>
inline void rotation_prime(act_t row[Cfg::p][Cfg::head_dim], const act_t src[Cfg::tokens][Cfg::dim],
                           int h) {
#pragma HLS INLINE
    constexpr int P = Cfg::p;
    constexpr int HD = Cfg::head_dim;
attention_prime:
    for (int j = 0; j + 1 < P; j++)
    attention_prime_dims:
        for (int d = 0; d < HD; d++) {
#pragma HLS PIPELINE II = 1
            row[j + 1][d] = src[j][h * HD + d];
        }
}

// Step t of the shift register: every slot takes its upper neighbour's row and row (t + P - 1) mod N
// enters slot P-1, so slot j then holds row (t + j) mod N. Template parameters as rotation_prime.
template <class act_t, typename Cfg>
inline void rotation_shift(act_t row[Cfg::p][Cfg::head_dim], const act_t src[Cfg::tokens][Cfg::dim], int h,
                           int t) {
#pragma HLS INLINE
    constexpr int P = Cfg::p;
    constexpr int HD = Cfg::head_dim;
    const int enter = rotated<Cfg::tokens>(t + P - 1);
attention_shift:
    for (int d = 0; d < HD; d++) {
#pragma HLS PIPELINE II = 1
    attention_shift_slots:
        for (int j = 0; j + 1 < P; j++) {
#pragma HLS UNROLL
            row[j][d] = row[j + 1][d];
        }
        row[P - 1][d] = src[enter][h * HD + d];
    }
}

template <class act_t, typename Cfg = attention_config>
void attention(const act_t q[Cfg::tokens][Cfg::dim], const act_t k[Cfg::tokens][Cfg::dim],
               const act_t v[Cfg::tokens][Cfg::dim], act_t out[Cfg::tokens][Cfg::dim]) {
#pragma HLS INLINE off
    constexpr int N = Cfg::tokens;
    constexpr int P = Cfg::p;
    constexpr int HD = Cfg::head_dim;
    constexpr int B = Cfg::block;
    constexpr int SF = fixed_traits<attn_score_t>::frac_bits;
    static_assert(1 <= P && P <= N, "attention: P query slots must be in 1..tokens");
    static_assert(HD % B == 0, "attention: head_dim must be a whole number of blocks");
    static_assert(Cfg::heads * HD == Cfg::dim, "attention: heads * head_dim must equal dim");
    typedef typename accum_type<act_t, act_t, HD>::type dot_t;
    typedef typename accum_type<attn_prob_t, act_t, N>::type av_t;
#pragma HLS ARRAY_PARTITION variable = q cyclic factor = B dim = 2
#pragma HLS ARRAY_PARTITION variable = k cyclic factor = B dim = 2
#pragma HLS ARRAY_PARTITION variable = v cyclic factor = B dim = 2
    const attn_scale_t scale = score_scale<attn_scale_t, HD>();
    constexpr int groups = (N + P - 1) / P;

attention_heads:
    for (int h = 0; h < Cfg::heads; h++) {
    attention_groups:
        for (int g = 0; g < groups; g++) {
            act_t q_slot[P][HD];
            act_t row[P][HD];  // the K (pass 1) or V (pass 2) shift register
            attn_score_t s_buf[P][N];
            attn_score_t m[P];
            softmax_sum_t l[P];
            softmax_recip_t r[P];
            av_t acc[P][HD];
#pragma HLS ARRAY_PARTITION variable = q_slot complete dim = 1
#pragma HLS ARRAY_PARTITION variable = q_slot cyclic factor = B dim = 2
#pragma HLS ARRAY_PARTITION variable = row complete dim = 1
#pragma HLS ARRAY_PARTITION variable = row cyclic factor = B dim = 2
#pragma HLS ARRAY_PARTITION variable = s_buf complete dim = 1
#pragma HLS ARRAY_PARTITION variable = acc complete dim = 1
#pragma HLS ARRAY_PARTITION variable = acc cyclic factor = B dim = 2
        attention_load_q:
            for (int j = 0; j < P; j++) {
                const int i = g * P + j;
            attention_load_q_dims:
                for (int d = 0; d < HD; d++) {
#pragma HLS PIPELINE II = 1
                    q_slot[j][d] = i < N ? q[i][h * HD + d] : act_t(0);
                }
            }
            // ---- pass 1: scores, running max and running sum in the rotated key order
            rotation_prime<act_t, Cfg>(row, k, h);
        attention_qk_steps:
            for (int t = 0; t < N; t++) {
                rotation_shift<act_t, Cfg>(row, k, h, t);
                // P dot products side by side, `block` elements each per cycle
                dot_t dot[P];
#pragma HLS ARRAY_PARTITION variable = dot complete
            attention_qk_clear:
                for (int j = 0; j < P; j++) {
#pragma HLS UNROLL
                    dot[j] = 0;
                }
            attention_qk_blocks:
                for (int d0 = 0; d0 < HD; d0 += B) {
#pragma HLS PIPELINE II = 1
                attention_qk_blocks_slots:
                    for (int j = 0; j < P; j++) {
#pragma HLS UNROLL
                    attention_qk_blocks_dims:
                        for (int d = d0; d < d0 + B; d++) {
#pragma HLS UNROLL
                            dot[j] += q_slot[j][d] * row[j][d];
                        }
                    }
                }
            attention_qk_update:
                for (int j = 0; j < P; j++) {
#pragma HLS UNROLL
                    const int key = rotated<N>(t + j);
                    const attn_score_t s = dot[j] * scale;
                    s_buf[j][key] = s;
                    const bool is_new = t == 0 || s > m[j];
                    const wide_t diff = t == 0 ? wide_t(0) : is_new ? wide_t(to_raw(m[j]) - to_raw(s))
                                                                    : wide_t(to_raw(s) - to_raw(m[j]));
                    const exp_out_t e = exp_neg_raw<SF, exp_out_t>(diff);
                    if (is_new) {
                        l[j] = t == 0 ? softmax_sum_t(1) : softmax_sum_t(l[j] * e + 1);
                        m[j] = s;
                    } else {
                        l[j] = l[j] + e;
                    }
                }
            }
        attention_recip:
            for (int j = 0; j < P; j++) {
#pragma HLS UNROLL
                r[j] = reciprocal<softmax_sum_t, softmax_recip_t>(l[j]);
            }
            // ---- pass 2: probabilities times V, V rows through the shift register
        attention_clear:
            for (int j = 0; j < P; j++)
            attention_clear_dims:
                for (int d = 0; d < HD; d++) {
#pragma HLS PIPELINE II = 1
                    acc[j][d] = 0;
                }
            rotation_prime<act_t, Cfg>(row, v, h);
        attention_av_steps:
            for (int t = 0; t < N; t++) {
                rotation_shift<act_t, Cfg>(row, v, h, t);
                attn_prob_t prob[P];
#pragma HLS ARRAY_PARTITION variable = prob complete
            attention_av_probs:
                for (int j = 0; j < P; j++) {
#pragma HLS UNROLL
                    const int key = rotated<N>(t + j);
                    const exp_out_t e = exp_neg_raw<SF, exp_out_t>(wide_t(to_raw(s_buf[j][key]) - to_raw(m[j])));
                    prob[j] = e * r[j];
                }
            attention_av_blocks:
                for (int d0 = 0; d0 < HD; d0 += B) {
#pragma HLS PIPELINE II = 1
                attention_av_blocks_slots:
                    for (int j = 0; j < P; j++) {
#pragma HLS UNROLL
                    attention_av_blocks_dims:
                        for (int d = d0; d < d0 + B; d++) {
#pragma HLS UNROLL
                            acc[j][d] += prob[j] * row[j][d];
                        }
                    }
                }
            }
        attention_store:
            for (int j = 0; j < P; j++) {
                const int i = g * P + j;
            attention_store_dims:
                for (int d = 0; d < HD; d++) {
#pragma HLS PIPELINE II = 1
                    if (i < N) out[i][h * HD + d] = acc[j][d];
                }
            }
        }
    }
}

}  // namespace edgemoe
