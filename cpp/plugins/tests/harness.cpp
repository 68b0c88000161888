// CPU harness of the plugin kernels: runs the __host__ __device__ math of
// kernels/scan_math.hpp and kernels/lowpass_math.hpp by walking the launch grids the
// CUDA kernels use (kernels/launch_grids.hpp) - block by block, and inside a block each
// phase for every thread before the next phase (the __syncthreads semantics). Plain C++:
// no CUDA, no GPU, no TensorRT.
//
//   hermes_plugin_harness scan    f32|f16 B L H P G N CHUNK DIR   DIR/{x,dt,A,B,C}.bin -> DIR/y.bin
//   hermes_plugin_harness lowpass f32|f16 B C H W DIR             DIR/{x,cutoff,sharpness}.bin -> DIR/low.bin
//   hermes_plugin_harness half    N DIR                           DIR/f32.bin -> DIR/f16.bin
//
// Files are raw little-endian arrays of the I/O type (float32, or float16 bits). The
// workspace is allocated with exactly the size the plugins ask TensorRT for and filled
// with NaN, shared memory is filled with NaN before every block: an undersized workspace
// shows up under AddressSanitizer, a read of something never written shows up as NaN.
// tests/cpp/test_plugins.py compares the outputs with the float64 numpy references.
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "../kernels/launch_grids.hpp"
#include "../kernels/lowpass_math.hpp"
#include "../kernels/scan_math.hpp"

using namespace hermes_plugins;

namespace {

const float kNaN = std::numeric_limits<float>::quiet_NaN();

template <class T>
std::unique_ptr<T[]> read_array(const std::string &path, size_t count) {
    std::unique_ptr<T[]> data(new T[count > 0 ? count : 1]);
    FILE *f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    const size_t got = std::fread(data.get(), sizeof(T), count, f);
    std::fclose(f);
    if (got != count) throw std::runtime_error(path + ": expected " + std::to_string(count) + " values");
    return data;
}

template <class T>
void write_array(const std::string &path, const T *data, size_t count) {
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot write " + path);
    const size_t put = std::fwrite(data, sizeof(T), count, f);
    std::fclose(f);
    if (put != count) throw std::runtime_error("short write to " + path);
}

// Exactly `bytes` of workspace (no slack, so AddressSanitizer sees any overrun), NaN-filled.
std::unique_ptr<float[]> workspace(size_t bytes) {
    const size_t count = bytes / sizeof(float);
    std::unique_ptr<float[]> ws(new float[count > 0 ? count : 1]);
    for (size_t i = 0; i < count; ++i) ws[i] = kNaN;
    return ws;
}

// A 1-D launch: every thread of every block, the out-of-range ones return early as on the GPU.
template <class F>
void walk_1d(size_t count, int threads, F &&element) {
    const Grid grid = grid_1d(count, threads);
    for (int64_t block = 0; block < grid.x; ++block)
        for (int tid = 0; tid < threads; ++tid) {
            const int64_t e = block * threads + tid;
            if (e < static_cast<int64_t>(count)) element(e);
        }
}

template <class IO>
void run_scan(ScanArgs<IO> a) {
    const ScanDims &d = a.d;
    std::unique_ptr<float[]> ws = workspace(scan_workspace_bytes(d));
    scan_bind_workspace(a, ws.get());
    std::vector<float> smem(scan_shared_bytes(d) / sizeof(float));
    const Grid chunks = scan_chunk_grid(d);

    const auto each_thread = [](auto &&phase) {
        for (int tid = 0; tid < kScanThreads; ++tid) phase(tid);
    };
    // kernel 1: chunk states
    for (int64_t z = 0; z < chunks.z; ++z)
        for (int64_t y = 0; y < chunks.y; ++y)
            for (int64_t x = 0; x < chunks.x; ++x) {
                const BlockPos blk{x, y, z};
                for (float &v : smem) v = kNaN;
                const ScanShared sh = scan_shared(smem.data(), d);
                each_thread([&](int tid) { scan_phase_load(a, blk, tid, kScanThreads, sh); });
                each_thread([&](int tid) { scan_phase_cumsum(d, blk, tid, sh); });
                each_thread([&](int tid) { scan_state_phase_weights(d, blk, tid, kScanThreads, sh); });
                each_thread([&](int tid) { scan_state_phase_reduce(a, blk, tid, kScanThreads, sh); });
            }
    // kernel 2: carry
    walk_1d(scan_carry_count(d), kCarryThreads, [&](int64_t e) { scan_carry_element(a, e); });
    // kernel 3: chunk outputs
    for (int64_t z = 0; z < chunks.z; ++z)
        for (int64_t y = 0; y < chunks.y; ++y)
            for (int64_t x = 0; x < chunks.x; ++x) {
                const BlockPos blk{x, y, z};
                for (float &v : smem) v = kNaN;
                const ScanShared sh = scan_shared(smem.data(), d);
                each_thread([&](int tid) { scan_phase_load(a, blk, tid, kScanThreads, sh); });
                each_thread([&](int tid) { scan_phase_cumsum(d, blk, tid, sh); });
                each_thread([&](int tid) { scan_output_phase_gram(a, blk, tid, kScanThreads, sh); });
                each_thread([&](int tid) { scan_output_phase_reduce(a, blk, tid, kScanThreads, sh); });
            }
}

template <class IO>
void run_lowpass(LowpassArgs<IO> a) {
    const LowpassDims &d = a.d;
    std::unique_ptr<float[]> ws = workspace(lowpass_workspace_bytes(d));
    lowpass_bind_workspace(a, ws.get());
    walk_1d(lowpass_basis_count(d), kLowpassThreads, [&](int64_t e) { lowpass_basis_element(a, e); });
    walk_1d(lowpass_t1_count(d), kLowpassThreads, [&](int64_t e) { lowpass_forward_w(a, e); });
    walk_1d(lowpass_spec_count(d), kLowpassThreads, [&](int64_t e) { lowpass_forward_h(a, e); });
    walk_1d(lowpass_t1_count(d), kLowpassThreads, [&](int64_t e) { lowpass_inverse_h(a, e); });
    walk_1d(lowpass_out_count(d), kLowpassThreads, [&](int64_t e) { lowpass_inverse_w(a, e); });
}

int64_t arg_int(char **argv, int i) { return std::stoll(argv[i]); }

template <class IO>
void scan_command(char **argv) {
    const int64_t b = arg_int(argv, 3), l = arg_int(argv, 4), h = arg_int(argv, 5), p = arg_int(argv, 6),
                  g = arg_int(argv, 7), n = arg_int(argv, 8), chunk = arg_int(argv, 9);
    const std::string dir = argv[10];
    if (g < 1 || h % g) throw std::runtime_error("heads must be a multiple of groups");
    const size_t nx = static_cast<size_t>(b * l * h * p), nb = static_cast<size_t>(b * l * g * n);
    auto x = read_array<IO>(dir + "/x.bin", nx);
    auto dt = read_array<IO>(dir + "/dt.bin", static_cast<size_t>(b * l * h));
    auto A = read_array<IO>(dir + "/A.bin", static_cast<size_t>(h));
    auto B = read_array<IO>(dir + "/B.bin", nb);
    auto C = read_array<IO>(dir + "/C.bin", nb);
    std::unique_ptr<IO[]> y(new IO[nx > 0 ? nx : 1]);
    ScanArgs<IO> a{};
    a.x = x.get(), a.dt = dt.get(), a.A = A.get(), a.B = B.get(), a.C = C.get(), a.y = y.get();
    a.d = scan_dims(b, l, h, p, g, n, chunk);
    run_scan(a);
    write_array(dir + "/y.bin", y.get(), nx);
    std::printf("{\"chunk\": %lld, \"chunks\": %lld, \"workspace_bytes\": %zu}\n", static_cast<long long>(a.d.chunk),
                static_cast<long long>(a.d.chunks), scan_workspace_bytes(a.d));
}

template <class IO>
void lowpass_command(char **argv) {
    const int64_t b = arg_int(argv, 3), c = arg_int(argv, 4), h = arg_int(argv, 5), w = arg_int(argv, 6);
    const std::string dir = argv[7];
    const size_t nx = static_cast<size_t>(b * c * h * w);
    auto x = read_array<IO>(dir + "/x.bin", nx);
    auto cut = read_array<IO>(dir + "/cutoff.bin", static_cast<size_t>(c));
    auto sharp = read_array<IO>(dir + "/sharpness.bin", static_cast<size_t>(c));
    std::unique_ptr<IO[]> y(new IO[nx > 0 ? nx : 1]);
    LowpassArgs<IO> a{};
    a.x = x.get(), a.cutoff = cut.get(), a.sharpness = sharp.get(), a.y = y.get();
    a.d = lowpass_dims(b, c, h, w);
    run_lowpass(a);
    write_array(dir + "/low.bin", y.get(), nx);
    std::printf("{\"workspace_bytes\": %zu}\n", lowpass_workspace_bytes(a.d));
}

void half_command(char **argv) {
    const size_t n = static_cast<size_t>(arg_int(argv, 2));
    const std::string dir = argv[3];
    auto f = read_array<float>(dir + "/f32.bin", n);
    std::vector<HalfBits> h(n);
    std::vector<float> back(n);
    for (size_t i = 0; i < n; ++i) {
        h[i] = from_f32<HalfBits>(f[i]);
        back[i] = to_f32(h[i]);
    }
    write_array(dir + "/f16.bin", h.data(), n);
    write_array(dir + "/back.bin", back.data(), n);
}

int usage() {
    std::fprintf(stderr,
                 "usage: hermes_plugin_harness scan f32|f16 B L H P G N CHUNK DIR\n"
                 "       hermes_plugin_harness lowpass f32|f16 B C H W DIR\n"
                 "       hermes_plugin_harness half N DIR\n");
    return 2;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        const std::string cmd = argc > 1 ? argv[1] : "";
        const std::string type = argc > 2 ? argv[2] : "";
        const bool half = type == "f16";
        if (cmd == "scan" && argc == 11 && (half || type == "f32")) {
            half ? scan_command<HalfBits>(argv) : scan_command<float>(argv);
        } else if (cmd == "lowpass" && argc == 8 && (half || type == "f32")) {
            half ? lowpass_command<HalfBits>(argv) : lowpass_command<float>(argv);
        } else if (cmd == "half" && argc == 4) {
            half_command(argv);
        } else {
            return usage();
        }
    } catch (const std::exception &e) {
        std::fprintf(stderr, "hermes_plugin_harness: %s\n", e.what());
        return 1;
    }
    return 0;
}
