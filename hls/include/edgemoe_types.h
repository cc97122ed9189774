// edgemoe_types.h - fixed-point helpers shared by every kernel.
//
// The generated edgemoe_config.h declares sizes, formats (one ap_fixed typedef per Cast point
// of edgemoe.config) and tables; this header adds what the kernels need on top of it:
//   fixed_traits<T>  width / integer bits / fraction bits / signedness of an ap_[u]fixed type,
//   from_raw<T>()    the value whose bit pattern is a raw integer (raw * 2^-frac),
//   to_raw()         the raw integer of a value, sign-extended to 64 bits,
//   ceil_log2()      compile-time bit counts for exact accumulators.
#pragma once

#include "ap_fixed.h"
#include "ap_int.h"
#include "edgemoe_config.h"
#include "hls_stream.h"

namespace edgemoe {

// ---- compile-time helpers -------------------------------------------------------------------
constexpr int ceil_log2(int n) { return n <= 1 ? 0 : 1 + ceil_log2((n + 1) / 2); }
constexpr int max2(int a, int b) { return a > b ? a : b; }
constexpr int min2(int a, int b) { return a < b ? a : b; }
constexpr bool is_pow2(int n) { return n > 0 && (n & (n - 1)) == 0; }

// ---- format traits --------------------------------------------------------------------------
template <class T>
struct fixed_traits;

template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct fixed_traits<ap_fixed<W, I, Q, O, N> > {
    static constexpr int width = W;
    static constexpr int int_bits = I;
    static constexpr int frac_bits = W - I;
    static constexpr bool is_signed = true;
};

template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
struct fixed_traits<ap_ufixed<W, I, Q, O, N> > {
    static constexpr int width = W;
    static constexpr int int_bits = I;
    static constexpr int frac_bits = W - I;
    static constexpr bool is_signed = false;
};

template <int W>
struct fixed_traits<ap_int<W> > {
    static constexpr int width = W;
    static constexpr int int_bits = W;
    static constexpr int frac_bits = 0;
    static constexpr bool is_signed = true;
};

template <int W>
struct fixed_traits<ap_uint<W> > {
    static constexpr int width = W;
    static constexpr int int_bits = W;
    static constexpr int frac_bits = 0;
    static constexpr bool is_signed = false;
};

// The raw-integer view of a format: ap_int<W> or ap_uint<W>.
template <class T>
struct raw_of {
    typedef ap_int_base<fixed_traits<T>::width, fixed_traits<T>::is_signed> type;
};

// ---- raw <-> value ----------------------------------------------------------------------------
// The value of T whose bit pattern is the low T::width bits of raw.
template <class T>
inline T from_raw(long long raw) {
#pragma HLS INLINE
    T x;
    x.range(fixed_traits<T>::width - 1, 0) = raw;
    return x;
}

// The raw integer of x (x * 2^frac), sign-extended for signed formats.
template <class T>
inline long long to_raw(const T& x) {
#pragma HLS INLINE
    typename raw_of<T>::type r;
    r.range(fixed_traits<T>::width - 1, 0) = x.range(fixed_traits<T>::width - 1, 0);
    return r.to_int64();
}

// ---- exact arithmetic types --------------------------------------------------------------------
// The signed type that holds every product a_t * b_t exactly (one extra bit when both are
// unsigned, since the result is kept signed).
template <class a_t, class b_t>
struct product_type {
    static constexpr int extra = (fixed_traits<a_t>::is_signed || fixed_traits<b_t>::is_signed) ? 0 : 1;
    static constexpr int width = fixed_traits<a_t>::width + fixed_traits<b_t>::width + extra;
    static constexpr int frac_bits = fixed_traits<a_t>::frac_bits + fixed_traits<b_t>::frac_bits;
    typedef ap_fixed<width, width - frac_bits> type;
};

// The type that holds a sum of `terms` values of a_t * b_t exactly (an exact accumulator).
template <class a_t, class b_t, int terms>
struct accum_type {
    typedef product_type<a_t, b_t> prod;
    static constexpr int width = prod::width + ceil_log2(terms);
    static constexpr int frac_bits = prod::frac_bits;
    typedef ap_fixed<width, width - frac_bits> type;
};

}  // namespace edgemoe
