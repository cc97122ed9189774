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

namespace edgemoe {

// One AXI4 beat of the memory ports.
typedef ap_uint<cfg::AXI_BITS> beat_t;

static_assert(layout::BEAT_BYTES * 8 == cfg::AXI_BITS, "the layout's beat must be the AXI data width");

}  // namespace edgemoe

void edgemoe_top(const edgemoe::beat_t* weights, const edgemoe::beat_t* images, edgemoe::beat_t* tokens,
                 unsigned task, unsigned batch, unsigned* config_id);
