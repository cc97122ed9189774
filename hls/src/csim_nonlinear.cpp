// csim_nonlinear.cpp - C-simulation entry points of the nonlinear functions (tests only).
#include "csim_common.h"
#include "nonlinear.h"

using namespace edgemoe;

namespace {

constexpr int kMaxSoftmax = cfg::EXPERTS;

}  // namespace

// `function`: a NonlinearFunction (edgemoe_config.h), the function at the formats the model uses it with.
extern "C" int em_nonlinear(int function, const int64_t* x, int n, int64_t* y) {
    for (int i = 0; i < n; i++) {
        const wide_t v = x[i];
        switch (static_cast<NonlinearFunction>(function)) {
            case NonlinearFunction::ExpScore:
                y[i] = to_raw(exp_neg_raw<fixed_traits<attn_score_t>::frac_bits, exp_out_t>(v));
                break;
            case NonlinearFunction::ExpAct:
                y[i] = to_raw(exp_neg_raw<fixed_traits<act_t>::frac_bits, exp_out_t>(v));
                break;
            case NonlinearFunction::Reciprocal:
                if (x[i] <= 0) return csim::fail("reciprocal: input %d is %ld, not positive", i, (long)x[i]);
                y[i] = to_raw(reciprocal<softmax_sum_t, softmax_recip_t>(from_raw<softmax_sum_t>(x[i])));
                break;
            case NonlinearFunction::Rsqrt:
                if (x[i] <= 0) return csim::fail("rsqrt: input %d is %ld, not positive", i, (long)x[i]);
                y[i] = to_raw(rsqrt<ln_var_t, ln_rstd_t>(from_raw<ln_var_t>(x[i])));
                break;
            case NonlinearFunction::Gelu:
                y[i] = to_raw(gelu<act_t>(from_raw<act_t>(x[i])));
                break;
            default:
                return csim::fail("nonlinear: unknown function %d", function);
        }
    }
    return 0;
}

// Softmax of each of `rows` rows of n <= EXPERTS logits (act) into gate scores.
extern "C" int em_softmax(const int64_t* x, int rows, int n, int64_t* p) {
    if (n < 1 || n > kMaxSoftmax) return csim::fail("softmax: %d values per row, the unit holds 1..%d", n, kMaxSoftmax);
    act_t xv[kMaxSoftmax];
    gate_score_t pv[kMaxSoftmax];
    for (int r = 0; r < rows; r++) {
        csim::load_raw(x + (long)r * n, xv, n);
        softmax<act_t, gate_score_t, kMaxSoftmax>(xv, pv, n);
        csim::store_raw(pv, p + (long)r * n, n);
    }
    return 0;
}
