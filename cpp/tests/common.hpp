// Shared helpers of the C++ tests: the test model and data from the environment (the
// Python tests export them; see README.md here), synthetic images, PSNR.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "hermes/hermes.hpp"

namespace test {

inline std::string env_path(const char *name) {
    const char *v = std::getenv(name);
    if (!v || !*v) {
        ADD_FAILURE() << name << " is not set: run the C++ tests through `python -m pytest tests/cpp` "
                      << "(it exports the model and data) or set it by hand, see cpp/tests/README.md";
        return "";
    }
    return v;
}

inline std::string model_path() { return env_path("HERMES_TEST_MODEL"); }
inline std::string data_path(const std::string &name) { return env_path("HERMES_TEST_DATA") + "/" + name; }

// One loaded model for a whole test binary (loading compiles the graph: seconds).
inline hermes::Model &shared_model() {
    static std::unique_ptr<hermes::Model> model;
    if (!model) {
        hermes_model_params p = hermes_model_default_params();
        p.threads = 1;
        model = std::make_unique<hermes::Model>(model_path(), p);
    }
    return *model;
}

// An owning interleaved image buffer.
struct Image {
    int width = 0, height = 0, channels = 0;
    hermes_sample sample = HERMES_SAMPLE_U8;
    std::vector<uint8_t> bytes;

    Image(int w, int h, int c, hermes_sample s) : width(w), height(h), channels(c), sample(s),
        bytes(static_cast<size_t>(w) * h * c * (s == HERMES_SAMPLE_F32 ? 4 : s == HERMES_SAMPLE_U16 ? 2 : 1)) {}
    hermes_image view() { return hermes_image{width, height, channels, sample, 0, bytes.data()}; }
    double at(int x, int y, int c) const {
        const size_t i = (static_cast<size_t>(y) * width + x) * channels + c;
        if (sample == HERMES_SAMPLE_F32) return reinterpret_cast<const float *>(bytes.data())[i];
        if (sample == HERMES_SAMPLE_U16) return reinterpret_cast<const uint16_t *>(bytes.data())[i] / 65535.0;
        return bytes[i] / 255.0;
    }
    void set(int x, int y, int c, double v) {
        const size_t i = (static_cast<size_t>(y) * width + x) * channels + c;
        if (sample == HERMES_SAMPLE_F32) {
            reinterpret_cast<float *>(bytes.data())[i] = static_cast<float>(v);
            return;
        }
        v = std::fmin(std::fmax(v, 0.0), 1.0);
        if (sample == HERMES_SAMPLE_U16) reinterpret_cast<uint16_t *>(bytes.data())[i] = static_cast<uint16_t>(v * 65535.0 + 0.5);
        else bytes[i] = static_cast<uint8_t>(v * 255.0 + 0.5);
    }
};

// A photo-like test pattern: smooth shading, edges and texture; `seed` shifts it.
inline Image pattern(int w, int h, int channels, hermes_sample s = HERMES_SAMPLE_U8, int seed = 0) {
    Image im(w, h, channels, s);
    uint32_t state = 12345u + 977u * static_cast<uint32_t>(seed);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            state = state * 1664525u + 1013904223u;
            const double noise = ((state >> 8) & 0xff) / 255.0 - 0.5;
            const double fx = x + 7.0 * seed, fy = y + 3.0 * seed;
            const double r = 0.5 + 0.35 * std::sin(fx / 9.0) * std::cos(fy / 13.0) + 0.05 * noise;
            const double g = ((static_cast<int>(fx) / 12 + static_cast<int>(fy) / 12) % 2 ? 0.75 : 0.25) + 0.04 * noise;
            const double b = 0.2 + 0.6 * (fx + fy) / (w + h + 10.0 * seed);
            for (int c = 0; c < channels; ++c) {
                const int colour = channels >= 3 ? 3 : 1;
                double v;
                if (c >= colour) v = 0.3 + 0.6 * x / std::max(1, w - 1);  // alpha: a ramp
                else if (colour == 1) v = (r + g + b) / 3.0;
                else v = c == 0 ? r : (c == 1 ? g : b);
                im.set(x, y, c, v);
            }
        }
    return im;
}

inline Image output_for(const hermes::Session &session, const Image &in) {
    const auto [w, h] = session.output_size(in.width, in.height);
    return Image(w, h, in.channels, in.sample);
}

// PSNR (dB, peak 1) over the first `channels` channels of two same-size images
inline double psnr(const Image &a, const Image &b, int channels) {
    double se = 0.0;
    long long n = 0;
    for (int y = 0; y < a.height; ++y)
        for (int x = 0; x < a.width; ++x)
            for (int c = 0; c < channels; ++c) {
                const double d = a.at(x, y, c) - b.at(x, y, c);
                se += d * d;
                ++n;
            }
    return se == 0.0 ? 200.0 : 10.0 * std::log10(static_cast<double>(n) / se);
}

inline hermes_restore_params tiles(int tile, int overlap = -1) {
    hermes_restore_params p = hermes_restore_default_params();
    p.tile_height = p.tile_width = tile;
    p.overlap = overlap;
    return p;
}

}  // namespace test
