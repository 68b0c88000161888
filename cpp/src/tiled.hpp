// The tiled run of one image: cut same-shape tiles from rows read top to bottom, run
// them through a backend session in batches, blend their outputs and hand finished
// output rows to a sink. The C++ twin of run_tiled and Stitcher in
// hermes_deploy/runtime/pipeline.py and stitch.py (same padding, same weights, same
// float32 operations), so results match the Python runtime. Memory is one band of
// tile rows in and one band of output rows, whatever the image height.
#pragma once

#include <functional>

#include "backend.hpp"
#include "grid.hpp"

namespace hermes {

// Fill `dst` with input rows [y0, y1) as (y1 - y0, width, 3) float32 RGB in [0, 1].
using ReadRows = std::function<void(int y0, int y1, float *dst)>;
// Take `rows` finished output rows: (rows, scale * width, 3) float32 (not clipped).
using WriteRows = std::function<void(const float *data, int rows)>;

struct TiledStats {
    double compute_seconds = 0.0;
};

TiledStats run_tiled(BackendSession &session, const Spec &spec, const TilePlan &plan,
                     const ReadRows &read, const float *context, const WriteRows &write,
                     int batch);

}  // namespace hermes
