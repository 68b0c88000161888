// open_tensorrt() for a libhermes built without TensorRT (cmake/tensorrt.cmake picks
// this file when NvInfer.h, libnvinfer or CUDA were not found, or HERMES_WITH_TENSORRT
// is OFF): loading an engine then says how to get a build that runs it.
#include "backend.hpp"
#include "error.hpp"

namespace hermes {

std::unique_ptr<Backend> open_tensorrt(const std::string &engine_path, const ModelOptions &) {
    fail(HERMES_ERR_UNSUPPORTED, "cannot run engine '" + engine_path +
                                     "': this libhermes was built without TensorRT; rebuild it with "
                                     "-DHERMES_WITH_TENSORRT=ON -DTensorRT_ROOT=<folder with TensorRT's include/ and "
                                     "lib/ (NvInfer.h, libnvinfer)> and the CUDA toolkit, or run the ONNX with the "
                                     "OpenVINO backend");
}

}  // namespace hermes
