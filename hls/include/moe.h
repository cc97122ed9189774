// moe.h - mixture of experts with patch reordering, in the order of golden/fixed/moe.py.
//
//   1. gate logits: the linear unit without bias (Epilogue::Bias, zero bias), cast to act;
//   2. softmax over the experts of each token into gate_score (nonlinear.h softmax);
//   3. top-k per token on the raw scores, best first, equal scores -> lower expert index;
//   4. per-expert queues of token indices in token order (patch reordering);
//   5. for each expert with a non-empty queue, in ascending order, its weights are fetched once
//      and its queued tokens go through fc1 (Epilogue::BiasGelu) and fc2
//      (Epilogue::ExpertAccumulate: scaled by the token's gate score and added, saturating, into
//      the token's row of the output buffer, which starts at zero). Idle experts are never fetched.
// Steps 1-4 are moe_route (after the gate), step 5 is moe_expert once per active expert; the
// caller owns the loop over experts because it owns the weight fetch (moe_active lists them).
// A queue holds up to all tokens, so one expert receiving every token is an ordinary case.
//
// Template parameters:
//   act_t  tokens and outputs (formats.act)
//   w_t    expert weights (linear_weight_t), b_t expert biases (bias_t)
//   Cfg    sizes: tokens, experts, top_k, dim, expert_hidden, and the linear unit (see moe_config)
#pragma once

#include "edgemoe_types.h"
#include "linear.h"
#include "nonlinear.h"

namespace edgemoe {

struct moe_config {
    static constexpr int tokens = cfg::TOKENS;
    static constexpr int experts = cfg::EXPERTS;
    static constexpr int top_k = cfg::TOP_K;
    static constexpr int dim = cfg::DIM;
    static constexpr int expert_hidden = cfg::EXPERT_HIDDEN;
    typedef linear_config linear;
};

// Routing decisions of one MoE layer (steps 2-4).
template <typename Cfg>
struct MoeRouting {
    typedef typename token_index<typename Cfg::linear>::type token_t;
    typedef ap_uint<ceil_log2(Cfg::experts) + 1> expert_t;
    gate_score_t score[Cfg::tokens][Cfg::experts];  // softmax over experts
    expert_t expert[Cfg::tokens][Cfg::top_k];       // selected experts, best first
    token_t queue[Cfg::experts][Cfg::tokens];       // tokens routed to each expert, ascending
    int count[Cfg::experts];                        // queue lengths
};

// Steps 2-4 for n tokens from the gate logits (columns 0..experts-1 of the linear unit's output).
template <class act_t, typename Cfg = moe_config>
void moe_route(const act_t logits[Cfg::linear::max_tokens][Cfg::linear::max_out], int n, MoeRouting<Cfg>& rt) {
#pragma HLS INLINE off
    constexpr int E = Cfg::experts;
    constexpr int K = Cfg::top_k;
    constexpr int N = Cfg::tokens;
    static_assert(1 <= K && K <= E, "moe: top_k must be in 1..experts");
    static_assert(E <= Cfg::linear::max_out, "moe: the linear unit must produce every expert's logit");
    static_assert(N <= Cfg::linear::max_tokens, "moe: the linear unit must hold every token");
moe_clear_queues:
    for (int e = 0; e < E; e++) rt.count[e] = 0;
moe_tokens:
    for (int i = 0; i < n; i++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = N
        act_t row[E];
        gate_score_t p[E];
    moe_row:
        for (int e = 0; e < E; e++) row[e] = logits[i][e];
        softmax<act_t, gate_score_t, E>(row, p, E);
        bool chosen[E];
#pragma HLS ARRAY_PARTITION variable = chosen complete
    moe_score:
        for (int e = 0; e < E; e++) {
            rt.score[i][e] = p[e];
            chosen[e] = false;
        }
        // top-k: K scans, each keeping the first (lowest-index) of equal maxima
    moe_topk:
        for (int k = 0; k < K; k++) {
            int best = -1;
        moe_topk_scan:
            for (int e = 0; e < E; e++) {
#pragma HLS PIPELINE II = 1
                if (!chosen[e] && (best < 0 || p[e] > p[best])) best = e;
            }
            chosen[best] = true;
            rt.expert[i][k] = best;
        }
        // patch reordering: token i joins the queue of each chosen expert, in token order
    moe_enqueue:
        for (int e = 0; e < E; e++) {
#pragma HLS PIPELINE II = 1
            if (chosen[e]) rt.queue[e][rt.count[e]++] = i;
        }
    }
}

// Step 5 for expert e: gather its queued tokens, fc1 with GELU, fc2 scaled and accumulated into y.
template <class act_t, typename Cfg = moe_config>
void moe_expert(const act_t x[Cfg::linear::max_rows][Cfg::linear::max_in], const MoeRouting<Cfg>& rt, int e,
                hls::stream<WeightRow<typename Cfg::linear::weight_t, Cfg::linear::tile_in> >& w1,
                const typename Cfg::linear::bias_t b1[Cfg::linear::max_out],
                hls::stream<WeightRow<typename Cfg::linear::weight_t, Cfg::linear::tile_in> >& w2,
                const typename Cfg::linear::bias_t b2[Cfg::linear::max_out],
                act_t y[Cfg::linear::max_tokens][Cfg::linear::max_out]) {
#pragma HLS INLINE off
    typedef typename Cfg::linear L;
    typedef typename MoeRouting<Cfg>::token_t token_t;
    static_assert(Cfg::dim <= L::max_in && Cfg::expert_hidden <= L::max_in, "moe: expert too wide for the linear unit");
    static_assert(Cfg::tokens <= L::max_rows, "moe: a queue of every token must fit the linear unit");
    static act_t xq[L::max_rows][L::max_in];
    static act_t h[L::max_tokens][L::max_out];
    gate_score_t score[L::max_rows];
    token_t token[L::max_rows];
    const int n = rt.count[e];
moe_gather:
    for (int q = 0; q < n; q++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = Cfg::tokens
        const int i = rt.queue[e][q];
        token[q] = i;
        score[q] = rt.score[i][e];
    moe_gather_dims:
        for (int d = 0; d < Cfg::dim; d++) {
#pragma HLS PIPELINE II = 1
            xq[q][d] = x[i][d];
        }
    }
    linear<act_t, act_t, L>(xq, n, Cfg::dim, Cfg::expert_hidden, w1, b1, Epilogue::BiasGelu, score, token,
                                       h);
    static act_t hq[L::max_rows][L::max_in];
moe_hidden:
    for (int q = 0; q < n; q++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = Cfg::tokens
    moe_hidden_dims:
        for (int d = 0; d < Cfg::expert_hidden; d++) {
#pragma HLS PIPELINE II = 1
            hq[q][d] = h[q][d];
        }
    }
    linear<act_t, act_t, L>(hq, n, Cfg::expert_hidden, Cfg::dim, w2, b2, Epilogue::ExpertAccumulate, score,
                                       token, y);
}

}  // namespace edgemoe
