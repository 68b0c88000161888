// The engine manifest and its checks, line by line after manifest.py (see manifest.hpp).
// Where the Python formats a value with str() or repr(), py_str()/py_repr() below do the
// same for the JSON value; objects keep their file order (ordered_json), as json.loads.
#include "manifest.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "error.hpp"
#include "sha256.hpp"

namespace hermes {

namespace {

using json = nlohmann::ordered_json;
constexpr long long kManifestVersion = 1;  // manifest.py's MANIFEST_VERSION

[[noreturn]] void unreadable(const std::string &source, const std::string &why) {
    fail(HERMES_ERR_MODEL, source + " is not a readable engine manifest (" + why +
                               "); rebuild the engine with hermes-export build");
}

std::string repr_string(const std::string &s) {
    // Python's quote choice: single quotes unless the text has ' and no "
    const char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, quote);
    for (const char c : s) {
        const unsigned char u = static_cast<unsigned char>(c);
        if (c == '\\' || c == quote) out += {'\\', c};
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else if (u < 0x20 || u == 0x7f) {
            static const char digits[] = "0123456789abcdef";
            out += {'\\', 'x', digits[u >> 4], digits[u & 15]};
        } else out += c;
    }
    return out + quote;
}

std::string py_repr(const json &v) {
    if (v.is_null()) return "None";
    if (v.is_boolean()) return v.get<bool>() ? "True" : "False";
    if (v.is_string()) return repr_string(v.get<std::string>());
    if (v.is_array() || v.is_object()) {
        std::string out(1, v.is_array() ? '[' : '{');
        bool first = true;
        for (auto it = v.begin(); it != v.end(); ++it, first = false)
            out += (first ? "" : ", ") + (v.is_object() ? repr_string(it.key()) + ": " : "") + py_repr(*it);
        return out + (v.is_array() ? ']' : '}');
    }
    return v.dump();  // numbers (a float's digits may differ from Python's in rare cases)
}

std::string py_str(const json &v) { return v.is_string() ? v.get<std::string>() : py_repr(v); }

bool py_truthy(const json &v) {
    if (v.is_null()) return false;
    if (v.is_boolean()) return v.get<bool>();
    if (v.is_number_float()) return v.get<double>() != 0.0;
    if (v.is_number()) return v.get<long long>() != 0;
    return !v.empty();  // strings, arrays, objects
}

std::string join(const std::vector<std::string> &parts, const std::string &sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
    return out;
}

std::string dims_x(const std::vector<int64_t> &dims) {  // 'x'.join(map(str, dims))
    std::vector<std::string> parts;
    for (const int64_t d : dims) parts.push_back(std::to_string(d));
    return join(parts, "x");
}

std::string py_tuple(const std::vector<int64_t> &dims) {  // str(tuple(dims))
    std::vector<std::string> parts;
    for (const int64_t d : dims) parts.push_back(std::to_string(d));
    return "(" + join(parts, ", ") + (dims.size() == 1 ? ",)" : ")");
}

std::string product_of(const std::string &flavour) {
    if (flavour == "tensorrt-rtx") return "TensorRT-RTX";
    if (flavour == "tensorrt") return "TensorRT";
    return "";
}

bool is_file(const std::string &path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec);
}

// ---- reading the JSON

std::string required_string(const json &j, const char *key, const std::string &source) {
    if (!j.contains(key)) unreadable(source, std::string("missing field '") + key + "'");
    if (!j[key].is_string()) unreadable(source, std::string("field '") + key + "' is not a string");
    return j[key].get<std::string>();
}

std::string optional_string(const json &j, const char *key) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::vector<int64_t> dims(const json &j, const std::string &what, const std::string &source) {
    if (!j.is_array()) unreadable(source, what + " is not a list of integers");
    std::vector<int64_t> out;
    for (const auto &d : j) {
        if (!d.is_number_integer()) unreadable(source, what + " is not a list of integers");
        out.push_back(d.get<int64_t>());
    }
    return out;
}

std::vector<Profile> read_profiles(const json &j, const std::string &source) {
    if (!j.contains("profiles")) unreadable(source, "missing field 'profiles'");
    if (!j["profiles"].is_array()) unreadable(source, "field 'profiles' is not a list");
    std::vector<Profile> out;
    for (const auto &p : j["profiles"]) {
        if (!p.is_object()) unreadable(source, "a profile is not an object of input shapes");
        Profile profile;
        for (auto it = p.begin(); it != p.end(); ++it) {
            const std::string what = "profile shapes of '" + it.key() + "'";
            if (!it->is_array() || it->size() != 3) unreadable(source, what + " are not [min, opt, max]");
            profile.push_back({it.key(), dims((*it)[0], what, source), dims((*it)[1], what, source),
                               dims((*it)[2], what, source)});
        }
        out.push_back(std::move(profile));
    }
    return out;
}

// [name, dtype, shape]: not used by any check, so read leniently (as Python does)
std::vector<TensorDesc> read_tensors(const json &j, const char *key, const std::string &source) {
    if (!j.contains(key)) unreadable(source, std::string("missing field '") + key + "'");
    std::vector<TensorDesc> out;
    if (!j[key].is_array()) return out;
    for (const auto &t : j[key]) {
        TensorDesc d;
        if (t.is_array() && t.size() > 0 && t[0].is_string()) d.name = t[0].get<std::string>();
        if (t.is_array() && t.size() > 1 && t[1].is_string()) d.dtype = t[1].get<std::string>();
        if (t.is_array() && t.size() > 2 && t[2].is_array())
            for (const auto &v : t[2]) d.shape.push_back(v.is_number_integer() ? v.get<int64_t>() : -1);
        out.push_back(std::move(d));
    }
    return out;
}

}  // namespace

// ---- public

std::string Manifest::product() const {
    const std::string known = product_of(flavour);
    return known.empty() ? flavour : known;
}

std::string path_name(const std::string &path) {
    // PurePosixPath: empty and "." components vanish; the name is the last one left
    std::string last, part;
    std::istringstream in(path);
    while (std::getline(in, part, '/'))
        if (!part.empty() && part != ".") last = part;
    return last;
}

std::string plugin_library_path(const std::string &engine_path, const std::string &recorded) {
    // os.path.dirname: everything before the last '/', trailing slashes dropped unless all slashes
    const size_t slash = engine_path.rfind('/');
    std::string head = slash == std::string::npos ? "" : engine_path.substr(0, slash + 1);
    if (head.find_first_not_of('/') != std::string::npos)
        while (!head.empty() && head.back() == '/') head.pop_back();
    // os.path.join(head, recorded)
    if (!recorded.empty() && recorded[0] == '/') return recorded;
    if (head.empty() || head.back() == '/') return head + recorded;
    return head + "/" + recorded;
}

Manifest parse_manifest(const std::string &json_text, const std::string &source) {
    try {
        const json j = json::parse(json_text);
        if (!j.is_object()) unreadable(source, "not a JSON object");
        Manifest m;
        m.flavour = required_string(j, "flavour", source);
        m.trt_version = required_string(j, "trt_version", source);
        m.compute_capability = required_string(j, "compute_capability", source);
        m.onnx_sha256 = required_string(j, "onnx_sha256", source);
        m.engine_sha256 = required_string(j, "engine_sha256", source);
        m.precision = required_string(j, "precision", source);
        m.profiles = read_profiles(j, source);
        m.inputs = read_tensors(j, "inputs", source);
        m.outputs = read_tensors(j, "outputs", source);
        if (j.contains("plugins") && j["plugins"].is_array())
            for (const auto &p : j["plugins"])
                if (p.is_object())
                    m.plugins.push_back({optional_string(p, "name"), optional_string(p, "version"),
                                         optional_string(p, "namespace")});
        if (j.contains("build") && !j["build"].is_null()) {
            if (!j["build"].is_object()) unreadable(source, "field 'build' is not an object");
            m.build = j["build"].dump();
        }
        if (j.contains("spec") && !j["spec"].is_null()) {
            if (!j["spec"].is_object()) unreadable(source, "field 'spec' is not an object");
            m.spec = j["spec"].dump();
        }
        m.onnx_name = optional_string(j, "onnx_name");
        m.package_version = optional_string(j, "package_version");
        if (j.contains("manifest_version")) {
            if (!j["manifest_version"].is_number_integer())
                unreadable(source, "field 'manifest_version' is not an integer");
            m.manifest_version = j["manifest_version"].get<long long>();
        }
        if (j.contains("plugin_libraries")) {
            const auto &libs = j["plugin_libraries"];
            if (!libs.is_array()) unreadable(source, "field 'plugin_libraries' is not a list");
            for (const auto &lib : libs) {
                if (!lib.is_object()) unreadable(source, "a plugin library is not an object {path, sha256}");
                m.plugin_libraries.push_back({required_string(lib, "path", source), required_string(lib, "sha256", source)});
            }
        }
        return m;
    } catch (const nlohmann::json::exception &exc) {
        unreadable(source, exc.what());
    }
}

Manifest read_manifest(const std::string &engine_path) {
    std::string base = engine_path;  // Path.with_name(name + ".json"): a trailing '/' goes
    while (base.size() > 1 && base.back() == '/') base.pop_back();
    const std::string path = base + ".json";
    if (!is_file(path))
        fail(HERMES_ERR_MISMATCH, "engine " + engine_path + " has no manifest (" + path_name(engine_path) +
                                      ".json); an engine of unknown origin cannot be checked: rebuild it with "
                                      "hermes-export build");
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    if (in.is_open()) text << in.rdbuf();
    if (!in.is_open() || in.bad()) fail(HERMES_ERR_IO, "cannot read '" + path + "' (" + std::strerror(errno) + ")");
    return parse_manifest(text.str(), path);
}

std::string rebuild_command(const Manifest &m, const std::string &engine_path, const std::string &cc_override) {
    std::vector<std::string> parts{"hermes-export build", m.onnx_name.empty() ? "MODEL.onnx" : m.onnx_name,
                                   "-o", engine_path, "--trt", m.flavour};
    if (m.flavour == "tensorrt-rtx")
        parts.insert(parts.end(), {"--compute-capability", cc_override.empty() ? m.compute_capability : cc_override});
    const json build = json::parse(m.build);  // an object: parse_manifest checked it
    const auto get = [&](const char *key) { return build.contains(key) ? build[key] : json(); };
    if (py_truthy(get("tile"))) {
        std::vector<std::string> tile;
        if (get("tile").is_array())
            for (const auto &v : get("tile")) tile.push_back(py_str(v));
        else tile.push_back(py_str(get("tile")));
        parts.insert(parts.end(), {"--tile", join(tile, "x")});
    } else {
        for (const Profile &profile : m.profiles) {
            const char *labels[3] = {"--min", "--opt", "--max"};
            for (int i = 0; i < 3; ++i) {
                std::vector<std::string> shapes;
                for (const ProfileInput &in : profile)
                    shapes.push_back(in.name + ":" + dims_x(i == 0 ? in.min : i == 1 ? in.opt : in.max));
                parts.insert(parts.end(), {labels[i], join(shapes, ",")});
            }
        }
    }
    if (py_truthy(get("workspace_mb"))) parts.insert(parts.end(), {"--workspace", py_str(get("workspace_mb"))});
    if (!get("optimization_level").is_null())
        parts.insert(parts.end(), {"--builder-optimization-level", py_str(get("optimization_level"))});
    for (const PluginLibrary &lib : m.plugin_libraries)
        parts.insert(parts.end(), {"--plugins", plugin_library_path(engine_path, lib.path)});
    return join(parts, " ");
}

std::string normalize_capability(const std::string &value) {
    std::string text;
    for (const char c : value) {
        const unsigned char u = static_cast<unsigned char>(c);
        // Python's [\s_]: for ASCII, \s is \t\n\v\f\r, space and \x1c-\x1f
        if (c == '_' || c == ' ' || (u >= 0x09 && u <= 0x0d) || (u >= 0x1c && u <= 0x1f)) continue;
        text += (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    // fullmatch (?:SM)?(\d+)(?:\.(\d+))?  ->  SM<major><minor>
    const auto digits = [&](size_t from) {
        size_t end = from;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
        return end;
    };
    const size_t start = text.rfind("SM", 0) == 0 ? 2 : 0;
    const size_t major_end = digits(start);
    if (major_end == start) return text;
    if (major_end == text.size()) return "SM" + text.substr(start);
    if (text[major_end] != '.') return text;
    const size_t minor_end = digits(major_end + 1);
    if (minor_end == major_end + 1 || minor_end != text.size()) return text;
    return "SM" + text.substr(start, major_end - start) + text.substr(major_end + 1);
}

void check_engine_sha256(const Manifest &m, const std::string &engine_path, const std::string &actual) {
    if (actual != m.engine_sha256)
        fail(HERMES_ERR_MISMATCH, "engine " + path_name(engine_path) +
                                      " is not the file its manifest describes (sha256 differs); rebuild it: " +
                                      rebuild_command(m, engine_path));
}

void check_manifest(const Manifest &m, const std::string &engine_path, const RunningTrt &running,
                    const std::string *onnx_path, bool check_engine_file) {
    const std::string how = "rebuild it: " + rebuild_command(m, engine_path);
    const std::string name = path_name(engine_path);
    if (m.manifest_version != kManifestVersion)
        fail(HERMES_ERR_MISMATCH, "engine " + name + " has manifest version " + std::to_string(m.manifest_version) +
                                      ", this package reads " + std::to_string(kManifestVersion) + "; " + how);
    if (m.flavour != running.flavour) {
        const std::string loader = product_of(running.flavour);  // Flavour.parse(flavour).product
        if (loader.empty())
            fail(HERMES_ERR_INVALID_ARGUMENT, "unknown TensorRT flavour " + repr_string(running.flavour) +
                                                  "; expected tensorrt-rtx or tensorrt");
        fail(HERMES_ERR_MISMATCH, "engine " + name + " was built by " + m.product() + " but is being loaded with " +
                                      loader + "; " + how);
    }
    if (m.trt_version != running.trt_version)
        fail(HERMES_ERR_MISMATCH, "engine " + name + " was built with " + m.product() + " " + m.trt_version + " but " +
                                      running.trt_version + " is installed; " + how);
    if (running.compute_capability && m.compute_capability != "CURRENT") {
        const std::string gpu = normalize_capability(*running.compute_capability);
        if (gpu != m.compute_capability) {
            if (m.flavour == "tensorrt-rtx")
                fail(HERMES_ERR_MISMATCH, "engine " + name + " targets compute capability " + m.compute_capability +
                                              " but this GPU is " + gpu +
                                              "; rebuild it: " + rebuild_command(m, engine_path, gpu));
            fail(HERMES_ERR_MISMATCH, "engine " + name + " was built on a " + m.compute_capability +
                                          " GPU but this GPU is " + gpu + "; " + how + " (on this machine)");
        }
    }
    if (onnx_path) {
        const std::string current = file_sha256(*onnx_path);
        if (current != m.onnx_sha256)
            fail(HERMES_ERR_MISMATCH, path_name(*onnx_path) + " changed since engine " + name +
                                          " was built from it (sha256 " + m.onnx_sha256.substr(0, 12) + " -> " +
                                          current.substr(0, 12) + "); " + how);
    }
    for (const PluginLibrary &lib : m.plugin_libraries) {
        const std::string path = plugin_library_path(engine_path, lib.path);
        if (!is_file(path))
            fail(HERMES_ERR_IO, "plugin library " + path + " that engine " + name +
                                    " needs does not exist (the manifest records " + lib.path +
                                    ", relative to the engine's folder); put it there or " + how);
        const std::string current = file_sha256(path);
        if (current != lib.sha256)
            fail(HERMES_ERR_MISMATCH, "plugin library " + path + " is not the one engine " + name +
                                          " was built with (sha256 " + lib.sha256.substr(0, 12) + " -> " +
                                          current.substr(0, 12) + "); " + how);
    }
    if (check_engine_file) {
        if (!is_file(engine_path))
            fail(HERMES_ERR_IO, "engine " + engine_path + " does not exist; build it with hermes-export build");
        check_engine_sha256(m, engine_path, file_sha256(engine_path));
    }
}

size_t pick_profile(const std::vector<Profile> &profiles, const std::vector<NamedShape> &shapes) {
    if (profiles.empty()) return 0;
    for (size_t index = 0; index < profiles.size(); ++index) {
        bool fits = true;
        for (const NamedShape &shape : shapes) {
            for (const ProfileInput &in : profiles[index]) {
                if (in.name != shape.first) continue;
                bool inside = shape.second.size() == in.min.size();
                for (size_t d = 0; inside && d < std::min(shape.second.size(), in.max.size()); ++d)
                    inside = in.min[d] <= shape.second[d] && shape.second[d] <= in.max[d];
                fits = fits && inside;
            }
        }
        if (fits) return index;
    }
    std::vector<std::string> shown, wanted;
    for (const Profile &profile : profiles) {
        std::vector<std::string> inputs;
        for (const ProfileInput &in : profile) inputs.push_back(in.name + " " + py_tuple(in.min) + ".." + py_tuple(in.max));
        shown.push_back(join(inputs, ", "));
    }
    for (const NamedShape &shape : shapes) wanted.push_back(shape.first + " " + py_tuple(shape.second));
    fail(HERMES_ERR_INVALID_ARGUMENT, "no optimization profile of the engine takes " + join(wanted, ", ") +
                                          "; profiles: " + join(shown, "; ") +
                                          "; use tiles inside a profile or rebuild with hermes-export build --tile/--max");
}

}  // namespace hermes
