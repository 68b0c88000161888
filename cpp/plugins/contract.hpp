// The contract of the hermes custom ops, as the ONNX nodes of a `--target tensorrt` graph
// carry it: the C++ copy of hermes_deploy/contracts.py.
//
// contracts.py is the one source of truth. This header is not generated from it (building
// the plugin library must not need Python); instead tests/cpp/test_plugins.py parses the
// constants below and fails when any differs from contracts.py. Keep the one-line
// `constexpr` forms: the test reads them with regular expressions.
#pragma once

namespace hermes_plugins::contract {

constexpr char kDomain[] = "hermes";           // contracts.DOMAIN (ONNX domain of the nodes)
constexpr int kDomainVersion = 1;              // contracts.DOMAIN_VERSION
constexpr char kPluginNamespace[] = "hermes";  // contracts.PLUGIN_NAMESPACE
constexpr char kPluginVersion[] = "1";         // contracts.PLUGIN_VERSION

// contracts.SELECTIVE_SCAN
constexpr char kScanName[] = "SelectiveScan";
constexpr const char *kScanInputs[] = {"x", "dt", "A", "B", "C"};
constexpr const char *kScanOutputs[] = {"y"};
constexpr const char *kScanAttributes[] = {"chunk"};

// contracts.SPECTRAL_LOWPASS (no attributes)
constexpr char kLowpassName[] = "SpectralLowpass";
constexpr const char *kLowpassInputs[] = {"x", "cutoff", "sharpness"};
constexpr const char *kLowpassOutputs[] = {"low"};

constexpr int kScanNbInputs = sizeof(kScanInputs) / sizeof(kScanInputs[0]);
constexpr int kLowpassNbInputs = sizeof(kLowpassInputs) / sizeof(kLowpassInputs[0]);

}  // namespace hermes_plugins::contract
