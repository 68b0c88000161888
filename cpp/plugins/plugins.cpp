// Attributes, shape checks, workspace sizes and launches of the two hermes plugins.
#include "plugins.hpp"

#include <cstring>

namespace hermes_plugins {

namespace {

// equal, or unknown (-1 while building with dynamic dimensions)
bool same(int64_t a, int64_t b) { return a < 0 || b < 0 || a == b; }

bool known(const nvinfer1::Dims &d) {
    for (int32_t i = 0; i < d.nbDims; ++i)
        if (d.d[i] < 0) return false;
    return true;
}

}  // namespace

std::string dims_text(const nvinfer1::Dims &d) {
    std::string out = "(";
    for (int32_t i = 0; i < d.nbDims; ++i) out += (i ? ", " : "") + std::to_string(d.d[i]);
    return out + ")";
}

bool read_int_field(const nvinfer1::PluginFieldCollection *fc, const char *name, int64_t &value, std::string &why) {
    for (int32_t i = 0; fc && i < fc->nbFields; ++i) {
        const nvinfer1::PluginField &f = fc->fields[i];
        if (!f.name || std::strcmp(f.name, name) != 0) continue;
        if (f.length != 1 || !f.data) {
            why = std::string("attribute '") + name + "' must be one integer, got " + std::to_string(f.length) + " values";
            return false;
        }
        if (f.type == nvinfer1::PluginFieldType::kINT32) {
            value = *static_cast<const int32_t *>(f.data);
            return true;
        }
        if (f.type == nvinfer1::PluginFieldType::kINT64) {
            value = *static_cast<const int64_t *>(f.data);
            return true;
        }
        why = std::string("attribute '") + name + "' must be an integer (INT32 or INT64 field)";
        return false;
    }
    why = std::string("attribute '") + name + "' is missing; export the graph with hermes-export onnx --target tensorrt";
    return false;
}

// ---------------------------------------------------------------------------- SelectiveScan

void SelectiveScan::field_names(FieldList &list) { list.add(contract::kScanAttributes[0], nvinfer1::PluginFieldType::kINT32); }

bool SelectiveScan::read(const nvinfer1::PluginFieldCollection *fc, std::string &why) {
    int64_t value = 0;
    if (!read_int_field(fc, contract::kScanAttributes[0], value, why)) return false;
    if (value < 1 || value > 1 << 30) {
        why = "attribute 'chunk' must be >= 1, got " + std::to_string(value);
        return false;
    }
    chunk = static_cast<int32_t>(value);
    return true;
}

std::string SelectiveScan::check(const nvinfer1::Dims *in) const {
    const nvinfer1::Dims &x = in[0], &dt = in[1], &A = in[2], &B = in[3], &C = in[4];
    const std::string got = "; got x " + dims_text(x) + ", dt " + dims_text(dt) + ", A " + dims_text(A) + ", B " +
                            dims_text(B) + ", C " + dims_text(C);
    const std::string want = "expected x (b,l,h,p), dt (b,l,h), A (h), B (b,l,g,n), C (b,l,g,n) with h a multiple of g";
    if (x.nbDims != 4 || dt.nbDims != 3 || A.nbDims != 1 || B.nbDims != 4 || C.nbDims != 4) return want + got;
    bool ok = same(dt.d[0], x.d[0]) && same(dt.d[1], x.d[1]) && same(dt.d[2], x.d[2]) && same(A.d[0], x.d[2]) &&
              same(B.d[0], x.d[0]) && same(B.d[1], x.d[1]);
    for (int32_t i = 0; i < 4; ++i) ok = ok && same(C.d[i], B.d[i]);
    if (B.d[2] == 0) ok = false;
    if (x.d[2] >= 0 && B.d[2] > 0 && x.d[2] % B.d[2] != 0) ok = false;
    return ok ? "" : want + got;
}

size_t SelectiveScan::workspace(const nvinfer1::Dims *max) const {
    const nvinfer1::Dims &x = max[0], &B = max[3];
    if (x.nbDims != 4 || B.nbDims != 4 || !known(x) || !known(B)) return 0;
    return scan_workspace_bytes(scan_dims(x.d[0], x.d[1], x.d[2], x.d[3], B.d[2], B.d[3], chunk));
}

cudaError_t SelectiveScan::run(IoType type, const nvinfer1::PluginTensorDesc *in, const nvinfer1::PluginTensorDesc *,
                               const void *const *inputs, void *const *outputs, void *workspace,
                               cudaStream_t stream) const {
    const nvinfer1::Dims &x = in[0].dims, &B = in[3].dims;
    const ScanDims d = scan_dims(x.d[0], x.d[1], x.d[2], x.d[3], B.d[2], B.d[3], chunk);
    const ScanBuffers io{inputs[0], inputs[1], inputs[2], inputs[3], inputs[4], outputs[0]};
    return launch_selective_scan(type, io, d, workspace, stream);
}

const nvinfer1::PluginFieldCollection *SelectiveScan::fields() {
    field_ = nvinfer1::PluginField(contract::kScanAttributes[0], &chunk, nvinfer1::PluginFieldType::kINT32, 1);
    collection_.nbFields = 1;
    collection_.fields = &field_;
    return &collection_;
}

// ---------------------------------------------------------------------------- SpectralLowpass

std::string SpectralLowpass::check(const nvinfer1::Dims *in) const {
    const nvinfer1::Dims &x = in[0], &cut = in[1], &sharp = in[2];
    if (x.nbDims != 4 || cut.nbDims != 1 || sharp.nbDims != 1 || !same(cut.d[0], x.d[1]) || !same(sharp.d[0], x.d[1]))
        return "expected x (b,c,h,w), cutoff (c), sharpness (c); got x " + dims_text(x) + ", cutoff " + dims_text(cut) +
               ", sharpness " + dims_text(sharp);
    return "";
}

size_t SpectralLowpass::workspace(const nvinfer1::Dims *max) const {
    const nvinfer1::Dims &x = max[0];
    if (x.nbDims != 4 || !known(x)) return 0;
    return lowpass_workspace_bytes(lowpass_dims(x.d[0], x.d[1], x.d[2], x.d[3]));
}

cudaError_t SpectralLowpass::run(IoType type, const nvinfer1::PluginTensorDesc *in, const nvinfer1::PluginTensorDesc *,
                                 const void *const *inputs, void *const *outputs, void *workspace,
                                 cudaStream_t stream) const {
    const nvinfer1::Dims &x = in[0].dims;
    const LowpassBuffers io{inputs[0], inputs[1], inputs[2], outputs[0]};
    return launch_spectral_lowpass(type, io, lowpass_dims(x.d[0], x.d[1], x.d[2], x.d[3]), workspace, stream);
}

}  // namespace hermes_plugins
