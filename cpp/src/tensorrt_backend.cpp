// TensorRT backend (CUDA GPU): model.engine + model.engine.json, the C++ twin of
// hermes_deploy/engines/trt/runner.py, against the TensorRT 10/11 C++ runtime API and
// the CUDA runtime API.
//
// Loading refuses what cannot run before deserializing (manifest.cpp: the messages are
// Python's): the running TensorRT is "tensorrt" with the version
// getInferLibMajor/Minor/Patch/BuildVersion() print as "major.minor.patch.build", the
// form of the pip wheel's tensorrt.__version__ (e.g. 10.13.0.35), which is what the
// manifest records; the GPU is "SM<major><minor>" of cudaGetDeviceProperties. The engine
// bytes are hashed as they are read (one read, not two). Plugin libraries the manifest
// lists under `plugin_libraries` (hermes-export build --plugins) are checked by sha256
// (check_manifest) and loaded once per process, before the engine is deserialized.
// The spec comes from the manifest; like runner.py, an engine whose only profile fixes
// the tile's height and width takes only that tile (and here also: a fixed batch).
// The context graph, beside the engine, runs on the CPU through open_context_model();
// an engine built from a single graph (spec single_graph) needs none and has no context
// input: each tile computes its own context inside the engine.
//
// Sessions: one IExecutionContext and one CUDA stream each, so sessions run in parallel
// without locks. Per call the first optimization profile that takes the tile shapes is
// chosen (pick_profile, as runner.py); tiles go through pinned staging buffers into
// device buffers that grow on demand. With cuda_graph, the first run of a shape is the
// warm-up (TensorRT allocates and tunes on it), then that enqueue is captured into a
// CUDA graph and replayed for later calls with the same shape; a shape that cannot be
// captured (a plugin that synchronizes, say) keeps running without a graph. Graphs hold
// device addresses, so they are dropped whenever a buffer has to move. Before a graph
// of another shape is replayed, the context's input shapes are set back to that shape,
// so TensorRT's host-side state matches what the graph was captured with.
//
// Every CUDA or TensorRT failure is a hermes::Error with one line; the line includes
// the last error TensorRT logged on this thread.
#include <NvInferRuntime.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "backend.hpp"
#include "error.hpp"
#include "manifest.hpp"
#include "sha256.hpp"

namespace hermes {

namespace {

namespace fs = std::filesystem;

std::string dir_name(const std::string &path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
}

std::string shape_text(const std::vector<int64_t> &dims) {
    std::string out = "(";
    for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
    return out + ")";
}

// ---- TensorRT's log: errors only, the last one per thread, for the next message

class Logger : public nvinfer1::ILogger {
public:
    void log(Severity severity, const char *msg) noexcept override {
        if (severity > Severity::kERROR || !msg) return;
        try {
            std::string line(msg);
            for (char &c : line)
                if (c == '\n' || c == '\r') c = ' ';
            last() = line.substr(0, 300);
        } catch (...) {  // never throw into TensorRT
        }
    }
    static void clear() { last().clear(); }
    // " (the last TensorRT error)" or "" when TensorRT said nothing
    static std::string reason() {
        std::string text;
        text.swap(last());
        return text.empty() ? "" : " (" + text + ")";
    }

private:
    static std::string &last() {
        thread_local std::string text;
        return text;
    }
};

std::string running_version() {
    return std::to_string(getInferLibMajorVersion()) + "." + std::to_string(getInferLibMinorVersion()) + "." +
           std::to_string(getInferLibPatchVersion()) + "." + std::to_string(getInferLibBuildVersion());
}

// ---- CUDA

void cuda_ok(cudaError_t status, const std::string &what) {
    if (status == cudaSuccess) return;
    cudaGetLastError();  // clear it, so the next call does not report it again
    fail(status == cudaErrorMemoryAllocation ? HERMES_ERR_OUT_OF_MEMORY : HERMES_ERR_BACKEND,
         "CUDA failed to " + what + " (" + cudaGetErrorName(status) + ": " + cudaGetErrorString(status) + ")");
}

// Device (or pinned host) memory that only grows; reserve() says when the address moved.
template <bool Pinned>
class Buffer {
public:
    Buffer() = default;
    Buffer(const Buffer &) = delete;
    Buffer &operator=(const Buffer &) = delete;
    ~Buffer() { release(); }
    bool reserve(size_t bytes) {
        if (bytes <= bytes_) return false;
        release();
        const std::string what = "allocate " + std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB of " +
                                 (Pinned ? "pinned host" : "GPU") + " memory";
        void *fresh = nullptr;
        if constexpr (Pinned) cuda_ok(cudaHostAlloc(&fresh, bytes, cudaHostAllocDefault), what);
        else cuda_ok(cudaMalloc(&fresh, bytes), what);
        ptr_ = fresh;
        bytes_ = bytes;
        return true;
    }
    void *get() const { return ptr_; }

private:
    void release() {
        if constexpr (Pinned) {
            if (ptr_) cudaFreeHost(ptr_);
        } else {
            if (ptr_) cudaFree(ptr_);
        }
        ptr_ = nullptr;
        bytes_ = 0;
    }
    void *ptr_ = nullptr;
    size_t bytes_ = 0;
};

struct Stream {
    cudaStream_t s = nullptr;
    Stream() = default;
    Stream(const Stream &) = delete;
    Stream &operator=(const Stream &) = delete;
    ~Stream() {
        if (s) cudaStreamDestroy(s);
    }
};

struct GraphExec {
    cudaGraphExec_t exec = nullptr;
    bool failed = false;  // capture did not work for this shape: run without a graph
    GraphExec() = default;
    GraphExec(const GraphExec &) = delete;
    GraphExec &operator=(const GraphExec &) = delete;
    ~GraphExec() {
        if (exec) cudaGraphExecDestroy(exec);
    }
};

// ---- plugin libraries: loaded once per process
//
// check_manifest() has already checked that each library the manifest lists exists and
// has its recorded sha256. Loading is a dlopen: a library built from cpp/plugins/
// registers its creators while it loads (with the registry of the libnvinfer this
// process links), as trtexec --staticPlugins and Triton's TensorRT backend expect. A
// library that did not (or a plain IPluginV3 library without load-time registration) is
// then registered through its getCreators() entry point with IPluginRegistry::registerCreator.
// Last, every plugin the manifest lists must be known to the registry.

using GetCreators = nvinfer1::IPluginCreatorInterface *const *(*)(int32_t &);

void register_from_entry_point(void *library, const std::string &path, nvinfer1::IPluginRegistry &registry) {
    void *symbol = dlsym(library, "getCreators");
    if (!symbol) return;  // a library that only registers itself at load time
    GetCreators get = nullptr;
    std::memcpy(&get, &symbol, sizeof get);
    int32_t count = 0;
    nvinfer1::IPluginCreatorInterface *const *creators = get(count);
    for (int32_t i = 0; creators && i < count; ++i) {
        nvinfer1::IPluginCreatorInterface *creator = creators[i];
        if (!creator || std::string(creator->getInterfaceInfo().kind) != "PLUGIN CREATOR_V3ONE") continue;
        auto *v3 = static_cast<nvinfer1::IPluginCreatorV3One *>(creator);
        if (registry.getCreator(v3->getPluginName(), v3->getPluginVersion(), v3->getPluginNamespace())) continue;
        Logger::clear();
        if (!registry.registerCreator(*creator, v3->getPluginNamespace()))
            fail(HERMES_ERR_BACKEND, "TensorRT refused plugin " + std::string(v3->getPluginNamespace()) + "::" +
                                         v3->getPluginName() + " of '" + path + "'" + Logger::reason());
    }
}

void load_plugins(const Manifest &m, const std::string &engine_path) {
    if (m.plugin_libraries.empty()) return;  // plugins embedded in the engine, or none
    static std::mutex lock;
    static std::set<std::string> loaded;
    std::lock_guard<std::mutex> hold(lock);
    nvinfer1::IPluginRegistry *registry = getPluginRegistry();
    if (!registry) fail(HERMES_ERR_BACKEND, "TensorRT has no plugin registry" + Logger::reason());
    for (const PluginLibrary &lib : m.plugin_libraries) {
        const std::string path = plugin_library_path(engine_path, lib.path);
        std::error_code ec;
        const fs::path resolved = fs::canonical(path, ec);
        const std::string canonical = ec ? path : resolved.string();
        if (loaded.count(canonical)) continue;
        dlerror();
        void *library = dlopen(canonical.c_str(), RTLD_NOW | RTLD_LOCAL);  // kept open for the process
        if (!library) {
            const char *why = dlerror();
            fail(HERMES_ERR_BACKEND, "cannot load the plugin library '" + path + "' (" + (why ? why : "dlopen failed") +
                                         "); is it built for this TensorRT and CUDA?");
        }
        register_from_entry_point(library, path, *registry);
        loaded.insert(canonical);
    }
    for (const PluginInfo &p : m.plugins)
        if (!registry->getCreator(p.name.c_str(), p.version.c_str(), p.plugin_namespace.c_str()))
            fail(HERMES_ERR_MISMATCH, "engine " + path_name(engine_path) + " needs plugin " + p.plugin_namespace + "::" +
                                          p.name + " v" + p.version +
                                          ", which none of its plugin libraries registered; rebuild it: " +
                                          rebuild_command(m, engine_path));
}

class TrtSession;

class TrtBackend : public Backend {
public:
    TrtBackend(const std::string &engine_path, const ModelOptions &options);
    ~TrtBackend() override {
        cudaSetDevice(device_);
        engine_.reset();  // before the runtime
        runtime_.reset();
    }
    const Spec &spec() const override { return spec_; }
    const std::string &name() const override { return name_; }
    std::unique_ptr<BackendSession> open_session() override;

private:
    friend class TrtSession;
    void read_io();
    void fix_spec_from_profiles();

    std::string engine_name_;
    Manifest manifest_;
    Spec spec_;
    std::string name_;
    int device_ = 0;
    bool cuda_graph_ = false;
    bool has_context_input_ = false, has_noise_input_ = false;
    int context_rank_ = 2;
    std::vector<std::string> io_names_;  // every input and output of the engine
    Logger logger_;                      // outlives the runtime, which outlives the engine
    std::unique_ptr<nvinfer1::IRuntime> runtime_;
    std::unique_ptr<nvinfer1::ICudaEngine> engine_;
    std::unique_ptr<ContextModel> context_model_;  // null for a single graph
    std::mutex create_lock_;
};

TrtBackend::TrtBackend(const std::string &engine_path, const ModelOptions &options)
    : engine_name_(path_name(engine_path)), device_(options.device), cuda_graph_(options.cuda_graph) {
    std::error_code ec;
    if (!fs::is_regular_file(engine_path, ec))
        fail(HERMES_ERR_IO, "engine '" + engine_path + "' does not exist; build it with hermes-export build");
    if (options.precision != "f32")
        fail(HERMES_ERR_INVALID_ARGUMENT, "an engine's precision is fixed when it is built; load it with f32");
    manifest_ = read_manifest(engine_path);

    int devices = 0;
    const cudaError_t probe = cudaGetDeviceCount(&devices);
    const bool have_gpu = probe == cudaSuccess && devices > 0;
    if (probe != cudaSuccess) cudaGetLastError();
    if (device_ < 0 || (have_gpu && device_ >= devices))
        fail(HERMES_ERR_INVALID_ARGUMENT, "CUDA device " + std::to_string(device_) + " does not exist; this machine has " +
                                              std::to_string(have_gpu ? devices : 0) + " (devices 0 to count - 1)");
    cudaDeviceProp prop{};
    std::optional<std::string> capability;
    if (have_gpu) {
        cuda_ok(cudaGetDeviceProperties(&prop, device_), "query CUDA device " + std::to_string(device_));
        capability = "SM" + std::to_string(prop.major) + std::to_string(prop.minor);
    }
    // as runner.py: the whole manifest check first, the engine's sha256 last (on the bytes
    // read once), then the GPU: a GPU-less machine still learns what else is wrong
    check_manifest(manifest_, engine_path, RunningTrt{"tensorrt", running_version(), capability}, nullptr, false);

    std::vector<char> bytes;
    {
        std::ifstream in(engine_path, std::ios::binary | std::ios::ate);
        if (!in) fail(HERMES_ERR_IO, "cannot read engine '" + engine_path + "'");
        bytes.resize(static_cast<size_t>(in.tellg()));
        in.seekg(0);
        if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
            fail(HERMES_ERR_IO, "reading engine '" + engine_path + "' failed");
    }
    check_engine_sha256(manifest_, engine_path, sha256_hex(bytes.data(), bytes.size()));
    if (!have_gpu)
        fail(HERMES_ERR_UNSUPPORTED, std::string("running a TensorRT engine needs a CUDA GPU and none is visible here (") +
                                         (probe == cudaSuccess ? "no CUDA device" : cudaGetErrorString(probe)) +
                                         "); run the ONNX with the OpenVINO backend instead");

    if (!manifest_.spec)
        fail(HERMES_ERR_MODEL, "the manifest of engine " + engine_name_ + " has no HERMES spec (its ONNX had none); "
                               "rebuild it from an ONNX written by hermes-export onnx: " +
                                   rebuild_command(manifest_, engine_path));
    spec_ = parse_spec(*manifest_.spec, engine_name_ + ".json");
    const std::string context_path = dir_name(engine_path) + "/" + spec_.context_graph.value_or("");
    if (!spec_.single_graph && (!spec_.context_graph || !fs::is_regular_file(context_path, ec)))
        fail(HERMES_ERR_MODEL, "context graph '" + spec_.context_graph.value_or("") + "' is missing next to '" +
                                   engine_name_ + "'; keep the ONNX's context graph beside the engine");

    cuda_ok(cudaSetDevice(device_), "select CUDA device " + std::to_string(device_));
    Logger::clear();
    runtime_.reset(nvinfer1::createInferRuntime(logger_));
    if (!runtime_) fail(HERMES_ERR_BACKEND, "TensorRT could not create its runtime" + Logger::reason());
    load_plugins(manifest_, engine_path);  // after the runtime: TensorRT logs to our logger
    Logger::clear();
    engine_.reset(runtime_->deserializeCudaEngine(bytes.data(), bytes.size()));
    if (!engine_)
        fail(HERMES_ERR_MISMATCH, manifest_.product() + " could not deserialize " + engine_name_ + Logger::reason() +
                                      "; rebuild it: " + rebuild_command(manifest_, engine_path));
    bytes = {};
    read_io();
    fix_spec_from_profiles();
    if (!spec_.single_graph)
        context_model_ = open_context_model(context_path, spec_.in_channels, spec_.context_channels, options.threads);
    name_ = std::string("tensorrt (") + prop.name + " " + *capability + ", " + spec_.precision +
            (cuda_graph_ ? ", CUDA graphs)" : ")");
}

// The engine's inputs and outputs against the spec: every input must be one the tiled
// runtime feeds, a context input exactly when the spec describes a pair (not a single
// graph), every tensor float32 in linear layout (the tiles are NCHW float32).
void TrtBackend::read_io() {
    const std::string rebuild = "; rebuild the engine from the ONNX written by hermes-export onnx";
    bool has_input = false, has_output = false;
    for (int32_t i = 0; i < engine_->getNbIOTensors(); ++i) {
        const std::string name = engine_->getIOTensorName(i);
        const bool input = engine_->getTensorIOMode(name.c_str()) == nvinfer1::TensorIOMode::kINPUT;
        if (input) {
            if (name == spec_.input_name) has_input = true;
            else if (name == spec_.context_name && spec_.single_graph)
                fail(HERMES_ERR_MODEL, "engine " + engine_name_ + " has a '" + name + "' input but its manifest spec says "
                                           "single_graph (context computed inside the graph); the engine and its spec "
                                           "do not belong together" + rebuild);
            else if (name == spec_.context_name) {
                has_context_input_ = true;
                context_rank_ = engine_->getTensorShape(name.c_str()).nbDims;
            } else if (spec_.noise_name && name == *spec_.noise_name) has_noise_input_ = true;
            else
                fail(HERMES_ERR_MODEL, "engine " + engine_name_ + " input '" + name + "' has no value; the manifest spec names " +
                                           spec_.input_name + (spec_.single_graph ? "" : ", " + spec_.context_name) +
                                           (spec_.noise_name ? ", " + *spec_.noise_name : "") + rebuild);
        } else if (name == spec_.output_name) has_output = true;
        if (engine_->getTensorDataType(name.c_str()) != nvinfer1::DataType::kFLOAT)
            fail(HERMES_ERR_MODEL, "engine " + engine_name_ + " tensor '" + name +
                                       "' is not float32; libhermes feeds and reads float32" + rebuild);
        for (int32_t p = 0; p < std::max(1, engine_->getNbOptimizationProfiles()); ++p)
            if (engine_->getTensorFormat(name.c_str(), p) != nvinfer1::TensorFormat::kLINEAR)
                fail(HERMES_ERR_MODEL, "engine " + engine_name_ + " tensor '" + name + "' is not in linear (NCHW) layout" +
                                           rebuild);
        io_names_.push_back(name);
    }
    if (!has_input || !has_output)
        fail(HERMES_ERR_MODEL, "engine " + engine_name_ + " has no " + (has_input ? "output '" + spec_.output_name : "input '" + spec_.input_name) +
                                   "' that its manifest spec names" + rebuild);
    if (!spec_.single_graph && !has_context_input_)
        fail(HERMES_ERR_MODEL, "engine " + engine_name_ + " has no '" + spec_.context_name + "' input but its manifest spec "
                               "describes a pair (single_graph false); the engine and its spec do not belong together" +
                                   rebuild + " (with --single-graph for one graph)");
    const size_t profiles = static_cast<size_t>(engine_->getNbOptimizationProfiles());
    if (!manifest_.profiles.empty() && manifest_.profiles.size() != profiles)
        fail(HERMES_ERR_MISMATCH, "engine " + engine_name_ + " has " + std::to_string(profiles) +
                                      " optimization profiles but its manifest lists " +
                                      std::to_string(manifest_.profiles.size()) + "; the manifest is not this engine's: rebuild it");
}

// A single profile (or a static input) that fixes the tile's H, W or the batch: the
// tiled runtime must use exactly those (runner.py's _with_static_tile, plus the batch).
void TrtBackend::fix_spec_from_profiles() {
    std::optional<std::vector<int64_t>> lo, hi;
    if (manifest_.profiles.size() == 1) {
        for (const ProfileInput &in : manifest_.profiles[0])
            if (in.name == spec_.input_name) {
                lo = in.min;
                hi = in.max;
            }
    } else if (manifest_.profiles.empty()) {
        const nvinfer1::Dims d = engine_->getTensorShape(spec_.input_name.c_str());
        std::vector<int64_t> dims(d.d, d.d + std::max(0, d.nbDims));
        if (std::all_of(dims.begin(), dims.end(), [](int64_t v) { return v > 0; })) lo = hi = dims;
    }
    if (!lo || lo->size() != 4 || hi->size() != 4) return;
    auto j = nlohmann::ordered_json::parse(spec_.json);
    if (!spec_.tile && (*lo)[2] == (*hi)[2] && (*lo)[3] == (*hi)[3]) {
        spec_.tile = std::make_pair(static_cast<int>((*lo)[2]), static_cast<int>((*lo)[3]));
        j["tile"] = {spec_.tile->first, spec_.tile->second};
    }
    if (!spec_.batch && (*lo)[0] == (*hi)[0]) {
        spec_.batch = static_cast<int>((*lo)[0]);
        j["batch"] = *spec_.batch;
    }
    spec_.json = j.dump();
}

class TrtSession : public BackendSession {
public:
    explicit TrtSession(TrtBackend &b) : b_(b) {
        cuda_ok(cudaSetDevice(b_.device_), "select CUDA device " + std::to_string(b_.device_));
        Logger::clear();
        {
            std::lock_guard<std::mutex> hold(b_.create_lock_);
            trt_.reset(b_.engine_->createExecutionContext());
        }
        if (!trt_)
            fail(HERMES_ERR_BACKEND, "TensorRT could not create an execution context for " + b_.engine_name_ +
                                         Logger::reason() + "; out of GPU memory?");
        cuda_ok(cudaStreamCreateWithFlags(&stream_.s, cudaStreamNonBlocking), "create a CUDA stream");
        if (b_.context_model_) ctx_ = b_.context_model_->request();
    }

    ~TrtSession() override {
        cudaSetDevice(b_.device_);
        cudaStreamSynchronize(stream_.s);
        graphs_.clear();
        trt_.reset();
    }

    void context(const float *image, int h, int w, float *out) override {
        if (!ctx_) fail(HERMES_ERR_INTERNAL, "a single graph has no context graph to run; the caller must skip the context");
        ctx_->run(image, h, w, out);
    }

    void infer(const float *tiles, int batch, int h, int w, const float *ctx, float *out) override;

private:
    using Key = std::tuple<size_t, int, int, int>;  // profile, batch, h, w
    void set_shapes(const std::vector<NamedShape> &shapes, size_t profile, const std::string &what);
    void capture(GraphExec &graph);

    TrtBackend &b_;
    Stream stream_;  // members go in reverse: the stream last
    Buffer<true> host_in_, host_ctx_, host_out_;
    std::map<std::string, Buffer<false>> device_;  // per engine tensor
    std::unique_ptr<nvinfer1::IExecutionContext> trt_;
    std::map<Key, GraphExec> graphs_;
    std::unique_ptr<ContextModel::Request> ctx_;  // null for a single graph
    std::optional<Key> current_;  // the shapes the context is set to
    size_t out_bytes_ = 0;
};

// Profile, input shapes, buffers (grown: graphs dropped) and tensor addresses.
void TrtSession::set_shapes(const std::vector<NamedShape> &shapes, size_t profile, const std::string &what) {
    current_.reset();
    const int32_t index = static_cast<int32_t>(profile);
    if (b_.engine_->getNbOptimizationProfiles() > 1 && trt_->getOptimizationProfile() != index) {
        Logger::clear();
        if (!trt_->setOptimizationProfileAsync(index, stream_.s))
            fail(HERMES_ERR_BACKEND, "TensorRT could not switch " + b_.engine_name_ + " to optimization profile " +
                                         std::to_string(profile) + Logger::reason());
    }
    for (const NamedShape &s : shapes) {
        nvinfer1::Dims dims{};
        dims.nbDims = static_cast<int32_t>(s.second.size());
        std::copy(s.second.begin(), s.second.end(), dims.d);
        Logger::clear();
        if (!trt_->setInputShape(s.first.c_str(), dims))
            fail(HERMES_ERR_INVALID_ARGUMENT, "engine " + b_.engine_name_ + " refused shape " + shape_text(s.second) +
                                                  " for input '" + s.first + "'" + Logger::reason());
    }
    bool moved = false;
    for (const std::string &name : b_.io_names_) {
        const nvinfer1::Dims d = trt_->getTensorShape(name.c_str());
        size_t count = 1;
        for (int32_t i = 0; i < d.nbDims; ++i) {
            if (d.d[i] < 0)
                fail(HERMES_ERR_UNSUPPORTED, "engine " + b_.engine_name_ + " tensor '" + name +
                                                 "' has a data-dependent shape, which libhermes does not run");
            count *= static_cast<size_t>(d.d[i]);
        }
        Buffer<false> &buffer = device_[name];
        if (buffer.reserve(std::max<size_t>(count, 1) * sizeof(float))) {
            moved = true;
            if (b_.has_noise_input_ && name == *b_.spec_.noise_name)  // fidelity: no noise, and TensorRT never writes inputs
                cuda_ok(cudaMemsetAsync(buffer.get(), 0, count * sizeof(float), stream_.s), "clear the noise input");
        }
        if (name == b_.spec_.output_name) {
            const std::vector<int64_t> got(d.d, d.d + d.nbDims);
            const std::vector<int64_t> want{shapes[0].second[0], b_.spec_.out_channels, b_.spec_.scale * shapes[0].second[2],
                                            b_.spec_.scale * shapes[0].second[3]};
            if (got != want)
                fail(HERMES_ERR_MODEL, "engine " + b_.engine_name_ + " returns " + shape_text(got) + " for " + what +
                                           ", its spec says " + shape_text(want) + "; rebuild the engine");
            out_bytes_ = count * sizeof(float);
        }
    }
    if (moved) graphs_.clear();  // they hold the old addresses
    for (const std::string &name : b_.io_names_)
        if (!trt_->setTensorAddress(name.c_str(), device_[name].get()))
            fail(HERMES_ERR_BACKEND, "TensorRT refused the address of tensor '" + name + "'" + Logger::reason());
}

void TrtSession::infer(const float *tiles, int batch, int h, int w, const float *ctx, float *out) {
    const Spec &s = b_.spec_;
    const int64_t n = batch;
    std::vector<NamedShape> shapes{{s.input_name, {n, s.in_channels, h, w}}};
    if (b_.has_context_input_) {
        std::vector<int64_t> dims{n, s.context_channels};
        dims.resize(static_cast<size_t>(std::max(2, b_.context_rank_)), 1);  // (B, K) or (B, K, 1, 1)
        shapes.emplace_back(s.context_name, dims);
    }
    if (b_.has_noise_input_) shapes.push_back({*s.noise_name, {n, 1, h, w}});
    const std::string what = "a batch of " + std::to_string(batch) + " " + std::to_string(h) + "x" + std::to_string(w) + " tiles";

    cuda_ok(cudaSetDevice(b_.device_), "select CUDA device " + std::to_string(b_.device_));
    const size_t profile = pick_profile(b_.manifest_.profiles, shapes);
    const Key key{profile, batch, h, w};
    if (current_ != key) {
        set_shapes(shapes, profile, what);
        current_ = key;
    }

    const size_t in_bytes = static_cast<size_t>(n) * s.in_channels * h * w * sizeof(float);
    host_in_.reserve(in_bytes);
    std::memcpy(host_in_.get(), tiles, in_bytes);
    cuda_ok(cudaMemcpyAsync(device_[s.input_name].get(), host_in_.get(), in_bytes, cudaMemcpyHostToDevice, stream_.s),
            "copy " + what + " to the GPU");
    if (b_.has_context_input_) {
        if (!ctx) fail(HERMES_ERR_INTERNAL, "a graph pair needs the image's context for every tile and got none");
        const size_t k = static_cast<size_t>(s.context_channels);
        host_ctx_.reserve(static_cast<size_t>(n) * k * sizeof(float));
        float *staged = static_cast<float *>(host_ctx_.get());
        for (int64_t i = 0; i < n; ++i) std::memcpy(staged + i * k, ctx, k * sizeof(float));
        cuda_ok(cudaMemcpyAsync(device_[s.context_name].get(), staged, static_cast<size_t>(n) * k * sizeof(float),
                                cudaMemcpyHostToDevice, stream_.s),
                "copy the context to the GPU");
    }

    GraphExec *graph = b_.cuda_graph_ ? &graphs_[key] : nullptr;
    if (graph && graph->exec) {
        cuda_ok(cudaGraphLaunch(graph->exec, stream_.s), "replay the CUDA graph of " + what);
    } else {
        Logger::clear();
        if (!trt_->enqueueV3(stream_.s))
            fail(HERMES_ERR_BACKEND, "TensorRT failed to run " + b_.engine_name_ + " on " + what + Logger::reason());
    }
    host_out_.reserve(out_bytes_);
    cuda_ok(cudaMemcpyAsync(host_out_.get(), device_[s.output_name].get(), out_bytes_, cudaMemcpyDeviceToHost, stream_.s),
            "copy the result of " + what + " from the GPU");
    cuda_ok(cudaStreamSynchronize(stream_.s), "run " + b_.engine_name_ + " on " + what);
    std::memcpy(out, host_out_.get(), out_bytes_);
    if (graph && !graph->exec && !graph->failed) capture(*graph);  // this run was the warm-up
}

// Record one enqueue of the current shapes; on any failure this shape runs without.
void TrtSession::capture(GraphExec &graph) {
    cudaGraph_t recorded = nullptr;
    bool ok = cudaStreamBeginCapture(stream_.s, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
    if (ok) {
        const bool enqueued = trt_->enqueueV3(stream_.s);
        ok = cudaStreamEndCapture(stream_.s, &recorded) == cudaSuccess && enqueued && recorded;
    }
    ok = ok && cudaGraphInstantiate(&graph.exec, recorded, 0) == cudaSuccess;
    if (recorded) cudaGraphDestroy(recorded);
    if (!ok) {
        graph.exec = nullptr;
        graph.failed = true;
        cudaGetLastError();
        Logger::clear();
    }
}

std::unique_ptr<BackendSession> TrtBackend::open_session() { return std::make_unique<TrtSession>(*this); }

}  // namespace

std::unique_ptr<Backend> open_tensorrt(const std::string &engine_path, const ModelOptions &options) {
    return std::make_unique<TrtBackend>(engine_path, options);
}

}  // namespace hermes
