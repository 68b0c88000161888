// The backend interface the tiled runtime sees (the C++ twin of the Python runner
// interface, hermes_deploy/runtime/runner.py). A Backend is one loaded model, shared by
// threads; a BackendSession is one inference request, used by one thread at a time.
#pragma once

#include <memory>
#include <string>

#include "spec.hpp"

namespace hermes {

struct ModelOptions {
    std::string precision = "f32";  // f32 | bf16
    int threads = 0;                // per stream; 0 = the backend's default
    int streams = 1;                // sessions computing at once (OpenVINO CPU streams)
    int device = 0;                 // CUDA device (TensorRT)
    bool cuda_graph = false;        // TensorRT
};

class BackendSession {
public:
    virtual ~BackendSession() = default;
    // image: (1, C, h, w) float32 in [0, 1] -> out: (context_channels) float32.
    // Never called for a single graph (spec().single_graph): it has no context graph.
    virtual void context(const float *image, int h, int w, float *out) = 0;
    // tiles: (batch, C, h, w) float32; ctx: (context_channels), the same for every tile,
    // or nullptr for a single graph, which computes each tile's context itself;
    // out: (batch, out_channels, scale*h, scale*w) float32.
    virtual void infer(const float *tiles, int batch, int h, int w, const float *ctx,
                       float *out) = 0;
};

class Backend {
public:
    virtual ~Backend() = default;
    virtual const Spec &spec() const = 0;
    virtual const std::string &name() const = 0;
    virtual std::unique_ptr<BackendSession> open_session() = 0;
};

// The context graph alone, on the CPU through OpenVINO (f32). The TensorRT backend uses
// it too: the context graph is tiny and runs once per image.
class ContextModel {
public:
    virtual ~ContextModel() = default;
    class Request {
    public:
        virtual ~Request() = default;
        virtual void run(const float *image, int h, int w, float *out) = 0;
    };
    virtual std::unique_ptr<Request> request() = 0;
};

std::unique_ptr<ContextModel> open_context_model(const std::string &onnx_path, int channels,
                                                 int context_channels, int threads);

// model.onnx (+ model.context.onnx beside it, unless it is a single graph) through
// OpenVINO on the CPU.
std::unique_ptr<Backend> open_openvino(const std::string &onnx_path, const ModelOptions &options);

// model.engine + model.engine.json through TensorRT; where the library was built
// without TensorRT this throws HERMES_ERR_UNSUPPORTED saying how to build it in.
std::unique_ptr<Backend> open_tensorrt(const std::string &engine_path, const ModelOptions &options);

// "openvino" or "openvino,tensorrt"
const char *built_backends();

}  // namespace hermes
