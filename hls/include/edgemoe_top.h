// edgemoe_top.h - the accelerator top: AXI4 memory ports, AXI4-Lite control, the whole backbone.
//
// One call runs every block of the backbone for one task (TASK selects the MoE gates) over
// BATCH images. The register map and the memory layout are generated from host/layout.py
// into edgemoe_layout.h (EDGEMOE_REG_* offsets, layout::* segments); the host driver
// (host/driver.py) programs the same map on a board and on a simulated device.
//
//   weights    the packed weight image (layout::WEIGHT_BYTES), read through m_axi_gmem0
//   images     BATCH packed images (layout::IMAGE_BYTES each), read through m_axi_gmem1
//   tokens     BATCH x TOKENS x DIM activation words (layout::TOKENS_BYTES each), m_axi_gmem2
//   task       task index, 0 .. TASKS - 1 (a larger value runs no image)
//   batch      number of images; 0 only reports the ID (the driver's probe call)
//   config_id  output register: cfg::CONFIG_ID, valid after every call
#pragma once

#include "edgemoe_layout.h"
#include "edgemoe_types.h"
#include "linear.h"
#include "moe.h"

namespace edgemoe {

// One AXI4 beat of the memory ports.
typedef ap_uint<cfg::AXI_BITS> beat_t;

static_assert(layout::BEAT_BYTES * 8 == cfg::AXI_BITS, "the layout's beat must be the AXI data width");

namespace top {

typedef linear_config L;
typedef token_index<L>::type token_t;

// Buffers shared by the stages of a block (one image at a time).
struct BlockBuffers {
    act_t h[cfg::TOKENS][cfg::DIM];        // LayerNorm output (and the attention's)
    act_t q[cfg::TOKENS][cfg::DIM];        // queries, keys and values of all heads
    act_t k[cfg::TOKENS][cfg::DIM];
    act_t v[cfg::TOKENS][cfg::DIM];
    act_t in[L::max_rows][L::max_in];      // input rows of the linear unit
    act_t out[L::max_tokens][L::max_out];  // output rows of the linear unit
    bias_t bias[L::max_out];               // bias of the current layer
    attn_bias_t attn_bias[L::max_out];     // bias of q/k/v and the projection
    norm_t gamma[cfg::DIM];                // LayerNorm scale
    norm_t beta[cfg::DIM];                 // LayerNorm shift
    gate_score_t score[L::max_rows];       // gate score of each queued token (MoE)
    token_t token[L::max_rows];            // token of each queued row (MoE)
    bias_t bias2[L::max_out];              // fc2 bias of the current expert (MoE)
    act_t acc[L::max_tokens][L::max_out];  // MoE output, accumulated over the active experts
    MoeRouting<moe_config> routing;        // gate scores, top-k and per-expert queues (MoE)
};

// The stages of one call, in order (each tested on its own in C-simulation, csim_top.cpp):
// x = tokens after the patch embedding of image b.
void patch_embedding(const beat_t* weights, const beat_t* images, int b, act_t x[cfg::TOKENS][cfg::DIM]);
// x = x + proj(attention(qkv(LayerNorm1(x)))) of block i.
void attention_part(const beat_t* weights, int i, act_t x[cfg::TOKENS][cfg::DIM], BlockBuffers& buf);
// x = x + MLP(LayerNorm2(x)) of block i (dense, or the MoE with task's gate).
void mlp_part(const beat_t* weights, int i, unsigned task, act_t x[cfg::TOKENS][cfg::DIM], BlockBuffers& buf);

}  // namespace top
}  // namespace edgemoe

void edgemoe_top(const edgemoe::beat_t* weights, const edgemoe::beat_t* images, edgemoe::beat_t* tokens,
                 unsigned task, unsigned batch, unsigned* config_id);
