// Tile grid and blend weights (see grid.hpp). The float arithmetic follows plan.py's
// numpy expressions operation by operation in float32, so the weights are identical;
// CMake builds this file with -ffp-contract=off so no multiply-add is fused.
#include "grid.hpp"

#include <algorithm>
#include <string>

#include "error.hpp"

namespace hermes {

namespace {
constexpr int kDefaultTile = 256;

std::string size_text(int h, int w) { return std::to_string(h) + "x" + std::to_string(w); }
}  // namespace

int round_up(int length, int multiple) {
    const long long m = std::max(1, multiple);
    const long long n = length;
    // Python's -(-n // m) * m: floor division, so negative lengths round like Python
    long long q = n / m;
    if (n % m != 0 && ((n < 0) == (m < 0))) ++q;
    return static_cast<int>(q * m);
}

std::vector<int> axis_starts(int length, int tile, int overlap, int multiple) {
    const int m = std::max(1, multiple);
    const int end = round_up(length, m);
    if (end <= tile) return {0};
    const int step = (tile - overlap) / m;  // both positive here when valid
    if (tile <= overlap || step < 1)
        fail(HERMES_ERR_INVALID_ARGUMENT,
             "tile " + std::to_string(tile) + " must exceed the overlap " + std::to_string(overlap) +
                 " by at least the model's size multiple " + std::to_string(m) +
                 "; raise the tile or lower the overlap");
    const long long units = (end - tile) / m;
    const long long n = (units + step - 1) / step;
    std::vector<int> starts;
    starts.reserve(static_cast<size_t>(n) + 1);
    for (long long i = 0; i < n; ++i) starts.push_back(static_cast<int>((i * units / n) * m));
    starts.push_back(end - tile);
    return starts;
}

std::vector<float> blend_profile(int tile, int scale, bool lead, bool trail, int overlap) {
    const int n = tile * scale;
    const int margin = overlap / 4;
    const int ramp = std::max(1, overlap - 2 * margin);
    std::vector<float> edge(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
        const float d = (static_cast<float>(i) + 0.5f) / static_cast<float>(scale);
        const float e = (d - static_cast<float>(margin)) / static_cast<float>(ramp);
        edge[static_cast<size_t>(i)] = std::min(std::max(e, 0.0f), 1.0f);
    }
    std::vector<float> w(static_cast<size_t>(n), 1.0f);
    for (int i = 0; i < n; ++i) {
        float v = w[static_cast<size_t>(i)];
        if (lead) v = std::min(v, edge[static_cast<size_t>(i)]);
        if (trail) v = std::min(v, edge[static_cast<size_t>(n - 1 - i)]);
        w[static_cast<size_t>(i)] = v;
    }
    return w;
}

std::vector<float> TilePlan::row_profile(int row) const {
    return blend_profile(tile_h, scale, row > 0, row < static_cast<int>(ys.size()) - 1, overlap);
}

std::vector<float> TilePlan::col_profile(int col) const {
    return blend_profile(tile_w, scale, col > 0, col < static_cast<int>(xs.size()) - 1, overlap);
}

TilePlan plan_tiles(int height, int width, int tile_h, int tile_w, int overlap, int scale,
                    int size_multiple) {
    if (height < 1 || width < 1)
        fail(HERMES_ERR_INVALID_ARGUMENT,
             "image has no pixels (" + std::to_string(width) + "x" + std::to_string(height) + ")");
    const int m = std::max(1, size_multiple);
    if (overlap < 0)
        fail(HERMES_ERR_INVALID_ARGUMENT, "overlap must be >= 0, got " + std::to_string(overlap));
    TilePlan p;
    p.height = height;
    p.width = width;
    p.tile_h = round_up(tile_h, m);
    p.tile_w = round_up(tile_w, m);
    p.overlap = overlap;
    p.scale = scale;
    p.ys = axis_starts(height, p.tile_h, overlap, m);
    p.xs = axis_starts(width, p.tile_w, overlap, m);
    return p;
}

TilePlan make_plan(const Spec &spec, int height, int width, const TileRequest &request) {
    const int overlap = request.overlap < 0 ? spec.tile_overlap : request.overlap;
    int th, tw;
    if (spec.tile) {
        const bool is_default = request.tile_h == kDefaultTile && request.tile_w == kDefaultTile;
        if (!is_default && (request.tile_h != spec.tile->first || request.tile_w != spec.tile->second))
            fail(HERMES_ERR_INVALID_ARGUMENT,
                 "this model has a fixed tile " + size_text(spec.tile->first, spec.tile->second) +
                     "; use that tile or re-export with --tile " +
                     size_text(request.tile_h, request.tile_w));
        th = spec.tile->first;
        tw = spec.tile->second;
    } else {
        th = std::min(request.tile_h, round_up(height, spec.size_multiple));
        tw = std::min(request.tile_w, round_up(width, spec.size_multiple));
    }
    if (std::min(th, tw) < 1)
        fail(HERMES_ERR_INVALID_ARGUMENT, "tile must be positive, got " + size_text(th, tw));
    if ((height > th && overlap >= th) || (width > tw && overlap >= tw))
        fail(HERMES_ERR_INVALID_ARGUMENT, "overlap " + std::to_string(overlap) +
                                              " must be smaller than the tile " + size_text(th, tw) +
                                              "; raise the tile or lower the overlap");
    return plan_tiles(height, width, th, tw, overlap, spec.scale, spec.size_multiple);
}

void check_request(const Spec &spec, const TileRequest &request) {
    const int overlap = request.overlap < 0 ? spec.tile_overlap : request.overlap;
    const int th = spec.tile ? spec.tile->first : request.tile_h;
    const int tw = spec.tile ? spec.tile->second : request.tile_w;
    if (overlap < 0 || std::min(th, tw) < 1 || overlap >= std::min(th, tw))
        fail(HERMES_ERR_INVALID_ARGUMENT, "overlap " + std::to_string(overlap) +
                                              " must be smaller than the tile " + size_text(th, tw) +
                                              "; raise the tile or lower the overlap");
    make_plan(spec, th, tw, request);
}

}  // namespace hermes
