// csim_moe.cpp - C-simulation entry point of the MoE layer (tests only): gate through the linear
// unit, routing, then the loop over active experts that fetches each one's weights once.
#include "csim_common.h"
#include "moe.h"

using namespace edgemoe;

namespace {

typedef moe_config M;
typedef M::linear L;

// Stream rows [o][i] of a raw [n_out][n_in] matrix in the order of the weight image (zero rows past n_out).
template <class w_t>
void stream_weights(const int64_t* w, int n_out, int n_in, hls::stream<WeightRow<w_t, L::tile_in> >& s) {
    for (int o0 = 0; o0 < n_out; o0 += L::tile_out)
        for (int i0 = 0; i0 < n_in; i0 += L::tile_in)
            for (int o = o0; o < o0 + L::tile_out; o++) {
                WeightRow<w_t, L::tile_in> row;
                for (int i = 0; i < L::tile_in; i++)
                    row.w[i] = o < n_out ? from_raw<w_t>(w[(long)o * n_in + i0 + i]) : w_t(0);
                s.write(row);
            }
}

}  // namespace

// x [N][D]; gate [E][D]; w1 [E][He][D]; b1 [E][He]; w2 [E][D][He]; b2 [E][D]. Outputs: y [N][D],
// logits [N][E], scores [N][E], experts [N][K], queue lengths [E], fetched [E] (experts in fetch
// order, -1 after the last).
extern "C" int em_moe(const int64_t* x, const int64_t* gate, const int64_t* w1, const int64_t* b1, const int64_t* w2,
                      const int64_t* b2, int64_t* y, int64_t* logits, int64_t* scores, int64_t* experts,
                      int64_t* counts, int64_t* fetched) {
    constexpr int N = M::tokens, D = M::dim, E = M::experts, K = M::top_k, He = M::expert_hidden;
    static act_t xl[L::max_rows][L::max_in];
    static act_t gl[L::max_tokens][L::max_out];
    static act_t yl[L::max_tokens][L::max_out];
    static MoeRouting<M> rt;
    static bias_t zero[L::max_out];
    static bias_t b1v[L::max_out], b2v[L::max_out];
    gate_score_t no_score[L::max_rows];
    token_index<L>::type no_token[L::max_rows];
    for (int i = 0; i < N; i++) csim::load_raw(x + (long)i * D, xl[i], D);
    // 1. the gate through the linear unit
    hls::stream<WeightRow<linear_weight_t, L::tile_in> > ws("gate");
    stream_weights<linear_weight_t>(gate, E, D, ws);
    linear<act_t, act_t, L>(xl, N, D, E, ws, zero, Epilogue::Bias, no_score, no_token, gl);
    // 2.-4. softmax, top-k, queues
    moe_route<act_t, M>(gl, N, rt);
    // 5. active experts in ascending order, each fetched once
    for (int i = 0; i < N; i++)
        for (int d = 0; d < D; d++) yl[i][d] = 0;
    int n_fetched = 0;
    for (int e = 0; e < E; e++) {
        fetched[e] = -1;
        if (rt.count[e] == 0) continue;
        hls::stream<WeightRow<linear_weight_t, L::tile_in> > s1("w1"), s2("w2");
        stream_weights<linear_weight_t>(w1 + (long)e * He * D, He, D, s1);
        stream_weights<linear_weight_t>(w2 + (long)e * D * He, D, He, s2);
        csim::load_raw(b1 + (long)e * He, b1v, He);
        csim::load_raw(b2 + (long)e * D, b2v, D);
        moe_expert<act_t, M>(xl, rt, e, s1, b1v, s2, b2v, yl);
        if (!s1.empty() || !s2.empty()) return csim::fail("moe: expert %d left weights in its streams", e);
        fetched[n_fetched++] = e;
    }
    for (int i = 0; i < N; i++) {
        csim::store_raw(yl[i], y + (long)i * D, D);
        csim::store_raw(gl[i], logits + (long)i * E, E);
        csim::store_raw(rt.score[i], scores + (long)i * E, E);
        for (int k = 0; k < K; k++) experts[i * K + k] = rt.expert[i][k].to_int();
    }
    for (int e = 0; e < E; e++) counts[e] = rt.count[e];
    return 0;
}
