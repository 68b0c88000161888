// The engine manifest (`model.engine.json`), the C++ twin of
// hermes_deploy/engines/trt/manifest.py: what an engine was built from, and the checks
// that refuse an engine that does not fit the running TensorRT, GPU or ONNX.
//
// The messages of read_manifest(), rebuild_command() and check_manifest() are
// byte-identical to Python's for the same inputs, with the engine path passed as a
// string (as the C ABI gets it: str() leaves it as given, Path().name is its last
// component). tests/data/manifests/ holds cases whose expected messages Python wrote;
// cpp/tests/test_manifest.cpp runs them here. pick_profile() is the twin of
// hermes_deploy/engines/trt/runner.py's pick_profile, checked the same way.
//
// Statuses: a mismatch is HERMES_ERR_MISMATCH, a missing engine (or ONNX, plugin
// library) HERMES_ERR_IO, an unreadable manifest HERMES_ERR_MODEL.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hermes {

// One dynamic input of an optimization profile: its min, opt and max shapes.
struct ProfileInput {
    std::string name;
    std::vector<int64_t> min, opt, max;
};
using Profile = std::vector<ProfileInput>;  // in the manifest's (JSON) order

struct TensorDesc {  // [name, dtype, shape]; -1 marks a dynamic dim
    std::string name, dtype;
    std::vector<int64_t> shape;
};

struct PluginInfo {  // a custom op node of the ONNX
    std::string name, version, plugin_namespace;
};

// Optional key `plugin_libraries` (manifest.py's EngineManifest.plugin_libraries, written
// by hermes-export build --plugins): shared libraries of TensorRT plugins the engine needs,
// loaded before it is deserialized. `path` is relative to the engine's folder or
// absolute; check_manifest() requires the file with its `sha256`.
struct PluginLibrary {
    std::string path, sha256;
};

struct Manifest {
    std::string flavour;             // tensorrt | tensorrt-rtx
    std::string trt_version;
    std::string compute_capability;  // SM89, or CURRENT
    std::string onnx_sha256;
    std::string engine_sha256;
    std::string precision;
    std::vector<Profile> profiles;   // engine order
    std::vector<TensorDesc> inputs, outputs;
    std::vector<PluginInfo> plugins;
    std::string build = "{}";        // JSON object text: the options that shaped the engine
    std::optional<std::string> spec; // JSON text of the ModelSpec; none if the ONNX had none
    std::string onnx_name;
    std::string package_version;
    long long manifest_version = 1;
    std::vector<PluginLibrary> plugin_libraries;

    // "TensorRT" / "TensorRT-RTX"; an unknown flavour as written (EngineManifest.product)
    std::string product() const;
};

struct RunningTrt {
    std::string flavour;                            // the TensorRT that will deserialize
    std::string trt_version;                        // as Python's tensorrt.__version__
    std::optional<std::string> compute_capability;  // "SM89"; none skips the GPU check
};

// `source` names the manifest in the error (HERMES_ERR_MODEL) when it is not one.
Manifest parse_manifest(const std::string &json_text, const std::string &source);
// Read `<engine_path>.json`; a missing one is HERMES_ERR_MISMATCH.
Manifest read_manifest(const std::string &engine_path);

// The `hermes-export build` command line that rebuilds the engine; a non-empty
// `cc_override` replaces the recorded TensorRT-RTX target.
std::string rebuild_command(const Manifest &m, const std::string &engine_path,
                            const std::string &cc_override = "");

// "SM89" from "sm_89", "89", "8.9"; other text upper-cased without spaces/underscores.
std::string normalize_capability(const std::string &value);

// Throws hermes::Error with Python's one-line message when the engine does not fit.
// `onnx_path` (may be null): the ONNX must be unchanged since the build.
// `check_engine_file`: the engine must exist and have the manifest's sha256.
void check_manifest(const Manifest &m, const std::string &engine_path, const RunningTrt &running,
                    const std::string *onnx_path, bool check_engine_file);

// check_manifest's last step on a sha256 already computed (the backend hashes the engine
// bytes it has read instead of reading the file twice).
void check_engine_sha256(const Manifest &m, const std::string &engine_path, const std::string &actual);

// Index of the first profile whose [min, max] contains every shape in `shapes` (names
// the profile lacks are ignored); 0 when there are no profiles; else
// HERMES_ERR_INVALID_ARGUMENT listing the profiles (runner.py's pick_profile).
using NamedShape = std::pair<std::string, std::vector<int64_t>>;
size_t pick_profile(const std::vector<Profile> &profiles, const std::vector<NamedShape> &shapes);

// The last component of a path, as Python's Path(path).name.
std::string path_name(const std::string &path);

// Where a recorded plugin library lies: os.path.join(os.path.dirname(engine_path), recorded)
// (manifest.py's plugin_library_path).
std::string plugin_library_path(const std::string &engine_path, const std::string &recorded);

}  // namespace hermes
