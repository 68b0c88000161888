// hermes.hpp: a thin, header-only C++17 wrapper over the C ABI in hermes.h (after
// onnxruntime_cxx_api.h over its C API), covering all of it. Owning types are move-only; a
// failing call throws hermes::Exception carrying the status and hermes_last_error()'s
// message (the library's internal error type is another, never seen by callers).
// The thread-safety contract is the C ABI's: share one Model between threads, give
// each thread its own Session.
#ifndef HERMES_HERMES_HPP
#define HERMES_HERMES_HPP

#include <cstddef>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "hermes/hermes.h"

namespace hermes {

class Exception : public std::runtime_error {
public:
    Exception(hermes_status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    hermes_status status() const noexcept { return status_; }

private:
    hermes_status status_;
};

inline void check(hermes_status status) {
    if (status != HERMES_OK) throw Exception(status, hermes_last_error());
}

inline std::string version() { return hermes_version(); }
inline std::string status_name(hermes_status status) { return hermes_status_name(status); }
inline std::string backends() { return hermes_backends(); }  // e.g. "openvino,tensorrt"
inline hermes_model_params default_model_params() { return hermes_model_default_params(); }
inline hermes_restore_params default_restore_params() { return hermes_restore_default_params(); }

class Model {
public:
    explicit Model(const std::string &path, const hermes_model_params &params = hermes_model_default_params()) {
        check(hermes_model_load(path.c_str(), &params, &handle_));
    }
    ~Model() { hermes_model_free(handle_); }
    Model(Model &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Model &operator=(Model &&other) noexcept {
        if (this != &other) {
            hermes_model_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    hermes_model_info info() const {
        hermes_model_info out = hermes_model_info_init();
        check(hermes_model_get_info(handle_, &out));
        return out;
    }
    std::string spec_json() const {
        const char *text = nullptr;
        check(hermes_model_spec_json(handle_, &text));
        return text;
    }
    std::string backend_name() const {
        const char *text = nullptr;
        check(hermes_model_backend_name(handle_, &text));
        return text;
    }
    hermes_model *get() const noexcept { return handle_; }

private:
    hermes_model *handle_ = nullptr;
};

class Session {
public:
    explicit Session(const Model &model, const hermes_restore_params &params = hermes_restore_default_params()) {
        check(hermes_session_create(model.get(), &params, &handle_));
    }
    ~Session() { hermes_session_free(handle_); }
    Session(Session &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Session &operator=(Session &&other) noexcept {
        if (this != &other) {
            hermes_session_free(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Session(const Session &) = delete;
    Session &operator=(const Session &) = delete;

    void set_params(const hermes_restore_params &params) { check(hermes_session_set_params(handle_, &params)); }
    std::pair<int, int> output_size(int width, int height) const {
        int32_t w = 0, h = 0;
        check(hermes_output_size(handle_, width, height, &w, &h));
        return {w, h};
    }
    void restore(const hermes_image &in, hermes_image &out) { check(hermes_restore(handle_, &in, &out)); }
    void restore_file(const std::string &in_path, const std::string &out_path) {
        check(hermes_restore_file(handle_, in_path.c_str(), out_path.c_str()));
    }
    // An encoded image in memory (PNG, JPEG, TIFF, WebP) -> the restored one, encoded as
    // `format` ("png", "jpg", "webp", "tif"; empty: the input's own format).
    std::string restore_buffer(const void *data, size_t size, const std::string &format = "") {
        void *out = nullptr;
        size_t n = 0;
        check(hermes_restore_buffer(handle_, data, size, format.empty() ? nullptr : format.c_str(), &out, &n));
        std::unique_ptr<void, void (*)(void *)> owned(out, hermes_free);
        return std::string(static_cast<const char *>(out), n);
    }
    // The per-image context restore would compute for `in` (see hermes_image_context).
    std::vector<float> image_context(const hermes_image &in, size_t count) {
        std::vector<float> out(count);
        check(hermes_image_context(handle_, &in, out.data(), count));
        return out;
    }
    // Route the following restores by `context`; an empty vector: compute it per image.
    void set_context(const std::vector<float> &context) {
        check(hermes_session_set_context(handle_, context.empty() ? nullptr : context.data(), context.size()));
    }
    hermes_stats last_stats() const {
        hermes_stats out = hermes_stats_init();
        check(hermes_session_last_stats(handle_, &out));
        return out;
    }
    hermes_session *get() const noexcept { return handle_; }

private:
    hermes_session *handle_ = nullptr;
};

}  // namespace hermes

#endif  // HERMES_HERMES_HPP
