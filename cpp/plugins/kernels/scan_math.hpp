// hermes::SelectiveScan as a chunked SSD (the "state space duality" form of Mamba-2:
// Dao & Gu, "Transformers are SSMs", 2024), in __host__ __device__ phase functions.
//
// Contract (contract.hpp): x (b,l,h,p), dt (b,l,h), A (h), B (b,l,g,n), C (b,l,g,n) ->
// y (b,l,h,p), head hh reading group hh / (h / g). Per head, with state s (n x p, zero at
// t = 0):  s_t = exp(dt_t A) s_{t-1} + dt_t B_t^T x_t,  y_t = C_t s_t.
//
// The sequence is cut into K = ceil(l / T) chunks of T steps (T = the node's chunk
// attribute, at most kMaxChunk; the last chunk may be shorter). With a_t the running sum
// of dt A inside a chunk (a_t <= 0, non-increasing), three kernels:
//
//  1. chunk state (grid K x h x b, one block per chunk and head): the state the chunk's
//     own inputs leave at its end, S_k = sum_t exp(a_last - a_t) dt_t B_t^T x_t (n x p),
//     and the chunk's total log-decay a_last;
//  2. carry (one thread per (batch, head, state entry)): the state entering each chunk,
//     in place, by the inter-chunk recurrence  in_{k+1} = exp(a_last,k) in_k + S_k;
//  3. chunk output (grid K x h x b): the intra-chunk matrix products
//     y_t = sum_{s<=t} (C_t . B_s) exp(a_t - a_s) dt_s x_s  +  exp(a_t) C_t in_k.
//
// Every exp argument is <= 0, so nothing overflows in float32. Work is O(l T (n + p))
// per head instead of one thread walking l steps; the sequential part (kernel 2) walks K
// chunks, not l steps. Workspace: the chunk states (b K h n p floats) and the chunk
// decays (b K h floats), see scan_workspace_bytes().
#pragma once

#include "common.hpp"

namespace hermes_plugins {

constexpr int64_t kMaxChunk = 64;   // shared memory: (3 + T) T floats per block (17 KiB at 64)
constexpr int kScanThreads = 128;   // threads per block of kernels 1 and 3
constexpr int kCarryThreads = 256;  // threads per block of kernel 2

struct ScanDims {
    int64_t b, l, h, p, g, n;
    int64_t chunk;   // T: steps per chunk
    int64_t chunks;  // K
};

// The chunk attribute changes cost, not the result: it is clamped to [1, kMaxChunk].
HERMES_HD inline ScanDims scan_dims(int64_t b, int64_t l, int64_t h, int64_t p, int64_t g, int64_t n,
                                    int64_t chunk_attr) {
    const int64_t t = chunk_attr < 1 ? 1 : (chunk_attr > kMaxChunk ? kMaxChunk : chunk_attr);
    return ScanDims{b, l, h, p, g, n, t, l > 0 ? ceil_div(l, t) : 0};
}

HERMES_HD inline size_t scan_states_count(const ScanDims &d) {
    return static_cast<size_t>(d.b * d.chunks * d.h * d.n * d.p);
}
HERMES_HD inline size_t scan_totals_count(const ScanDims &d) { return static_cast<size_t>(d.b * d.chunks * d.h); }

// Workspace bytes of one call: the chunk states, then the chunk decays (aligned pieces).
HERMES_HD inline size_t scan_workspace_bytes(const ScanDims &d) {
    return align_up(scan_states_count(d) * sizeof(float)) + align_up(scan_totals_count(d) * sizeof(float));
}

// Shared memory of kernels 1 and 3: cum[T], dts[T], wgt[T], gram[T*T] floats.
HERMES_HD inline size_t scan_shared_bytes(const ScanDims &d) {
    return static_cast<size_t>((3 + d.chunk) * d.chunk) * sizeof(float);
}

template <class IO>
struct ScanArgs {
    const IO *x, *dt, *A, *B, *C;
    IO *y;
    float *states;  // (b, K, h, n, p)
    float *totals;  // (b, K, h)
    ScanDims d;
};

// The workspace carved as scan_workspace_bytes() sized it.
template <class IO>
HERMES_HD inline void scan_bind_workspace(ScanArgs<IO> &a, void *workspace) {
    char *base = static_cast<char *>(workspace);
    a.states = reinterpret_cast<float *>(base);
    a.totals = reinterpret_cast<float *>(base + align_up(scan_states_count(a.d) * sizeof(float)));
}

struct ScanShared {  // views into one block's shared memory
    float *cum, *dts, *wgt, *gram;
};

HERMES_HD inline ScanShared scan_shared(float *smem, const ScanDims &d) {
    return ScanShared{smem, smem + d.chunk, smem + 2 * d.chunk, smem + 3 * d.chunk};
}

HERMES_HD inline int64_t chunk_len(const ScanDims &d, int64_t k) { return min_i64(d.chunk, d.l - k * d.chunk); }

// ---- phases shared by kernels 1 and 3 (block = chunk k, head hh, batch bb)

// phase A: dts[t] = dt_t and cum[t] = dt_t * A_h, one step per thread
template <class IO>
HERMES_HD inline void scan_phase_load(const ScanArgs<IO> &a, BlockPos blk, int tid, int nthreads, ScanShared sh) {
    const ScanDims &d = a.d;
    const int64_t k = blk.x, hh = blk.y, bb = blk.z, len = chunk_len(d, k);
    const float A_h = to_f32(a.A[hh]);
    for (int64_t t = tid; t < len; t += nthreads) {
        const float dt = to_f32(a.dt[(bb * d.l + k * d.chunk + t) * d.h + hh]);
        sh.dts[t] = dt;
        sh.cum[t] = dt * A_h;
    }
}

// phase B: the running log-decay inside the chunk (T <= kMaxChunk additions, one thread)
HERMES_HD inline void scan_phase_cumsum(const ScanDims &d, BlockPos blk, int tid, ScanShared sh) {
    if (tid != 0) return;
    const int64_t len = chunk_len(d, blk.x);
    float run = 0.0f;
    for (int64_t t = 0; t < len; ++t) {
        run += sh.cum[t];
        sh.cum[t] = run;
    }
}

// ---- kernel 1: chunk states

// phase C: wgt[t] = exp(a_last - a_t) dt_t, the weight of step t in the chunk-final state
HERMES_HD inline void scan_state_phase_weights(const ScanDims &d, BlockPos blk, int tid, int nthreads, ScanShared sh) {
    const int64_t len = chunk_len(d, blk.x);
    const float last = sh.cum[len - 1];
    for (int64_t t = tid; t < len; t += nthreads) sh.wgt[t] = expf(last - sh.cum[t]) * sh.dts[t];
}

// phase D: S_k[i][j] = sum_t wgt[t] B_t[i] x_t[j]; thread 0 also stores a_last
template <class IO>
HERMES_HD inline void scan_state_phase_reduce(const ScanArgs<IO> &a, BlockPos blk, int tid, int nthreads,
                                              ScanShared sh) {
    const ScanDims &d = a.d;
    const int64_t k = blk.x, hh = blk.y, bb = blk.z, len = chunk_len(d, k);
    const int64_t gi = hh / (d.h / d.g), t0 = k * d.chunk;
    float *out = a.states + ((bb * d.chunks + k) * d.h + hh) * d.n * d.p;
    for (int64_t e = tid; e < d.n * d.p; e += nthreads) {
        const int64_t i = e / d.p, j = e % d.p;
        float acc = 0.0f;
        for (int64_t t = 0; t < len; ++t) {
            const int64_t row = bb * d.l + t0 + t;
            acc += sh.wgt[t] * to_f32(a.B[(row * d.g + gi) * d.n + i]) * to_f32(a.x[(row * d.h + hh) * d.p + j]);
        }
        out[e] = acc;
    }
    if (tid == 0) a.totals[(bb * d.chunks + k) * d.h + hh] = sh.cum[len - 1];
}

// ---- kernel 2: carry across chunks, one thread per (batch, head, state entry)

HERMES_HD inline size_t scan_carry_count(const ScanDims &d) { return static_cast<size_t>(d.b * d.h * d.n * d.p); }

template <class IO>
HERMES_HD inline void scan_carry_element(const ScanArgs<IO> &a, int64_t e) {
    const ScanDims &d = a.d;
    const int64_t np = d.n * d.p, bh = e / np, r = e % np, bb = bh / d.h, hh = bh % d.h;
    float run = 0.0f;  // the state entering chunk k (zero before the first)
    for (int64_t k = 0; k < d.chunks; ++k) {
        const int64_t at = (bb * d.chunks + k) * d.h + hh;
        float *slot = a.states + at * np + r;
        const float own = *slot;
        *slot = run;
        run = expf(a.totals[at]) * run + own;
    }
}

// ---- kernel 3: chunk outputs

// phase C: gram[t][s] = (C_t . B_s) exp(a_t - a_s) dt_s for s <= t, else 0
template <class IO>
HERMES_HD inline void scan_output_phase_gram(const ScanArgs<IO> &a, BlockPos blk, int tid, int nthreads,
                                             ScanShared sh) {
    const ScanDims &d = a.d;
    const int64_t k = blk.x, hh = blk.y, bb = blk.z, len = chunk_len(d, k), T = d.chunk;
    const int64_t gi = hh / (d.h / d.g), t0 = k * d.chunk;
    for (int64_t e = tid; e < len * len; e += nthreads) {
        const int64_t t = e / len, s = e % len;
        float v = 0.0f;
        if (s <= t) {
            const IO *ct = a.C + ((bb * d.l + t0 + t) * d.g + gi) * d.n;
            const IO *bs = a.B + ((bb * d.l + t0 + s) * d.g + gi) * d.n;
            float dot = 0.0f;
            for (int64_t i = 0; i < d.n; ++i) dot += to_f32(ct[i]) * to_f32(bs[i]);
            v = dot * expf(sh.cum[t] - sh.cum[s]) * sh.dts[s];
        }
        sh.gram[t * T + s] = v;
    }
}

// phase D: y_t[j] = sum_{s<=t} gram[t][s] x_s[j] + exp(a_t) sum_i C_t[i] in_k[i][j]
template <class IO>
HERMES_HD inline void scan_output_phase_reduce(const ScanArgs<IO> &a, BlockPos blk, int tid, int nthreads,
                                               ScanShared sh) {
    const ScanDims &d = a.d;
    const int64_t k = blk.x, hh = blk.y, bb = blk.z, len = chunk_len(d, k), T = d.chunk;
    const int64_t gi = hh / (d.h / d.g), t0 = k * d.chunk;
    const float *in = a.states + ((bb * d.chunks + k) * d.h + hh) * d.n * d.p;
    for (int64_t e = tid; e < len * d.p; e += nthreads) {
        const int64_t t = e / d.p, j = e % d.p;
        float acc = 0.0f;
        for (int64_t s = 0; s <= t; ++s)
            acc += sh.gram[t * T + s] * to_f32(a.x[((bb * d.l + t0 + s) * d.h + hh) * d.p + j]);
        const IO *ct = a.C + ((bb * d.l + t0 + t) * d.g + gi) * d.n;
        float carried = 0.0f;
        for (int64_t i = 0; i < d.n; ++i) carried += to_f32(ct[i]) * in[i * d.p + j];
        acc += expf(sh.cum[t]) * carried;
        a.y[((bb * d.l + t0 + t) * d.h + hh) * d.p + j] = from_f32<IO>(acc);
    }
}

}  // namespace hermes_plugins
