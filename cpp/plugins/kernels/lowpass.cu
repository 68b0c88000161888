// CUDA kernels of hermes::SpectralLowpass: one __global__ kernel (device_blocks.cuh's
// lowpass_thread) launched once per matrix product of lowpass_math.hpp, one thread per
// output element (the grid the CPU harness walks).
#include "device_blocks.cuh"
#include "launch.hpp"
#include "launch_grids.hpp"

namespace hermes_plugins {

namespace {

template <class IO>
__global__ void __launch_bounds__(kLowpassThreads) lowpass_kernel(LowpassArgs<IO> a, int stage, int64_t count) {
    lowpass_thread(a, stage, count);
}

template <class IO>
bool enqueue(const LowpassArgs<IO> &a, int stage, size_t count, cudaStream_t stream) {
    const Grid grid = grid_1d(count, kLowpassThreads);
    if (!grid_fits(grid)) return false;
    if (count > 0)
        lowpass_kernel<IO><<<static_cast<unsigned>(grid.x), kLowpassThreads, 0, stream>>>(
            a, stage, static_cast<int64_t>(count));
    return true;
}

template <class IO>
cudaError_t launch(const LowpassBuffers &io, const LowpassDims &d, void *workspace, cudaStream_t stream) {
    if (lowpass_out_count(d) == 0) return cudaSuccess;
    LowpassArgs<IO> a{};
    a.x = static_cast<const IO *>(io.x);
    a.cutoff = static_cast<const IO *>(io.cutoff);
    a.sharpness = static_cast<const IO *>(io.sharpness);
    a.y = static_cast<IO *>(io.low);
    a.d = d;
    lowpass_bind_workspace(a, workspace);
    const bool ok = enqueue(a, kLowpassBasis, lowpass_basis_count(d), stream) &&
                    enqueue(a, kLowpassForwardW, lowpass_t1_count(d), stream) &&
                    enqueue(a, kLowpassForwardH, lowpass_spec_count(d), stream) &&
                    enqueue(a, kLowpassInverseH, lowpass_t1_count(d), stream) &&
                    enqueue(a, kLowpassInverseW, lowpass_out_count(d), stream);
    return ok ? cudaGetLastError() : cudaErrorInvalidConfiguration;
}

}  // namespace

cudaError_t launch_spectral_lowpass(IoType type, const LowpassBuffers &io, const LowpassDims &dims,
                                    void *workspace, cudaStream_t stream) {
    return type == IoType::kFloat16 ? launch<__half>(io, dims, workspace, stream)
                                    : launch<float>(io, dims, workspace, stream);
}

}  // namespace hermes_plugins
