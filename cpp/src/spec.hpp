// ModelSpec: what the runtime needs to know about an exported model, read from the
// `hermes.spec` JSON that the Python side writes (hermes_deploy/spec.py) into the ONNX
// metadata and the engine manifest. Only the fields the C++ runtime uses are kept; the
// whole JSON text is kept too, for hermes_model_spec_json().
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace hermes {

struct Spec {
    int scale = 1;
    int in_channels = 3;
    int out_channels = 3;
    int size_multiple = 1;
    int min_size = 1;
    int tile_overlap = 0;
    int context_channels = 0;
    std::string precision = "fp32";
    std::string io_dtype = "float32";
    std::string target = "portable";
    std::string input_name = "input";
    std::string context_name = "context";
    std::optional<std::string> noise_name;
    std::string output_name = "output";
    std::optional<std::pair<int, int>> tile;  // fixed input H, W
    std::optional<int> batch;                 // fixed batch
    std::optional<std::string> context_graph; // companion ONNX file name
    // One graph, inputs `input` (+ noise) only: the context is computed inside it from
    // each tile it is given, so there is no context input and no context graph, and
    // context_channels is informational (hermes-export onnx --single-graph).
    bool single_graph = false;
    std::string source_sha256;
    std::string json;                         // the spec as read
};

// Parse the spec JSON; `source` names the file in error messages (HERMES_ERR_MODEL).
Spec parse_spec(const std::string &json, const std::string &source);

}  // namespace hermes
