"""GPU check: plugin kernels vs torch, torch CUDA parity, TensorRT engines vs onnxruntime.

Run on a CUDA machine from the repository root::

    python scripts/gpu_check.py [--tile 64] [--skip-engines] [--plugins libhermes_trt_plugins.so]

Prints one table (check, backend, shape, max abs error, limit, result) and exits 1 when
a check fails. Every check that cannot run (no triton, no tensorrt / tensorrt_rtx, no
GPU) is listed as SKIP with the reason. Sized to finish well under 5 minutes: small
kernel shapes, the bundled tiny x2 model, one exported graph at one tile, builds at
optimization level 0 (tensorrt_rtx targets the local GPU's architecture).

Engine rows: TensorRT-RTX builds the portable graph (the plugin graph is refused by
TensorRT-RTX, see ``engines/trt/plugins``); full TensorRT, where importable, builds the
portable graph and the ``tensorrt``-target graph with the AOT plugins.

C++/CUDA plugin library (``cpp/plugins/``): its kernels are compiled here with NVRTC
(CuPy ``RawModule``; no nvcc needed) from the same ``__host__ __device__`` sources the
library and the CPU harness use (``kernels/device_blocks.cuh``), run on the GPU and
compared with the float64 numpy references (float32 and float16 I/O), and timed at a
65,536-step scan and a 48-channel 256x256 low-pass. With full TensorRT and ``--plugins``
(the library built from cpp/plugins), the ``tensorrt``-target graph is built with the
library and compared with onnxruntime on the portable graph (PSNR >= 50 dB), and timed
against the portable graph's engine.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROWS: list[tuple[str, str, str, str, str, str]] = []


def row(check: str, backend: str, shape: str, err: float | None, limit: float | None,
        note: str = "") -> None:
    if err is None:
        ROWS.append((check, backend, shape, "-", "-", f"SKIP {note}".strip()))
        return
    ok = bool(np.isfinite(err) and err <= limit)
    ROWS.append((check, backend, shape, f"{err:.2e}", f"{limit:.0e}",
                 ("PASS" if ok else "FAIL") + (f" {note}" if note else "")))


def guarded(check: str, backend: str, fn) -> None:
    try:
        fn()
    except Exception as exc:  # one failing check must not hide the others
        ROWS.append((check, backend, "-", "-", "-", f"ERROR {type(exc).__name__}: "
                     f"{' '.join(str(exc).split())[:150]}"))
        traceback.print_exc(file=sys.stderr)


def check_kernels(torch) -> None:
    from hermes_deploy.engines.trt.plugins.kernels import (selective_scan_triton,
                                                       spectral_lowpass_triton)
    from hermes_deploy.ops.scan import selective_scan_reference
    from hermes_deploy.ops.spectral import spectral_lowpass_reference

    gen = torch.Generator(device="cuda").manual_seed(0)
    for b, l, h, p, g, n in [(2, 37, 4, 8, 2, 16), (1, 4096, 8, 16, 1, 16), (3, 9, 6, 3, 3, 5)]:
        x = torch.randn(b, l, h, p, device="cuda", generator=gen)
        dt = torch.rand(b, l, h, device="cuda", generator=gen) * 0.5
        A = -torch.rand(h, device="cuda", generator=gen) - 0.05
        B = torch.randn(b, l, g, n, device="cuda", generator=gen)
        C = torch.randn(b, l, g, n, device="cuda", generator=gen)
        ref = selective_scan_reference(*(t.double() for t in (x, dt, A, B, C)), chunk=64)
        y = selective_scan_triton(x, dt, A, B, C)
        row("scan kernel fp32", "triton", f"{(b, l, h, p, g, n)}",
            (y.double() - ref).abs().max().item(), 1e-4)
        yh = selective_scan_triton(*(t.half() for t in (x, dt, A, B, C)))
        row("scan kernel fp16 io", "triton", f"{(b, l, h, p, g, n)}",
            ((yh.double() - ref).abs().max() / ref.abs().max().clamp(min=1)).item(), 1e-2,
            "relative")
    for b, c, hh, w in [(2, 3, 16, 16), (1, 4, 13, 21), (1, 8, 64, 64), (1, 2, 128, 96)]:
        x = torch.randn(b, c, hh, w, device="cuda", generator=gen)
        cut = torch.rand(c, device="cuda", generator=gen)
        sharp = torch.rand(c, device="cuda", generator=gen) * 12 + 0.5
        ref = spectral_lowpass_reference(x.double(), cut.double(), sharp.double())
        y = spectral_lowpass_triton(x, cut, sharp)
        row("lowpass kernel fp32", "triton", f"{(b, c, hh, w)}",
            (y.double() - ref).abs().max().item(), 1e-4)


# ---------------------------------------------------------------- C++/CUDA plugin kernels (NVRTC)

PLUGIN_KERNELS = Path(__file__).resolve().parents[1] / "cpp" / "plugins" / "kernels"

_NVRTC_SOURCE = r"""
#include "device_blocks.cuh"
using namespace hermes_plugins;

template <class IO>
__device__ ScanArgs<IO> scan_args(const IO *x, const IO *dt, const IO *A, const IO *B, const IO *C, IO *y,
                                  float *ws, long long b, long long l, long long h, long long p, long long g,
                                  long long n, long long chunk) {
    ScanArgs<IO> a;
    a.x = x; a.dt = dt; a.A = A; a.B = B; a.C = C; a.y = y;
    a.d = scan_dims(b, l, h, p, g, n, chunk);
    scan_bind_workspace(a, ws);
    return a;
}

template <class IO>
__device__ LowpassArgs<IO> lowpass_args(const IO *x, const IO *cut, const IO *sharp, IO *y, float *ws,
                                        long long b, long long c, long long h, long long w) {
    LowpassArgs<IO> a;
    a.x = x; a.cutoff = cut; a.sharpness = sharp; a.y = y;
    a.d = lowpass_dims(b, c, h, w);
    lowpass_bind_workspace(a, ws);
    return a;
}

#define SCAN_PARAMS(IO) const IO *x, const IO *dt, const IO *A, const IO *B, const IO *C, IO *y, float *ws, \
    long long b, long long l, long long h, long long p, long long g, long long n, long long chunk
#define SCAN_ARGS scan_args(x, dt, A, B, C, y, ws, b, l, h, p, g, n, chunk)
#define KERNELS(IO, NAME)                                                                                 \
    extern "C" __global__ void scan_state_##NAME(SCAN_PARAMS(IO)) {                                        \
        extern __shared__ float smem[];                                                                   \
        scan_state_block(SCAN_ARGS, smem);                                                                \
    }                                                                                                     \
    extern "C" __global__ void scan_carry_##NAME(SCAN_PARAMS(IO), long long count) {                       \
        scan_carry_thread(SCAN_ARGS, count);                                                              \
    }                                                                                                     \
    extern "C" __global__ void scan_output_##NAME(SCAN_PARAMS(IO)) {                                       \
        extern __shared__ float smem[];                                                                   \
        scan_output_block(SCAN_ARGS, smem);                                                               \
    }                                                                                                     \
    extern "C" __global__ void lowpass_##NAME(const IO *x, const IO *cut, const IO *sharp, IO *y, float *ws, \
                                              long long b, long long c, long long h, long long w, int stage, \
                                              long long count) {                                          \
        lowpass_thread(lowpass_args(x, cut, sharp, y, ws, b, c, h, w), stage, count);                     \
    }
KERNELS(float, f32)
KERNELS(HalfBits, f16)
"""

SCAN_THREADS, CARRY_THREADS, LOWPASS_THREADS, MAX_CHUNK = 128, 256, 256, 64  # scan_math.hpp, lowpass_math.hpp


def _align(nbytes: int) -> int:
    return (nbytes + 255) // 256 * 256


class PluginKernels:
    """The cpp/plugins kernels on the GPU through CuPy (the launch sequence of scan.cu / lowpass.cu)."""

    def __init__(self, cupy) -> None:
        self.cp = cupy
        self.module = cupy.RawModule(code=_NVRTC_SOURCE, options=("-std=c++17", f"-I{PLUGIN_KERNELS}"))

    def scan(self, x, dt, A, B, C, chunk: int):
        cp, np_ = self.cp, np
        b, l, h, p = x.shape
        g, n = B.shape[2], B.shape[3]
        t = max(1, min(chunk, MAX_CHUNK))
        k = -(-l // t)
        ws = cp.empty(_align(b * k * h * n * p * 4) // 4 + _align(b * k * h * 4) // 4 + 64, cp.float32)
        y = cp.empty_like(x)
        name = "f16" if x.dtype == cp.float16 else "f32"
        args = (x, dt, A, B, C, y, ws, *(np_.int64(v) for v in (b, l, h, p, g, n, chunk)))
        shared = (3 + t) * t * 4
        count = b * h * n * p
        self.module.get_function(f"scan_state_{name}")((k, h, b), (SCAN_THREADS,), args, shared_mem=shared)
        self.module.get_function(f"scan_carry_{name}")((-(-count // CARRY_THREADS),), (CARRY_THREADS,),
                                                       (*args, np_.int64(count)))
        self.module.get_function(f"scan_output_{name}")((k, h, b), (SCAN_THREADS,), args, shared_mem=shared)
        return y

    def lowpass(self, x, cutoff, sharpness):
        cp = self.cp
        b, c, h, w = x.shape
        u, v, planes = h // 2 + 1, w // 2 + 1, b * c
        counts = [2 * u * h + 4 * v * w, planes * h * 2 * v, planes * 4 * u * v, planes * h * 2 * v,
                  planes * h * w]
        ws_bytes = (_align(2 * u * h * 4) + 2 * _align(2 * v * w * 4) + _align(planes * h * 2 * v * 4)
                    + _align(planes * 4 * u * v * 4))
        ws = cp.empty(ws_bytes // 4 + 64, cp.float32)
        y = cp.empty_like(x)
        kernel = self.module.get_function("lowpass_" + ("f16" if x.dtype == cp.float16 else "f32"))
        for stage, count in enumerate(counts):
            kernel((-(-count // LOWPASS_THREADS),), (LOWPASS_THREADS,),
                   (x, cutoff, sharpness, y, ws, *(np.int64(d) for d in (b, c, h, w)), np.int32(stage),
                    np.int64(count)))
        return y


def _gpu_ms(cupy, fn, repeat: int = 5) -> float:
    fn()
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    start.record()
    for _ in range(repeat):
        fn()
    stop.record()
    stop.synchronize()
    return cupy.cuda.get_elapsed_time(start, stop) / repeat


def check_cuda_plugin_kernels() -> None:
    """cpp/plugins kernels (NVRTC) vs the float64 numpy references, and their timing."""
    import cupy as cp

    from hermes_deploy.ops.scan import selective_scan_numpy
    from hermes_deploy.ops.spectral import spectral_lowpass_numpy

    kernels = PluginKernels(cp)
    rng = np.random.default_rng(0)
    for b, l, h, p, g, n, chunk in [(2, 37, 4, 8, 2, 16, 16), (1, 1, 1, 1, 1, 1, 64),
                                    (2, 130, 6, 3, 3, 5, 7), (1, 4097, 8, 16, 2, 16, 64)]:
        raw = [rng.standard_normal((b, l, h, p)), rng.uniform(0, 0.3, (b, l, h)), -rng.uniform(0.05, 1, h),
               rng.standard_normal((b, l, g, n)), rng.standard_normal((b, l, g, n))]
        for dtype, limit in ((np.float32, 1e-4), (np.float16, 4e-3)):
            seen = [v.astype(dtype) for v in raw]
            ref = selective_scan_numpy(*seen)
            y = kernels.scan(*(cp.asarray(v) for v in seen), chunk).get().astype(np.float64)
            row(f"C++ scan kernel {np.dtype(dtype).name} io", "cuda (nvrtc)", f"{(b, l, h, p, g, n, chunk)}",
                float(np.abs(y - ref).max() / max(1.0, np.abs(ref).max())), limit, "relative")
    for b, c, hh, w in [(2, 3, 16, 16), (1, 4, 13, 21), (1, 1, 1, 1), (1, 2, 128, 96)]:
        raw = [rng.standard_normal((b, c, hh, w)), rng.uniform(0, 1, c), rng.uniform(0.5, 12.5, c)]
        for dtype, limit in ((np.float32, 1e-4), (np.float16, 4e-3)):
            seen = [v.astype(dtype) for v in raw]
            ref = spectral_lowpass_numpy(*seen)
            y = kernels.lowpass(*(cp.asarray(v) for v in seen)).get().astype(np.float64)
            row(f"C++ lowpass kernel {np.dtype(dtype).name} io", "cuda (nvrtc)", f"{(b, c, hh, w)}",
                float(np.abs(y - ref).max() / max(1.0, np.abs(ref).max())), limit, "relative")
    # timing at HERMES sizes: a 256x256 tile is a 65,536-step scan; 48 channels of 256x256
    x = cp.asarray(rng.standard_normal((1, 65536, 8, 24)), cp.float32)
    dt = cp.asarray(rng.uniform(0, 0.1, (1, 65536, 8)), cp.float32)
    A = cp.asarray(-rng.uniform(0.05, 1, 8), cp.float32)
    B = cp.asarray(rng.standard_normal((1, 65536, 2, 16)), cp.float32)
    ms = _gpu_ms(cp, lambda: kernels.scan(x, dt, A, B, B, 64))
    ROWS.append(("C++ scan kernel time", "cuda (nvrtc)", "(1, 65536, 8, 24, 2, 16, 64)", "-", "-",
                 f"INFO {ms:.2f} ms"))
    xl = cp.asarray(rng.standard_normal((1, 48, 256, 256)), cp.float32)
    cut, sharp = cp.full(48, 0.4, cp.float32), cp.full(48, 8.0, cp.float32)
    ms = _gpu_ms(cp, lambda: kernels.lowpass(xl, cut, sharp))
    ROWS.append(("C++ lowpass kernel time", "cuda (nvrtc)", "(1, 48, 256, 256)", "-", "-", f"INFO {ms:.2f} ms"))


def check_plugin_library_engine(tile: int, work: Path, plugins: Path) -> None:
    """tensorrt-target engine with the C++ plugin library vs onnxruntime on the portable graph."""
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.engines.trt.build import BuildOptions, build
    from hermes_deploy.engines.trt.runner import TrtRunner
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.quality.photos import load_photo

    portable = export_onnx("default", work / "lib-portable.onnx", ExportOptions()).path
    target = export_onnx("default", work / "lib-plugins.onnx", ExportOptions(target="tensorrt")).path
    x = np.ascontiguousarray(load_photo("coffee")[:tile, :tile].transpose(2, 0, 1)[None], np.float32)
    with OrtRunner(portable) as ort_runner:
        ctx = ort_runner.context(x)
        expected = ort_runner.infer(x, ctx)
    times = {}
    for label, graph, libs in (("plugin library", target, (str(plugins),)), ("portable", portable, ())):
        engine = work / f"lib-{label.replace(' ', '-')}.engine"
        result = build(graph, engine, BuildOptions(flavour="tensorrt", tile=(tile, tile), optimization_level=3,
                                                   plugin_libraries=libs))
        with TrtRunner(engine, onnx_path=graph) as runner:
            got = runner.infer(x, ctx)
            t = time.perf_counter()
            for _ in range(10):
                runner.infer(x, ctx)
            times[label] = (time.perf_counter() - t) / 10 * 1e3
        mse = float(np.mean((got.astype(np.float64) - expected) ** 2))
        psnr = float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)
        ok = psnr >= 50.0
        ROWS.append((f"engine tensorrt-target ({label}) vs onnxruntime", "tensorrt", f"{x.shape}",
                     f"{psnr:.1f} dB", ">= 50 dB", ("PASS" if ok else "FAIL") +
                     f" build {result.seconds:.0f}s, {times[label]:.1f} ms/tile"))
    ROWS.append(("plugin library engine time / portable engine time", "tensorrt", f"{x.shape}", "-", "-",
                 f"INFO {times['plugin library'] / times['portable']:.2f}x"))


def check_torch_cuda(torch) -> None:
    import hermes_deploy as hd
    from hermes_deploy.quality.photos import load_photo

    model = hd.deploy(hd.load_model("default"), fidelity=True).eval()
    photo = load_photo("astronaut")[:96, :128]
    x = torch.from_numpy(np.ascontiguousarray(photo.transpose(2, 0, 1)[None], np.float32))
    with torch.no_grad():
        cpu = model(x, context=model.compute_context(x))
        gpu_model = model.cuda()
        xc = x.cuda()
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        gpu = gpu_model(xc, context=gpu_model.compute_context(xc)).cpu()
    row("deploy model CPU vs CUDA", "torch", f"{tuple(x.shape)}", (gpu - cpu).abs().max().item(),
        1e-4)


def check_engines(torch, tile: int, work: Path) -> None:
    from hermes_deploy.engines.trt.build import BuildOptions, build, local_compute_capability
    from hermes_deploy.engines.ort_runner import OrtRunner
    from hermes_deploy.engines.trt.runner import TrtRunner
    from hermes_deploy.export.onnx_export import ExportOptions, export_onnx
    from hermes_deploy.quality.photos import load_photo

    flavours = []
    for module, flavour in (("tensorrt_rtx", "tensorrt-rtx"), ("tensorrt", "tensorrt")):
        try:
            __import__(module)
            flavours.append(flavour)
        except ImportError:
            row(f"engine {flavour}", flavour, "-", None, None, f"{module} not importable")
    if not flavours:
        return
    t0 = time.perf_counter()
    portable = export_onnx("default", work / "portable.onnx", ExportOptions()).path
    graphs = {"portable fp32": portable}
    if "tensorrt" in flavours:
        graphs["tensorrt-target fp32"] = export_onnx(
            "default", work / "plugins.onnx", ExportOptions(target="tensorrt")).path
    print(f"... exported in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    photo = load_photo("coffee")[:tile, :tile]
    x = np.ascontiguousarray(photo.transpose(2, 0, 1)[None], np.float32)
    with OrtRunner(portable) as ort_runner:
        ctx = ort_runner.context(x)
        expected = ort_runner.infer(x, ctx)
    capability = local_compute_capability()
    for flavour in flavours:
        for label, graph in graphs.items():
            if flavour == "tensorrt-rtx" and label.startswith("tensorrt-target"):
                continue

            def one(flavour=flavour, label=label, graph=graph):
                t = time.perf_counter()
                engine = work / f"{flavour}-{label.replace(' ', '-')}.engine"
                result = build(graph, engine, BuildOptions(
                    flavour=flavour, tile=(tile, tile), optimization_level=0,
                    compute_capability=capability if flavour == "tensorrt-rtx" else None))
                with TrtRunner(engine, onnx_path=graph) as runner:
                    got = runner.infer(x, ctx)
                    graph_run = TrtRunner(engine, onnx_path=graph, cuda_graph=True)
                    for _ in range(2):
                        replay = graph_run.infer(x, ctx)
                err = float(np.abs(got - expected).max())
                row(f"engine {label} vs onnxruntime", flavour, f"{x.shape}", err, 1e-3,
                    f"build {result.seconds:.0f}s, total {time.perf_counter() - t:.0f}s")
                row(f"engine {label} CUDA graph replay", flavour, f"{x.shape}",
                    float(np.abs(replay - got).max()), 1e-6)

            guarded(f"engine {label}", flavour, one)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile", type=int, default=64, help="Engine tile side (input px).")
    parser.add_argument("--skip-engines", action="store_true")
    parser.add_argument("--plugins", type=Path, default=None,
                        help="libhermes_trt_plugins.so built from cpp/plugins (engine rows with full TensorRT)")
    args = parser.parse_args()
    start = time.perf_counter()
    try:
        import torch
    except ImportError:
        print("torch is not installed", file=sys.stderr)
        return 2
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device visible; nothing to check", file=sys.stderr)
        return 2
    try:
        import triton  # noqa: F401
        guarded("kernels", "triton", lambda: check_kernels(torch))
    except ImportError:
        row("plugin kernels", "triton", "-", None, None, "triton not installed")
    try:
        import cupy  # noqa: F401
        guarded("C++ plugin kernels", "cuda (nvrtc)", check_cuda_plugin_kernels)
    except ImportError:
        row("C++ plugin kernels", "cuda (nvrtc)", "-", None, None, "cupy not installed")
    guarded("deploy model CPU vs CUDA", "torch", lambda: check_torch_cuda(torch))
    if not args.skip_engines:
        with tempfile.TemporaryDirectory() as tmp:
            guarded("engines", "-", lambda: check_engines(torch, args.tile, Path(tmp)))
            try:
                import tensorrt  # noqa: F401
                has_trt = True
            except ImportError:
                has_trt = False
            if not has_trt:
                row("engine with the C++ plugin library", "tensorrt", "-", None, None, "tensorrt not installed")
            elif args.plugins is None or not args.plugins.is_file():
                row("engine with the C++ plugin library", "tensorrt", "-", None, None,
                    "pass --plugins libhermes_trt_plugins.so (build it from cpp/plugins)")
            else:
                guarded("engine with the C++ plugin library", "tensorrt",
                        lambda: check_plugin_library_engine(args.tile, Path(tmp), args.plugins))
    header = ("check", "backend", "shape", "max abs err", "limit", "result")
    widths = [max(len(str(r[i])) for r in ROWS + [header]) for i in range(len(header))]
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, "
          f"{time.perf_counter() - start:.0f}s")
    for r in [header] + ROWS:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)))
    failed = [r for r in ROWS if r[5].startswith(("FAIL", "ERROR"))]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
