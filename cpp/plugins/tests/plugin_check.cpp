// Interface check of libhermes_trt_plugins.so without TensorRT's library or a GPU.
//
//   hermes_plugin_check path/to/libhermes_trt_plugins.so      exit 0: every check passed
//
// TensorRT talks to a plugin library only through virtual calls, so this program plays
// TensorRT's part: it exports a getPluginRegistry() of its own (a recording registry,
// found by the library at load time as it would find libnvinfer's), dlopens the library,
// takes the creators from getCreators() and drives them as the ONNX parser, the builder
// and the runtime would: field names, createPlugin with good and bad attributes, output
// types and shapes, format combinations, shape checks, workspace sizes, serialization,
// clone and attachToContext. No kernel is launched. Built and run by
// tests/cpp/test_plugins.py where the library itself could be built.
#include <NvInferRuntime.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "../kernels/lowpass_math.hpp"
#include "../kernels/scan_math.hpp"

using namespace nvinfer1;

namespace {

int g_failures = 0;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            std::fprintf(stderr, "FAILED line %d: %s\n", __LINE__, #cond);       \
            ++g_failures;                                                        \
        }                                                                        \
    } while (0)

class RecordingRegistry final : public IPluginRegistry {
public:
    std::vector<std::string> registered, deregistered;
    void setErrorRecorder(IErrorRecorder *) noexcept override {}
    IErrorRecorder *getErrorRecorder() const noexcept override { return nullptr; }
    bool isParentSearchEnabled() const override { return false; }
    void setParentSearchEnabled(bool) override {}
    PluginLibraryHandle loadLibrary(const char *) noexcept override { return nullptr; }
    void deregisterLibrary(PluginLibraryHandle) noexcept override {}
    bool registerCreator(IPluginCreatorInterface &creator, const char *ns) noexcept override {
        registered.push_back(std::string(ns) + "::" + static_cast<IPluginCreatorV3One &>(creator).getPluginName());
        return true;
    }
    IPluginCreatorInterface *const *getAllCreators(int32_t *n) const noexcept override {
        *n = 0;
        return nullptr;
    }
    IPluginCreatorInterface *getCreator(const char *, const char *, const char *) noexcept override { return nullptr; }
    bool deregisterCreator(const IPluginCreatorInterface &creator) noexcept override {
        deregistered.push_back(static_cast<const IPluginCreatorV3One &>(creator).getPluginName());
        return true;
    }
    IPluginResource *acquirePluginResource(const char *, IPluginResource *) noexcept override { return nullptr; }
    int32_t releasePluginResource(const char *) noexcept override { return 0; }
    IPluginCreatorInterface *const *getAllCreatorsRecursive(int32_t *n) noexcept override {
        *n = 0;
        return nullptr;
    }
};

RecordingRegistry g_registry;

class RecordingLogger final : public ILogger {
public:
    std::vector<std::string> errors;
    void log(Severity severity, const char *msg) noexcept override {
        if (severity <= Severity::kERROR) errors.emplace_back(msg);
    }
};

class Finder final : public ILoggerFinder {
public:
    RecordingLogger logger;
    ILogger *findLogger() override { return &logger; }
};

Dims dims(std::initializer_list<int64_t> values) {
    Dims d{};
    d.nbDims = static_cast<int32_t>(values.size());
    int32_t i = 0;
    for (const int64_t v : values) d.d[i++] = v;
    return d;
}

DynamicPluginTensorDesc desc(const Dims &d, DataType type, TensorFormat format = TensorFormat::kLINEAR) {
    DynamicPluginTensorDesc out{};
    out.desc.dims = d;
    out.desc.type = type;
    out.desc.format = format;
    out.min = out.opt = out.max = d;
    return out;
}

IPluginV3 *create(IPluginCreatorV3One *creator, std::vector<PluginField> fields) {
    PluginFieldCollection fc{static_cast<int32_t>(fields.size()), fields.data()};
    return creator->createPlugin("node", &fc, TensorRTPhase::kBUILD);
}

}  // namespace

// TensorRT's entry point, as the library looks it up in the process (RTLD_DEFAULT)
extern "C" __attribute__((visibility("default"))) IPluginRegistry *getPluginRegistry() noexcept { return &g_registry; }

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: hermes_plugin_check LIBRARY\n");
        return 2;
    }
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        std::fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    // load-time registration: both creators, namespace hermes
    CHECK(g_registry.registered.size() == 2);
    CHECK(g_registry.registered.size() == 2 && g_registry.registered[0] == "hermes::SelectiveScan" &&
          g_registry.registered[1] == "hermes::SpectralLowpass");

    using GetCreators = IPluginCreatorInterface *const *(*)(int32_t &);
    using SetFinder = void (*)(ILoggerFinder *);
    void *get_sym = dlsym(lib, "getCreators");
    void *finder_sym = dlsym(lib, "setLoggerFinder");
    CHECK(get_sym && finder_sym);
    if (!get_sym || !finder_sym) return 1;
    GetCreators get_creators = nullptr;
    SetFinder set_finder = nullptr;
    std::memcpy(&get_creators, &get_sym, sizeof get_creators);
    std::memcpy(&set_finder, &finder_sym, sizeof set_finder);
    static Finder finder;
    set_finder(&finder);

    int32_t count = 0;
    IPluginCreatorInterface *const *creators = get_creators(count);
    CHECK(count == 2);
    CHECK(g_registry.deregistered.size() == 2);  // getCreators took the load-time registration back
    for (int32_t i = 0; i < count; ++i)
        CHECK(std::string(creators[i]->getInterfaceInfo().kind) == "PLUGIN CREATOR_V3ONE");
    auto *scan = static_cast<IPluginCreatorV3One *>(creators[0]);
    auto *lowpass = static_cast<IPluginCreatorV3One *>(creators[1]);
    CHECK(std::string(scan->getPluginName()) == "SelectiveScan" && std::string(scan->getPluginVersion()) == "1" &&
          std::string(scan->getPluginNamespace()) == "hermes");
    CHECK(std::string(lowpass->getPluginName()) == "SpectralLowpass" && std::string(lowpass->getPluginVersion()) == "1");
    const PluginFieldCollection *names = scan->getFieldNames();
    CHECK(names->nbFields == 1 && std::string(names->fields[0].name) == "chunk" &&
          names->fields[0].type == PluginFieldType::kINT32);
    CHECK(lowpass->getFieldNames()->nbFields == 0);

    // attributes: INT32 or INT64 chunk >= 1; missing, zero or float refused (logged)
    const int32_t chunk32 = 16;
    const int64_t chunk64 = 100, zero = 0;
    const float chunkf = 16.0f;
    std::unique_ptr<IPluginV3> plugin(create(scan, {PluginField("chunk", &chunk32, PluginFieldType::kINT32, 1)}));
    CHECK(plugin != nullptr);
    std::unique_ptr<IPluginV3> plugin64(create(scan, {PluginField("chunk", &chunk64, PluginFieldType::kINT64, 1)}));
    CHECK(plugin64 != nullptr);
    const size_t logged = finder.logger.errors.size();
    CHECK(create(scan, {}) == nullptr);
    CHECK(create(scan, {PluginField("chunk", &zero, PluginFieldType::kINT64, 1)}) == nullptr);
    CHECK(create(scan, {PluginField("chunk", &chunkf, PluginFieldType::kFLOAT32, 1)}) == nullptr);
    CHECK(finder.logger.errors.size() == logged + 3);
    CHECK(finder.logger.errors.size() > logged &&
          finder.logger.errors[logged].find("hermes::SelectiveScan: attribute 'chunk' is missing") == 0);
    if (!plugin) return 1;

    auto *core = static_cast<IPluginV3OneCore *>(plugin->getCapabilityInterface(PluginCapabilityType::kCORE));
    auto *build = static_cast<IPluginV3OneBuild *>(plugin->getCapabilityInterface(PluginCapabilityType::kBUILD));
    auto *runtime = static_cast<IPluginV3OneRuntime *>(plugin->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
    CHECK(std::string(core->getPluginName()) == "SelectiveScan" && std::string(core->getPluginNamespace()) == "hermes");
    CHECK(std::string(core->getInterfaceInfo().kind) == "PLUGIN_V3ONE_CORE");
    CHECK(std::string(build->getInterfaceInfo().kind) == "PLUGIN_V3ONE_BUILD");
    CHECK(std::string(runtime->getInterfaceInfo().kind) == "PLUGIN_V3ONE_RUNTIME");
    CHECK(build->getNbOutputs() == 1);

    // types: the output is x's type; float32 or float16 only, one type per node, linear
    DataType in_types[5] = {DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kHALF, DataType::kHALF};
    DataType out_type = DataType::kFLOAT;
    CHECK(build->getOutputDataTypes(&out_type, 1, in_types, 5) == 0 && out_type == DataType::kHALF);
    // b=2, l=-1 (dynamic), h=4, p=8, g=2, n=16
    std::vector<DynamicPluginTensorDesc> io = {
        desc(dims({2, -1, 4, 8}), DataType::kFLOAT), desc(dims({2, -1, 4}), DataType::kFLOAT),
        desc(dims({4}), DataType::kFLOAT), desc(dims({2, -1, 2, 16}), DataType::kFLOAT),
        desc(dims({2, -1, 2, 16}), DataType::kFLOAT), desc(dims({2, -1, 4, 8}), DataType::kFLOAT)};
    for (int32_t pos = 0; pos < 6; ++pos) CHECK(build->supportsFormatCombination(pos, io.data(), 5, 1));
    io[1].desc.type = DataType::kHALF;
    CHECK(!build->supportsFormatCombination(1, io.data(), 5, 1));  // mixed types
    io[1].desc.type = DataType::kFLOAT;
    io[0].desc.type = DataType::kINT8;
    CHECK(!build->supportsFormatCombination(0, io.data(), 5, 1));
    io[0].desc.type = DataType::kFLOAT;
    io[0].desc.format = TensorFormat::kCHW32;
    CHECK(!build->supportsFormatCombination(0, io.data(), 5, 1));
    io[0].desc.format = TensorFormat::kLINEAR;
    CHECK(build->configurePlugin(io.data(), 5, &io[5], 1) == 0);
    io[3].desc.dims = dims({2, -1, 3, 16});  // 4 heads, 3 groups
    io[4].desc.dims = io[3].desc.dims;
    CHECK(build->configurePlugin(io.data(), 5, &io[5], 1) != 0);
    io[3].desc.dims = io[4].desc.dims = dims({2, -1, 2, 16});

    // workspace for the profile's largest shapes (l up to 1000)
    for (auto &d : io) {
        d.max = d.desc.dims;
        for (int32_t i = 0; i < d.max.nbDims; ++i)
            if (d.max.d[i] < 0) d.max.d[i] = 1000;
    }
    const size_t want = hermes_plugins::scan_workspace_bytes(hermes_plugins::scan_dims(2, 1000, 4, 8, 2, 16, 16));
    CHECK(build->getWorkspaceSize(io.data(), 5, &io[5], 1) == want);

    // runtime: shape check, serialization, per-context copies
    PluginTensorDesc rin[5], rout[1];
    for (int32_t i = 0; i < 5; ++i) rin[i] = io[i].desc;
    rin[0].dims = dims({2, 37, 4, 8});
    rin[1].dims = dims({2, 37, 4});
    rin[3].dims = rin[4].dims = dims({2, 37, 2, 16});
    rout[0] = rin[0];
    CHECK(runtime->onShapeChange(rin, 5, rout, 1) == 0);
    rin[2].dims = dims({5});
    CHECK(runtime->onShapeChange(rin, 5, rout, 1) != 0);
    const PluginFieldCollection *saved = runtime->getFieldsToSerialize();
    CHECK(saved->nbFields == 1 && std::string(saved->fields[0].name) == "chunk" &&
          saved->fields[0].type == PluginFieldType::kINT32 && *static_cast<const int32_t *>(saved->fields[0].data) == 16);
    std::unique_ptr<IPluginV3> attached(runtime->attachToContext(nullptr));
    CHECK(attached != nullptr && attached.get() != plugin.get());
    if (attached) {
        auto *copy = static_cast<IPluginV3OneRuntime *>(attached->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
        const PluginFieldCollection *again = copy->getFieldsToSerialize();
        CHECK(again->nbFields == 1 && *static_cast<const int32_t *>(again->fields[0].data) == 16);
    }
    // deserialization: the runtime phase recreates the plugin from the serialized fields
    PluginFieldCollection copy_fc{saved->nbFields, saved->fields};
    std::unique_ptr<IPluginV3> revived(scan->createPlugin("node", &copy_fc, TensorRTPhase::kRUNTIME));
    CHECK(revived != nullptr);

    // the low-pass: no attributes, x (b,c,h,w) with cutoff and sharpness (c)
    std::unique_ptr<IPluginV3> lp(lowpass->createPlugin("node", nullptr, TensorRTPhase::kBUILD));
    CHECK(lp != nullptr);
    if (lp) {
        auto *lb = static_cast<IPluginV3OneBuild *>(lp->getCapabilityInterface(PluginCapabilityType::kBUILD));
        std::vector<DynamicPluginTensorDesc> lio = {desc(dims({1, 48, 256, 256}), DataType::kHALF),
                                                    desc(dims({48}), DataType::kHALF), desc(dims({48}), DataType::kHALF),
                                                    desc(dims({1, 48, 256, 256}), DataType::kHALF)};
        for (int32_t pos = 0; pos < 4; ++pos) CHECK(lb->supportsFormatCombination(pos, lio.data(), 3, 1));
        CHECK(lb->configurePlugin(lio.data(), 3, &lio[3], 1) == 0);
        CHECK(lb->getWorkspaceSize(lio.data(), 3, &lio[3], 1) ==
              hermes_plugins::lowpass_workspace_bytes(hermes_plugins::lowpass_dims(1, 48, 256, 256)));
        lio[1].desc.dims = dims({47});
        CHECK(lb->configurePlugin(lio.data(), 3, &lio[3], 1) != 0);
        auto *lr = static_cast<IPluginV3OneRuntime *>(lp->getCapabilityInterface(PluginCapabilityType::kRUNTIME));
        CHECK(lr->getFieldsToSerialize()->nbFields == 0);
    }
    if (g_failures) {
        std::fprintf(stderr, "%d check(s) failed\n", g_failures);
        return 1;
    }
    std::printf("plugin interface checks passed\n");
    return 0;
}
