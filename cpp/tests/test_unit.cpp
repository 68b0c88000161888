// The unit tier: the tile grid, the blend profile and the spec parser, with no exported
// model and no data (plain `ctest` runs it anywhere). Expected values are those of the
// Python runtime (hermes_deploy/tile_grid.py, runtime/plan.py, spec.py), written out here.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "error.hpp"
#include "grid.hpp"
#include "spec.hpp"

namespace {

TEST(Grid, RoundUp) {
    EXPECT_EQ(hermes::round_up(17, 16), 32);
    EXPECT_EQ(hermes::round_up(16, 16), 16);
    EXPECT_EQ(hermes::round_up(1, 1), 1);
}

TEST(Grid, AxisStartsAsPython) {
    struct Case {
        int length, tile, overlap, multiple;
        std::vector<int> starts;
    };
    const std::vector<Case> cases = {{100, 32, 8, 16, {0, 16, 32, 48, 64, 80}},
                                     {256, 256, 16, 16, {0}},
                                     {300, 128, 16, 16, {0, 80, 176}},
                                     {1000, 256, 16, 16, {0, 176, 368, 560, 752}},
                                     {33, 32, 8, 1, {0, 1}},
                                     {17, 64, 16, 16, {0}}};
    for (const Case &c : cases)
        EXPECT_EQ(hermes::axis_starts(c.length, c.tile, c.overlap, c.multiple), c.starts)
            << c.length << " " << c.tile << " " << c.overlap << " " << c.multiple;
}

TEST(Grid, PlanAsPython) {
    const hermes::TilePlan plan = hermes::plan_tiles(200, 232, 64, 64, 16, 2, 16);
    EXPECT_EQ(plan.ys, (std::vector<int>{0, 48, 96, 144}));
    EXPECT_EQ(plan.xs, (std::vector<int>{0, 32, 80, 128, 176}));
    EXPECT_EQ(plan.count(), 20);
}

TEST(Blend, ProfileAsPython) {
    // tile 32, scale 2, overlap 16: 0 over the margin of overlap/4 = 4 input pixels (8
    // output samples) at an interior edge, then a ramp of 16 samples, then 1
    const std::vector<float> both = hermes::blend_profile(32, 2, true, true, 16);
    ASSERT_EQ(both.size(), 64u);
    for (int i = 0; i < 8; ++i) EXPECT_EQ(both[i], 0.0f) << i;
    for (int i = 8; i < 24; ++i) EXPECT_FLOAT_EQ(both[i], (2.0f * static_cast<float>(i - 8) + 1.0f) / 32.0f) << i;
    for (int i = 24; i < 40; ++i) EXPECT_EQ(both[i], 1.0f) << i;
    for (int i = 0; i < 64; ++i) EXPECT_EQ(both[i], both[63 - i]) << i;  // symmetric
    const std::vector<float> trail = hermes::blend_profile(32, 2, false, true, 16);
    for (int i = 0; i < 40; ++i) EXPECT_EQ(trail[i], 1.0f) << i;  // an image edge: no ramp
    for (int i = 40; i < 64; ++i) EXPECT_EQ(trail[i], both[i]) << i;
}

TEST(Blend, NeighboursCoverEveryOutputSample) {
    const hermes::TilePlan plan = hermes::plan_tiles(100, 100, 32, 32, 8, 2, 16);
    std::vector<float> sum(static_cast<size_t>(plan.padded_w() * plan.scale), 0.0f);
    for (size_t c = 0; c < plan.xs.size(); ++c) {
        const std::vector<float> w = plan.col_profile(static_cast<int>(c));
        for (size_t i = 0; i < w.size(); ++i) sum[static_cast<size_t>(plan.xs[c] * plan.scale) + i] += w[i];
    }
    for (int i = 0; i < 100 * plan.scale; ++i) EXPECT_GT(sum[static_cast<size_t>(i)], 0.0f) << i;
}

const char *kSpec = R"({"scale": 2, "in_channels": 3, "out_channels": 3, "size_multiple": 16,
  "min_size": 1, "tile_overlap": 16, "context_channels": 48, "precision": "fp32",
  "io_dtype": "float32", "target": "portable", "input_name": "input",
  "context_name": "context", "output_name": "output", "tile": null, "batch": null,
  "context_graph": "m.context.onnx"})";

TEST(Spec, ParsesThePythonSpec) {
    const hermes::Spec s = hermes::parse_spec(kSpec, "m.onnx");
    EXPECT_EQ(s.scale, 2);
    EXPECT_EQ(s.size_multiple, 16);
    EXPECT_EQ(s.tile_overlap, 16);
    EXPECT_FALSE(s.tile.has_value());
    EXPECT_EQ(s.context_graph.value_or(""), "m.context.onnx");
    EXPECT_FALSE(s.single_graph);
}

TEST(Spec, RefusesWhatCannotBe) {
    for (const std::string &text : {std::string("not json"), std::string("[1, 2]"),
                                   std::string(R"({"scale": 2, "single_graph": true, "context_graph": "c.onnx"})")}) {
        try {
            hermes::parse_spec(text, "m.onnx");
            ADD_FAILURE() << "accepted: " << text;
        } catch (const hermes::Error &exc) {
            EXPECT_EQ(exc.status(), HERMES_ERR_MODEL) << text;
            EXPECT_NE(std::string(exc.what()).find("m.onnx"), std::string::npos) << exc.what();
        }
    }
}

}  // namespace
