// csim_patch_embed.cpp - C-simulation entry point of the patch embedding (tests only).
#include "csim_common.h"
#include "patch_embed.h"

using namespace edgemoe;

// pixels [C][H][W]; w [D][C*p*p]; b [D]; pos [N][D]; tokens [N][D].
extern "C" int em_patch_embed(const int64_t* pixels, const int64_t* w, const int64_t* b, const int64_t* pos,
                              int64_t* tokens) {
    typedef patch_embed_config P;
    typedef P::linear L;
    constexpr int N = P::patches + 1;
    static pixel_t px[P::in_chans][P::image_h][P::image_w];
    static pos_embed_t pv[N][P::dim];
    static act_t tv[N][P::dim];
    static bias_t bv[L::max_out];
    csim::load_raw(pixels, &px[0][0][0], P::in_chans * P::image_h * P::image_w);
    csim::load_raw(pos, &pv[0][0], N * P::dim);
    csim::load_raw(b, bv, P::dim);
    hls::stream<WeightRow<patch_weight_t, L::tile_in> > ws("patch_weights");
    for (int o0 = 0; o0 < P::dim; o0 += L::tile_out)
        for (int i0 = 0; i0 < P::patch_in; i0 += L::tile_in)
            for (int o = o0; o < o0 + L::tile_out; o++) {
                WeightRow<patch_weight_t, L::tile_in> row;
                for (int i = 0; i < L::tile_in; i++)
                    row.w[i] = o < P::dim ? from_raw<patch_weight_t>(w[(long)o * P::patch_in + i0 + i]) : patch_weight_t(0);
                ws.write(row);
            }
    patch_embed<pixel_t, pos_embed_t, act_t, P>(px, ws, bv, pv, tv);
    if (!ws.empty()) return csim::fail("patch_embed: weights left in the stream");
    csim::store_raw(&tv[0][0], tokens, N * P::dim);
    return 0;
}
