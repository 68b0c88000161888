// The tile grid and blend weights: the C++ twin of hermes_deploy/tile_grid.py and
// hermes_deploy/runtime/plan.py, equal to them bit for bit (checked by the tests on a
// table of sizes, tiles, overlaps and scales). Tiles start on multiples of the model's
// size multiple, spread evenly, and the last tile of a row/column ends where the
// whole-image pass ends (the side rounded up to the multiple). Each tile's output is
// weighted by a separable profile that is 0 over overlap/4 next to an interior edge,
// rises linearly, and is 1 elsewhere; see plan.py for why.
#pragma once

#include <vector>

#include "spec.hpp"

namespace hermes {

int round_up(int length, int multiple);
std::vector<int> axis_starts(int length, int tile, int overlap, int multiple);
// (tile*scale) output-space weights of one tile; lead/trail: that edge is interior.
std::vector<float> blend_profile(int tile, int scale, bool lead, bool trail, int overlap);

struct TileRequest {
    int tile_h = 256;
    int tile_w = 256;
    int overlap = -1;  // -1: the model's
};

struct TilePlan {
    int height = 0, width = 0;
    int tile_h = 0, tile_w = 0;
    int overlap = 0;
    int scale = 1;
    std::vector<int> ys, xs;
    int padded_h() const { return ys.back() + tile_h; }
    int padded_w() const { return xs.back() + tile_w; }
    int count() const { return static_cast<int>(ys.size() * xs.size()); }
    std::vector<float> row_profile(int row) const;
    std::vector<float> col_profile(int col) const;
};

TilePlan plan_tiles(int height, int width, int tile_h, int tile_w, int overlap, int scale,
                    int size_multiple);
// make_plan of plan.py: the model's fixed tile wins (a different explicit tile is an
// error), a side shorter than the tile gets a shorter tile.
TilePlan make_plan(const Spec &spec, int height, int width, const TileRequest &request);
// check_options of plan.py: refuse settings that cannot work for any image.
void check_request(const Spec &spec, const TileRequest &request);

}  // namespace hermes
