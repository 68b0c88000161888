// What the kernel math headers share: the __host__ __device__ marker, float16 storage and
// the float32 loads/stores every kernel goes through.
//
// The math of each kernel lives in HERMES_HD functions that take their launch position
// (block index, thread index, block size) as arguments. nvcc compiles them into the
// __global__ kernels of scan.cu / lowpass.cu; a plain C++ compiler compiles the same
// functions for the CPU harness (tests/harness.cpp), which walks the launch grid block by
// block and, inside a block, runs each phase (the code between two __syncthreads) for
// every thread before the next phase starts. So the harness runs the code the GPU runs,
// with the GPU's barrier semantics, and needs neither CUDA nor a GPU.
//
// I/O is float32 or float16; every sum is accumulated in float32 whatever the I/O type.
// Host code stores float16 as HalfBits (IEEE binary16 bits, converted in software with
// round-to-nearest-even, as __float2half_rn does); device code uses CUDA's __half.
#pragma once

#if defined(__CUDACC_RTC__)
// NVRTC (scripts/gpu_check.py compiles the kernels with CuPy): no C++ standard headers,
// and float16 only as HalfBits (the software conversion below runs on the device too)
typedef decltype(sizeof(0)) size_t;
typedef long long int64_t;
typedef int int32_t;
typedef unsigned int uint32_t;
typedef unsigned short uint16_t;
#else
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#endif

#if defined(__CUDACC__)
#define HERMES_HD __host__ __device__
#if !defined(__CUDACC_RTC__)
#include <cuda_fp16.h>
#define HERMES_CUDA_FP16 1
#endif
#else
#define HERMES_HD
#endif

namespace hermes_plugins {

// float16 as its 16 bits: the host-side storage type of half-precision tensors.
struct HalfBits {
    uint16_t bits;
};

HERMES_HD inline uint32_t f32_bits(float f) {
#if defined(__CUDA_ARCH__)
    return __float_as_uint(f);
#else
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
#endif
}

HERMES_HD inline float bits_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
#endif
}

HERMES_HD inline float half_to_f32(uint16_t h) {
    const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13));  // inf, nan
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);  // +-0
        // subnormal: normalize
        int shift = 0;
        while (!(man & 0x400u)) {
            man <<= 1;
            ++shift;
        }
        man &= 0x3ffu;
        return bits_f32(sign | (static_cast<uint32_t>(113 - shift) << 23) | (man << 13));
    }
    return bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

HERMES_HD inline uint16_t f32_to_half(float f) {
    const uint32_t u = f32_bits(f);
    const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
    const uint32_t abs = u & 0x7fffffffu;
    if (abs >= 0x7f800000u)  // inf or nan (nan stays a quiet nan)
        return static_cast<uint16_t>(sign | 0x7c00u | (abs > 0x7f800000u ? 0x200u : 0u));
    if (abs >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds past 65504
    const int32_t exp = static_cast<int32_t>(abs >> 23) - 127;
    uint32_t man = (abs & 0x7fffffu) | 0x800000u;  // with the implicit bit
    if (exp < -25) return sign;                     // below half the smallest subnormal
    // bits to drop: 13 for normals, more for subnormals (exp < -14)
    const int32_t drop = exp < -14 ? 13 + (-14 - exp) : 13;
    const uint32_t kept = man >> drop;
    const uint32_t rest = man & ((1u << drop) - 1u);
    const uint32_t half_way = 1u << (drop - 1);
    uint32_t rounded = kept + ((rest > half_way || (rest == half_way && (kept & 1u))) ? 1u : 0u);
    if (exp < -14) return static_cast<uint16_t>(sign | rounded);  // subnormal (may round up to normal)
    // normal: rounded holds 11 bits (implicit bit included); a carry bumps the exponent
    uint32_t e = static_cast<uint32_t>(exp + 15);
    if (rounded & 0x800u) {
        rounded >>= 1;
        ++e;
    }
    return static_cast<uint16_t>(sign | (e << 10) | (rounded & 0x3ffu));
}

HERMES_HD inline float to_f32(float v) { return v; }
HERMES_HD inline float to_f32(HalfBits v) { return half_to_f32(v.bits); }

template <class T>
struct FromF32;
template <>
struct FromF32<float> {
    HERMES_HD static float make(float v) { return v; }
};
template <>
struct FromF32<HalfBits> {
    HERMES_HD static HalfBits make(float v) { return HalfBits{f32_to_half(v)}; }
};

#if defined(HERMES_CUDA_FP16)
HERMES_HD inline float to_f32(__half v) { return __half2float(v); }
template <>
struct FromF32<__half> {
    HERMES_HD static __half make(float v) { return __float2half_rn(v); }
};
#endif

template <class T>
HERMES_HD inline T from_f32(float v) {
    return FromF32<T>::make(v);
}

HERMES_HD inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
HERMES_HD inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A block's position in its grid (blockIdx), for the phase functions.
struct BlockPos {
    int64_t x, y, z;
};

// Workspace pieces start on 256-byte boundaries (the alignment of cudaMalloc).
constexpr size_t kWorkspaceAlign = 256;
HERMES_HD inline size_t align_up(size_t bytes) { return (bytes + kWorkspaceAlign - 1) / kWorkspaceAlign * kWorkspaceAlign; }

}  // namespace hermes_plugins
