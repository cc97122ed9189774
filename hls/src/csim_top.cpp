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
    to_beats(weights, layout::WEIGHT_BYTES, w);
    to_beats(images, batch * layout::IMAGE_BYTES, img);
    tok.assign(batch * layout::TOKENS_BYTES / layout::BEAT_BYTES, beat_t(0));
    edgemoe_top(w.data(), img.data(), tok.data(), task, batch, config_id);
    from_beats(tok, tokens);
    return 0;
}
