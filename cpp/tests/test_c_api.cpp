// The C ABI refuses bad input with a status and a one-line message, and never crashes:
// NULL handles, bad params, files that are not HERMES models, a missing context graph,
// an engine without a manifest, output buffers of the wrong size, wrong channel counts.
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <vector>

#include "common.hpp"

namespace {

// Every suite of this binary needs the exported model and the bad-input data: without
// them it skips, with the reason, instead of failing (the model-free tier is
// hermes_unit_tests and hermes_manifest_tests).
class NeedsModel : public ::testing::Environment {
public:
    void SetUp() override {
        if (std::getenv("HERMES_TEST_MODEL") && std::getenv("HERMES_TEST_DATA")) return;
        std::fprintf(stderr, "hermes_tests: HERMES_TEST_MODEL or HERMES_TEST_DATA is not set; skipped "
                             "(python -m pytest tests/cpp sets them, see cpp/tests/README.md)\n");
        GTEST_SKIP() << "HERMES_TEST_MODEL or HERMES_TEST_DATA is not set";
    }
};

::testing::Environment *const kNeedsModel = ::testing::AddGlobalTestEnvironment(new NeedsModel);

bool one_line(const char *text) { return text && *text && std::strchr(text, '\n') == nullptr; }

hermes_status load(const std::string &path, hermes_model **out) {
    return hermes_model_load(path.c_str(), nullptr, out);
}

TEST(CApi, NullHandlesAreRefused) {
    hermes_model *model = reinterpret_cast<hermes_model *>(0x1);
    EXPECT_EQ(hermes_model_load(nullptr, nullptr, &model), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(model, nullptr);  // the out pointer is cleared on failure
    EXPECT_NE(std::strstr(hermes_last_error(), "NULL"), nullptr) << hermes_last_error();
    EXPECT_EQ(hermes_model_load("x.onnx", nullptr, nullptr), HERMES_ERR_INVALID_ARGUMENT);
    hermes_session *session = nullptr;
    EXPECT_EQ(hermes_session_create(nullptr, nullptr, &session), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(hermes_restore(nullptr, nullptr, nullptr), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(hermes_restore_file(nullptr, "a.png", "b.png"), HERMES_ERR_INVALID_ARGUMENT);
    hermes_model_info info = hermes_model_info_init();
    EXPECT_EQ(hermes_model_get_info(nullptr, &info), HERMES_ERR_INVALID_ARGUMENT);
    hermes_stats stats = hermes_stats_init();
    EXPECT_EQ(hermes_session_last_stats(nullptr, &stats), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(one_line(hermes_last_error()));
    hermes_model_free(nullptr);  // free accepts NULL
    hermes_session_free(nullptr);
}

TEST(CApi, NullArgumentsOnALiveSession) {
    hermes::Session s(test::shared_model());
    EXPECT_EQ(hermes_restore(s.get(), nullptr, nullptr), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(hermes_restore_file(s.get(), nullptr, "b.png"), HERMES_ERR_INVALID_ARGUMENT);
    test::Image in = test::pattern(32, 32, 3);
    hermes_image iv = in.view();
    hermes_image ov = iv;
    ov.data = nullptr;
    ov.width *= 2;
    ov.height *= 2;
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "NULL"), nullptr) << hermes_last_error();
}

TEST(CApi, MissingAndForeignModels) {
    hermes_model *model = nullptr;
    EXPECT_EQ(load(test::data_path("does-not-exist.onnx"), &model), HERMES_ERR_IO);
    EXPECT_TRUE(one_line(hermes_last_error())) << hermes_last_error();

    EXPECT_EQ(load(test::data_path("not-hermes.onnx"), &model), HERMES_ERR_MODEL);
    EXPECT_NE(std::strstr(hermes_last_error(), "no HERMES spec"), nullptr) << hermes_last_error();

    EXPECT_EQ(load(test::data_path("garbage.onnx"), &model), HERMES_ERR_MODEL);
    EXPECT_NE(std::strstr(hermes_last_error(), "not a readable ONNX"), nullptr) << hermes_last_error();
    EXPECT_TRUE(one_line(hermes_last_error())) << hermes_last_error();

    EXPECT_EQ(load(test::data_path("truncated.onnx"), &model), HERMES_ERR_MODEL);
    EXPECT_NE(std::strstr(hermes_last_error(), "truncated or corrupt"), nullptr) << hermes_last_error();

    EXPECT_EQ(load(test::data_path("lonely/model.onnx"), &model), HERMES_ERR_MODEL);
    EXPECT_NE(std::strstr(hermes_last_error(), "context graph"), nullptr) << hermes_last_error();

    EXPECT_EQ(load(test::data_path("model.txt"), &model), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(model, nullptr);
}

TEST(CApi, EngineWithoutManifestOrBackend) {
    hermes_model *model = nullptr;
    const hermes_status st = load(test::data_path("stray.engine"), &model);
    // without TensorRT built in: unsupported; with it: the manifest is missing
    EXPECT_TRUE(st == HERMES_ERR_UNSUPPORTED || st == HERMES_ERR_MISMATCH) << hermes_status_name(st);
    EXPECT_TRUE(one_line(hermes_last_error())) << hermes_last_error();
    EXPECT_EQ(model, nullptr);
}

TEST(CApi, ParamsAreVersionedAndChecked) {
    hermes_model_params mp = hermes_model_default_params();
    mp.struct_size = 0;
    hermes_model *model = nullptr;
    EXPECT_EQ(hermes_model_load(test::model_path().c_str(), &mp, &model), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "struct_size"), nullptr) << hermes_last_error();

    hermes_restore_params rp = test::tiles(64, 64);  // overlap == tile can never work
    hermes_session *session = nullptr;
    EXPECT_EQ(hermes_session_create(test::shared_model().get(), &rp, &session), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "overlap 64"), nullptr) << hermes_last_error();
    EXPECT_EQ(session, nullptr);
    rp = test::tiles(0);
    EXPECT_EQ(hermes_session_create(test::shared_model().get(), &rp, &session), HERMES_ERR_INVALID_ARGUMENT);
    rp = hermes_restore_default_params();
    rp.batch = 0;
    EXPECT_EQ(hermes_session_create(test::shared_model().get(), &rp, &session), HERMES_ERR_INVALID_ARGUMENT);
}

TEST(CApi, ModelInfoComesFromTheSpec) {
    const hermes_model_info info = test::shared_model().info();
    EXPECT_EQ(info.scale, 2);
    EXPECT_EQ(info.in_channels, 3);
    EXPECT_EQ(info.size_multiple, 16);
    EXPECT_NE(test::shared_model().spec_json().find("\"scale\": 2"), std::string::npos);
    EXPECT_NE(test::shared_model().backend_name().find("openvino (CPU, f32)"), std::string::npos);
}

// An output struct as an older caller compiled it: the library writes only the prefix that
// caller's struct_size covers, and says how much it wrote; no struct_size is an error.
TEST(CApi, OutputStructsAreWrittenNoFurtherThanTheirSize) {
    struct Older {
        hermes_model_info info;  // only struct_size, scale and in_channels are the older struct's
    };
    const size_t older = offsetof(hermes_model_info, out_channels);
    Older buf{};
    std::memset(&buf, 0xAB, sizeof(buf));
    buf.info.struct_size = static_cast<uint32_t>(older);
    ASSERT_EQ(hermes_model_get_info(test::shared_model().get(), &buf.info), HERMES_OK) << hermes_last_error();
    EXPECT_EQ(buf.info.struct_size, older);
    EXPECT_EQ(buf.info.scale, 2);
    EXPECT_EQ(buf.info.in_channels, 3);
    const auto *bytes = reinterpret_cast<const unsigned char *>(&buf.info);
    for (size_t k = older; k < sizeof(hermes_model_info); ++k) ASSERT_EQ(bytes[k], 0xAB) << "byte " << k;

    hermes_model_info zero{};
    EXPECT_EQ(hermes_model_get_info(test::shared_model().get(), &zero), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "struct_size"), nullptr) << hermes_last_error();

    hermes::Session s(test::shared_model(), test::tiles(32));
    test::Image in = test::pattern(24, 16, 3), out(48, 32, 3, HERMES_SAMPLE_U8);
    hermes_image iv = in.view(), ov = out.view();
    s.restore(iv, ov);
    hermes_stats stats = hermes_stats_init();
    ASSERT_EQ(hermes_session_last_stats(s.get(), &stats), HERMES_OK);
    EXPECT_EQ(stats.struct_size, sizeof(hermes_stats));
    EXPECT_EQ(stats.tiles, 1);
}

// The per-image context, given instead of computed: the image's own context gives the
// very same output; another image's context routes it differently; bad contexts refused.
TEST(CApi, AGivenContextRoutesTheImage) {
    const hermes_model_info info = test::shared_model().info();
    ASSERT_GT(info.context_channels, 0);
    const size_t k = static_cast<size_t>(info.context_channels);
    hermes::Session s(test::shared_model(), test::tiles(32));
    test::Image a = test::pattern(40, 24, 3, HERMES_SAMPLE_U16, 1), b = test::pattern(40, 24, 3, HERMES_SAMPLE_U16, 7);
    test::Image own(80, 48, 3, HERMES_SAMPLE_U16), given(80, 48, 3, HERMES_SAMPLE_U16), other(80, 48, 3, HERMES_SAMPLE_U16);
    hermes_image av = a.view(), bv = b.view(), ov = own.view(), gv = given.view(), xv = other.view();
    s.restore(av, ov);
    const std::vector<float> ctx_a = s.image_context(av, k), ctx_b = s.image_context(bv, k);
    s.set_context(ctx_a);
    s.restore(av, gv);
    EXPECT_EQ(own.bytes, given.bytes);
    s.set_context(ctx_b);
    s.restore(av, xv);
    EXPECT_NE(own.bytes, other.bytes);  // the default model barely routes, but not zero
    s.set_context({});  // back to computing it
    s.restore(av, gv);
    EXPECT_EQ(own.bytes, given.bytes);
    std::vector<float> short_ctx(k - 1, 0.0f), nan_ctx(k, 0.0f);
    nan_ctx[0] = std::nanf("");
    EXPECT_EQ(hermes_session_set_context(s.get(), short_ctx.data(), short_ctx.size()), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "context_channels"), nullptr) << hermes_last_error();
    EXPECT_EQ(hermes_session_set_context(s.get(), nan_ctx.data(), nan_ctx.size()), HERMES_ERR_INVALID_ARGUMENT);
    float one = 0.0f;
    EXPECT_EQ(hermes_image_context(s.get(), &av, &one, 1), HERMES_ERR_INVALID_ARGUMENT);
}

TEST(CApi, WrongOutputBufferIsRefusedAndUntouched) {
    hermes::Session s(test::shared_model(), test::tiles(32));
    test::Image in = test::pattern(40, 24, 3);
    test::Image out(79, 48, 3, HERMES_SAMPLE_U8);  // one column short
    std::fill(out.bytes.begin(), out.bytes.end(), 0xAB);
    hermes_image iv = in.view(), ov = out.view();
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "expected 80x48x3"), nullptr) << hermes_last_error();
    for (uint8_t b : out.bytes) ASSERT_EQ(b, 0xAB);
    test::Image out16(80, 48, 3, HERMES_SAMPLE_U16);  // wrong sample type
    ov = out16.view();
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
}

TEST(CApi, WrongChannelCountIsRefused) {
    hermes::Session s(test::shared_model(), test::tiles(32));
    test::Image in(16, 16, 5, HERMES_SAMPLE_U8), out(32, 32, 5, HERMES_SAMPLE_U8);
    hermes_image iv = in.view(), ov = out.view();
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::strstr(hermes_last_error(), "5 channels"), nullptr) << hermes_last_error();
    iv.sample = static_cast<hermes_sample>(0);  // neither U8 nor U16
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
    iv = in.view();
    iv.width = 0;
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
}

TEST(CApi, RaiiWrapperThrowsWithTheMessage) {
    try {
        hermes::Model m(test::data_path("not-hermes.onnx"));
        FAIL() << "loaded a graph without a HERMES spec";
    } catch (const hermes::Exception &exc) {
        EXPECT_EQ(exc.status(), HERMES_ERR_MODEL);
        EXPECT_NE(std::string(exc.what()).find("no HERMES spec"), std::string::npos);
    }
}

}  // namespace
