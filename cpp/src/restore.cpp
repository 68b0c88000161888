// Restoring one image (see restore.hpp).
#include "restore.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>
#include <vips/vips8>

#include "error.hpp"
#include "image_io.hpp"
#include "samples.hpp"
#include "tiled.hpp"

namespace hermes {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

hermes_stats stats_of(const TilePlan &plan) {
    hermes_stats s{};
    s.tiles = plan.count();
    s.grid_rows = static_cast<int32_t>(plan.ys.size());
    s.grid_cols = static_cast<int32_t>(plan.xs.size());
    s.tile_height = plan.tile_h;
    s.tile_width = plan.tile_w;
    s.overlap = plan.overlap;
    return s;
}

size_t bytes_of(hermes_sample s) { return s == HERMES_SAMPLE_F32 ? 4 : s == HERMES_SAMPLE_U16 ? 2 : 1; }

const char *sample_name(hermes_sample s) {
    return s == HERMES_SAMPLE_F32 ? "f32" : s == HERMES_SAMPLE_U16 ? "u16" : "u8";
}

// Call `f` with a value of the C++ type of the samples of `s` (uint8_t, uint16_t, float).
template <typename F>
void with_sample_type(hermes_sample s, F &&f) {
    if (s == HERMES_SAMPLE_F32) f(float{});
    else if (s == HERMES_SAMPLE_U16) f(uint16_t{});
    else f(uint8_t{});
}

void check_image(const hermes_image &im, const char *which) {
    const std::string w = which;
    if (!im.data) fail(HERMES_ERR_INVALID_ARGUMENT, w + " image has no data (NULL); pass a buffer");
    if (im.width < 1 || im.height < 1)
        fail(HERMES_ERR_INVALID_ARGUMENT, w + " image is " + std::to_string(im.width) + "x" + std::to_string(im.height) +
                                              "; both sides must be at least 1 pixel");
    if (im.channels < 1 || im.channels > 4)
        fail(HERMES_ERR_INVALID_ARGUMENT, w + " image has " + std::to_string(im.channels) +
                                              " channels; use 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA)");
    if (im.sample != HERMES_SAMPLE_U8 && im.sample != HERMES_SAMPLE_U16 && im.sample != HERMES_SAMPLE_F32)
        fail(HERMES_ERR_INVALID_ARGUMENT, w + " image has an unknown sample type " + std::to_string(im.sample) +
                                              "; use HERMES_SAMPLE_U8, HERMES_SAMPLE_U16 or HERMES_SAMPLE_F32");
    const size_t packed = static_cast<size_t>(im.width) * im.channels * bytes_of(im.sample);
    if (im.sample == HERMES_SAMPLE_F32 &&
        (reinterpret_cast<uintptr_t>(im.data) % alignof(float) != 0 || im.stride % sizeof(float) != 0))
        fail(HERMES_ERR_INVALID_ARGUMENT, w + " image of float samples must start on a 4-byte boundary and have a "
                                              "stride that is a multiple of 4");
    if (im.stride != 0 && im.stride < packed)
        fail(HERMES_ERR_INVALID_ARGUMENT, w + " image stride " + std::to_string(im.stride) + " is below one row (" +
                                              std::to_string(packed) + " bytes); pass 0 for packed rows");
}

size_t stride_of(const hermes_image &im) {
    return im.stride ? im.stride : static_cast<size_t>(im.width) * im.channels * bytes_of(im.sample);
}

const uint8_t *row_ptr(const hermes_image &im, int y) {
    return static_cast<const uint8_t *>(im.data) + static_cast<size_t>(y) * stride_of(im);
}

uint8_t *row_ptr(hermes_image &im, int y) {
    return static_cast<uint8_t *>(im.data) + static_cast<size_t>(y) * stride_of(im);
}

// The bands [first, first + n) of an in-memory image, packed.
std::vector<uint8_t> packed_bands(const hermes_image &im, int first, int n) {
    const size_t bps = bytes_of(im.sample);
    std::vector<uint8_t> out(static_cast<size_t>(im.width) * im.height * n * bps);
    for (int y = 0; y < im.height; ++y) {
        const uint8_t *src = row_ptr(im, y);
        uint8_t *dst = out.data() + static_cast<size_t>(y) * im.width * n * bps;
        for (int x = 0; x < im.width; ++x)
            std::memcpy(dst + static_cast<size_t>(x) * n * bps, src + (static_cast<size_t>(x) * im.channels + first) * bps, n * bps);
    }
    return out;
}

template <typename T>
void to_float_rows(const uint8_t *data, size_t stride, int y0, int y1, int width, int step, int colour, float *dst) {
    for (int y = y0; y < y1; ++y)
        row_to_float(reinterpret_cast<const T *>(data + static_cast<size_t>(y) * stride), width, step, colour,
                     dst + static_cast<size_t>(y - y0) * width * 3);
}

// (3, h, w) float context input of an in-memory image, downscaled above max_side
std::vector<float> memory_context(const hermes_image &im, int colour, int max_side, int *h, int *w) {
    const int long_side = std::max(im.width, im.height);
    std::vector<float> rgb;
    const size_t bps = bytes_of(im.sample);
    if (max_side > 0 && long_side > max_side) {
        std::vector<uint8_t> bands = packed_bands(im, 0, colour);
        std::vector<uint8_t> small = resize_memory(bands.data(), im.width, im.height, colour, static_cast<int>(bps),
                                                   static_cast<double>(max_side) / long_side, w, h);
        rgb.resize(static_cast<size_t>(*w) * *h * 3);
        const size_t stride = static_cast<size_t>(*w) * colour * bps;
        with_sample_type(im.sample, [&](auto t) {
            to_float_rows<decltype(t)>(small.data(), stride, 0, *h, *w, colour, colour, rgb.data());
        });
    } else {
        *w = im.width;
        *h = im.height;
        rgb.resize(static_cast<size_t>(*w) * *h * 3);
        const auto *data = static_cast<const uint8_t *>(im.data);
        with_sample_type(im.sample, [&](auto t) {
            to_float_rows<decltype(t)>(data, stride_of(im), 0, *h, *w, im.channels, colour, rgb.data());
        });
    }
    const size_t plane = static_cast<size_t>(*w) * *h;
    std::vector<float> planar(plane * 3);
    for (size_t i = 0; i < plane; ++i)
        for (size_t c = 0; c < 3; ++c) planar[c * plane + i] = rgb[i * 3 + c];
    return planar;
}

// The image's context, or nothing for a single graph (each tile computes its own).
template <typename ContextImage>
std::vector<float> context_of(BackendSession &session, const Spec &spec, const RestoreOptions &options,
                              ContextImage context_image) {
    if (spec.single_graph) return {};
    if (!options.context.empty()) return options.context;  // the caller's (checked when set)
    int h = 0, w = 0;
    const std::vector<float> image = context_image(&h, &w);
    std::vector<float> ctx(static_cast<size_t>(spec.context_channels));
    session.context(image.data(), h, w, ctx.data());
    return ctx;
}

const float *context_or_null(const std::vector<float> &ctx) { return ctx.empty() ? nullptr : ctx.data(); }

}  // namespace

RestoreOptions options_from(const hermes_restore_params &p) {
    RestoreOptions o;
    if (p.tile_height < 1 || p.tile_width < 1)
        fail(HERMES_ERR_INVALID_ARGUMENT, "tile " + std::to_string(p.tile_height) + "x" + std::to_string(p.tile_width) +
                                              " must be positive; the default is 256x256");
    if (p.overlap < -1)
        fail(HERMES_ERR_INVALID_ARGUMENT, "overlap " + std::to_string(p.overlap) +
                                              " must be >= 0, or -1 for the model's recommended overlap");
    if (p.batch < 1) fail(HERMES_ERR_INVALID_ARGUMENT, "batch " + std::to_string(p.batch) + " must be at least 1");
    if (p.context_size < 1)
        fail(HERMES_ERR_INVALID_ARGUMENT, "context_size " + std::to_string(p.context_size) + " must be at least 1; the default is 1024");
    if (p.max_pixels < 0) fail(HERMES_ERR_INVALID_ARGUMENT, "max_pixels must be >= 0 (0 = no limit)");
    o.tile.tile_h = p.tile_height;
    o.tile.tile_w = p.tile_width;
    o.tile.overlap = p.overlap;
    o.batch = p.batch;
    o.context_size = p.context_size;
    o.max_pixels = p.max_pixels;
    return o;
}

std::vector<float> image_context(BackendSession &session, const Spec &spec, const hermes_image &in,
                                 const RestoreOptions &options) {
    check_image(in, "input");
    if (spec.single_graph)
        fail(HERMES_ERR_INVALID_ARGUMENT, "a single graph computes its context inside each tile; it has none to give");
    const int colour = in.channels >= 3 ? 3 : 1;
    RestoreOptions computed = options;
    computed.context.clear();
    return context_of(session, spec, computed,
                      [&](int *h, int *w) { return memory_context(in, colour, options.context_size, h, w); });
}

hermes_stats restore_image(BackendSession &session, const Spec &spec, const hermes_image &in,
                           hermes_image &out, const RestoreOptions &options) {
    const auto t0 = Clock::now();
    check_image(in, "input");
    check_image(out, "output");
    const int s = spec.scale;
    if (static_cast<long long>(out.width) != static_cast<long long>(s) * in.width ||
        static_cast<long long>(out.height) != static_cast<long long>(s) * in.height || out.channels != in.channels ||
        out.sample != in.sample)
        fail(HERMES_ERR_INVALID_ARGUMENT,
             "output buffer is " + std::to_string(out.width) + "x" + std::to_string(out.height) + "x" +
                 std::to_string(out.channels) + " (" + sample_name(out.sample) + "), expected " +
                 std::to_string(s * in.width) + "x" + std::to_string(s * in.height) + "x" + std::to_string(in.channels) + " (" +
                 sample_name(in.sample) + "); allocate it with hermes_output_size");
    const int colour = in.channels >= 3 ? 3 : 1;
    const bool alpha = in.channels == 2 || in.channels == 4;
    const size_t bps = bytes_of(in.sample);
    const TilePlan plan = make_plan(spec, in.height, in.width, options.tile);
    hermes_stats stats = stats_of(plan);

    const auto tc = Clock::now();
    const std::vector<float> ctx =
        context_of(session, spec, options,
                   [&](int *h, int *w) { return memory_context(in, colour, options.context_size, h, w); });
    stats.context_seconds = spec.single_graph ? 0.0 : seconds_since(tc);

    // alpha first, upscaled on its own (bicubic, libvips), as the Python runtime does
    if (alpha) {
        std::vector<uint8_t> a = packed_bands(in, in.channels - 1, 1);
        int aw = in.width, ah = in.height;
        if (s != 1) a = resize_memory(a.data(), in.width, in.height, 1, static_cast<int>(bps), s, &aw, &ah);
        for (int y = 0; y < out.height; ++y) {
            uint8_t *dst = row_ptr(out, y);
            const int sy = std::min(y, ah - 1);
            for (int x = 0; x < out.width; ++x) {
                const int sx = std::min(x, aw - 1);
                std::memcpy(dst + (static_cast<size_t>(x) * out.channels + out.channels - 1) * bps,
                            a.data() + (static_cast<size_t>(sy) * aw + sx) * bps, bps);
            }
        }
    }

    const auto *data = static_cast<const uint8_t *>(in.data);
    const size_t in_stride = stride_of(in);
    ReadRows read = [&](int y0, int y1, float *dst) {
        with_sample_type(in.sample, [&](auto t) {
            to_float_rows<decltype(t)>(data, in_stride, y0, y1, in.width, in.channels, colour, dst);
        });
    };
    int y_out = 0;
    WriteRows write = [&](const float *rows, int n) {
        for (int r = 0; r < n; ++r, ++y_out) {
            const float *src = rows + static_cast<size_t>(r) * out.width * 3;
            with_sample_type(out.sample, [&](auto t) {
                using T = decltype(t);
                row_from_float(src, out.width, out.channels, colour, reinterpret_cast<T *>(row_ptr(out, y_out)));
            });
        }
    };
    const TiledStats t = run_tiled(session, spec, plan, read, context_or_null(ctx), write, options.batch);
    stats.compute_seconds = t.compute_seconds;
    stats.wall_seconds = seconds_since(t0);
    return stats;
}

namespace {

// The streamed path of the file and buffer APIs: rows read from `src` top to bottom,
// output rows into the sink `make_sink(width, height)` builds once the plan is known.
template <typename MakeSink>
hermes_stats restore_streamed(BackendSession &session, const Spec &spec, FileSource &src, const RestoreOptions &options,
                              Clock::time_point t0, MakeSink make_sink) {
    const TilePlan plan = make_plan(spec, src.height(), src.width(), options.tile);
    hermes_stats stats = stats_of(plan);
    const int s = spec.scale;
    FileSink &sink = make_sink(s * src.width(), s * src.height());  // checks the size first
    const auto tc = Clock::now();
    const std::vector<float> ctx =
        context_of(session, spec, options, [&](int *h, int *w) { return src.context_image(options.context_size, h, w); });
    stats.context_seconds = spec.single_graph ? 0.0 : seconds_since(tc);
    ReadRows read = [&](int y0, int y1, float *dst) { src.read_rows(y0, y1, dst); };
    WriteRows write = [&](const float *rows, int n) { sink.write(rows, n); };
    const TiledStats t = run_tiled(session, spec, plan, read, context_or_null(ctx), write, options.batch);
    sink.finish();
    stats.compute_seconds = t.compute_seconds;
    stats.wall_seconds = seconds_since(t0);
    return stats;
}

// "jpg", "webp", "tif" or "png": the format of an encoded image, for its default output
std::string own_format(const void *data, size_t size) {
    const char *loader = vips_foreign_find_load_buffer(data, size);
    std::string l = loader ? loader : "";  // e.g. VipsForeignLoadJpegBuffer
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return l.find("jpeg") != std::string::npos ? "jpg"
           : l.find("webp") != std::string::npos ? "webp"
           : l.find("tiff") != std::string::npos ? "tif" : "png";
}

}  // namespace

hermes_stats restore_file(BackendSession &session, const Spec &spec, const std::string &in_path,
                          const std::string &out_path, const RestoreOptions &options) {
    const auto t0 = Clock::now();
    FileSource src(in_path, options.max_pixels);
    std::unique_ptr<FileSink> sink;
    return restore_streamed(session, spec, src, options, t0, [&](int w, int h) -> FileSink & {
        sink = std::make_unique<FileSink>(out_path, w, h, src, spec.scale);
        return *sink;
    });
}

hermes_stats restore_buffer(BackendSession &session, const Spec &spec, const void *data, size_t size,
                            const std::string &format, std::vector<uint8_t> &out, const RestoreOptions &options) {
    const auto t0 = Clock::now();
    FileSource src(data, size, "the image", options.max_pixels);
    const std::string fmt = format.empty() ? own_format(data, size) : format;
    std::unique_ptr<FileSink> sink;
    const hermes_stats stats = restore_streamed(session, spec, src, options, t0, [&](int w, int h) -> FileSink & {
        sink = std::make_unique<FileSink>(FileSink::Memory{}, fmt, w, h, src, spec.scale);
        return *sink;
    });
    out = sink->take();
    return stats;
}

}  // namespace hermes
