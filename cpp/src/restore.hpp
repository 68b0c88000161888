// Restoring one image, in memory or file to file: the per-image context (computed once,
// on a downscaled copy above context_size; none for a single graph, whose tiles each
// compute their own), the tile plan, the tiled run, and the
// sample conversions - the C++ twin of restore_array / restore_file in
// hermes_deploy/runtime/pipeline.py.
#pragma once

#include <string>
#include <vector>

#include "backend.hpp"
#include "grid.hpp"
#include "hermes/hermes.h"

namespace hermes {

struct RestoreOptions {
    TileRequest tile;
    int batch = 1;
    int context_size = 1024;
    long long max_pixels = 89478485;
    std::vector<float> context;  // given by the caller (hermes_session_set_context); empty: computed per image
};

RestoreOptions options_from(const hermes_restore_params &params);

hermes_stats restore_image(BackendSession &session, const Spec &spec, const hermes_image &in,
                           hermes_image &out, const RestoreOptions &options);

// The per-image context restore_image computes for `in` (context_channels floats).
std::vector<float> image_context(BackendSession &session, const Spec &spec, const hermes_image &in,
                                 const RestoreOptions &options);

hermes_stats restore_file(BackendSession &session, const Spec &spec, const std::string &in_path,
                          const std::string &out_path, const RestoreOptions &options);

// An encoded image in memory -> an encoded image; `format` png|jpg|webp|tif or "" (the input's).
hermes_stats restore_buffer(BackendSession &session, const Spec &spec, const void *data, size_t size,
                            const std::string &format, std::vector<uint8_t> &out, const RestoreOptions &options);

}  // namespace hermes
