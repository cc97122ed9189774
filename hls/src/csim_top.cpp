// csim_top.cpp - C-simulation entry point of the accelerator top (tests and the simulated device).
//
// em_top runs edgemoe_top over byte buffers laid out as host/layout.py says (the very buffers
// the host driver filled): they are copied into AXI beats, the top runs, the token beats are
// copied back.
#include <cstdint>
#include <vector>

#include "csim_common.h"
#include "edgemoe_top.h"

using namespace edgemoe;

namespace {

void to_beats(const uint8_t* bytes, long long n, std::vector<beat_t>& out) {
    out.assign(n / layout::BEAT_BYTES, beat_t(0));
    for (size_t b = 0; b < out.size(); b++)
        for (int k = 0; k < layout::BEAT_BYTES; k++) out[b].range(8 * k + 7, 8 * k) = bytes[b * layout::BEAT_BYTES + k];
}

void from_beats(const std::vector<beat_t>& beats, uint8_t* bytes) {
    for (size_t b = 0; b < beats.size(); b++)
        for (int k = 0; k < layout::BEAT_BYTES; k++)
            bytes[b * layout::BEAT_BYTES + k] = (uint8_t)beats[b].range(8 * k + 7, 8 * k).to_uint();
}

}  // namespace

// weights: layout::WEIGHT_BYTES; images: batch * IMAGE_BYTES; tokens: batch * TOKENS_BYTES.
extern "C" int em_top(const uint8_t* weights, const uint8_t* images, uint8_t* tokens, unsigned task,
                      unsigned batch, unsigned* config_id) {
    if (task >= (unsigned)cfg::TASKS) return csim::fail("top: task %u, the config has %d tasks", task, cfg::TASKS);
    std::vector<beat_t> w, img, tok;
    if (batch > 0) to_beats(weights, layout::WEIGHT_BYTES, w);  // a call of no image reads no memory
    to_beats(images, batch * layout::IMAGE_BYTES, img);
    tok.assign(batch * layout::TOKENS_BYTES / layout::BEAT_BYTES, beat_t(0));
    edgemoe_top(w.data(), img.data(), tok.data(), task, batch, config_id);
    from_beats(tok, tokens);
    return 0;
}

// One stage on raw tokens: x [TOKENS][DIM] raw act values in, the stage's output out.
// stage 0: attention_part of block `block`; stage 1: mlp_part of block `block` (task `task`).
extern "C" int em_top_stage(int stage, const uint8_t* weights, int block, unsigned task, const int64_t* x_raw,
                            int64_t* y_raw) {
    static act_t x[cfg::TOKENS][cfg::DIM];
    static top::BlockBuffers buf;
    if (block < 0 || block >= cfg::DEPTH) return csim::fail("stage: block %d outside 0..%d", block, cfg::DEPTH - 1);
    if (task >= (unsigned)cfg::TASKS) return csim::fail("stage: task %u, the config has %d tasks", task, cfg::TASKS);
    std::vector<beat_t> w;
    to_beats(weights, layout::WEIGHT_BYTES, w);
    for (int t = 0; t < cfg::TOKENS; t++) csim::load_raw(x_raw + (long)t * cfg::DIM, x[t], cfg::DIM);
    switch (stage) {
        case 0:
            top::attention_part(w.data(), block, x, buf);
            break;
        case 1:
            top::mlp_part(w.data(), block, task, x, buf);
            break;
        default:
            return csim::fail("stage: unknown stage %d", stage);
    }
    for (int t = 0; t < cfg::TOKENS; t++) csim::store_raw(x[t], y_raw + (long)t * cfg::DIM, cfg::DIM);
    return 0;
}
