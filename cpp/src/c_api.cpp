// The C ABI (include/hermes/hermes.h): argument checks, exceptions turned into status
// codes, and the thread-local last-error string. Nothing C++ crosses the boundary.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "backend.hpp"
#include "error.hpp"
#include "hermes/hermes.h"
#include "restore.hpp"

struct hermes_model {
    std::unique_ptr<hermes::Backend> backend;
    std::string spec_json;
};

struct hermes_session {
    hermes_model *model = nullptr;
    std::unique_ptr<hermes::BackendSession> session;
    hermes::RestoreOptions options;
    hermes_stats last{};
};

namespace {

thread_local std::string last_error;

hermes_status set_error(hermes_status status, const std::string &message) {
    last_error = message;
    return status;
}

// Run `body`, mapping every exception to a status and a message.
template <typename F>
hermes_status guarded(F &&body) {
    try {
        body();
        return HERMES_OK;
    } catch (const hermes::Error &exc) {
        return set_error(exc.status(), exc.what());
    } catch (const std::bad_alloc &) {
        return set_error(HERMES_ERR_OUT_OF_MEMORY, "out of memory; use smaller tiles, a smaller batch or a smaller image");
    } catch (const std::exception &exc) {
        return set_error(HERMES_ERR_INTERNAL, std::string("internal error: ") + exc.what() + " (please report it)");
    } catch (...) {
        return set_error(HERMES_ERR_INTERNAL, "internal error (unknown exception; please report it)");
    }
}

hermes_status null_arg(const char *function, const char *argument) {
    return set_error(HERMES_ERR_INVALID_ARGUMENT,
                     std::string(function) + ": " + argument + " is NULL; pass a valid pointer");
}

// Copy a caller's versioned struct over the defaults: fields the caller's (older, smaller)
// struct lacks keep their defaults; a struct_size of 0 or too small is an error.
template <typename T>
bool read_params(const T *given, T &out, const char *function) {
    if (!given) return true;
    if (given->struct_size < sizeof(uint32_t) * 2 || given->struct_size > sizeof(T)) {
        set_error(HERMES_ERR_INVALID_ARGUMENT,
                  std::string(function) + ": params.struct_size is " + std::to_string(given->struct_size) +
                      "; start from the *_default_params() function of this header");
        return false;
    }
    std::memcpy(static_cast<void *>(&out), given, given->struct_size);
    out.struct_size = sizeof(T);
    return true;
}

// Write an output struct into the caller's, no further than the caller's struct_size (an
// older caller's struct is smaller); struct_size becomes the bytes written.
template <typename T>
hermes_status write_out(T value, T *out, const char *function, const char *type) {
    if (out->struct_size < sizeof(uint32_t) * 2)
        return set_error(HERMES_ERR_INVALID_ARGUMENT,
                         std::string(function) + ": out->struct_size is " + std::to_string(out->struct_size) +
                             "; set it to sizeof(" + type + ") before the call");
    const size_t n = std::min<size_t>(out->struct_size, sizeof(T));
    value.struct_size = static_cast<uint32_t>(n);
    std::memcpy(static_cast<void *>(out), &value, n);
    return HERMES_OK;
}

bool ends_with(const std::string &s, const std::string &tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

extern "C" {

const char *hermes_version(void) { return HERMES_VERSION_STRING; }

const char *hermes_backends(void) { return hermes::built_backends(); }

const char *hermes_status_name(hermes_status status) {
    switch (status) {
        case HERMES_OK: return "ok";
        case HERMES_ERR_INVALID_ARGUMENT: return "invalid argument";
        case HERMES_ERR_IO: return "i/o error";
        case HERMES_ERR_MODEL: return "bad model";
        case HERMES_ERR_MISMATCH: return "engine mismatch";
        case HERMES_ERR_IMAGE: return "bad image";
        case HERMES_ERR_UNSUPPORTED: return "unsupported";
        case HERMES_ERR_BACKEND: return "backend error";
        case HERMES_ERR_OUT_OF_MEMORY: return "out of memory";
        case HERMES_ERR_INTERNAL: return "internal error";
        case HERMES_ERR_TOO_LARGE: return "image too large";
        case HERMES_ERR_FORMAT: return "unsupported image format";
    }
    return "unknown status";
}

const char *hermes_last_error(void) { return last_error.c_str(); }

hermes_model_params hermes_model_default_params(void) {
    hermes_model_params p{};
    p.struct_size = sizeof(p);
    p.backend = HERMES_BACKEND_AUTO;
    p.precision = HERMES_PRECISION_F32;
    p.threads = 0;
    p.device = 0;
    p.cuda_graph = 0;
    p.streams = 1;
    return p;
}

hermes_restore_params hermes_restore_default_params(void) {
    hermes_restore_params p{};
    p.struct_size = sizeof(p);
    p.tile_height = 256;
    p.tile_width = 256;
    p.overlap = -1;
    p.batch = 1;
    p.context_size = 1024;
    p.max_pixels = 89478485;
    return p;
}

hermes_status hermes_model_load(const char *path, const hermes_model_params *params, hermes_model **out) {
    if (!out) return null_arg("hermes_model_load", "out");
    *out = nullptr;
    if (!path) return null_arg("hermes_model_load", "path");
    hermes_model_params p = hermes_model_default_params();
    if (!read_params(params, p, "hermes_model_load")) return HERMES_ERR_INVALID_ARGUMENT;
    return guarded([&] {
        hermes::ModelOptions options;
        if (p.precision != HERMES_PRECISION_F32 && p.precision != HERMES_PRECISION_BF16)
            hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "unknown precision " + std::to_string(p.precision) +
                                                          "; use HERMES_PRECISION_F32 or HERMES_PRECISION_BF16");
        if (p.threads < 0) hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "threads must be >= 0 (0 = all cores)");
        if (p.streams < 0 || p.streams > 256)
            hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "streams must be 1 to 256 (0 = 1), got " + std::to_string(p.streams));
        options.streams = std::max(1, p.streams);
        options.precision = p.precision == HERMES_PRECISION_BF16 ? "bf16" : "f32";
        options.threads = p.threads;
        options.device = p.device;
        options.cuda_graph = p.cuda_graph != 0;
        const std::string file = path;
        hermes_backend backend = p.backend;
        if (backend == HERMES_BACKEND_AUTO) {
            if (ends_with(file, ".engine") || ends_with(file, ".plan")) backend = HERMES_BACKEND_TENSORRT;
            else if (ends_with(file, ".onnx")) backend = HERMES_BACKEND_OPENVINO;
            else hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "'" + file + "' is neither an .onnx graph nor an .engine; "
                                                                      "pass model.onnx or model.engine, or choose the backend");
        }
        auto model = std::make_unique<hermes_model>();
        if (backend == HERMES_BACKEND_OPENVINO) model->backend = hermes::open_openvino(file, options);
        else if (backend == HERMES_BACKEND_TENSORRT) {
            if (options.precision != "f32")
                hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "an engine's precision is fixed when it is built; "
                                                          "load it with HERMES_PRECISION_F32");
            model->backend = hermes::open_tensorrt(file, options);
        } else hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "unknown backend " + std::to_string(backend));
        model->spec_json = model->backend->spec().json;
        *out = model.release();
    });
}

void hermes_model_free(hermes_model *model) { delete model; }

hermes_status hermes_model_get_info(const hermes_model *model, hermes_model_info *out) {
    if (!model) return null_arg("hermes_model_get_info", "model");
    if (!out) return null_arg("hermes_model_get_info", "out");
    const hermes::Spec &s = model->backend->spec();
    hermes_model_info info{};
    info.scale = s.scale;
    info.in_channels = s.in_channels;
    info.out_channels = s.out_channels;
    info.size_multiple = s.size_multiple;
    info.tile_overlap = s.tile_overlap;
    info.fixed_tile_height = s.tile ? s.tile->first : 0;
    info.fixed_tile_width = s.tile ? s.tile->second : 0;
    info.fixed_batch = s.batch ? *s.batch : 0;
    info.context_channels = s.single_graph ? 0 : s.context_channels;
    return write_out(info, out, "hermes_model_get_info", "hermes_model_info");
}

hermes_status hermes_model_spec_json(const hermes_model *model, const char **out) {
    if (!model) return null_arg("hermes_model_spec_json", "model");
    if (!out) return null_arg("hermes_model_spec_json", "out");
    *out = model->spec_json.c_str();
    return HERMES_OK;
}

hermes_status hermes_model_backend_name(const hermes_model *model, const char **out) {
    if (!model) return null_arg("hermes_model_backend_name", "model");
    if (!out) return null_arg("hermes_model_backend_name", "out");
    *out = model->backend->name().c_str();
    return HERMES_OK;
}

hermes_status hermes_session_create(hermes_model *model, const hermes_restore_params *params, hermes_session **out) {
    if (!out) return null_arg("hermes_session_create", "out");
    *out = nullptr;
    if (!model) return null_arg("hermes_session_create", "model");
    hermes_restore_params p = hermes_restore_default_params();
    if (!read_params(params, p, "hermes_session_create")) return HERMES_ERR_INVALID_ARGUMENT;
    return guarded([&] {
        auto session = std::make_unique<hermes_session>();
        session->model = model;
        session->options = hermes::options_from(p);
        hermes::check_request(model->backend->spec(), session->options.tile);
        session->session = model->backend->open_session();
        *out = session.release();
    });
}

void hermes_session_free(hermes_session *session) { delete session; }

hermes_status hermes_session_set_params(hermes_session *session, const hermes_restore_params *params) {
    if (!session) return null_arg("hermes_session_set_params", "session");
    if (!params) return null_arg("hermes_session_set_params", "params");
    hermes_restore_params p = hermes_restore_default_params();
    if (!read_params(params, p, "hermes_session_set_params")) return HERMES_ERR_INVALID_ARGUMENT;
    return guarded([&] {
        hermes::RestoreOptions options = hermes::options_from(p);
        hermes::check_request(session->model->backend->spec(), options.tile);
        session->options = options;
    });
}

hermes_status hermes_output_size(const hermes_session *session, int32_t width, int32_t height, int32_t *out_width,
                                 int32_t *out_height) {
    if (!session) return null_arg("hermes_output_size", "session");
    if (!out_width || !out_height) return null_arg("hermes_output_size", "out_width/out_height");
    const long long s = session->model->backend->spec().scale;
    if (width < 1 || height < 1 || s * width > INT32_MAX || s * height > INT32_MAX)
        return set_error(HERMES_ERR_INVALID_ARGUMENT, "image size " + std::to_string(width) + "x" + std::to_string(height) +
                                                          " is empty or too large to scale by " + std::to_string(s));
    *out_width = static_cast<int32_t>(s * width);
    *out_height = static_cast<int32_t>(s * height);
    return HERMES_OK;
}

hermes_status hermes_restore(hermes_session *session, const hermes_image *in, hermes_image *out) {
    if (!session) return null_arg("hermes_restore", "session");
    if (!in) return null_arg("hermes_restore", "in");
    if (!out) return null_arg("hermes_restore", "out");
    return guarded([&] {
        session->last = hermes::restore_image(*session->session, session->model->backend->spec(), *in, *out, session->options);
    });
}

hermes_status hermes_session_set_context(hermes_session *session, const float *context, size_t count) {
    if (!session) return null_arg("hermes_session_set_context", "session");
    return guarded([&] {
        const hermes::Spec &spec = session->model->backend->spec();
        if (!context) {
            session->options.context.clear();
            return;
        }
        if (spec.single_graph)
            hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "a single graph computes its context inside each tile; it takes "
                                                      "none from outside (export the pair for that)");
        if (count != static_cast<size_t>(spec.context_channels))
            hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "context has " + std::to_string(count) + " values; this model's has " +
                                                          std::to_string(spec.context_channels) +
                                                          " (hermes_model_info.context_channels)");
        for (size_t i = 0; i < count; ++i)
            if (!std::isfinite(context[i]))
                hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "context value " + std::to_string(i) + " is not finite");
        session->options.context.assign(context, context + count);
    });
}

hermes_status hermes_image_context(hermes_session *session, const hermes_image *in, float *out, size_t count) {
    if (!session) return null_arg("hermes_image_context", "session");
    if (!in) return null_arg("hermes_image_context", "in");
    if (!out) return null_arg("hermes_image_context", "out");
    return guarded([&] {
        const hermes::Spec &spec = session->model->backend->spec();
        if (count != static_cast<size_t>(spec.context_channels))
            hermes::fail(HERMES_ERR_INVALID_ARGUMENT, "out has room for " + std::to_string(count) + " values; this model's "
                                                          "context has " + std::to_string(spec.context_channels));
        const std::vector<float> ctx = hermes::image_context(*session->session, spec, *in, session->options);
        std::copy(ctx.begin(), ctx.end(), out);
    });
}

hermes_status hermes_restore_file(hermes_session *session, const char *in_path, const char *out_path) {
    if (!session) return null_arg("hermes_restore_file", "session");
    if (!in_path) return null_arg("hermes_restore_file", "in_path");
    if (!out_path) return null_arg("hermes_restore_file", "out_path");
    return guarded([&] {
        session->last = hermes::restore_file(*session->session, session->model->backend->spec(), in_path, out_path,
                                             session->options);
    });
}

hermes_status hermes_restore_buffer(hermes_session *session, const void *data, size_t size, const char *format,
                                    void **out, size_t *out_size) {
    if (out) *out = nullptr;
    if (out_size) *out_size = 0;
    if (!session) return null_arg("hermes_restore_buffer", "session");
    if (!data && size) return null_arg("hermes_restore_buffer", "data");
    if (!out || !out_size) return null_arg("hermes_restore_buffer", "out/out_size");
    return guarded([&] {
        std::vector<uint8_t> bytes;
        session->last = hermes::restore_buffer(*session->session, session->model->backend->spec(), data, size,
                                               format ? format : "", bytes, session->options);
        void *copy = std::malloc(bytes.empty() ? 1 : bytes.size());
        if (!copy) throw std::bad_alloc();
        std::memcpy(copy, bytes.data(), bytes.size());
        *out = copy;
        *out_size = bytes.size();
    });
}

void hermes_free(void *buffer) { std::free(buffer); }

hermes_status hermes_session_last_stats(const hermes_session *session, hermes_stats *out) {
    if (!session) return null_arg("hermes_session_last_stats", "session");
    if (!out) return null_arg("hermes_session_last_stats", "out");
    return write_out(session->last, out, "hermes_session_last_stats", "hermes_stats");
}

}  // extern "C"
