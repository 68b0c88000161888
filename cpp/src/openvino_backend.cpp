// OpenVINO backend (CPU): the ONNX pair written by `hermes-export onnx`, or the single
// graph of `hermes-export onnx --single-graph` (no context input, no context graph: it
// routes each tile from that tile), the C++ twin of hermes_deploy/engines/ov_runner.py.
// The spec comes from the ONNX metadata, which OpenVINO's ONNX frontend keeps under
// rt_info["framework"]. The inference precision is always set: on CPUs with bf16 units
// OpenVINO's default silently becomes bf16 (about 1e-2 error), so f32 is asked for unless
// the caller asks for bf16. The context graph always runs in f32: it runs once per image
// and decides the routing of every tile.
//
// Threads: ov::CompiledModel is thread-safe; each BackendSession owns its own infer
// requests, so sessions run concurrently without locks.
#include <algorithm>
#include <fstream>
#include <map>
#include <optional>
#include <tuple>
#include <mutex>
#include <openvino/frontend/manager.hpp>
#include <openvino/openvino.hpp>
#include <vector>

#include "backend.hpp"
#include "error.hpp"

namespace hermes {

namespace {

const char *kMetadataKey = "hermes.spec";

std::string base_name(const std::string &path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dir_name(const std::string &path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

bool is_file(const std::string &path) {
    std::ifstream f(path, std::ios::binary);
    return f.good();
}

// OpenVINO's messages start with "Exception from <file>:<line>:" lines; keep the reason
std::string reason(const std::string &text) {
    std::string best;
    size_t start = 0;
    while (start < text.size()) {
        size_t end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        const std::string line = text.substr(start, end - start);
        start = end + 1;
        if (!line.empty() && line.rfind("Exception from", 0) != 0) {
            best = line;
            break;
        }
    }
    if (best.find("ParseFromIstream") != std::string::npos) return "truncated or corrupt: the protobuf does not parse";
    return (best.empty() ? std::string("no reason given") : best).substr(0, 240);
}

ov::Core &core() {
    static ov::Core instance;  // OpenVINO's Core is thread-safe
    return instance;
}

// Read an ONNX file with the ONNX frontend only (read_model would try every frontend,
// and some print to stderr on a file they cannot parse).
std::shared_ptr<ov::Model> read(const std::string &path, const std::string &what) {
    const std::string refuse = "'" + base_name(path) + "' is not a readable ONNX " + what;
    const std::string fix = "; re-export it with hermes-export onnx";
    {
        std::ifstream f(path, std::ios::binary);
        char first = 0;
        // a serialized ModelProto starts with field 1 (ir_version, a varint): byte 0x08
        if (!f.get(first) || first != 0x08) fail(HERMES_ERR_MODEL, refuse + " (it does not start like an ONNX model)" + fix);
    }
    try {
        static ov::frontend::FrontEndManager manager;
        static std::mutex lock;
        ov::frontend::FrontEnd::Ptr onnx;
        {
            std::lock_guard<std::mutex> hold(lock);
            onnx = manager.load_by_framework("onnx");
        }
        const auto input = onnx->load(path);
        if (!input) fail(HERMES_ERR_MODEL, refuse + fix);
        return onnx->convert(input);
    } catch (const Error &) {
        throw;
    } catch (const std::exception &exc) {
        fail(HERMES_ERR_MODEL, refuse + " (" + reason(exc.what()) + ")" + fix);
    }
}

// The graph's inputs against its spec: every input is one the tiled runtime feeds, and
// a `context` input exactly when the spec describes a pair. A graph whose spec was
// copied from the other form would otherwise fail on its first tile, or run with a
// context input nobody fills.
void check_inputs(const ov::Model &model, const Spec &spec, const std::string &file) {
    const std::string fix = "; the graph and its spec do not belong together: re-export with hermes-export onnx";
    bool has_input = false, has_context = false;
    for (const ov::Output<const ov::Node> &port : model.inputs()) {
        const auto &names = port.get_names();
        if (names.count(spec.input_name)) has_input = true;
        else if (names.count(spec.context_name)) has_context = true;
        else if (!spec.noise_name || !names.count(*spec.noise_name))
            fail(HERMES_ERR_MODEL, "'" + file + "' has an input '" + port.get_any_name() + "' that its HERMES spec does not name (" +
                                       spec.input_name + (spec.single_graph ? "" : ", " + spec.context_name) +
                                       (spec.noise_name ? ", " + *spec.noise_name : "") + ")" + fix);
    }
    if (!has_input)
        fail(HERMES_ERR_MODEL, "'" + file + "' has no input '" + spec.input_name + "' that its HERMES spec names" + fix);
    if (spec.single_graph && has_context)
        fail(HERMES_ERR_MODEL, "'" + file + "' has a '" + spec.context_name + "' input but its HERMES spec says single_graph "
                               "(context computed inside the graph)" + fix + " --single-graph");
    if (!spec.single_graph && !has_context)
        fail(HERMES_ERR_MODEL, "'" + file + "' has no '" + spec.context_name + "' input but its HERMES spec describes a pair "
                               "(single_graph false)" + fix + " (with --single-graph for one graph)");
}

// One stream per session that computes at a time: with one stream OpenVINO runs the
// infer requests of all sessions one after another.
ov::AnyMap compile_config(const std::string &precision, int threads, int streams = 1) {
    ov::AnyMap config{ov::hint::performance_mode(ov::hint::PerformanceMode::LATENCY), ov::num_streams(std::max(1, streams)),
                      ov::hint::inference_precision(precision == "bf16" ? ov::element::bf16 : ov::element::f32)};
    if (threads > 0) config.emplace(ov::inference_num_threads(threads * std::max(1, streams)));
    return config;
}

class OvContextModel : public ContextModel {
public:
    OvContextModel(const std::string &path, int channels, int context_channels, int threads)
        : channels_(channels), context_channels_(context_channels) {
        auto model = read(path, "context graph");
        if (model->inputs().size() != 1 || model->outputs().size() != 1)
            fail(HERMES_ERR_MODEL, "'" + base_name(path) + "' is not a HERMES context graph (one input, one output "
                                   "expected); re-export with hermes-export onnx");
        try {
            compiled_ = core().compile_model(model, "CPU", compile_config("f32", threads));
        } catch (const std::exception &exc) {
            fail(HERMES_ERR_BACKEND, "OpenVINO could not compile '" + base_name(path) + "' (" + reason(exc.what()) + ")");
        }
    }

    class OvRequest : public Request {
    public:
        OvRequest(ov::InferRequest req, int channels, int k) : req_(std::move(req)), channels_(channels), k_(k) {}
        void run(const float *image, int h, int w, float *out) override {
            try {
                ov::Tensor in(ov::element::f32, ov::Shape{1, static_cast<size_t>(channels_), static_cast<size_t>(h), static_cast<size_t>(w)},
                              const_cast<float *>(image));
                req_.set_input_tensor(in);
                req_.infer();
                const ov::Tensor res = req_.get_output_tensor();
                if (res.get_size() != static_cast<size_t>(k_))
                    fail(HERMES_ERR_MODEL, "the context graph returned " + std::to_string(res.get_size()) +
                                               " values, the spec says " + std::to_string(k_) + "; re-export the model");
                std::copy_n(res.data<const float>(), k_, out);
            } catch (const Error &) {
                throw;
            } catch (const std::exception &exc) {
                fail(HERMES_ERR_BACKEND, "OpenVINO failed on the context graph (" + reason(exc.what()) + ")");
            }
        }

    private:
        ov::InferRequest req_;
        int channels_, k_;
    };

    std::unique_ptr<Request> request() override {
        return std::make_unique<OvRequest>(compiled_.create_infer_request(), channels_, context_channels_);
    }

private:
    ov::CompiledModel compiled_;
    int channels_, context_channels_;
};

// A tile shape: (batch, height, width).
using Shape3 = std::tuple<size_t, size_t, size_t>;

class OvBackend : public Backend {
public:
    OvBackend(const std::string &path, const ModelOptions &options) : options_(options) {
        if (!is_file(path)) fail(HERMES_ERR_IO, "'" + path + "' does not exist; export it with hermes-export onnx");
        if (options.precision != "f32" && options.precision != "bf16")
            fail(HERMES_ERR_INVALID_ARGUMENT, "precision '" + options.precision + "' is not one of f32, bf16");
        model_ = read(path, "model");
        if (!model_->has_rt_info("framework", kMetadataKey))
            fail(HERMES_ERR_MODEL, "'" + base_name(path) + "' has no HERMES spec in its metadata (not a HERMES graph); "
                                   "export it with hermes-export onnx");
        spec_ = parse_spec(model_->get_rt_info<std::string>("framework", kMetadataKey), base_name(path));
        if (spec_.target != "portable")
            fail(HERMES_ERR_MODEL, "'" + base_name(path) + "' is a " + spec_.target + "-target graph (custom hermes ops); "
                                   "the OpenVINO backend runs the portable graph: export with --target portable");
        check_inputs(*model_, spec_, base_name(path));
        if (!spec_.single_graph && (!spec_.context_graph || !is_file(dir_name(path) + "/" + *spec_.context_graph)))
            fail(HERMES_ERR_MODEL, "context graph '" + spec_.context_graph.value_or("") + "' is missing next to '" +
                                       base_name(path) + "'; keep it beside the main graph or re-export with hermes-export onnx");
        if (options.precision == "bf16") {
            const auto caps = core().get_property("CPU", ov::device::capabilities);
            if (std::find(caps.begin(), caps.end(), "BF16") == caps.end())
                fail(HERMES_ERR_UNSUPPORTED, "bf16 needs a CPU with AVX512-BF16 or AMX-BF16 and this CPU has neither; use f32");
        }
        name_ = "openvino (CPU, " + options.precision + ")";
        // compile once now, so a graph OpenVINO cannot compile fails at load time
        dynamic_ = compile(model_, base_name(path));
        if (!spec_.single_graph)  // a single graph computes its context from each tile
            context_ = open_context_model(dir_name(path) + "/" + *spec_.context_graph, spec_.in_channels,
                                          spec_.context_channels, options.threads);
    }

    const Spec &spec() const override { return spec_; }
    const std::string &name() const override { return name_; }
    std::unique_ptr<BackendSession> open_session() override;

    // The graph compiled for one tile shape. OpenVINO's CPU plugin runs a graph compiled
    // for static shapes faster than the dynamic one (measured 0.343 against 0.465 s per
    // 256x256 tile, f32, two threads, AMX Xeon), and every tile of an image has the same
    // shape, so each shape is compiled once (about a second) and kept; past kMaxShapes
    // shapes the dynamic graph serves the rest.
    ov::CompiledModel &compiled_for(const Shape3 &shape) {
        std::lock_guard<std::mutex> hold(lock_);
        auto found = by_shape_.find(shape);
        if (found != by_shape_.end()) return found->second;
        if (by_shape_.size() >= kMaxShapes) return dynamic_;
        const auto [b, h, w] = shape;
        std::shared_ptr<ov::Model> fixed = model_->clone();
        std::map<std::string, ov::PartialShape> shapes{
            {spec_.input_name, ov::PartialShape{static_cast<int64_t>(b), 3, static_cast<int64_t>(h), static_cast<int64_t>(w)}}};
        if (!spec_.single_graph)
            shapes[spec_.context_name] = ov::PartialShape{static_cast<int64_t>(b), spec_.context_channels};
        if (spec_.noise_name)
            shapes[*spec_.noise_name] = ov::PartialShape{static_cast<int64_t>(b), 1, static_cast<int64_t>(h), static_cast<int64_t>(w)};
        try {
            fixed->reshape(shapes);
        } catch (const std::exception &exc) {
            fail(HERMES_ERR_MODEL, "the graph does not take " + std::to_string(b) + "x3x" + std::to_string(h) + "x" +
                                       std::to_string(w) + " tiles (" + reason(exc.what()) + "); re-export it");
        }
        return by_shape_.emplace(shape, compile(fixed, name_)).first->second;
    }

private:
    static constexpr size_t kMaxShapes = 8;

    ov::CompiledModel compile(const std::shared_ptr<ov::Model> &model, const std::string &what) {
        try {
            return core().compile_model(model, "CPU", compile_config(options_.precision, options_.threads, options_.streams));
        } catch (const std::bad_alloc &) {
            fail(HERMES_ERR_OUT_OF_MEMORY, "out of memory compiling '" + what + "'");
        } catch (const std::exception &exc) {
            fail(HERMES_ERR_BACKEND, "OpenVINO could not compile '" + what + "' (" + reason(exc.what()) + ")");
        }
    }

    ModelOptions options_;
    Spec spec_;
    std::string name_;
    std::shared_ptr<ov::Model> model_;
    ov::CompiledModel dynamic_;
    std::mutex lock_;
    std::map<Shape3, ov::CompiledModel> by_shape_;
    std::unique_ptr<ContextModel> context_;  // null for a single graph

    friend class OvSession;
};

class OvSession : public BackendSession {
public:
    OvSession(OvBackend &backend, std::unique_ptr<ContextModel::Request> ctx)
        : backend_(backend), spec_(backend.spec()), ctx_(std::move(ctx)) {}

    void context(const float *image, int h, int w, float *out) override {
        if (!ctx_) fail(HERMES_ERR_INTERNAL, "a single graph has no context graph to run; the caller must skip the context");
        ctx_->run(image, h, w, out);
    }

    void infer(const float *tiles, int batch, int h, int w, const float *ctx, float *out) override {
        const size_t b = static_cast<size_t>(batch);
        const size_t k = static_cast<size_t>(spec_.context_channels);
        const size_t hh = static_cast<size_t>(h), ww = static_cast<size_t>(w);
        if (!spec_.single_graph) {
            if (!ctx) fail(HERMES_ERR_INTERNAL, "a graph pair needs the image's context for every tile and got none");
            context_.resize(b * k);
            for (size_t i = 0; i < b; ++i) std::copy_n(ctx, k, context_.data() + i * k);
        }
        try {
            ov::InferRequest &req = request(Shape3{b, hh, ww});
            req.set_tensor(spec_.input_name, ov::Tensor(ov::element::f32, ov::Shape{b, 3, hh, ww}, const_cast<float *>(tiles)));
            if (!spec_.single_graph)
                req.set_tensor(spec_.context_name, ov::Tensor(ov::element::f32, ov::Shape{b, k}, context_.data()));
            if (spec_.noise_name) {
                noise_.assign(b * hh * ww, 0.0f);  // fidelity: no noise
                req.set_tensor(*spec_.noise_name, ov::Tensor(ov::element::f32, ov::Shape{b, 1, hh, ww}, noise_.data()));
            }
            req.infer();
            const ov::Tensor y = req.get_tensor(spec_.output_name);
            const size_t expect = b * static_cast<size_t>(spec_.out_channels * spec_.scale * spec_.scale) * hh * ww;
            if (y.get_size() != expect)
                fail(HERMES_ERR_MODEL, "the graph returned " + std::to_string(y.get_size()) + " values for " +
                                           std::to_string(batch) + " tiles, the spec expects " + std::to_string(expect) +
                                           "; re-export the model");
            std::copy_n(y.data<const float>(), expect, out);
        } catch (const Error &) {
            throw;
        } catch (const std::bad_alloc &) {
            fail(HERMES_ERR_OUT_OF_MEMORY, "out of memory running a " + std::to_string(h) + "x" + std::to_string(w) +
                                               " tile batch of " + std::to_string(batch) + "; use smaller tiles or batch");
        } catch (const std::exception &exc) {
            fail(HERMES_ERR_BACKEND, "OpenVINO failed on a " + std::to_string(h) + "x" + std::to_string(w) + " tile (" +
                                         reason(exc.what()) + ")");
        }
    }

private:
    ov::InferRequest &request(const Shape3 &shape) {
        auto found = requests_.find(shape);
        if (found != requests_.end()) return found->second;
        ov::CompiledModel &compiled = backend_.compiled_for(shape);
        if (&compiled == &backend_.dynamic_) {  // past the shape limit: one dynamic request
            if (!dynamic_) dynamic_ = compiled.create_infer_request();
            return *dynamic_;
        }
        return requests_.emplace(shape, compiled.create_infer_request()).first->second;
    }

    OvBackend &backend_;
    const Spec &spec_;
    std::unique_ptr<ContextModel::Request> ctx_;  // null for a single graph
    std::map<Shape3, ov::InferRequest> requests_;
    std::optional<ov::InferRequest> dynamic_;
    std::vector<float> context_, noise_;
};

std::unique_ptr<BackendSession> OvBackend::open_session() {
    try {
        return std::make_unique<OvSession>(*this, context_ ? context_->request() : nullptr);
    } catch (const Error &) {
        throw;
    } catch (const std::exception &exc) {
        fail(HERMES_ERR_BACKEND, "OpenVINO could not create an inference request (" + reason(exc.what()) + ")");
    }
}

}  // namespace

std::unique_ptr<ContextModel> open_context_model(const std::string &onnx_path, int channels,
                                                 int context_channels, int threads) {
    return std::make_unique<OvContextModel>(onnx_path, channels, context_channels, threads);
}

std::unique_ptr<Backend> open_openvino(const std::string &onnx_path, const ModelOptions &options) {
    return std::make_unique<OvBackend>(onnx_path, options);
}

}  // namespace hermes
