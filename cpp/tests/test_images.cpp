// Restoring images: tiled against whole-image (>= 45 dB, as in Python), alpha and grey
// and 16-bit handled as the Python runtime handles them, the file API equal to the
// in-memory API on the same pixels, and bad files refused with nothing left behind.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <vips/vips8>

#include "common.hpp"

namespace {

test::Image restore(hermes::Session &s, test::Image &in) {
    test::Image out = test::output_for(s, in);
    hermes_image iv = in.view(), ov = out.view();
    hermes::check(hermes_restore(s.get(), &iv, &ov));
    return out;
}

std::string temp_dir() {
    char tmpl[] = "/tmp/hermes-test-XXXXXX";
    const char *d = mkdtemp(tmpl);
    return d ? d : "";
}

std::vector<std::string> listing(const std::string &dir) {
    std::vector<std::string> names;
    if (DIR *d = opendir(dir.c_str())) {
        while (dirent *e = readdir(d))
            if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, "..")) names.push_back(e->d_name);
        closedir(d);
    }
    return names;
}

// decode a file with libvips into an interleaved image
test::Image decode(const std::string &path) {
    if (VIPS_INIT("hermes-tests")) ADD_FAILURE() << "libvips did not start";
    vips::VImage im = vips::VImage::new_from_file(path.c_str());
    const hermes_sample s = im.format() == VIPS_FORMAT_USHORT ? HERMES_SAMPLE_U16 : HERMES_SAMPLE_U8;
    test::Image out(im.width(), im.height(), im.bands(), s);
    size_t n = 0;
    void *buf = im.write_to_memory(&n);
    EXPECT_EQ(n, out.bytes.size());
    std::memcpy(out.bytes.data(), buf, std::min(n, out.bytes.size()));
    g_free(buf);
    return out;
}

TEST(Images, TiledMatchesWholeImage) {
    test::Image in = test::pattern(150, 106, 3);
    hermes::Session whole(test::shared_model(), test::tiles(256));
    hermes::Session tiled(test::shared_model(), test::tiles(64));
    const test::Image a = restore(whole, in);
    const test::Image b = restore(tiled, in);
    EXPECT_EQ(whole.last_stats().tiles, 1);
    EXPECT_GE(tiled.last_stats().tiles, 6);
    const double db = test::psnr(a, b, 3);
    EXPECT_GE(db, 45.0) << "tiled vs whole-image";
    EXPECT_LT(db, 200.0) << "tiles must really differ from one pass (check the grid)";
}

TEST(Images, BatchDoesNotChangeTheResult) {
    test::Image in = test::pattern(100, 70, 3, HERMES_SAMPLE_U8, 3);
    hermes_restore_params p = test::tiles(48);
    hermes::Session one(test::shared_model(), p);
    p.batch = 4;
    hermes::Session four(test::shared_model(), p);
    EXPECT_GE(test::psnr(restore(one, in), restore(four, in), 3), 60.0);
}

TEST(Images, AlphaIsUpscaledOnItsOwn) {
    test::Image rgba = test::pattern(64, 48, 4);
    test::Image rgb(64, 48, 3, HERMES_SAMPLE_U8);
    for (int y = 0; y < 48; ++y)
        for (int x = 0; x < 64; ++x)
            for (int c = 0; c < 3; ++c) rgb.set(x, y, c, rgba.at(x, y, c));
    hermes::Session s(test::shared_model(), test::tiles(32));
    const test::Image a = restore(s, rgba), b = restore(s, rgb);
    for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x) {
            for (int c = 0; c < 3; ++c) ASSERT_EQ(a.at(x, y, c), b.at(x, y, c)) << x << "," << y;
            // the alpha ramp 0.3 .. 0.9 stays a ramp: close to its input at x/2
            ASSERT_NEAR(a.at(x, y, 3), rgba.at(x / 2, y / 2, 3), 0.02) << x << "," << y;
        }
}

TEST(Images, GreyRunsAsRgbAndComesBackGrey) {
    test::Image grey = test::pattern(40, 40, 1);
    test::Image rgb(40, 40, 3, HERMES_SAMPLE_U8);
    for (int y = 0; y < 40; ++y)
        for (int x = 0; x < 40; ++x)
            for (int c = 0; c < 3; ++c) rgb.set(x, y, c, grey.at(x, y, 0));
    hermes::Session s(test::shared_model(), test::tiles(32));
    const test::Image g = restore(s, grey), c = restore(s, rgb);
    for (int y = 0; y < g.height; ++y)
        for (int x = 0; x < g.width; ++x) {
            const double mean = (c.at(x, y, 0) + c.at(x, y, 1) + c.at(x, y, 2)) / 3.0;
            ASSERT_NEAR(g.at(x, y, 0), mean, 1.01 / 255.0) << x << "," << y;
        }
}

TEST(Images, SixteenBitKeepsItsDepth) {
    test::Image in8 = test::pattern(48, 32, 3);
    test::Image in16(48, 32, 3, HERMES_SAMPLE_U16);
    for (size_t i = 0; i < in8.bytes.size(); ++i)
        reinterpret_cast<uint16_t *>(in16.bytes.data())[i] = static_cast<uint16_t>(in8.bytes[i] * 257);
    hermes::Session s(test::shared_model(), test::tiles(32));
    const test::Image a = restore(s, in8), b = restore(s, in16);
    EXPECT_GE(test::psnr(a, b, 3), 50.0);
    // 16-bit output carries more than 8 bits: some samples are not multiples of 257
    const auto *w = reinterpret_cast<const uint16_t *>(b.bytes.data());
    size_t fine = 0;
    for (size_t i = 0; i < b.bytes.size() / 2; ++i) fine += w[i] % 257 != 0;
    EXPECT_GT(fine, b.bytes.size() / 4);
}

// Float samples in, float samples out: the 16-bit input's values as floats give the model
// the very same input, and the float output, quantized as libhermes quantizes 16-bit
// output, is the 16-bit output sample for sample; unquantized, it holds values between.
TEST(Images, FloatSamplesCarryTheModelOutputUnquantized) {
    test::Image in16 = test::pattern(48, 32, 3, HERMES_SAMPLE_U16, 3);
    test::Image inf(48, 32, 3, HERMES_SAMPLE_F32);
    const auto *u = reinterpret_cast<const uint16_t *>(in16.bytes.data());
    auto *f = reinterpret_cast<float *>(inf.bytes.data());
    const float k = static_cast<float>(1.0 / 65535.0);
    for (size_t i = 0; i < in16.bytes.size() / 2; ++i) f[i] = static_cast<float>(u[i]) * k;
    hermes::Session s(test::shared_model(), test::tiles(32));
    test::Image a = restore(s, in16), b = restore(s, inf);
    ASSERT_EQ(b.sample, HERMES_SAMPLE_F32);
    const auto *ua = reinterpret_cast<const uint16_t *>(a.bytes.data());
    const auto *fb = reinterpret_cast<const float *>(b.bytes.data());
    size_t between = 0;
    for (size_t i = 0; i < a.bytes.size() / 2; ++i) {
        float v = std::min(std::max(fb[i], 0.0f), 1.0f);
        v *= 65535.0f;
        v += 0.5f;
        ASSERT_EQ(static_cast<uint16_t>(v), ua[i]) << "sample " << i;
        between += std::fabs(fb[i] * 65535.0f - std::round(fb[i] * 65535.0f)) > 0.01f;
    }
    EXPECT_GT(between, a.bytes.size() / 4);
    // a float buffer that does not start on a float boundary is refused
    hermes_image iv = inf.view(), ov = b.view();
    iv.data = static_cast<uint8_t *>(iv.data) + 1;
    EXPECT_EQ(hermes_restore(s.get(), &iv, &ov), HERMES_ERR_INVALID_ARGUMENT);
}

TEST(Images, FileApiEqualsMemoryApi) {
    const std::string dir = temp_dir();
    const std::string out = dir + "/photo-x2.png";
    hermes::Session s(test::shared_model(), test::tiles(64));
    s.restore_file(test::data_path("photo.png"), out);
    test::Image in = decode(test::data_path("photo.png"));
    const test::Image mem = restore(s, in);
    const test::Image file = decode(out);
    ASSERT_EQ(file.width, mem.width);
    ASSERT_EQ(file.height, mem.height);
    ASSERT_EQ(file.channels, mem.channels);
    EXPECT_EQ(file.bytes, mem.bytes);
    EXPECT_EQ(listing(dir), std::vector<std::string>{"photo-x2.png"});  // no temporaries
}

TEST(Images, BadFilesAreRefusedWithNothingLeft) {
    const std::string dir = temp_dir();
    hermes::Session s(test::shared_model(), test::tiles(64));
    struct Case {
        const char *file;
        hermes_status status;
        const char *words;
    } cases[] = {{"corrupt.png", HERMES_ERR_IMAGE, "not a readable image"},
                 {"truncated.png", HERMES_ERR_IMAGE, "truncated"},
                 {"empty.png", HERMES_ERR_IMAGE, "empty file"},
                 {"missing.png", HERMES_ERR_IO, "no such file"}};
    for (const Case &c : cases) {
        const hermes_status st = hermes_restore_file(s.get(), test::data_path(c.file).c_str(), (dir + "/out.png").c_str());
        EXPECT_EQ(st, c.status) << c.file << ": " << hermes_last_error();
        EXPECT_NE(std::strstr(hermes_last_error(), c.words), nullptr) << c.file << ": " << hermes_last_error();
        EXPECT_EQ(std::strchr(hermes_last_error(), '\n'), nullptr);
    }
    EXPECT_EQ(hermes_restore_file(s.get(), test::data_path("photo.png").c_str(), (dir + "/out.bmp").c_str()),
              HERMES_ERR_FORMAT);
    EXPECT_TRUE(listing(dir).empty()) << "a failed restore left " << listing(dir).size() << " files";
    hermes_restore_params p = test::tiles(64);
    p.max_pixels = 1000;
    s.set_params(p);
    EXPECT_EQ(hermes_restore_file(s.get(), test::data_path("photo.png").c_str(), (dir + "/out.png").c_str()),
              HERMES_ERR_TOO_LARGE);
    EXPECT_NE(std::strstr(hermes_last_error(), "pixel limit"), nullptr) << hermes_last_error();
    EXPECT_TRUE(listing(dir).empty());
}

TEST(Images, MultiPageFilesAreRefusedNotCutToOnePage) {
    const std::string dir = temp_dir();
    if (VIPS_INIT("hermes-tests")) FAIL() << "libvips did not start";
    // three 16x24 pages stacked, written as a three-page TIFF (and one page as a control)
    vips::VImage pages = vips::VImage::black(24, 48, vips::VImage::option()->set("bands", 3)) + 60;
    pages = pages.copy(vips::VImage::option()->set("interpretation", VIPS_INTERPRETATION_sRGB)).cast(VIPS_FORMAT_UCHAR);
    pages.set("page-height", 16);
    pages.tiffsave((dir + "/pages.tif").c_str());
    pages.crop(0, 0, 24, 16).tiffsave((dir + "/single.tif").c_str());
    hermes::Session s(test::shared_model(), test::tiles(64));
    EXPECT_EQ(hermes_restore_file(s.get(), (dir + "/pages.tif").c_str(), (dir + "/out.png").c_str()), HERMES_ERR_FORMAT);
    EXPECT_NE(std::strstr(hermes_last_error(), "3 frames or pages"), nullptr) << hermes_last_error();
    EXPECT_EQ(access((dir + "/out.png").c_str(), F_OK), -1);
    EXPECT_EQ(hermes_restore_file(s.get(), (dir + "/single.tif").c_str(), (dir + "/out.png").c_str()), HERMES_OK)
        << hermes_last_error();
}

std::vector<uint8_t> file_bytes(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST(Images, BufferApiEqualsFileApi) {
    const std::string dir = temp_dir();
    hermes::Session s(test::shared_model(), test::tiles(64));
    s.restore_file(test::data_path("photo.png"), dir + "/file.png");
    const std::vector<uint8_t> in = file_bytes(test::data_path("photo.png"));
    void *out = nullptr;
    size_t n = 0;
    ASSERT_EQ(hermes_restore_buffer(s.get(), in.data(), in.size(), nullptr, &out, &n), HERMES_OK) << hermes_last_error();
    ASSERT_GT(n, 8u);
    EXPECT_EQ(std::memcmp(out, "\x89PNG", 4), 0);  // the input's own format by default
    {
        std::ofstream f(dir + "/buffer.png", std::ios::binary);
        f.write(static_cast<const char *>(out), static_cast<std::streamsize>(n));
    }
    hermes_free(out);
    EXPECT_EQ(decode(dir + "/buffer.png").bytes, decode(dir + "/file.png").bytes);
    ASSERT_EQ(hermes_restore_buffer(s.get(), in.data(), in.size(), "jpg", &out, &n), HERMES_OK) << hermes_last_error();
    EXPECT_EQ(static_cast<const uint8_t *>(out)[0], 0xFF);  // JPEG SOI
    // a JPEG in comes back as a JPEG when no format is asked for
    const std::vector<uint8_t> jpeg(static_cast<const uint8_t *>(out), static_cast<const uint8_t *>(out) + n);
    hermes_free(out);
    ASSERT_EQ(hermes_restore_buffer(s.get(), jpeg.data(), jpeg.size(), nullptr, &out, &n), HERMES_OK) << hermes_last_error();
    EXPECT_EQ(static_cast<const uint8_t *>(out)[0], 0xFF) << "a JPEG input must default to a JPEG output";
    hermes_free(out);
}

TEST(Images, BufferApiRefusesBadInput) {
    hermes::Session s(test::shared_model(), test::tiles(64));
    void *out = reinterpret_cast<void *>(0x1);
    size_t n = 7;
    // a 1x1 GIF: a real image, in a format libhermes does not take
    const uint8_t gif[] = {0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
                           0x00, 0xFF, 0xFF, 0xFF, 0x21, 0xF9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2C, 0x00, 0x00,
                           0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B};
    EXPECT_EQ(hermes_restore_buffer(s.get(), gif, sizeof gif, nullptr, &out, &n), HERMES_ERR_FORMAT);
    EXPECT_NE(std::strstr(hermes_last_error(), "GIF"), nullptr) << hermes_last_error();
    EXPECT_EQ(out, nullptr);
    EXPECT_EQ(n, 0u);
    const char text[] = "hello, this is not an image";
    EXPECT_EQ(hermes_restore_buffer(s.get(), text, sizeof text, nullptr, &out, &n), HERMES_ERR_FORMAT);
    const std::vector<uint8_t> truncated = file_bytes(test::data_path("truncated.png"));
    EXPECT_EQ(hermes_restore_buffer(s.get(), truncated.data(), truncated.size(), nullptr, &out, &n), HERMES_ERR_IMAGE)
        << hermes_last_error();
    const std::vector<uint8_t> photo = file_bytes(test::data_path("photo.png"));
    EXPECT_EQ(hermes_restore_buffer(s.get(), photo.data(), photo.size(), "gif", &out, &n), HERMES_ERR_FORMAT);
    EXPECT_EQ(hermes_restore_buffer(s.get(), photo.data(), photo.size(), nullptr, nullptr, &n), HERMES_ERR_INVALID_ARGUMENT);
    hermes_restore_params p = test::tiles(64);
    p.max_pixels = 1000;
    s.set_params(p);
    EXPECT_EQ(hermes_restore_buffer(s.get(), photo.data(), photo.size(), nullptr, &out, &n), HERMES_ERR_TOO_LARGE);
    EXPECT_EQ(out, nullptr);
}

}  // namespace
