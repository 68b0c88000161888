// The launch grids of the plugin kernels, shared by the CUDA launches (scan.cu,
// lowpass.cu) and the CPU harness that walks them (tests/harness.cpp).
#pragma once

#include "common.hpp"
#include "scan_math.hpp"

namespace hermes_plugins {

struct Grid {
    int64_t x, y, z;
};

// 1-D: ceil(count / threads) blocks of `threads`
HERMES_HD inline Grid grid_1d(size_t count, int threads) {
    return Grid{ceil_div(static_cast<int64_t>(count), threads), 1, 1};
}

// scan kernels 1 and 3: one block per (chunk, head, batch)
HERMES_HD inline Grid scan_chunk_grid(const ScanDims &d) { return Grid{d.chunks, d.h, d.b}; }

// CUDA's limits on grid sizes (x: 2^31 - 1, y and z: 65535)
HERMES_HD inline bool grid_fits(const Grid &g) {
    return g.x >= 0 && g.x <= 2147483647LL && g.y >= 0 && g.y <= 65535 && g.z >= 0 && g.z <= 65535;
}

}  // namespace hermes_plugins
