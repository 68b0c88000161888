// Reading the `hermes.spec` JSON (see spec.hpp).
#include "spec.hpp"

#include <nlohmann/json.hpp>

#include "error.hpp"

namespace hermes {

namespace {

int positive(const nlohmann::json &j, const char *key, const std::string &source, int fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_number_integer() || j[key].get<long long>() < 0)
        fail(HERMES_ERR_MODEL, source + ": the HERMES spec field '" + key +
                                   "' is not a non-negative integer; re-export with hermes-export onnx");
    return j[key].get<int>();
}

std::string text(const nlohmann::json &j, const char *key, const std::string &fallback) {
    return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : fallback;
}

}  // namespace

Spec parse_spec(const std::string &json, const std::string &source) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json);
    } catch (const nlohmann::json::exception &exc) {
        fail(HERMES_ERR_MODEL, source + " carries an unreadable HERMES spec (" + exc.what() +
                                   "); re-export it with hermes-export onnx");
    }
    if (!j.is_object())
        fail(HERMES_ERR_MODEL, source + " carries a HERMES spec that is not a JSON object; "
                                        "re-export it with hermes-export onnx");
    Spec s;
    s.json = json;
    s.scale = positive(j, "scale", source, 0);
    s.in_channels = positive(j, "in_channels", source, 0);
    s.out_channels = positive(j, "out_channels", source, 0);
    s.size_multiple = positive(j, "size_multiple", source, 1);
    s.min_size = positive(j, "min_size", source, 1);
    s.tile_overlap = positive(j, "tile_overlap", source, 0);
    s.context_channels = positive(j, "context_channels", source, 0);
    if (j.contains("single_graph") && !j["single_graph"].is_null()) {
        if (!j["single_graph"].is_boolean())
            fail(HERMES_ERR_MODEL, source + ": the HERMES spec field 'single_graph' is not true or false; "
                                            "re-export with hermes-export onnx");
        s.single_graph = j["single_graph"].get<bool>();
    }
    if (s.scale < 1 || s.in_channels != 3 || s.out_channels != 3 || (!s.single_graph && s.context_channels < 1))
        fail(HERMES_ERR_MODEL, source + ": the HERMES spec says scale " + std::to_string(s.scale) +
                                   ", " + std::to_string(s.in_channels) + "->" +
                                   std::to_string(s.out_channels) + " channels, context " +
                                   std::to_string(s.context_channels) +
                                   "; this library runs RGB models with a context graph: "
                                   "re-export with hermes-export onnx");
    s.precision = text(j, "precision", s.precision);
    s.io_dtype = text(j, "io_dtype", s.io_dtype);
    s.target = text(j, "target", s.target);
    s.input_name = text(j, "input_name", s.input_name);
    s.context_name = text(j, "context_name", s.context_name);
    s.output_name = text(j, "output_name", s.output_name);
    if (j.contains("noise_name") && j["noise_name"].is_string())
        s.noise_name = j["noise_name"].get<std::string>();
    if (j.contains("context_graph") && j["context_graph"].is_string())
        s.context_graph = j["context_graph"].get<std::string>();
    if (s.single_graph && s.context_graph)
        fail(HERMES_ERR_MODEL, source + ": the HERMES spec says single_graph and also names a context graph ('" +
                                   *s.context_graph + "'); a single graph computes its own context: "
                                   "re-export with hermes-export onnx");
    if (j.contains("tile") && j["tile"].is_array() && j["tile"].size() == 2)
        s.tile = std::make_pair(j["tile"][0].get<int>(), j["tile"][1].get<int>());
    if (j.contains("batch") && j["batch"].is_number_integer())
        s.batch = j["batch"].get<int>();
    s.source_sha256 = text(j, "source_sha256", "");
    return s;
}

}  // namespace hermes
