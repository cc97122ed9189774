// csim_linear.cpp - C-simulation entry point of the unified linear unit (tests only).
#include "csim_common.h"
#include "linear.h"

using namespace edgemoe;

namespace {

typedef linear_config L;
typedef token_index<L>::type token_t;

// Which formats a layer reads: the three kinds of layer of the model.
enum class LayerKind : int {
    Mlp = 0,    // act x linear_weight + bias: MLP, experts, gate (zero bias)
    Attn = 1,   // act x linear_weight + attn_bias: q/k/v and the attention projection
    Patch = 2,  // pixel x patch_weight + bias: the patch embedding
};

template <class x_t, typename Cfg>
int run(const int64_t* x_raw, int rows, int n_in, const int64_t* w_raw, int n_out, const int64_t* b_raw,
        Epilogue epilogue, const int64_t* score_raw, const int64_t* token_raw, int n_tokens, int64_t* y_raw) {
    typedef typename Cfg::weight_t w_t;
    static x_t x[L::max_rows][L::max_in];
    static typename Cfg::bias_t bias[L::max_out];
    static gate_score_t score[L::max_rows];
    static token_t token[L::max_rows];
    static act_t y[L::max_tokens][L::max_out];
    const bool accumulate = epilogue == Epilogue::ExpertAccumulate;
    for (int r = 0; r < rows; r++) {
        csim::load_raw(x_raw + (long)r * n_in, x[r], n_in);
        score[r] = accumulate ? from_raw<gate_score_t>(score_raw[r]) : gate_score_t(0);
        token[r] = accumulate ? token_raw[r] : r;
    }
    csim::load_raw(b_raw, bias, n_out);
    const int y_rows = accumulate ? n_tokens : rows;
    if (accumulate)
        for (int t = 0; t < n_tokens; t++) csim::load_raw(y_raw + (long)t * n_out, y[t], n_out);
    // The weight stream in the order of the weight image, zero rows past n_out.
    hls::stream<WeightRow<w_t, L::tile_in> > w_in("w_in");
    for (int o0 = 0; o0 < n_out; o0 += L::tile_out)
        for (int i0 = 0; i0 < n_in; i0 += L::tile_in)
            for (int o = o0; o < o0 + L::tile_out; o++) {
                WeightRow<w_t, L::tile_in> row;
                for (int i = 0; i < L::tile_in; i++)
                    row.w[i] = o < n_out ? from_raw<w_t>(w_raw[(long)o * n_in + i0 + i]) : w_t(0);
                w_in.write(row);
            }
    linear<x_t, act_t, Cfg>(x, rows, n_in, n_out, w_in, bias, epilogue, score, token, y);
    if (!w_in.empty()) return csim::fail("linear: weights left in the stream after the layer");
    for (int t = 0; t < y_rows; t++) csim::store_raw(y[t], y_raw + (long)t * n_out, n_out);
    return 0;
}

}  // namespace

extern "C" int em_linear(int kind, const int64_t* x, int rows, int n_in, const int64_t* w, int n_out,
                         const int64_t* b, int epilogue, const int64_t* score, const int64_t* token, int n_tokens,
                         int64_t* y) {
    if (rows < 0 || rows > L::max_rows)
        return csim::fail("linear: %d rows, the unit holds 0..%d", rows, L::max_rows);
    if (n_in <= 0 || n_in > L::max_in || n_in % L::tile_in)
        return csim::fail("linear: %d inputs, need a multiple of %d up to %d", n_in, L::tile_in, L::max_in);
    if (n_out <= 0 || n_out > L::max_out)
        return csim::fail("linear: %d outputs, the unit holds 1..%d", n_out, L::max_out);
    const Epilogue ep = static_cast<Epilogue>(epilogue);
    if (ep != Epilogue::Bias && ep != Epilogue::BiasGelu && ep != Epilogue::ExpertAccumulate)
        return csim::fail("linear: unknown epilogue %d", epilogue);
    if (ep == Epilogue::ExpertAccumulate) {
        if (n_tokens < 0 || n_tokens > L::max_tokens)
            return csim::fail("linear: %d tokens in the accumulation buffer, at most %d", n_tokens, L::max_tokens);
        for (int r = 0; r < rows; r++)
            if (token[r] < 0 || token[r] >= n_tokens)
                return csim::fail("linear: queue row %d names token %ld, outside 0..%d", r, (long)token[r],
                                  n_tokens - 1);
    }
    switch (static_cast<LayerKind>(kind)) {
        case LayerKind::Mlp:
            return run<act_t, linear_config>(x, rows, n_in, w, n_out, b, ep, score, token, n_tokens, y);
        case LayerKind::Attn:
            return run<act_t, linear_attn_config>(x, rows, n_in, w, n_out, b, ep, score, token, n_tokens, y);
        case LayerKind::Patch:
            return run<pixel_t, linear_patch_config>(x, rows, n_in, w, n_out, b, ep, score, token, n_tokens, y);
    }
    return csim::fail("linear: unknown layer kind %d (0 mlp, 1 attn, 2 patch)", kind);
}
