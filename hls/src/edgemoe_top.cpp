// edgemoe_top.cpp - the accelerator top: memory movers around the kernels, and the call interface.
//
// Memory side (this file): the weight image is read segment by segment in the order the host
// packed it (host/layout.py): linear weights as WeightRow packs of the MAC array's tiles, vectors
// (biases, norms, position embedding) word by word; images patch by patch; tokens written back
// as activation words. Compute side: the kernels of hls/include, in the order of the fixed
// reference (golden/fixed/model.py): patch embedding, then per block LayerNorm -> q/k/v ->
// reordered attention -> projection -> residual, LayerNorm -> MLP or MoE -> residual.
#include "edgemoe_top.h"

#include "attention.h"
#include "layernorm.h"

// Pragmas whose values come from the generated headers (macros expand inside _Pragma).
#define EDGEMOE_STR(x) #x
#define EDGEMOE_PRAGMA(x) _Pragma(EDGEMOE_STR(x))

namespace edgemoe {
namespace top {

// The storage word of a format in the memory image: 8, 16, 32 or 64 bits (host/layout.py word_bits).
template <class T>
constexpr int word_bits() {
    return fixed_traits<T>::width <= 8 ? 8 : fixed_traits<T>::width <= 16 ? 16 : fixed_traits<T>::width <= 32 ? 32 : 64;
}

// Every segment of `s` (a per-block table) is absent or stored in `bits`-bit words.
constexpr bool stored_in(const layout::Segment* s, int n, int bits) {
    return n == 0 || ((s->items == 0 || s->word_bits == bits) && stored_in(s + 1, n - 1, bits));
}

static_assert(layout::PATCH_EMBED_WEIGHT.word_bits == word_bits<patch_weight_t>(), "patch weights: word width");
static_assert(layout::PATCH_EMBED_BIAS.word_bits == word_bits<bias_t>(), "patch bias: word width");
static_assert(layout::POS_EMBED.word_bits == word_bits<pos_embed_t>(), "position embedding: word width");
static_assert(stored_in(layout::BLOCK_QKV_WEIGHT, cfg::DEPTH, word_bits<linear_weight_t>()), "qkv: word width");
static_assert(stored_in(layout::BLOCK_QKV_BIAS, cfg::DEPTH, word_bits<attn_bias_t>()), "qkv bias: word width");
static_assert(stored_in(layout::BLOCK_NORM1_WEIGHT, cfg::DEPTH, word_bits<norm_t>()), "norm: word width");
static_assert(stored_in(layout::BLOCK_FC1_BIAS, cfg::DEPTH, word_bits<bias_t>()), "MLP bias: word width");
static_assert(layout::PIXEL_WORD_BITS == word_bits<pixel_t>(), "pixels: word width");
static_assert(layout::ACT_WORD_BITS == word_bits<act_t>(), "tokens: word width");
static_assert(layout::PATCH_EMBED_WEIGHT.rows == cfg::DIM && layout::PATCH_EMBED_WEIGHT.cols == cfg::PATCH_IN,
              "the patch embedding is a DIM x PATCH_IN linear layer");
static_assert(cfg::PATCHES <= L::max_rows && cfg::PATCH_IN <= L::max_in && cfg::DIM <= L::max_out,
              "the linear unit must hold the patch embedding");

// The value of T held in the low bits of a storage word.
template <class T, int W>
inline T word_value(const ap_uint<W>& bits) {
#pragma HLS INLINE
    T v;
    v.range(fixed_traits<T>::width - 1, 0) = bits.range(fixed_traits<T>::width - 1, 0);
    return v;
}

// The storage word of a value (sign-extended for a signed format).
template <class T, int W>
inline ap_uint<W> value_word(const T& v) {
#pragma HLS INLINE
    typename raw_of<T>::type raw;
    raw.range(fixed_traits<T>::width - 1, 0) = v.range(fixed_traits<T>::width - 1, 0);
    ap_int<W> wide = raw;  // sign (or zero) extension
    return ap_uint<W>(wide);
}

// Stream the tiles of item `item` of a linear-weight segment as WeightRow packs, in image order:
// for each output tile, for each input tile, the tile's tile_out rows of tile_in weights.
template <class w_t>
void load_weight_tiles(const beat_t* mem, const layout::Segment& seg, int item,
                       hls::stream<WeightRow<w_t, L::tile_in> >& out) {
#pragma HLS INLINE off
    constexpr int W = word_bits<w_t>();
    constexpr int N = L::tile_in;
    constexpr int LANES = cfg::AXI_BITS / W;
    static_assert(LANES % N == 0 || N % LANES == 0, "a weight row must fill a whole fraction of a beat or whole beats");
    constexpr int ROWS_PER_BEAT = max2(LANES / N, 1);
    constexpr int BEATS_PER_ROW = max2(N / LANES, 1);
    constexpr int max_rows = L::max_out * (L::max_in / N);
    const long long base = (seg.offset + (long long)item * seg.item_bytes) / layout::BEAT_BYTES;
    const int rows = seg.stored_rows * (seg.stored_cols / N);
    beat_t beat = 0;
weight_rows:
    for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_rows
        WeightRow<w_t, N> row;
    weight_row_beats:
        for (int k = 0; k < BEATS_PER_ROW; k++) {
#pragma HLS PIPELINE II = 1
            if (BEATS_PER_ROW > 1 || r % ROWS_PER_BEAT == 0)
                beat = mem[base + (long long)(r / ROWS_PER_BEAT) * BEATS_PER_ROW + k];
            const int lane0 = BEATS_PER_ROW > 1 ? 0 : (r % ROWS_PER_BEAT) * N;
        weight_row_lanes:
            for (int i = 0; i < min2(N, LANES); i++) {
#pragma HLS UNROLL
                const int lane = lane0 + i;
                row.w[k * LANES + i] = word_value<w_t, W>(ap_uint<W>(beat.range(lane * W + W - 1, lane * W)));
            }
        }
        out.write(row);
    }
}

// Words `first` .. `first + n - 1` of item `item` of a segment (its matrix row-major) into out[].
template <class T>
void load_words(const beat_t* mem, const layout::Segment& seg, int item, long long first, int n, T* out) {
#pragma HLS INLINE off
    constexpr int W = word_bits<T>();
    constexpr int LANES = cfg::AXI_BITS / W;
    constexpr int max_n = max2(L::max_out, cfg::DIM);
    const long long base = (seg.offset + (long long)item * seg.item_bytes) / layout::BEAT_BYTES;
    beat_t beat = 0;
load_words_loop:
    for (int j = 0; j < n; j++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = max_n
#pragma HLS PIPELINE II = 1
        const long long g = first + j;
        const int lane = g % LANES;
        if (j == 0 || lane == 0) beat = mem[base + g / LANES];
        out[j] = word_value<T, W>(ap_uint<W>(beat.range(lane * W + W - 1, lane * W)));
    }
}

// Image `b` of the batch as the patch embedding's input rows: patch p, then C x p x p pixels.
void load_patches(const beat_t* images, int b, pixel_t x[L::max_rows][L::max_in]) {
#pragma HLS INLINE off
    constexpr int W = word_bits<pixel_t>();
    constexpr int LANES = cfg::AXI_BITS / W;
    const long long base = (long long)b * (layout::IMAGE_BYTES / layout::BEAT_BYTES);
    beat_t beat = 0;
load_patch_rows:
    for (int p = 0; p < cfg::PATCHES; p++) {
    load_patch_pixels:
        for (int j = 0; j < cfg::PATCH_IN; j++) {
#pragma HLS PIPELINE II = 1
            const long long g = (long long)p * cfg::PATCH_IN + j;
            const int lane = g % LANES;
            if (lane == 0) beat = images[base + g / LANES];
            x[p][j] = word_value<pixel_t, W>(ap_uint<W>(beat.range(lane * W + W - 1, lane * W)));
        }
    }
}

// Tokens of image `b` to memory, TOKENS x DIM activation words, row-major.
void store_tokens(const act_t x[cfg::TOKENS][cfg::DIM], beat_t* tokens, int b) {
#pragma HLS INLINE off
    constexpr int W = word_bits<act_t>();
    constexpr int LANES = cfg::AXI_BITS / W;
    constexpr long long words = (long long)cfg::TOKENS * cfg::DIM;
    const long long base = (long long)b * (layout::TOKENS_BYTES / layout::BEAT_BYTES);
    beat_t beat = 0;
store_token_rows:
    for (int t = 0; t < cfg::TOKENS; t++) {
    store_token_words:
        for (int d = 0; d < cfg::DIM; d++) {
#pragma HLS PIPELINE II = 1
            const long long g = (long long)t * cfg::DIM + d;
            const int lane = g % LANES;
            beat.range(lane * W + W - 1, lane * W) = value_word<act_t, W>(x[t][d]);
            if (lane == LANES - 1 || g == words - 1) {
                tokens[base + g / LANES] = beat;
                beat = 0;
            }
        }
    }
}

// One linear layer: its weight tiles stream from memory into the linear unit (load || compute).
// Cfg: the layer kind's linear config (its weight and bias formats; the sizes are L's).
template <class x_t, typename Cfg>
void linear_layer(const beat_t* weights, const layout::Segment& seg, int item, const x_t x[L::max_rows][L::max_in],
                  int rows, const typename Cfg::bias_t bias[L::max_out], Epilogue epilogue,
                  const gate_score_t score[L::max_rows], const token_t token[L::max_rows],
                  act_t y[L::max_tokens][L::max_out]) {
#pragma HLS INLINE off
#pragma HLS DATAFLOW
    typedef typename Cfg::weight_t w_t;
    hls::stream<WeightRow<w_t, L::tile_in> > w_rows("w_rows");
#pragma HLS STREAM variable = w_rows depth = 2 * L::tile_out
    load_weight_tiles<w_t>(weights, seg, item, w_rows);
    linear<x_t, act_t, Cfg>(x, rows, seg.cols, seg.rows, w_rows, bias, epilogue, score, token, y);
}

// Patch embedding of image `b` (golden/fixed/linear.py patch_embed): the linear unit on the
// image's patches, then + pos_embed[1:] with one cast to act; token 0 is act(pos_embed[0]).
void patch_embedding(const beat_t* weights, const beat_t* images, int b, act_t x[cfg::TOKENS][cfg::DIM]) {
#pragma HLS INLINE off
    static pixel_t patches[L::max_rows][L::max_in];
    static bias_t bias[L::max_out];
    static act_t y[L::max_tokens][L::max_out];
    static gate_score_t score[L::max_rows];
    static token_t token[L::max_rows];
    pos_embed_t pos[cfg::DIM];
    load_patches(images, b, patches);
    load_words<bias_t>(weights, layout::PATCH_EMBED_BIAS, 0, 0, cfg::DIM, bias);
    linear_layer<pixel_t, linear_patch_config>(weights, layout::PATCH_EMBED_WEIGHT, 0, patches, cfg::PATCHES,
                                                  bias, Epilogue::Bias, score, token, y);
embed_tokens:
    for (int t = 0; t < cfg::TOKENS; t++) {
        load_words<pos_embed_t>(weights, layout::POS_EMBED, 0, (long long)t * cfg::DIM, cfg::DIM, pos);
    embed_dims:
        for (int d = 0; d < cfg::DIM; d++) {
#pragma HLS PIPELINE II = 1
            x[t][d] = t == 0 ? act_t(pos[d]) : act_t(y[t - 1][d] + pos[d]);  // exact sum, one cast
        }
    }
}

// ---- block stages ---------------------------------------------------------------------------

// dst[r][0 .. cols) = src[r][0 .. cols) for r < rows.
template <class T, int SR, int SC, int DR, int DC>
void copy_rows(const T src[SR][SC], T dst[DR][DC], int rows, int cols) {
#pragma HLS INLINE off
copy_rows_r:
    for (int r = 0; r < rows; r++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = SR
    copy_rows_c:
        for (int c = 0; c < cols; c++) {
#pragma HLS LOOP_TRIPCOUNT min = 1 max = SC
#pragma HLS PIPELINE II = 1
            dst[r][c] = src[r][c];
        }
    }
}

// x = sat(x + y[.][0 .. DIM)): the residual add (exact sum, saturating cast to act).
void residual_add(act_t x[cfg::TOKENS][cfg::DIM], const act_t y[L::max_tokens][L::max_out]) {
#pragma HLS INLINE off
residual_rows:
    for (int t = 0; t < cfg::TOKENS; t++) {
    residual_dims:
        for (int d = 0; d < cfg::DIM; d++) {
#pragma HLS PIPELINE II = 1
            x[t][d] = act_t(x[t][d] + y[t][d]);
        }
    }
}

// h = LayerNorm(x) with the norm parameters of segments gamma_seg / beta_seg.
void layer_norm(const beat_t* weights, const layout::Segment& gamma_seg, const layout::Segment& beta_seg,
                const act_t x[cfg::TOKENS][cfg::DIM], BlockBuffers& buf) {
    load_words<norm_t>(weights, gamma_seg, 0, 0, cfg::DIM, buf.gamma);
    load_words<norm_t>(weights, beta_seg, 0, 0, cfg::DIM, buf.beta);
    layernorm<act_t, norm_t, act_t>(x, cfg::TOKENS, buf.gamma, buf.beta, buf.h);
}

// Dense MLP of block i on buf.h: fc1 with GELU, fc2; result in buf.out.
void dense_mlp(const beat_t* weights, int i, BlockBuffers& buf) {
    copy_rows<act_t, cfg::TOKENS, cfg::DIM, L::max_rows, L::max_in>(buf.h, buf.in, cfg::TOKENS, cfg::DIM);
    load_words<bias_t>(weights, layout::BLOCK_FC1_BIAS[i], 0, 0, cfg::MLP_HIDDEN, buf.bias);
    linear_layer<act_t, linear_config>(weights, layout::BLOCK_FC1_WEIGHT[i], 0, buf.in, cfg::TOKENS,
                                                 buf.bias, Epilogue::BiasGelu, buf.score, buf.token, buf.out);
    copy_rows<act_t, L::max_tokens, L::max_out, L::max_rows, L::max_in>(buf.out, buf.in, cfg::TOKENS,
                                                                        cfg::MLP_HIDDEN);
    load_words<bias_t>(weights, layout::BLOCK_FC2_BIAS[i], 0, 0, cfg::DIM, buf.bias);
    linear_layer<act_t, linear_config>(weights, layout::BLOCK_FC2_WEIGHT[i], 0, buf.in, cfg::TOKENS,
                                                 buf.bias, Epilogue::Bias, buf.score, buf.token, buf.out);
}

// x = x + proj(attention(qkv(LayerNorm1(x)))) of block i (golden FixedM3ViT.attention_part).
void attention_part(const beat_t* weights, int i, act_t x[cfg::TOKENS][cfg::DIM], BlockBuffers& buf) {
#pragma HLS INLINE off
    constexpr int D = cfg::DIM;
    layer_norm(weights, layout::BLOCK_NORM1_WEIGHT[i], layout::BLOCK_NORM1_BIAS[i], x, buf);
    copy_rows<act_t, cfg::TOKENS, D, L::max_rows, L::max_in>(buf.h, buf.in, cfg::TOKENS, D);
    load_words<attn_bias_t>(weights, layout::BLOCK_QKV_BIAS[i], 0, 0, 3 * D, buf.attn_bias);
    linear_layer<act_t, linear_attn_config>(weights, layout::BLOCK_QKV_WEIGHT[i], 0, buf.in, cfg::TOKENS,
                                                      buf.attn_bias, Epilogue::Bias, buf.score, buf.token, buf.out);
split_qkv:
    for (int t = 0; t < cfg::TOKENS; t++) {
    split_qkv_dims:
        for (int d = 0; d < D; d++) {
#pragma HLS PIPELINE II = 1
            buf.q[t][d] = buf.out[t][d];
            buf.k[t][d] = buf.out[t][D + d];
            buf.v[t][d] = buf.out[t][2 * D + d];
        }
    }
    attention<act_t>(buf.q, buf.k, buf.v, buf.h);
    copy_rows<act_t, cfg::TOKENS, D, L::max_rows, L::max_in>(buf.h, buf.in, cfg::TOKENS, D);
    load_words<attn_bias_t>(weights, layout::BLOCK_ATTN_PROJ_BIAS[i], 0, 0, D, buf.attn_bias);
    linear_layer<act_t, linear_attn_config>(weights, layout::BLOCK_ATTN_PROJ_WEIGHT[i], 0, buf.in,
                                                      cfg::TOKENS, buf.attn_bias, Epilogue::Bias, buf.score,
                                                      buf.token, buf.out);
    residual_add(x, buf.out);
}

// Expert e of MoE block i (moe.h moe_expert): its fc1 and fc2 weights stream from memory, fetched
// once, while the expert runs its queue.
void moe_expert_layer(const beat_t* weights, int i, int e, BlockBuffers& buf) {
#pragma HLS INLINE off
#pragma HLS DATAFLOW
    hls::stream<WeightRow<linear_weight_t, L::tile_in> > w1("moe_w1"), w2("moe_w2");
#pragma HLS STREAM variable = w1 depth = 2 * L::tile_out
#pragma HLS STREAM variable = w2 depth = 2 * L::tile_out
    load_weight_tiles<linear_weight_t>(weights, layout::BLOCK_HTOH4_WEIGHT[i], e, w1);
    load_weight_tiles<linear_weight_t>(weights, layout::BLOCK_H4TOH_WEIGHT[i], e, w2);
    moe_expert<act_t>(buf.in, buf.routing, e, w1, buf.bias, w2, buf.bias2, buf.acc);
}

// MoE of block i on buf.h for task's gate (golden/fixed/moe.py moe): the gate through the linear
// unit (no bias), moe_route, then each active expert in ascending order into buf.acc; idle experts'
// weights are never read.
void moe_mlp(const beat_t* weights, int i, unsigned task, BlockBuffers& buf) {
#pragma HLS INLINE off
    copy_rows<act_t, cfg::TOKENS, cfg::DIM, L::max_rows, L::max_in>(buf.h, buf.in, cfg::TOKENS, cfg::DIM);
moe_gate_bias:
    for (int e = 0; e < L::max_out; e++) buf.bias[e] = 0;  // the gate has no bias: adding 0 is exact
    linear_layer<act_t, linear_config>(weights, layout::BLOCK_GATE[i][task], 0, buf.in, cfg::TOKENS,
                                                 buf.bias, Epilogue::Bias, buf.score, buf.token, buf.out);
    moe_route<act_t>(buf.out, cfg::TOKENS, buf.routing);
moe_clear:
    for (int t = 0; t < cfg::TOKENS; t++) {
    moe_clear_dims:
        for (int d = 0; d < cfg::DIM; d++) {
#pragma HLS PIPELINE II = 1
            buf.acc[t][d] = 0;
        }
    }
moe_experts:
    for (int e = 0; e < cfg::EXPERTS; e++) {
        if (buf.routing.count[e] == 0) continue;  // idle expert
        load_words<bias_t>(weights, layout::BLOCK_HTOH4_BIAS[i], e, 0, cfg::EXPERT_HIDDEN, buf.bias);
        load_words<bias_t>(weights, layout::BLOCK_H4TOH_BIAS[i], e, 0, cfg::DIM, buf.bias2);
        moe_expert_layer(weights, i, e, buf);
    }
}

// x = x + MLP(LayerNorm2(x)) of block i: the dense MLP, or the MoE with task's gate.
void mlp_part(const beat_t* weights, int i, unsigned task, act_t x[cfg::TOKENS][cfg::DIM], BlockBuffers& buf) {
#pragma HLS INLINE off
    layer_norm(weights, layout::BLOCK_NORM2_WEIGHT[i], layout::BLOCK_NORM2_BIAS[i], x, buf);
    if (cfg::IS_MOE[i]) {
        moe_mlp(weights, i, task, buf);
        residual_add(x, buf.acc);
    } else {
        dense_mlp(weights, i, buf);
        residual_add(x, buf.out);
    }
}

}  // namespace top
}  // namespace edgemoe

void edgemoe_top(const edgemoe::beat_t* weights, const edgemoe::beat_t* images, edgemoe::beat_t* tokens,
                 unsigned task, unsigned batch, unsigned* config_id) {
    EDGEMOE_PRAGMA(HLS INTERFACE mode = m_axi port = weights bundle = gmem0 offset = slave depth = EDGEMOE_WEIGHT_BEATS max_read_burst_length = 64)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = m_axi port = images bundle = gmem1 offset = slave depth = EDGEMOE_IMAGES_BEATS max_read_burst_length = 64)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = m_axi port = tokens bundle = gmem2 offset = slave depth = EDGEMOE_TOKENS_BEATS max_write_burst_length = 64)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = s_axilite port = weights bundle = control offset = EDGEMOE_REG_WEIGHTS)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = s_axilite port = images bundle = control offset = EDGEMOE_REG_IMAGES)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = s_axilite port = tokens bundle = control offset = EDGEMOE_REG_TOKENS)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = s_axilite port = task bundle = control offset = EDGEMOE_REG_TASK)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = s_axilite port = batch bundle = control offset = EDGEMOE_REG_BATCH)
    EDGEMOE_PRAGMA(HLS INTERFACE mode = s_axilite port = config_id bundle = control offset = EDGEMOE_REG_CONFIG_ID)
#pragma HLS INTERFACE mode = s_axilite port = return bundle = control
#pragma HLS INTERFACE mode = ap_ctrl_hs port = return
    using namespace edgemoe;
    static act_t x[cfg::TOKENS][cfg::DIM];
    static top::BlockBuffers buf;
    *config_id = cfg::CONFIG_ID;
    if (task >= (unsigned)cfg::TASKS) return;  // no gates for it: run nothing
top_images:
    for (unsigned b = 0; b < batch; b++) {
        EDGEMOE_PRAGMA(HLS LOOP_TRIPCOUNT min = 1 max = EDGEMOE_COSIM_BATCH)
        top::patch_embedding(weights, images, b, x);
    top_blocks:
        for (int i = 0; i < cfg::DEPTH; i++) {
            top::attention_part(weights, i, x, buf);
            top::mlp_part(weights, i, task, x, buf);
        }
        top::store_tokens(x, tokens, b);
    }
}
