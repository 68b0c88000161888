// The two hermes ops as plugin_base.hpp's Op: attributes, shape checks, workspace sizing
// and the kernel launch (plugins.cpp). Inputs and attributes are those of contract.hpp.
#pragma once

#include <string>

#include "plugin_base.hpp"

namespace hermes_plugins {

// hermes::SelectiveScan: x (b,l,h,p), dt (b,l,h), A (h), B (b,l,g,n), C (b,l,g,n) -> y
// (b,l,h,p); attribute chunk (int, >= 1; the kernels use min(chunk, kMaxChunk) steps per
// chunk - the chunk length changes cost, not the result).
struct SelectiveScan {
    static constexpr const char *kName = contract::kScanName;
    static constexpr int32_t kNbInputs = contract::kScanNbInputs;

    int32_t chunk = 0;

    static void field_names(FieldList &list);
    bool read(const nvinfer1::PluginFieldCollection *fc, std::string &why);
    std::string check(const nvinfer1::Dims *in) const;
    size_t workspace(const nvinfer1::Dims *max) const;
    cudaError_t run(IoType type, const nvinfer1::PluginTensorDesc *in, const nvinfer1::PluginTensorDesc *out,
                    const void *const *inputs, void *const *outputs, void *workspace, cudaStream_t stream) const;
    const nvinfer1::PluginFieldCollection *fields();

private:
    nvinfer1::PluginField field_{};
    nvinfer1::PluginFieldCollection collection_{};
};

// hermes::SpectralLowpass: x (b,c,h,w), cutoff (c), sharpness (c) -> low (b,c,h,w); no
// attributes. Any h, w >= 1.
struct SpectralLowpass {
    static constexpr const char *kName = contract::kLowpassName;
    static constexpr int32_t kNbInputs = contract::kLowpassNbInputs;

    static void field_names(FieldList &) {}
    bool read(const nvinfer1::PluginFieldCollection *, std::string &) { return true; }
    std::string check(const nvinfer1::Dims *in) const;
    size_t workspace(const nvinfer1::Dims *max) const;
    cudaError_t run(IoType type, const nvinfer1::PluginTensorDesc *in, const nvinfer1::PluginTensorDesc *out,
                    const void *const *inputs, void *const *outputs, void *workspace, cudaStream_t stream) const;
    const nvinfer1::PluginFieldCollection *fields() { return &collection_; }

private:
    nvinfer1::PluginFieldCollection collection_{};
};

using SelectiveScanCreator = Creator<SelectiveScan>;
using SpectralLowpassCreator = Creator<SpectralLowpass>;

}  // namespace hermes_plugins
