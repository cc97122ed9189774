// patch_embed.h - patch embedding through the unified linear unit (golden/fixed/linear.py patch_embed).
//
//   1. im2col: pixels [C][H][W] -> one row per patch (patches row-major over the grid), C*p*p
//      features in Conv2d order (c, ky, kx) (patch_im2col);
//   2. the linear unit with Epilogue::Bias (patch weights [D][C*p*p], bias) -> act;
//   3. token 0 = cast_act(pos_embed[0]); token t >= 1 = cast_act(y[t-1] + pos_embed[t]), the sum
//      exact (patch_add_position).
//
// Template parameters:
//   pix_t pixels (pixel_t), w_t patch weights (patch_weight_t), b_t bias (bias_t),
//   pos_t position embedding (pos_embed_t), act_t tokens (act_t)
//   Cfg   sizes: in_chans, image_h, image_w, patch, dim, and the linear unit (see patch_embed_config)
#pragma once

#include "edgemoe_types.h"
#include "linear.h"

namespace edgemoe {

struct patch_embed_config {
    static constexpr int in_chans = cfg::IN_CHANS;
    static constexpr int image_h = cfg::IMAGE_H;
    static constexpr int image_w = cfg::IMAGE_W;
    static constexpr int patch = cfg::PATCH;
    static constexpr int dim = cfg::DIM;
    static constexpr int grid_w = image_w / patch;
    static constexpr int patches = (image_h / patch) * grid_w;
    static constexpr int patch_in = in_chans * patch * patch;
    typedef linear_patch_config linear;
};

// Step 1: the patch rows of one image.
template <class pix_t, typename Cfg = patch_embed_config>
void patch_im2col(const pix_t pixels[Cfg::in_chans][Cfg::image_h][Cfg::image_w],
                  pix_t rows[Cfg::linear::max_rows][Cfg::linear::max_in]) {
#pragma HLS INLINE off
    constexpr int p = Cfg::patch;
    static_assert(Cfg::image_h % p == 0 && Cfg::image_w % p == 0, "patch_embed: the image must tile into patches");
    static_assert(Cfg::patches <= Cfg::linear::max_rows, "patch_embed: the linear unit must hold every patch");
    static_assert(Cfg::patch_in <= Cfg::linear::max_in, "patch_embed: the linear unit must hold C*p*p inputs");
im2col_patches:
    for (int n = 0; n < Cfg::patches; n++) {
        const int gy = n / Cfg::grid_w, gx = n % Cfg::grid_w;
    im2col_features:
        for (int f = 0; f < Cfg::patch_in; f++) {
#pragma HLS PIPELINE II = 1
            const int c = f / (p * p), ky = (f / p) % p, kx = f % p;
            rows[n][f] = pixels[c][gy * p + ky][gx * p + kx];
        }
    }
}

// Step 3: class token and position embedding.
template <class act_t, class pos_t, typename Cfg = patch_embed_config>
void patch_add_position(const act_t y[Cfg::linear::max_tokens][Cfg::linear::max_out],
                        const pos_t pos[Cfg::patches + 1][Cfg::dim], act_t tokens[Cfg::patches + 1][Cfg::dim]) {
#pragma HLS INLINE off
position_tokens:
    for (int t = 0; t < Cfg::patches + 1; t++) {
    position_dims:
        for (int d = 0; d < Cfg::dim; d++) {
#pragma HLS PIPELINE II = 1
            tokens[t][d] = t == 0 ? act_t(pos[0][d]) : act_t(y[t - 1][d] + pos[t][d]);  // exact sum, one cast
        }
    }
}

// The whole patch embedding of one image.
template <class pix_t, class pos_t, class act_t, typename Cfg = patch_embed_config>
void patch_embed(const pix_t pixels[Cfg::in_chans][Cfg::image_h][Cfg::image_w],
                 hls::stream<WeightRow<typename Cfg::linear::weight_t, Cfg::linear::tile_in> >& w_in,
                 const typename Cfg::linear::bias_t bias[Cfg::linear::max_out],
                 const pos_t pos[Cfg::patches + 1][Cfg::dim], act_t tokens[Cfg::patches + 1][Cfg::dim]) {
#pragma HLS INLINE off
    typedef typename Cfg::linear L;
    static pix_t rows[L::max_rows][L::max_in];
    static act_t y[L::max_tokens][L::max_out];
    gate_score_t no_score[L::max_rows];
    typename token_index<L>::type no_token[L::max_rows];
    patch_im2col<pix_t, Cfg>(pixels, rows);
    linear<pix_t, act_t, L>(rows, Cfg::patches, Cfg::patch_in, Cfg::dim, w_in, bias, Epilogue::Bias, no_score,
                                       no_token, y);
    patch_add_position<act_t, pos_t, Cfg>(y, pos, tokens);
}

}  // namespace edgemoe
