// CUDA kernels of hermes::SelectiveScan: __global__ wrappers around the block bodies of
// device_blocks.cuh (the phases of scan_math.hpp, separated by __syncthreads exactly where
// the CPU harness, tests/harness.cpp, separates its phases), and their launch.
#include "device_blocks.cuh"
#include "launch.hpp"
#include "launch_grids.hpp"

namespace hermes_plugins {

namespace {

template <class IO>
__global__ void __launch_bounds__(kScanThreads) scan_state_kernel(ScanArgs<IO> a) {
    extern __shared__ float smem[];
    scan_state_block(a, smem);
}

template <class IO>
__global__ void __launch_bounds__(kCarryThreads) scan_carry_kernel(ScanArgs<IO> a, int64_t count) {
    scan_carry_thread(a, count);
}

template <class IO>
__global__ void __launch_bounds__(kScanThreads) scan_output_kernel(ScanArgs<IO> a) {
    extern __shared__ float smem[];
    scan_output_block(a, smem);
}

template <class IO>
cudaError_t launch(const ScanBuffers &io, const ScanDims &d, void *workspace, cudaStream_t stream) {
    if (d.b == 0 || d.l == 0 || d.h == 0 || d.p == 0) return cudaSuccess;
    ScanArgs<IO> a{};
    a.x = static_cast<const IO *>(io.x);
    a.dt = static_cast<const IO *>(io.dt);
    a.A = static_cast<const IO *>(io.A);
    a.B = static_cast<const IO *>(io.B);
    a.C = static_cast<const IO *>(io.C);
    a.y = static_cast<IO *>(io.y);
    a.d = d;
    scan_bind_workspace(a, workspace);
    const Grid chunks = scan_chunk_grid(d);
    const size_t carry = scan_carry_count(d);
    const Grid carry_grid = grid_1d(carry, kCarryThreads);
    if (!grid_fits(chunks) || !grid_fits(carry_grid)) return cudaErrorInvalidConfiguration;
    const dim3 grid(static_cast<unsigned>(chunks.x), static_cast<unsigned>(chunks.y), static_cast<unsigned>(chunks.z));
    const size_t shared = scan_shared_bytes(d);
    scan_state_kernel<IO><<<grid, kScanThreads, shared, stream>>>(a);
    if (carry > 0)
        scan_carry_kernel<IO><<<static_cast<unsigned>(carry_grid.x), kCarryThreads, 0, stream>>>(
            a, static_cast<int64_t>(carry));
    scan_output_kernel<IO><<<grid, kScanThreads, shared, stream>>>(a);
    return cudaGetLastError();
}

}  // namespace

cudaError_t launch_selective_scan(IoType type, const ScanBuffers &io, const ScanDims &dims, void *workspace,
                                  cudaStream_t stream) {
    return type == IoType::kFloat16 ? launch<__half>(io, dims, workspace, stream)
                                    : launch<float>(io, dims, workspace, stream);
}

}  // namespace hermes_plugins
