// csim_layernorm.cpp - C-simulation entry point of LayerNorm (tests only).
#include "csim_common.h"
#include "layernorm.h"

using namespace edgemoe;

extern "C" int em_layernorm(const int64_t* x, int rows, const int64_t* gamma, const int64_t* beta, int64_t* y) {
    typedef layernorm_config C;
    if (rows < 0 || rows > C::max_rows) return csim::fail("layernorm: %d rows, the unit holds 0..%d", rows, C::max_rows);
    static act_t xv[C::max_rows][C::dim];
    static act_t yv[C::max_rows][C::dim];
    norm_t g[C::dim], b[C::dim];
    for (int r = 0; r < rows; r++) csim::load_raw(x + (long)r * C::dim, xv[r], C::dim);
    csim::load_raw(gamma, g, C::dim);
    csim::load_raw(beta, b, C::dim);
    layernorm<act_t, norm_t, act_t, C>(xv, rows, g, b, yv);
    for (int r = 0; r < rows; r++) csim::store_raw(yv[r], y + (long)r * C::dim, C::dim);
    return 0;
}
