// hermes::SpectralLowpass as a half-spectrum real DFT by matrix products, in
// __host__ __device__ per-element functions.
//
// Contract (contract.hpp): x (b,c,h,w), cutoff (c), sharpness (c) -> low (b,c,h,w) with
// low = irfft2(rfft2(x) * m), m = sigmoid(sharpness * (cutoff - sqrt(2) sqrt(fy^2 + fx^2))),
// fy = |fftfreq(h)|, fx = |fftfreq(w)| (cycles per pixel), the map periodic.
//
// The gate is real and even in each frequency, so for a plane the operator is
//   low[y', x'] = sum_{u<=H/2, v<=W/2} g(u,v) w_u w_v / (H W)
//                 [cos_u(y') cos_u(y) + sin_u(y') sin_u(y)] [cos_v(x') cos_v(x) + sin_v(x') sin_v(x)] x[y, x]
// with cos_u(y) = cos(2 pi u y / H), w_u = 1 for u = 0 and u = H/2, 2 otherwise (bin u
// stands for u and H - u). With the bases Mh = [cos; sin] (2U x H, U = H/2 + 1) and
// Mw = [cos; sin] (2V x W) that is four real matrix products per plane:
//   t1 = x Mw^T (H x 2V),  spec = gate .* (Mh t1) (2U x 2V),  t1 = Mh^T spec,  low = t1 Mw
// - the algebra of ops/spectral.py's portable lowering. The bases are built per call
// from the runtime size (angles reduced modulo the size, in double). Cost O(HW(H+W))
// per plane; float32 accumulation for every I/O type. One thread per output element of
// each product, so each product is one kernel and the harness walks it element by element.
//
// Matrix products rather than cuFFT: the library then needs nothing but the CUDA runtime
// (no libcufft, no per-shape FFT plans held per execution context), the same code runs on
// the CPU harness, and HERMES tiles keep planes small (up to a few hundred pixels a side),
// where O(HW(H+W)) is a few GFLOP per tile. TensorRT's own DFT layer is not in the
// TensorRT 11.1 headers this library is written against.
#pragma once

#include "common.hpp"

namespace hermes_plugins {

constexpr int kLowpassThreads = 256;  // threads per block of every lowpass kernel
constexpr double kTwoPi = 6.283185307179586476925286766559;

struct LowpassDims {
    int64_t b, c, h, w;
    int64_t u, v;  // half-spectrum bins: h / 2 + 1, w / 2 + 1
};

HERMES_HD inline LowpassDims lowpass_dims(int64_t b, int64_t c, int64_t h, int64_t w) {
    return LowpassDims{b, c, h, w, h / 2 + 1, w / 2 + 1};
}

HERMES_HD inline int64_t lowpass_planes(const LowpassDims &d) { return d.b * d.c; }

// element counts of the workspace pieces
HERMES_HD inline size_t lp_bh_count(const LowpassDims &d) { return static_cast<size_t>(2 * d.u * d.h); }
HERMES_HD inline size_t lp_bw_count(const LowpassDims &d) { return static_cast<size_t>(2 * d.v * d.w); }
HERMES_HD inline size_t lp_t1_count(const LowpassDims &d) { return static_cast<size_t>(lowpass_planes(d) * d.h * 2 * d.v); }
HERMES_HD inline size_t lp_spec_count(const LowpassDims &d) {
    return static_cast<size_t>(lowpass_planes(d) * 2 * d.u * 2 * d.v);
}

// Workspace bytes: Mh, Mw, Mw^T, t1 and spec, each aligned.
HERMES_HD inline size_t lowpass_workspace_bytes(const LowpassDims &d) {
    return align_up(lp_bh_count(d) * sizeof(float)) + 2 * align_up(lp_bw_count(d) * sizeof(float)) +
           align_up(lp_t1_count(d) * sizeof(float)) + align_up(lp_spec_count(d) * sizeof(float));
}

template <class IO>
struct LowpassArgs {
    const IO *x, *cutoff, *sharpness;
    IO *y;
    float *bh;    // Mh (2U x H)
    float *bw;    // Mw (2V x W)
    float *bwt;   // Mw^T (W x 2V), for coalesced reads in the first product
    float *t1;    // (planes, H, 2V)
    float *spec;  // (planes, 2U, 2V)
    LowpassDims d;
};

template <class IO>
HERMES_HD inline void lowpass_bind_workspace(LowpassArgs<IO> &a, void *workspace) {
    char *at = static_cast<char *>(workspace);
    a.bh = reinterpret_cast<float *>(at);
    at += align_up(lp_bh_count(a.d) * sizeof(float));
    a.bw = reinterpret_cast<float *>(at);
    at += align_up(lp_bw_count(a.d) * sizeof(float));
    a.bwt = reinterpret_cast<float *>(at);
    at += align_up(lp_bw_count(a.d) * sizeof(float));
    a.t1 = reinterpret_cast<float *>(at);
    at += align_up(lp_t1_count(a.d) * sizeof(float));
    a.spec = reinterpret_cast<float *>(at);
}

// [cos; sin] basis entry (row r of 2 * bins rows, column y) of a length-n real DFT
HERMES_HD inline float dft_basis(int64_t r, int64_t y, int64_t bins, int64_t n) {
    const int64_t u = r < bins ? r : r - bins;
    const double angle = kTwoPi * static_cast<double>((u * y) % n) / static_cast<double>(n);
    return static_cast<float>(r < bins ? cos(angle) : sin(angle));
}

// Hermitian weight of half-spectrum bin u of a length-n transform
HERMES_HD inline float bin_weight(int64_t u, int64_t n) { return (u == 0 || 2 * u == n) ? 1.0f : 2.0f; }

// The radial gate of bin (u, v): sigmoid(sharpness (cutoff - sqrt(2) sqrt(fy^2 + fx^2)))
HERMES_HD inline float lowpass_gate(const LowpassDims &d, int64_t u, int64_t v, float cutoff, float sharpness) {
    const float fy = static_cast<float>(u) / static_cast<float>(d.h);
    const float fx = static_cast<float>(v) / static_cast<float>(d.w);
    const float r = 1.41421356237309515f * sqrtf(fy * fy + fx * fx);
    float z = sharpness * (cutoff - r);
    z = z > 80.0f ? 80.0f : (z < -80.0f ? -80.0f : z);  // exp stays finite
    return 1.0f / (1.0f + expf(-z));
}

// ---- kernel 0: the bases, one thread per entry of Mh, Mw and Mw^T

HERMES_HD inline size_t lowpass_basis_count(const LowpassDims &d) { return lp_bh_count(d) + 2 * lp_bw_count(d); }

template <class IO>
HERMES_HD inline void lowpass_basis_element(const LowpassArgs<IO> &a, int64_t e) {
    const LowpassDims &d = a.d;
    const int64_t nh = static_cast<int64_t>(lp_bh_count(d)), nw = static_cast<int64_t>(lp_bw_count(d));
    if (e < nh) {
        a.bh[e] = dft_basis(e / d.h, e % d.h, d.u, d.h);
    } else if (e < nh + nw) {
        const int64_t i = e - nh;
        a.bw[i] = dft_basis(i / d.w, i % d.w, d.v, d.w);
    } else {
        const int64_t i = e - nh - nw, x = i / (2 * d.v), q = i % (2 * d.v);
        a.bwt[i] = dft_basis(q, x, d.v, d.w);
    }
}

// ---- kernel 1: t1[p][y][q] = sum_x x[p][y][x] Mw[q][x]

HERMES_HD inline size_t lowpass_t1_count(const LowpassDims &d) { return lp_t1_count(d); }

template <class IO>
HERMES_HD inline void lowpass_forward_w(const LowpassArgs<IO> &a, int64_t e) {
    const LowpassDims &d = a.d;
    const int64_t q2 = 2 * d.v, q = e % q2, row = e / q2;  // row = p * H + y
    const IO *xr = a.x + row * d.w;
    float acc = 0.0f;
    for (int64_t x = 0; x < d.w; ++x) acc += to_f32(xr[x]) * a.bwt[x * q2 + q];
    a.t1[e] = acc;
}

// ---- kernel 2: spec[p][r][q] = gate w_u w_v / (HW) * sum_y Mh[r][y] t1[p][y][q]

HERMES_HD inline size_t lowpass_spec_count(const LowpassDims &d) { return lp_spec_count(d); }

template <class IO>
HERMES_HD inline void lowpass_forward_h(const LowpassArgs<IO> &a, int64_t e) {
    const LowpassDims &d = a.d;
    const int64_t q2 = 2 * d.v, r2 = 2 * d.u;
    const int64_t q = e % q2, r = (e / q2) % r2, p = e / (q2 * r2), ch = p % d.c;
    const float *t1 = a.t1 + p * d.h * q2;
    const float *mh = a.bh + r * d.h;
    float acc = 0.0f;
    for (int64_t y = 0; y < d.h; ++y) acc += mh[y] * t1[y * q2 + q];
    const int64_t u = r % d.u, v = q % d.v;
    const float gate = lowpass_gate(d, u, v, to_f32(a.cutoff[ch]), to_f32(a.sharpness[ch]));
    const float weight = bin_weight(u, d.h) * bin_weight(v, d.w) / (static_cast<float>(d.h) * static_cast<float>(d.w));
    a.spec[e] = acc * gate * weight;
}

// ---- kernel 3: t1[p][y][q] = sum_r Mh[r][y] spec[p][r][q] (t1 of kernel 1 is no longer needed)

template <class IO>
HERMES_HD inline void lowpass_inverse_h(const LowpassArgs<IO> &a, int64_t e) {
    const LowpassDims &d = a.d;
    const int64_t q2 = 2 * d.v, r2 = 2 * d.u;
    const int64_t q = e % q2, y = (e / q2) % d.h, p = e / (q2 * d.h);
    const float *spec = a.spec + p * r2 * q2;
    float acc = 0.0f;
    for (int64_t r = 0; r < r2; ++r) acc += a.bh[r * d.h + y] * spec[r * q2 + q];
    a.t1[e] = acc;
}

// ---- kernel 4: low[p][y][x] = sum_q t1[p][y][q] Mw[q][x]

HERMES_HD inline size_t lowpass_out_count(const LowpassDims &d) {
    return static_cast<size_t>(lowpass_planes(d) * d.h * d.w);
}

template <class IO>
HERMES_HD inline void lowpass_inverse_w(const LowpassArgs<IO> &a, int64_t e) {
    const LowpassDims &d = a.d;
    const int64_t q2 = 2 * d.v, x = e % d.w, row = e / d.w;  // row = p * H + y
    const float *t1 = a.t1 + row * q2;
    float acc = 0.0f;
    for (int64_t q = 0; q < q2; ++q) acc += t1[q] * a.bw[q * d.w + x];
    a.y[e] = from_f32<IO>(acc);
}

}  // namespace hermes_plugins
