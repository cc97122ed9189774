// linear.h - the unified linear unit: one MAC array for every linear layer of the model.
//
// Computes y = epilogue(x . W^T + b) for `rows` tokens, `n_in` inputs and `n_out` outputs
// (runtime sizes up to the config's maxima), tile_in x tile_out multiply-accumulates per cycle.
// Products and sums are exact (accum_type), so one cast to out_t is the only rounding before
// the epilogue (golden/fixed/linear.py, Epilogue):
//   Epilogue::Bias              y[r]        = cast_out(acc + b)
//   Epilogue::BiasGelu          y[r]        = gelu(cast_out(acc + b))
//   Epilogue::ExpertAccumulate  y[token[r]] = sat_out(y[token[r]] + cast_out(score[r] * cast_out(acc + b)))
//
// Weights arrive as a stream of WeightRow packs in the order of the weight image: for each
// output tile, for each input tile, the tile's tile_out rows (tile_in weights each); rows past
// n_out in the last output tile are zero. Two weight buffers alternate (ping-pong): while the
// MAC array runs output tile t from one, the loader fills the other with tile t + 1.
//
// Template parameters:
//   x_t    input activations (act_t, or pixel_t for the patch embedding)
//   out_t  output and accumulation buffer (act_t)
//   Cfg    the layer's config (linear_unit_config): sizes max_rows, max_in, max_out, tile_in,
//          tile_out, max_tokens and types weight_t, bias_t (a layer without bias passes zeros)
//          and accum_t (exact for x_t x weight_t over max_in terms); one kernel serves every
//          layer kind through its own config (linear_config, linear_attn_config,
//          linear_patch_config)
#pragma once

#include "edgemoe_types.h"
#include "nonlinear.h"

namespace edgemoe {

// Epilogue (what the unit does with a finished accumulator) comes from edgemoe_config.h, which
// edgemoe.emit generates from edgemoe.config.Epilogue: the host and the RTL use the same codes.

// One row of a weight tile: `N` consecutive weights of one output.
template <class w_t, int N>
struct WeightRow {
    w_t w[N];
};

// The unified linear unit of the generated config, for one kind of layer: the largest layer of
// the model sizes it; x_T, weight_T and bias_T are the formats the layer kind reads.
template <class x_T, class weight_T, class bias_T>
struct linear_unit_config {
    static constexpr int tile_in = cfg::LINEAR_IN;
    static constexpr int tile_out = cfg::LINEAR_OUT;
    static constexpr int max_rows = cfg::TOKENS;    // tokens per pass (an expert queue holds at most all)
    static constexpr int max_tokens = cfg::TOKENS;  // rows of the ExpertAccumulate buffer
    static constexpr int max_in = max2(max2(cfg::DIM, cfg::MLP_HIDDEN), max2(cfg::EXPERT_HIDDEN, cfg::PATCH_IN));
    static constexpr int max_out_raw =
        max2(max2(3 * cfg::DIM, cfg::MLP_HIDDEN), max2(cfg::EXPERT_HIDDEN, cfg::EXPERTS));
    static constexpr int max_out = (max_out_raw + tile_out - 1) / tile_out * tile_out;
    typedef weight_T weight_t;
    typedef bias_T bias_t;
    typedef typename accum_type<x_T, weight_T, max_in>::type accum_t;  // exact: no rounding before the cast
};

typedef linear_unit_config<act_t, linear_weight_t, bias_t> linear_config;            // MLP, experts, gate
typedef linear_unit_config<act_t, linear_weight_t, attn_bias_t> linear_attn_config;  // q/k/v, projection
typedef linear_unit_config<pixel_t, patch_weight_t, bias_t> linear_patch_config;     // patch embedding

// Index of a token in the ExpertAccumulate buffer.
template <typename Cfg>
struct token_index {
    typedef ap_uint<ceil_log2(Cfg::max_tokens) + 1> type;
};

// Fill one weight buffer with the tile_out rows of one output tile (all input tiles).
template <typename Cfg>
void linear_load_tile(hls::stream<WeightRow<typename Cfg::weight_t, Cfg::tile_in> >& w_in,
                      typename Cfg::weight_t wbuf[Cfg::tile_out][Cfg::max_in], int n_in) {
#pragma HLS INLINE off
    typedef typename Cfg::weight_t w_t;
    constexpr int max_k = Cfg::max_in / Cfg::tile_in;
    const int n_k = n_in / Cfg::tile_in;
load_in_tiles:
    for (int k = 0; k < n_k; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_k
    load_rows:
        for (int o = 0; o < Cfg::tile_out; o++) {
#pragma HLS PIPELINE II = 1
            const WeightRow<w_t, Cfg::tile_in> row = w_in.read();
        load_cols:
            for (int i = 0; i < Cfg::tile_in; i++) {
#pragma HLS UNROLL
                wbuf[o][k * Cfg::tile_in + i] = row.w[i];
            }
        }
    }
}

// Run every token through one output tile (outputs o0 .. o0 + tile_out - 1) and apply the epilogue.
template <class x_t, class out_t, typename Cfg>
void linear_compute_tile(const x_t x[Cfg::max_rows][Cfg::max_in],
                         const typename Cfg::weight_t wbuf[Cfg::tile_out][Cfg::max_in], int rows, int n_in, int o0,
                         int n_out, const typename Cfg::bias_t bias[Cfg::max_out], Epilogue epilogue,
                         const gate_score_t score[Cfg::max_rows],
                         const typename token_index<Cfg>::type token[Cfg::max_rows],
                         out_t y[Cfg::max_tokens][Cfg::max_out]) {
#pragma HLS INLINE off
    typedef typename Cfg::accum_t acc_t;
    constexpr int max_k = Cfg::max_in / Cfg::tile_in;
    constexpr int max_rows = Cfg::max_rows;
    const int n_k = n_in / Cfg::tile_in;
compute_rows:
    for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_rows
        acc_t acc[Cfg::tile_out];
#pragma HLS ARRAY_PARTITION variable = acc complete
    compute_clear:
        for (int o = 0; o < Cfg::tile_out; o++) {
#pragma HLS UNROLL
            acc[o] = 0;
        }
    compute_in_tiles:
        for (int k = 0; k < n_k; k++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_k
#pragma HLS PIPELINE II = 1
        compute_outs:
            for (int o = 0; o < Cfg::tile_out; o++) {
#pragma HLS UNROLL
            compute_ins:
                for (int i = 0; i < Cfg::tile_in; i++) {
#pragma HLS UNROLL
                    acc[o] += x[r][k * Cfg::tile_in + i] * wbuf[o][k * Cfg::tile_in + i];
                }
            }
        }
    compute_epilogue:
        for (int o = 0; o < Cfg::tile_out; o++) {
#pragma HLS UNROLL
            const int col = o0 + o;
            if (col < n_out) {
                const out_t e = acc[o] + bias[col];  // exact sum, one cast (rounding, saturation)
                if (epilogue == Epilogue::Bias) {
                    y[r][col] = e;
                } else if (epilogue == Epilogue::BiasGelu) {
                    y[r][col] = gelu<out_t>(e);
                } else {
                    const out_t scaled = e * score[r];
                    y[token[r]][col] = y[token[r]][col] + scaled;  // saturating add
                }
            }
        }
    }
}

// The unified linear unit: all output tiles of one layer, weights double-buffered.
template <class x_t, class out_t, typename Cfg>
void linear(const x_t x[Cfg::max_rows][Cfg::max_in], int rows, int n_in, int n_out,
            hls::stream<WeightRow<typename Cfg::weight_t, Cfg::tile_in> >& w_in,
            const typename Cfg::bias_t bias[Cfg::max_out], Epilogue epilogue, const gate_score_t score[Cfg::max_rows],
            const typename token_index<Cfg>::type token[Cfg::max_rows], out_t y[Cfg::max_tokens][Cfg::max_out]) {
    typedef typename Cfg::weight_t w_t;
    static_assert(Cfg::tile_in >= 1 && Cfg::tile_out >= 1, "the MAC array needs at least one input and output");
    static_assert(Cfg::max_in % Cfg::tile_in == 0, "max_in must be a whole number of input tiles");
    static_assert(Cfg::max_out % Cfg::tile_out == 0, "max_out must be a whole number of output tiles");
    static_assert(Cfg::max_rows <= Cfg::max_tokens, "an expert queue cannot hold more rows than tokens");
    static_assert(accum_type<x_t, w_t, Cfg::max_in>::width <= 96,
                  "the exact accumulator exceeds 96 bits; narrow the input or weight format");
    static_assert(fixed_traits<typename Cfg::accum_t>::width >= accum_type<x_t, w_t, Cfg::max_in>::width &&
                      fixed_traits<typename Cfg::accum_t>::frac_bits == accum_type<x_t, w_t, Cfg::max_in>::frac_bits,
                  "the config's accum_t must hold every sum of x_t x weight_t products exactly");
    constexpr int tile_in = Cfg::tile_in;
    constexpr int max_tiles = Cfg::max_out / Cfg::tile_out + 1;
#pragma HLS ARRAY_PARTITION variable = x cyclic factor = tile_in dim = 2
    w_t w_ping[Cfg::tile_out][Cfg::max_in];
    w_t w_pong[Cfg::tile_out][Cfg::max_in];
#pragma HLS ARRAY_PARTITION variable = w_ping complete dim = 1
#pragma HLS ARRAY_PARTITION variable = w_ping cyclic factor = tile_in dim = 2
#pragma HLS ARRAY_PARTITION variable = w_pong complete dim = 1
#pragma HLS ARRAY_PARTITION variable = w_pong cyclic factor = tile_in dim = 2
    const int tiles = (n_out + Cfg::tile_out - 1) / Cfg::tile_out;
    // Step t loads output tile t into one buffer while the MAC array runs tile t - 1 from the other.
linear_tiles:
    for (int t = 0; t <= tiles; t++) {
#pragma HLS LOOP_TRIPCOUNT min = 2 max = max_tiles
        if ((t & 1) == 0) {
            if (t < tiles) linear_load_tile<Cfg>(w_in, w_ping, n_in);
            if (t > 0)
                linear_compute_tile<x_t, out_t, Cfg>(x, w_pong, rows, n_in, (t - 1) * Cfg::tile_out, n_out,
                                                               bias, epilogue, score, token, y);
        } else {
            if (t < tiles) linear_load_tile<Cfg>(w_in, w_pong, n_in);
            linear_compute_tile<x_t, out_t, Cfg>(x, w_ping, rows, n_in, (t - 1) * Cfg::tile_out, n_out,
                                                           bias, epilogue, score, token, y);
        }
    }
}

}  // namespace edgemoe
