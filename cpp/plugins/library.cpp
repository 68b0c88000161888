// libhermes_trt_plugins.so: the entry points TensorRT looks for, and registration at load.
//
// Two ways in, both documented by TensorRT:
//
// - IPluginRegistry::loadLibrary (trtexec --dynamicPlugins, Python
//   get_plugin_registry().load_library): TensorRT calls setLoggerFinder() and
//   getCreators() and registers the creators itself.
// - a plain dlopen (trtexec --staticPlugins, Triton's TensorRT backend
//   --backend-config=tensorrt,plugins=..., libhermes): the creators register themselves
//   while the library loads, with the registry of the libnvinfer already in the process
//   (found by name, so this library has no link dependency on libnvinfer). Set
//   HERMES_TRT_PLUGINS_STATIC=0 to switch that off.
//
// loadLibrary refuses a library whose creators are already registered, so getCreators()
// first takes back the load-time registration: whoever asks for the creators owns them.
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "plugins.hpp"

namespace hermes_plugins {

namespace {

std::atomic<nvinfer1::ILoggerFinder *> g_finder{nullptr};

SelectiveScanCreator g_scan_creator;
SpectralLowpassCreator g_lowpass_creator;
nvinfer1::IPluginCreatorInterface *const g_creators[] = {&g_scan_creator, &g_lowpass_creator};
constexpr int32_t kNbCreators = sizeof(g_creators) / sizeof(g_creators[0]);

std::mutex g_registration_lock;
nvinfer1::IPluginRegistry *g_registered_with = nullptr;  // the registry of the load-time registration

using GetRegistry = nvinfer1::IPluginRegistry *(*)();

// TensorRT's getPluginRegistry from the libnvinfer this process already has loaded.
nvinfer1::IPluginRegistry *process_registry() {
    void *symbol = dlsym(RTLD_DEFAULT, "getPluginRegistry");
    if (!symbol) {
        for (const char *name : {"libnvinfer.so.11", "libnvinfer.so.10", "libnvinfer.so"}) {
            void *lib = dlopen(name, RTLD_LAZY | RTLD_NOLOAD);  // only if already loaded
            if (!lib) continue;
            symbol = dlsym(lib, "getPluginRegistry");
            dlclose(lib);  // drops the reference NOLOAD took; the library stays loaded
            if (symbol) break;
        }
    }
    if (!symbol) return nullptr;
    GetRegistry get = nullptr;
    std::memcpy(&get, &symbol, sizeof get);
    return get();
}

struct LoadTimeRegistration {
    LoadTimeRegistration() noexcept {
        const char *flag = std::getenv("HERMES_TRT_PLUGINS_STATIC");
        if (flag && std::strcmp(flag, "0") == 0) return;
        nvinfer1::IPluginRegistry *registry = process_registry();
        if (!registry) return;  // no TensorRT in the process yet: loadLibrary will call getCreators
        std::lock_guard<std::mutex> hold(g_registration_lock);
        int32_t done = 0;
        for (nvinfer1::IPluginCreatorInterface *creator : g_creators)
            done += registry->registerCreator(*creator, contract::kPluginNamespace) ? 1 : 0;
        if (done == kNbCreators) {
            g_registered_with = registry;
            return;
        }
        for (nvinfer1::IPluginCreatorInterface *creator : g_creators) registry->deregisterCreator(*creator);
        log_error("hermes_trt_plugins: could not register the hermes plugins at load time (another library "
                  "registers hermes::SelectiveScan or hermes::SpectralLowpass?)");
    }
};

const LoadTimeRegistration g_load_time_registration;

}  // namespace

void set_logger_finder(nvinfer1::ILoggerFinder *finder) noexcept { g_finder.store(finder); }

void log_error(const std::string &message) noexcept {
    nvinfer1::ILoggerFinder *finder = g_finder.load();
    nvinfer1::ILogger *logger = finder ? finder->findLogger() : nullptr;
    if (logger) {
        logger->log(nvinfer1::ILogger::Severity::kERROR, message.c_str());
        return;
    }
    std::fprintf(stderr, "[hermes_trt_plugins] %s\n", message.c_str());
}

}  // namespace hermes_plugins

extern "C" {

__attribute__((visibility("default"))) void setLoggerFinder(nvinfer1::ILoggerFinder *finder) noexcept {
    hermes_plugins::set_logger_finder(finder);
}

__attribute__((visibility("default"))) nvinfer1::IPluginCreatorInterface *const *getCreators(
    int32_t &nbCreators) noexcept {
    using namespace hermes_plugins;
    {
        std::lock_guard<std::mutex> hold(g_registration_lock);
        if (g_registered_with) {
            for (nvinfer1::IPluginCreatorInterface *creator : g_creators) g_registered_with->deregisterCreator(*creator);
            g_registered_with = nullptr;
        }
    }
    nbCreators = kNbCreators;
    return g_creators;
}

}  // extern "C"
