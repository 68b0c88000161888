// libhermes_vs: a VapourSynth (API4) filter on libhermes' public C++ API only.
//
//   core.hermes.Restore(clip, model, tile=256, overlap=-1, backend="openvino",
//                       precision="f32", context="frame", sessions=0, threads=0)
//
// The clip is RGB of constant format and size: RGBS/RGBH (float) or integer RGB of 8 to
// 16 bits; the output is the same format at the model's scale. 8- and 16-bit frames go to
// libhermes as they are (HERMES_SAMPLE_U8 / U16: the very bytes libhermes and
// hermes-restore give); float, half and 9-15-bit frames go as 32-bit float
// (HERMES_SAMPLE_F32) and come back rounded once to the clip's format. Tiles are blended
// as libhermes blends them. Frames run in parallel (fmParallel), each on a session
// borrowed from a bounded pool (`sessions`, default: the core's threads).
//
// Context (one routing for every tile of a frame): "frame" computes it on each whole
// frame; "prop" takes it from the source frame's `HermesContext` property (a float array
// a script supplies, e.g. one per shot). Either way the output frame carries the context
// it was restored with as `HermesContext`. Per-shot context from scene-change properties
// ("shot") is not done yet: refused in one line.
#include <VSHelper4.h>
#include <VapourSynth4.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hermes/hermes.hpp"

namespace {

// IEEE 754 binary16 <-> binary32 (RGBH clips), rounding to nearest even.
float half_to_float(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (mant == 0) {
            bits = sign;
        } else {  // subnormal: normalize
            int e = -1;
            uint32_t m = mant;
            do {
                ++e;
                m <<= 1;
            } while ((m & 0x400u) == 0);
            bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

uint16_t float_to_half(float f) {
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t abs = bits & 0x7fffffffu;
    if (abs >= 0x7f800000u) return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow to infinity
    if (abs < 0x38800000u) {  // subnormal half (or zero)
        const float scaled = std::fabs(f) * 16777216.0f;  // 2^24: units of the smallest subnormal
        return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled)));
    }
    const uint32_t mant = abs & 0x7fffffu;
    uint32_t h = ((abs >> 23) - 127 + 15) << 10 | (mant >> 13);
    const uint32_t rest = mant & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent
    return static_cast<uint16_t>(sign | h);
}

struct Restore {
    VSNode *node = nullptr;
    VSVideoInfo vi{};  // the output's
    std::unique_ptr<hermes::Model> model;
    hermes_restore_params params{};
    hermes_sample sample = HERMES_SAMPLE_F32;
    int scale = 1;
    bool from_prop = false;
    size_t context_channels = 0;  // 0: a single graph (no context to give or take)

    std::mutex lock;
    std::condition_variable returned;
    std::vector<std::unique_ptr<hermes::Session>> idle;
    int made = 0, limit = 1;

    std::unique_ptr<hermes::Session> borrow() {
        std::unique_lock<std::mutex> hold(lock);
        returned.wait(hold, [&] { return !idle.empty() || made < limit; });
        if (!idle.empty()) {
            auto s = std::move(idle.back());
            idle.pop_back();
            return s;
        }
        ++made;
        hold.unlock();
        try {
            return std::make_unique<hermes::Session>(*model, params);
        } catch (...) {
            std::lock_guard<std::mutex> again(lock);
            --made;
            returned.notify_one();
            throw;
        }
    }
    void give_back(std::unique_ptr<hermes::Session> s) {
        {
            std::lock_guard<std::mutex> hold(lock);
            idle.push_back(std::move(s));
        }
        returned.notify_one();
    }
};

// One frame's three planes -> interleaved samples of type T (U8, U16 or float).
template <typename T, typename Read>
void interleave(const VSFrame *f, const VSAPI *api, int w, int h, std::vector<T> &dst, Read read) {
    dst.resize(static_cast<size_t>(w) * h * 3);
    for (int p = 0; p < 3; ++p) {
        const uint8_t *base = api->getReadPtr(f, p);
        const ptrdiff_t stride = api->getStride(f, p);
        for (int y = 0; y < h; ++y) {
            const uint8_t *row = base + y * stride;
            T *out = dst.data() + static_cast<size_t>(y) * w * 3 + p;
            for (int x = 0; x < w; ++x) out[static_cast<size_t>(x) * 3] = read(row, x);
        }
    }
}

template <typename T, typename Write>
void deinterleave(const std::vector<T> &src, VSFrame *f, const VSAPI *api, int w, int h, Write write) {
    for (int p = 0; p < 3; ++p) {
        uint8_t *base = api->getWritePtr(f, p);
        const ptrdiff_t stride = api->getStride(f, p);
        for (int y = 0; y < h; ++y) {
            uint8_t *row = base + y * stride;
            const T *in = src.data() + static_cast<size_t>(y) * w * 3 + p;
            for (int x = 0; x < w; ++x) write(row, x, in[static_cast<size_t>(x) * 3]);
        }
    }
}

constexpr const char *kContextProp = "HermesContext";

// Restore one interleaved frame; the context is the source frame's property ("prop"), or
// computed on the frame; either way it is returned for the output frame's property.
template <typename T>
std::vector<float> run(const Restore &d, hermes::Session &session, const VSFrame *src, const VSAPI *api,
                       std::vector<T> &in, std::vector<T> &out, int w, int h, hermes_sample sample) {
    const int s = d.scale;
    out.resize(static_cast<size_t>(w) * s * h * s * 3);
    const hermes_image iv{w, h, 3, sample, 0, in.data()};
    hermes_image ov{w * s, h * s, 3, sample, 0, out.data()};
    std::vector<float> context;
    if (d.context_channels) {
        if (d.from_prop) {
            const VSMap *props = api->getFramePropertiesRO(src);
            int err = 0;
            const double *values = api->mapGetFloatArray(props, kContextProp, &err);
            const int n = api->mapNumElements(props, kContextProp);
            if (err || n != static_cast<int>(d.context_channels))
                throw hermes::Exception(HERMES_ERR_INVALID_ARGUMENT,
                                        std::string("context=\"prop\" needs a float array property ") + kContextProp +
                                            " of " + std::to_string(d.context_channels) + " values on every frame (" +
                                            (err ? "it has none" : "it has " + std::to_string(n)) + ")");
            context.assign(values, values + n);
        } else {
            context = session.image_context(iv, d.context_channels);
        }
    }
    session.set_context(context);
    session.restore(iv, ov);
    return context;
}

const VSFrame *VS_CC restore_get_frame(int n, int reason, void *instance, void **, VSFrameContext *ctx, VSCore *core,
                                       const VSAPI *api) {
    auto *d = static_cast<Restore *>(instance);
    if (reason == arInitial) {
        api->requestFrameFilter(n, d->node, ctx);
        return nullptr;
    }
    if (reason != arAllFramesReady) return nullptr;
    const VSFrame *src = api->getFrameFilter(n, d->node, ctx);
    const VSVideoFormat *fmt = api->getVideoFrameFormat(src);
    const int w = api->getFrameWidth(src, 0), h = api->getFrameHeight(src, 0), s = d->scale;
    VSFrame *dst = api->newVideoFrame(&d->vi.format, w * s, h * s, src, core);
    try {
        std::unique_ptr<hermes::Session> session = d->borrow();
        struct Return {
            Restore *d;
            std::unique_ptr<hermes::Session> &s;
            ~Return() { d->give_back(std::move(s)); }
        } give_back{d, session};
        std::vector<float> used;
        if (d->sample == HERMES_SAMPLE_U8) {
            std::vector<uint8_t> in, out;
            interleave(src, api, w, h, in, [](const uint8_t *row, int x) { return row[x]; });
            used = run(*d, *session, src, api, in, out, w, h, HERMES_SAMPLE_U8);
            deinterleave(out, dst, api, w * s, h * s, [](uint8_t *row, int x, uint8_t v) { row[x] = v; });
        } else if (d->sample == HERMES_SAMPLE_U16) {
            std::vector<uint16_t> in, out;
            interleave(src, api, w, h, in, [](const uint8_t *row, int x) { return reinterpret_cast<const uint16_t *>(row)[x]; });
            used = run(*d, *session, src, api, in, out, w, h, HERMES_SAMPLE_U16);
            deinterleave(out, dst, api, w * s, h * s,
                         [](uint8_t *row, int x, uint16_t v) { reinterpret_cast<uint16_t *>(row)[x] = v; });
        } else {
            std::vector<float> in, out;
            const int bits = fmt->bitsPerSample;
            if (fmt->sampleType == stFloat && bits == 32) {
                interleave(src, api, w, h, in, [](const uint8_t *row, int x) { return reinterpret_cast<const float *>(row)[x]; });
            } else if (fmt->sampleType == stFloat) {
                interleave(src, api, w, h, in,
                           [](const uint8_t *row, int x) { return half_to_float(reinterpret_cast<const uint16_t *>(row)[x]); });
            } else {  // 9-15-bit integer
                const float k = 1.0f / static_cast<float>((1 << bits) - 1);
                interleave(src, api, w, h, in, [k](const uint8_t *row, int x) {
                    return static_cast<float>(reinterpret_cast<const uint16_t *>(row)[x]) * k;
                });
            }
            used = run(*d, *session, src, api, in, out, w, h, HERMES_SAMPLE_F32);
            if (fmt->sampleType == stFloat && bits == 32) {
                deinterleave(out, dst, api, w * s, h * s,
                             [](uint8_t *row, int x, float v) { reinterpret_cast<float *>(row)[x] = v; });
            } else if (fmt->sampleType == stFloat) {
                deinterleave(out, dst, api, w * s, h * s,
                             [](uint8_t *row, int x, float v) { reinterpret_cast<uint16_t *>(row)[x] = float_to_half(v); });
            } else {
                const float peak = static_cast<float>((1 << bits) - 1);
                deinterleave(out, dst, api, w * s, h * s, [peak](uint8_t *row, int x, float v) {
                    v = std::min(std::max(v, 0.0f), 1.0f) * peak + 0.5f;
                    reinterpret_cast<uint16_t *>(row)[x] = static_cast<uint16_t>(v);
                });
            }
        }
        if (!used.empty()) {
            std::vector<double> values(used.begin(), used.end());
            api->mapSetFloatArray(api->getFramePropertiesRW(dst), kContextProp, values.data(),
                                  static_cast<int>(values.size()));
        }
    } catch (const hermes::Exception &exc) {
        api->setFilterError((std::string("Restore: frame ") + std::to_string(n) + ": " + exc.what()).c_str(), ctx);
        api->freeFrame(dst);
        dst = nullptr;
    } catch (const std::bad_alloc &) {
        api->setFilterError("Restore: out of memory; use a smaller tile", ctx);
        api->freeFrame(dst);
        dst = nullptr;
    }
    api->freeFrame(src);
    return dst;
}

void VS_CC restore_free(void *instance, VSCore *, const VSAPI *api) {
    auto *d = static_cast<Restore *>(instance);
    api->freeNode(d->node);
    delete d;
}

std::string text_arg(const VSMap *in, const VSAPI *api, const char *key, const char *fallback) {
    int err = 0;
    const char *v = api->mapGetData(in, key, 0, &err);
    return err ? fallback : v;
}

int int_arg(const VSMap *in, const VSAPI *api, const char *key, int fallback) {
    int err = 0;
    const int v = api->mapGetIntSaturated(in, key, 0, &err);
    return err ? fallback : v;
}

void VS_CC restore_create(const VSMap *in, VSMap *out, void *, VSCore *core, const VSAPI *api) {
    auto d = std::make_unique<Restore>();
    d->node = api->mapGetNode(in, "clip", 0, nullptr);
    auto refuse = [&](const std::string &message) {
        api->mapSetError(out, ("Restore: " + message).c_str());
        api->freeNode(d->node);
    };
    const VSVideoInfo *vi = api->getVideoInfo(d->node);
    if (!vsh::isConstantVideoFormat(vi))
        return refuse("the clip changes format or size between frames; give it one (e.g. with resize)");
    const VSVideoFormat &f = vi->format;
    if (f.colorFamily != cfRGB)
        return refuse("the clip is not RGB; convert it first, e.g. core.resize.Bicubic(clip, format=vs.RGBS, "
                      "matrix_in_s=\"709\")");
    if (f.sampleType == stFloat && f.bitsPerSample != 32 && f.bitsPerSample != 16)
        return refuse("float clips must be RGBS or RGBH");
    if (f.sampleType == stInteger && (f.bitsPerSample < 8 || f.bitsPerSample > 16))
        return refuse("integer clips must have 8 to 16 bits per sample");
    const std::string model = text_arg(in, api, "model", "");
    const std::string backend = text_arg(in, api, "backend", "openvino");
    const std::string precision = text_arg(in, api, "precision", "f32");
    const std::string context = text_arg(in, api, "context", "frame");
    if (context == "shot")
        return refuse("context=\"shot\" is not available yet; set a HermesContext property per shot and use "
                      "context=\"prop\"");
    if (context != "frame" && context != "prop")
        return refuse("context must be \"frame\", \"shot\" or \"prop\", not \"" + context + "\"");
    d->from_prop = context == "prop";
    hermes_model_params mp = hermes::default_model_params();
    if (backend == "openvino") mp.backend = HERMES_BACKEND_OPENVINO;
    else if (backend == "tensorrt") mp.backend = HERMES_BACKEND_TENSORRT;
    else return refuse("backend must be \"openvino\" or \"tensorrt\", not \"" + backend + "\"");
    if (precision == "f32") mp.precision = HERMES_PRECISION_F32;
    else if (precision == "bf16") mp.precision = HERMES_PRECISION_BF16;
    else return refuse("precision must be \"f32\" or \"bf16\" (int8: pass an INT8 graph as the model), not \"" +
                       precision + "\"");
    VSCoreInfo info;
    api->getCoreInfo(core, &info);
    d->limit = std::max(1, int_arg(in, api, "sessions", info.numThreads));
    mp.streams = d->limit;
    mp.threads = std::max(0, int_arg(in, api, "threads", 0));
    d->params = hermes::default_restore_params();
    d->params.tile_height = d->params.tile_width = int_arg(in, api, "tile", 256);
    d->params.overlap = int_arg(in, api, "overlap", -1);
    try {
        d->model = std::make_unique<hermes::Model>(model, mp);
        const hermes_model_info mi = d->model->info();
        d->scale = mi.scale;
        d->context_channels = static_cast<size_t>(mi.context_channels);
        if (d->from_prop && !d->context_channels)
            return refuse("context=\"prop\": a single graph computes its own context per tile; export the pair");
        hermes::Session probe(*d->model, d->params);  // bad tile settings fail here, not per frame
        (void)probe;
    } catch (const hermes::Exception &exc) {
        return refuse(exc.what());
    }
    d->sample = f.sampleType == stInteger && f.bitsPerSample == 8    ? HERMES_SAMPLE_U8
                : f.sampleType == stInteger && f.bitsPerSample == 16 ? HERMES_SAMPLE_U16
                                                                     : HERMES_SAMPLE_F32;
    d->vi = *vi;
    d->vi.width *= d->scale;
    d->vi.height *= d->scale;
    const VSFilterDependency deps[] = {{d->node, rpStrictSpatial}};
    Restore *instance = d.release();
    api->createVideoFilter(out, "Restore", &instance->vi, restore_get_frame, restore_free, fmParallel, deps, 1, instance,
                           core);
}

}  // namespace

VS_EXTERNAL_API(void) VapourSynthPluginInit2(VSPlugin *plugin, const VSPLUGINAPI *vspapi) {
    vspapi->configPlugin("com.hermes-deploy.hermes", "hermes", "HERMES-IR/SR restoration on libhermes",
                         VS_MAKE_VERSION(0, 1), VAPOURSYNTH_API_VERSION, 0, plugin);
    vspapi->registerFunction("Restore",
                             "clip:vnode;model:data;tile:int:opt;overlap:int:opt;backend:data:opt;precision:data:opt;"
                             "context:data:opt;sessions:int:opt;threads:int:opt;",
                             "clip:vnode;", restore_create, nullptr, plugin);
}
