// Host entry points of the plugin kernels (defined in scan.cu and lowpass.cu): they bind
// the workspace, pick the float32 or float16 instantiation and enqueue the kernels on
// `stream`. They return the first CUDA error of the launches (cudaSuccess otherwise);
// an empty tensor launches nothing.
#pragma once

#include <cuda_runtime_api.h>

#include "lowpass_math.hpp"
#include "scan_math.hpp"

namespace hermes_plugins {

enum class IoType { kFloat32, kFloat16 };

struct ScanBuffers {
    const void *x, *dt, *A, *B, *C;
    void *y;
};

struct LowpassBuffers {
    const void *x, *cutoff, *sharpness;
    void *low;
};

cudaError_t launch_selective_scan(IoType type, const ScanBuffers &io, const ScanDims &dims, void *workspace,
                                  cudaStream_t stream);
cudaError_t launch_spectral_lowpass(IoType type, const LowpassBuffers &io, const LowpassDims &dims,
                                    void *workspace, cudaStream_t stream);

}  // namespace hermes_plugins
