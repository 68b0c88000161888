// GoogleTest of the engine-manifest twin (src/manifest.cpp) and of SHA-256
// (src/sha256.cpp), without TensorRT: every case of the shared corpus
// tests/data/manifests/ (expected messages written by Python's check_manifest, see its
// README.md) must give the same message and status here. The environment variable
// HERMES_MANIFEST_CORPUS names that folder (ctest sets it).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "error.hpp"
#include "manifest.hpp"
#include "sha256.hpp"

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

const char *kDir = "<DIR>";  // the corpus' stand-in for the case's folder

fs::path corpus() {
    const char *dir = std::getenv("HERMES_MANIFEST_CORPUS");
    return dir ? fs::path(dir) : fs::path();
}

#define REQUIRE_CORPUS()                                                                              \
    do {                                                                                              \
        if (corpus().empty())                                                                         \
            FAIL() << "HERMES_MANIFEST_CORPUS is not set: point it at tests/data/manifests of the "    \
                      "repository (ctest sets it)";                                                  \
        if (!fs::is_directory(corpus() / "cases"))                                                    \
            FAIL() << "HERMES_MANIFEST_CORPUS=" << corpus() << " has no cases/ folder";               \
    } while (0)

std::string read_text(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

json load(const fs::path &path) { return json::parse(read_text(path)); }

void write_bytes(const fs::path &path, const std::string &bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
}

// a case file's bytes: text, or {"pattern", "size"} repeated to size (make_corpus.py)
std::string file_bytes(const json &content) {
    if (content.is_string()) return content.get<std::string>();
    const std::string pattern = content["pattern"].get<std::string>();
    const size_t size = content["size"].get<size_t>();
    std::string out;
    while (out.size() < size) out += pattern;
    return out.substr(0, size);
}

std::string replace_all(std::string text, const std::string &from, const std::string &to) {
    for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

std::string status_name(hermes_status status) {
    static const char *names[] = {"HERMES_OK", "HERMES_ERR_INVALID_ARGUMENT", "HERMES_ERR_IO",
                                  "HERMES_ERR_MODEL", "HERMES_ERR_MISMATCH", "HERMES_ERR_IMAGE",
                                  "HERMES_ERR_UNSUPPORTED", "HERMES_ERR_BACKEND",
                                  "HERMES_ERR_OUT_OF_MEMORY", "HERMES_ERR_INTERNAL"};
    return status >= 0 && status <= HERMES_ERR_INTERNAL ? names[status] : "?";
}

struct TempDir {
    std::string path;
    TempDir() {
        std::string pattern = (fs::temp_directory_path() / "hermes-manifest-XXXXXX").string();
        path = mkdtemp(pattern.data()) ? pattern : "";
    }
    ~TempDir() {
        std::error_code ec;
        if (!path.empty()) fs::remove_all(path, ec);
    }
};

// A minimal manifest with these profiles, as JSON text.
std::string with_profiles(const json &profiles) {
    json m = {{"flavour", "tensorrt"}, {"trt_version", "10.13.0.35"}, {"compute_capability", "SM89"},
              {"onnx_sha256", ""}, {"engine_sha256", ""}, {"precision", "fp32"},
              {"profiles", profiles}, {"inputs", json::array()}, {"outputs", json::array()}};
    return m.dump();
}

}  // namespace

// ---------------------------------------------------------------------------- SHA-256

TEST(Sha256, FipsVectors) {
    // FIPS 180-2 appendix B (one block, two blocks, a million 'a')
    EXPECT_EQ(hermes::sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hermes::sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const std::string two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    EXPECT_EQ(hermes::sha256_hex(two.data(), two.size()),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    const std::string million(1000000, 'a');
    EXPECT_EQ(hermes::sha256_hex(million.data(), million.size()),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256, PiecesHashAsTheWhole) {
    std::string data;
    for (int i = 0; i < 1000; ++i) data += static_cast<char>(i * 7 + 3);
    for (const size_t step : {1, 3, 55, 56, 63, 64, 65, 200}) {
        hermes::Sha256 s;
        for (size_t at = 0; at < data.size(); at += step) s.update(data.data() + at, std::min(step, data.size() - at));
        EXPECT_EQ(s.hex(), hermes::sha256_hex(data.data(), data.size())) << "step " << step;
    }
}

TEST(Sha256, UnreadableFileIsAnIoError) {
    try {
        hermes::file_sha256("/nonexistent/model.engine");
        FAIL() << "no error";
    } catch (const hermes::Error &e) {
        EXPECT_EQ(e.status(), HERMES_ERR_IO);
        EXPECT_NE(std::string(e.what()).find("/nonexistent/model.engine"), std::string::npos) << e.what();
    }
}

// ---------------------------------------------------------------------------- corpus

TEST(ManifestCorpus, CheckManifestSaysWhatPythonSays) {
    REQUIRE_CORPUS();
    std::vector<fs::path> cases;
    for (const auto &entry : fs::directory_iterator(corpus() / "cases"))
        if (entry.path().extension() == ".json") cases.push_back(entry.path());
    std::sort(cases.begin(), cases.end());
    ASSERT_GE(cases.size(), 20u) << "the corpus in " << corpus() << " looks incomplete";
    for (const fs::path &file : cases) {
        SCOPED_TRACE(file.filename().string());
        const json c = load(file);
        TempDir dir;
        ASSERT_FALSE(dir.path.empty());
        for (auto it = c["files"].begin(); it != c["files"].end(); ++it) {
            const std::string bytes = file_bytes(*it), path = dir.path + "/" + it.key();
            write_bytes(path, bytes);
            // the sha256 fields are Python's hashlib on the same bytes
            EXPECT_EQ(hermes::sha256_hex(bytes.data(), bytes.size()), c["sha256"][it.key()].get<std::string>());
            EXPECT_EQ(hermes::file_sha256(path), c["sha256"][it.key()].get<std::string>());
        }
        const std::string engine = dir.path + "/" + c["engine_path"].get<std::string>();
        if (!c["manifest"].is_null()) write_bytes(engine + ".json", c["manifest"].dump(2));
        hermes::RunningTrt running{c["running"]["flavour"].get<std::string>(),
                                   c["running"]["trt_version"].get<std::string>(), std::nullopt};
        if (!c["running"]["compute_capability"].is_null())
            running.compute_capability = c["running"]["compute_capability"].get<std::string>();
        const std::string onnx = c["onnx_path"].is_null() ? "" : dir.path + "/" + c["onnx_path"].get<std::string>();

        hermes_status status = HERMES_OK;
        json message = nullptr;
        try {
            const hermes::Manifest m = hermes::read_manifest(engine);
            hermes::check_manifest(m, engine, running, onnx.empty() ? nullptr : &onnx,
                                   c["check_engine_file"].get<bool>());
        } catch (const hermes::Error &e) {
            status = e.status();
            message = replace_all(e.what(), dir.path, kDir);
        }
        EXPECT_EQ(status_name(status), c["status"].get<std::string>());
        EXPECT_EQ(message, c["expect"]);
    }
}

TEST(ManifestCorpus, NormalizeCapability) {
    REQUIRE_CORPUS();
    for (const auto &pair : load(corpus() / "normalize_capability.json"))
        EXPECT_EQ(hermes::normalize_capability(pair[0].get<std::string>()), pair[1].get<std::string>())
            << json(pair[0]).dump();
}

TEST(ManifestCorpus, PickProfile) {
    REQUIRE_CORPUS();
    for (const auto &entry : load(corpus() / "pick_profile.json")) {
        SCOPED_TRACE(entry.dump());
        const hermes::Manifest m = hermes::parse_manifest(with_profiles(entry["profiles"]), "test");
        std::vector<hermes::NamedShape> shapes;
        for (const auto &s : entry["shapes"]) shapes.emplace_back(s[0].get<std::string>(), s[1].get<std::vector<int64_t>>());
        if (entry["expect"].is_null()) {
            EXPECT_EQ(hermes::pick_profile(m.profiles, shapes), entry["index"].get<size_t>());
            continue;
        }
        try {
            hermes::pick_profile(m.profiles, shapes);
            ADD_FAILURE() << "no error";
        } catch (const hermes::Error &e) {
            EXPECT_EQ(e.status(), HERMES_ERR_INVALID_ARGUMENT);
            EXPECT_EQ(std::string(e.what()), entry["expect"].get<std::string>());
        }
    }
}

// ---------------------------------------------------------------------------- C++ only

TEST(Manifest, UnreadableManifestIsAModelError) {
    const char *bad[] = {"not json", "[1, 2]", R"({"flavour": "tensorrt"})",
                         R"({"flavour": 1, "trt_version": "1"})"};
    std::vector<std::string> texts(std::begin(bad), std::end(bad));
    json bad_profiles = json::parse(with_profiles(json::array({{{"x", {{1, 3}, {1, 3}}}}})));
    texts.push_back(bad_profiles.dump());
    bad_profiles["profiles"] = json::array();
    bad_profiles["plugin_libraries"] = {{{"path", "libp.so"}}};  // no sha256
    texts.push_back(bad_profiles.dump());
    for (const std::string &text : texts) {
        try {
            hermes::parse_manifest(text, "m.engine.json");
            ADD_FAILURE() << "accepted " << text;
        } catch (const hermes::Error &e) {
            const std::string what = e.what();
            EXPECT_EQ(e.status(), HERMES_ERR_MODEL) << what;
            EXPECT_EQ(what.rfind("m.engine.json is not a readable engine manifest (", 0), 0u) << what;
            EXPECT_NE(what.find("); rebuild the engine with hermes-export build"), std::string::npos) << what;
            EXPECT_EQ(what.find('\n'), std::string::npos) << what;
        }
    }
}

TEST(Manifest, OptionalFieldsAreRead) {
    json m = json::parse(with_profiles(json::array()));
    m["spec"] = {{"scale", 4}, {"context_graph", "model.context.onnx"}};
    m["plugin_libraries"] = {{{"path", "plugins/libhermes_ops.so"}, {"sha256", "ab"}}};
    m["manifest_version"] = 1;
    m["onnx_name"] = "model.onnx";
    const hermes::Manifest parsed = hermes::parse_manifest(m.dump(), "test");
    ASSERT_TRUE(parsed.spec.has_value());
    EXPECT_EQ(json::parse(*parsed.spec)["scale"], 4);
    ASSERT_EQ(parsed.plugin_libraries.size(), 1u);
    EXPECT_EQ(parsed.plugin_libraries[0].path, "plugins/libhermes_ops.so");
    EXPECT_EQ(parsed.plugin_libraries[0].sha256, "ab");
    EXPECT_EQ(parsed.product(), "TensorRT");
    EXPECT_FALSE(hermes::parse_manifest(with_profiles(json::array()), "test").spec.has_value());
}

TEST(Manifest, MissingOnnxIsAnIoError) {
    const hermes::Manifest m = hermes::parse_manifest(with_profiles(json::array()), "test");
    const std::string onnx = "/nonexistent/model.onnx";
    try {
        hermes::check_manifest(m, "model.engine", {"tensorrt", "10.13.0.35", std::nullopt}, &onnx, false);
        FAIL() << "no error";
    } catch (const hermes::Error &e) {
        EXPECT_EQ(e.status(), HERMES_ERR_IO) << e.what();
    }
}

TEST(Manifest, PathName) {
    EXPECT_EQ(hermes::path_name("a/b/model.engine"), "model.engine");
    EXPECT_EQ(hermes::path_name("model.engine"), "model.engine");
    EXPECT_EQ(hermes::path_name("a/model.engine/"), "model.engine");
    EXPECT_EQ(hermes::path_name("a/b/."), "b");
    EXPECT_EQ(hermes::path_name("/"), "");
}

TEST(Manifest, PluginLibraryPathIsPythonsJoin) {
    // os.path.join(os.path.dirname(engine), recorded), as manifest.py's plugin_library_path
    EXPECT_EQ(hermes::plugin_library_path("model.engine", "lib.so"), "lib.so");
    EXPECT_EQ(hermes::plugin_library_path("a/b/model.engine", "lib.so"), "a/b/lib.so");
    EXPECT_EQ(hermes::plugin_library_path("a/b/model.engine", "../p/lib.so"), "a/b/../p/lib.so");
    EXPECT_EQ(hermes::plugin_library_path("a//model.engine", "lib.so"), "a/lib.so");
    EXPECT_EQ(hermes::plugin_library_path("/model.engine", "lib.so"), "/lib.so");
    EXPECT_EQ(hermes::plugin_library_path("a/model.engine", "/opt/lib.so"), "/opt/lib.so");
}
