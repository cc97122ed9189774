// csim_attention.cpp - C-simulation entry point of the reordered attention (tests only).
#include "attention.h"
#include "csim_common.h"

using namespace edgemoe;

extern "C" int em_attention(const int64_t* q, const int64_t* k, const int64_t* v, int64_t* out) {
    typedef attention_config C;
    static act_t qv[C::tokens][C::dim], kv[C::tokens][C::dim], vv[C::tokens][C::dim], ov[C::tokens][C::dim];
    csim::load_raw(q, &qv[0][0], C::tokens * C::dim);
    csim::load_raw(k, &kv[0][0], C::tokens * C::dim);
    csim::load_raw(v, &vv[0][0], C::tokens * C::dim);
    attention<act_t, C>(qv, kv, vv, ov);
    csim::store_raw(&ov[0][0], out, C::tokens * C::dim);
    return 0;
}
