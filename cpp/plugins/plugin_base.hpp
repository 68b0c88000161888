// What the two hermes plugins share: one IPluginV3 object that is its own core, build and
// runtime capability (IPluginV3OneCore, IPluginV3OneBuild, IPluginV3OneRuntime), and one
// IPluginCreatorV3One creator per plugin. An op supplies (see SelectiveScan,
// SpectralLowpass in plugins.hpp):
//
//   kName, kNbInputs, fields()        plugin name, input count, attributes (PluginFields)
//   check(dims, nb)                   "" or why the input shapes do not fit the contract
//   workspace(max dims)               bytes for the largest shapes of the profile
//   run(type, in/out descs, buffers, workspace, stream)
//
// Every tensor of a node has one type, float32 or float16, in linear layout; the output
// has the shape and type of input 0. Errors go to TensorRT's logger (ILoggerFinder, from
// setLoggerFinder) and, where TensorRT gave none, to stderr; no exception leaves a method.
#pragma once

#include <NvInferRuntime.h>

#include <string>
#include <vector>

#include "contract.hpp"
#include "kernels/launch.hpp"

namespace hermes_plugins {

void log_error(const std::string &message) noexcept;  // library.cpp
void set_logger_finder(nvinfer1::ILoggerFinder *finder) noexcept;

inline bool is_float(nvinfer1::DataType t) { return t == nvinfer1::DataType::kFLOAT || t == nvinfer1::DataType::kHALF; }

inline IoType io_type(nvinfer1::DataType t) {
    return t == nvinfer1::DataType::kHALF ? IoType::kFloat16 : IoType::kFloat32;
}

std::string dims_text(const nvinfer1::Dims &d);  // "(1, 3, -1, -1)"

// An integer attribute from a field collection: INT32 or INT64, one value. False (and
// `why` set) when it is absent or of another type.
bool read_int_field(const nvinfer1::PluginFieldCollection *fc, const char *name, int64_t &value, std::string &why);

// The attributes a creator advertises (getFieldNames): name and type, no data.
struct FieldList {
    std::vector<nvinfer1::PluginField> fields;
    nvinfer1::PluginFieldCollection collection{};
    void add(const char *name, nvinfer1::PluginFieldType type) {
        fields.emplace_back(name, nullptr, type, 1);
        collection.nbFields = static_cast<int32_t>(fields.size());
        collection.fields = fields.data();
    }
};

template <class Op>
class Plugin final : public nvinfer1::IPluginV3,
                     public nvinfer1::IPluginV3OneCore,
                     public nvinfer1::IPluginV3OneBuild,
                     public nvinfer1::IPluginV3OneRuntime {
public:
    explicit Plugin(const Op &op) : op_(op) {}
    Plugin(const Plugin &) = default;
    Plugin &operator=(const Plugin &) = delete;
    ~Plugin() override = default;

    // ---- IPluginV3
    nvinfer1::IPluginCapability *getCapabilityInterface(nvinfer1::PluginCapabilityType type) noexcept override {
        switch (type) {
        case nvinfer1::PluginCapabilityType::kCORE: return static_cast<nvinfer1::IPluginV3OneCore *>(this);
        case nvinfer1::PluginCapabilityType::kBUILD: return static_cast<nvinfer1::IPluginV3OneBuild *>(this);
        case nvinfer1::PluginCapabilityType::kRUNTIME: return static_cast<nvinfer1::IPluginV3OneRuntime *>(this);
        }
        return nullptr;
    }
    nvinfer1::IPluginV3 *clone() noexcept override {
        try {
            return new Plugin(*this);
        } catch (...) {
            log_error(std::string(Op::kName) + ": out of memory while cloning the plugin");
            return nullptr;
        }
    }

    // ---- IPluginV3OneCore
    const char *getPluginName() const noexcept override { return Op::kName; }
    const char *getPluginVersion() const noexcept override { return contract::kPluginVersion; }
    const char *getPluginNamespace() const noexcept override { return contract::kPluginNamespace; }

    // ---- IPluginV3OneBuild
    int32_t getNbOutputs() const noexcept override { return 1; }

    int32_t getOutputDataTypes(nvinfer1::DataType *out, int32_t nb_out, const nvinfer1::DataType *in,
                               int32_t nb_in) const noexcept override {
        if (nb_out != 1 || nb_in != Op::kNbInputs || !is_float(in[0])) return fail("unexpected inputs or outputs");
        out[0] = in[0];
        return 0;
    }

    int32_t getOutputShapes(const nvinfer1::DimsExprs *in, int32_t nb_in, const nvinfer1::DimsExprs *, int32_t,
                            nvinfer1::DimsExprs *out, int32_t nb_out, nvinfer1::IExprBuilder &) noexcept override {
        if (nb_in != Op::kNbInputs || nb_out != 1 || in[0].nbDims != 4)
            return fail("expects " + std::to_string(Op::kNbInputs) + " inputs with a 4-D first input");
        out[0] = in[0];
        return 0;
    }

    bool supportsFormatCombination(int32_t pos, const nvinfer1::DynamicPluginTensorDesc *io, int32_t nb_in,
                                   int32_t nb_out) noexcept override {
        if (nb_in != Op::kNbInputs || nb_out != 1 || pos < 0 || pos >= nb_in + nb_out) return false;
        const nvinfer1::PluginTensorDesc &d = io[pos].desc;
        if (d.format != nvinfer1::TensorFormat::kLINEAR || !is_float(d.type)) return false;
        return pos == 0 || d.type == io[0].desc.type;  // one float type per node
    }

    int32_t configurePlugin(const nvinfer1::DynamicPluginTensorDesc *in, int32_t nb_in,
                            const nvinfer1::DynamicPluginTensorDesc *, int32_t nb_out) noexcept override {
        if (nb_in != Op::kNbInputs || nb_out != 1) return fail("unexpected inputs or outputs");
        std::vector<nvinfer1::Dims> dims;
        for (int32_t i = 0; i < nb_in; ++i) dims.push_back(in[i].desc.dims);  // -1 where dynamic
        return check(dims.data());
    }

    size_t getWorkspaceSize(const nvinfer1::DynamicPluginTensorDesc *in, int32_t nb_in,
                            const nvinfer1::DynamicPluginTensorDesc *, int32_t) const noexcept override {
        if (nb_in != Op::kNbInputs) return 0;
        std::vector<nvinfer1::Dims> dims;
        for (int32_t i = 0; i < nb_in; ++i) dims.push_back(in[i].max);
        return op_.workspace(dims.data());
    }

    // ---- IPluginV3OneRuntime
    int32_t onShapeChange(const nvinfer1::PluginTensorDesc *in, int32_t nb_in, const nvinfer1::PluginTensorDesc *,
                          int32_t nb_out) noexcept override {
        if (nb_in != Op::kNbInputs || nb_out != 1) return fail("unexpected inputs or outputs");
        std::vector<nvinfer1::Dims> dims;
        for (int32_t i = 0; i < nb_in; ++i) dims.push_back(in[i].dims);
        return check(dims.data());
    }

    int32_t enqueue(const nvinfer1::PluginTensorDesc *in, const nvinfer1::PluginTensorDesc *out,
                    const void *const *inputs, void *const *outputs, void *workspace,
                    cudaStream_t stream) noexcept override {
        const cudaError_t status = op_.run(io_type(in[0].type), in, out, inputs, outputs, workspace, stream);
        if (status == cudaSuccess) return 0;
        return fail(std::string("kernel launch failed (") + cudaGetErrorName(status) + ": " +
                    cudaGetErrorString(status) + ") for input " + dims_text(in[0].dims));
    }

    // Each execution context gets its own copy: the plugin holds no device state, so the
    // copy is all that attaching needs.
    nvinfer1::IPluginV3 *attachToContext(nvinfer1::IPluginResourceContext *) noexcept override { return clone(); }

    const nvinfer1::PluginFieldCollection *getFieldsToSerialize() noexcept override { return op_.fields(); }

private:
    int32_t check(const nvinfer1::Dims *dims) const noexcept {
        try {
            const std::string why = op_.check(dims);
            return why.empty() ? 0 : fail(why);
        } catch (...) {
            return fail("out of memory");
        }
    }
    static int32_t fail(const std::string &why) noexcept {
        log_error(std::string(contract::kPluginNamespace) + "::" + Op::kName + ": " + why);
        return 1;
    }

    Op op_;
};

template <class Op>
class Creator final : public nvinfer1::IPluginCreatorV3One {
public:
    Creator() { Op::field_names(names_); }

    nvinfer1::IPluginV3 *createPlugin(const char *, const nvinfer1::PluginFieldCollection *fc,
                                      nvinfer1::TensorRTPhase) noexcept override {
        try {
            std::string why;
            Op op;
            if (!op.read(fc, why)) {
                log_error(std::string(contract::kPluginNamespace) + "::" + Op::kName + ": " + why);
                return nullptr;
            }
            return new Plugin<Op>(op);
        } catch (...) {
            log_error(std::string(Op::kName) + ": out of memory while creating the plugin");
            return nullptr;
        }
    }
    const nvinfer1::PluginFieldCollection *getFieldNames() noexcept override { return &names_.collection; }
    const char *getPluginName() const noexcept override { return Op::kName; }
    const char *getPluginVersion() const noexcept override { return contract::kPluginVersion; }
    const char *getPluginNamespace() const noexcept override { return contract::kPluginNamespace; }

private:
    FieldList names_;
};

}  // namespace hermes_plugins
