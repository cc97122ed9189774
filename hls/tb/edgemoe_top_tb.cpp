// edgemoe_top_tb.cpp - Vitis HLS C-simulation / co-simulation testbench of edgemoe_top.
//
// Reads the vectors written by `python -m edgemoe.host.vitis --vectors` (EDGEMOE_TB_DIR):
// weights.bin (the packed weight image), images.bin (packed images), tokens_expected.bin
// (the fixed reference's tokens, packed) and vectors.txt (task, batch, sizes, config id);
// runs the top once over the whole batch and compares every output byte. Exit status 0 on a
// bit-exact match, 1 otherwise (Vitis reports a failed csim/cosim).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "edgemoe_top.h"

#ifndef EDGEMOE_TB_DIR
#define EDGEMOE_TB_DIR "."
#endif

using namespace edgemoe;

static std::vector<uint8_t> read_file(const std::string& name) {
    std::ifstream f(std::string(EDGEMOE_TB_DIR) + "/" + name, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "tb: cannot open %s/%s (run python -m edgemoe.host.vitis --vectors)\n", EDGEMOE_TB_DIR,
                     name.c_str());
        return {};
    }
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

static std::vector<beat_t> to_beats(const std::vector<uint8_t>& bytes) {
    std::vector<beat_t> beats(bytes.size() / layout::BEAT_BYTES, beat_t(0));
    for (size_t b = 0; b < beats.size(); b++)
        for (int k = 0; k < layout::BEAT_BYTES; k++) beats[b].range(8 * k + 7, 8 * k) = bytes[b * layout::BEAT_BYTES + k];
    return beats;
}

int main() {
    std::map<std::string, long long> vec;
    std::ifstream meta(std::string(EDGEMOE_TB_DIR) + "/vectors.txt");
    std::string key;
    long long value;
    while (meta >> key >> value) vec[key] = value;
    const std::vector<uint8_t> w = read_file("weights.bin"), img = read_file("images.bin"),
                               exp = read_file("tokens_expected.bin");
    const unsigned task = (unsigned)vec["task"], batch = (unsigned)vec["batch"];
    if (w.size() != (size_t)layout::WEIGHT_BYTES || img.size() != batch * (size_t)layout::IMAGE_BYTES ||
        exp.size() != batch * (size_t)layout::TOKENS_BYTES || vec["config_id"] != (long long)cfg::CONFIG_ID) {
        std::fprintf(stderr, "tb: vectors do not match this build (config id %lld vs 0x%08x, %zu weight bytes)\n",
                     vec["config_id"], cfg::CONFIG_ID, w.size());
        return 1;
    }
    std::vector<beat_t> wb = to_beats(w), ib = to_beats(img);
    std::vector<beat_t> tb(exp.size() / layout::BEAT_BYTES, beat_t(0));
    unsigned config_id = 0;
    edgemoe_top(wb.data(), ib.data(), tb.data(), task, batch, &config_id);
    long long wrong = 0;
    for (size_t b = 0; b < tb.size(); b++)
        for (int k = 0; k < layout::BEAT_BYTES; k++) {
            const uint8_t got = (uint8_t)tb[b].range(8 * k + 7, 8 * k).to_uint();
            if (got != exp[b * layout::BEAT_BYTES + k] && wrong++ < 10)
                std::fprintf(stderr, "tb: token byte %zu: got 0x%02x, expected 0x%02x\n", b * layout::BEAT_BYTES + k,
                             got, exp[b * layout::BEAT_BYTES + k]);
        }
    if (config_id != cfg::CONFIG_ID) {
        std::fprintf(stderr, "tb: CONFIG_ID 0x%08x, expected 0x%08x\n", config_id, cfg::CONFIG_ID);
        return 1;
    }
    std::printf("tb: %u image(s), task %u: %lld of %zu token bytes differ from the reference\n", batch, task, wrong,
                exp.size());
    return wrong == 0 ? 0 : 1;
}
