// The device side of the plugin kernels, one __device__ function per kernel body: the
// phases of scan_math.hpp / lowpass_math.hpp with __syncthreads where the CPU harness
// separates its phases. scan.cu and lowpass.cu wrap them in the __global__ kernels the
// plugins launch; scripts/gpu_check.py wraps the same functions for NVRTC (CuPy) to run
// them against the numpy references on a GPU without nvcc or TensorRT.
#pragma once

#include "lowpass_math.hpp"
#include "scan_math.hpp"

namespace hermes_plugins {

// scan kernel 1: one block per (chunk, head, batch)
template <class IO>
__device__ inline void scan_state_block(const ScanArgs<IO> &a, float *smem) {
    const BlockPos blk{blockIdx.x, blockIdx.y, blockIdx.z};
    const ScanShared sh = scan_shared(smem, a.d);
    const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
    scan_phase_load(a, blk, tid, nt, sh);
    __syncthreads();
    scan_phase_cumsum(a.d, blk, tid, sh);
    __syncthreads();
    scan_state_phase_weights(a.d, blk, tid, nt, sh);
    __syncthreads();
    scan_state_phase_reduce(a, blk, tid, nt, sh);
}

// scan kernel 2: one thread per (batch, head, state entry)
template <class IO>
__device__ inline void scan_carry_thread(const ScanArgs<IO> &a, int64_t count) {
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < count) scan_carry_element(a, e);
}

// scan kernel 3: one block per (chunk, head, batch)
template <class IO>
__device__ inline void scan_output_block(const ScanArgs<IO> &a, float *smem) {
    const BlockPos blk{blockIdx.x, blockIdx.y, blockIdx.z};
    const ScanShared sh = scan_shared(smem, a.d);
    const int tid = static_cast<int>(threadIdx.x), nt = static_cast<int>(blockDim.x);
    scan_phase_load(a, blk, tid, nt, sh);
    __syncthreads();
    scan_phase_cumsum(a.d, blk, tid, sh);
    __syncthreads();
    scan_output_phase_gram(a, blk, tid, nt, sh);
    __syncthreads();
    scan_output_phase_reduce(a, blk, tid, nt, sh);
}

// the low-pass products, one thread per output element
enum LowpassStage { kLowpassBasis = 0, kLowpassForwardW, kLowpassForwardH, kLowpassInverseH, kLowpassInverseW };

template <class IO>
__device__ inline void lowpass_thread(const LowpassArgs<IO> &a, int stage, int64_t count) {
    const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e >= count) return;
    switch (stage) {
    case kLowpassBasis: lowpass_basis_element(a, e); break;
    case kLowpassForwardW: lowpass_forward_w(a, e); break;
    case kLowpassForwardH: lowpass_forward_h(a, e); break;
    case kLowpassInverseH: lowpass_inverse_h(a, e); break;
    default: lowpass_inverse_w(a, e); break;
    }
}

}  // namespace hermes_plugins
