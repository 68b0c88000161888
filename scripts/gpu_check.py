"""GPU check: plugin kernels vs torch, torch CUDA parity, TensorRT engines vs onnxruntime.

Run on a CUDA machine from the repository root::

    python scripts/gpu_check.py [--tile 64] [--skip-engines]

Prints one table (check, backend, shape, max abs error, limit, result) and exits 1 when
a check fails. Every check that cannot run (no triton, no tensorrt / tensorrt_rtx, no
GPU) is listed as SKIP with the reason. Sized to finish well under 5 minutes: small
kernel shapes, the bundled tiny x2 model, one exported graph at one tile, builds at
optimization level 0 (tensorrt_rtx targets the local GPU's architecture).

Engine rows: TensorRT-RTX builds the portable graph (the plugin graph is refused by
TensorRT-RTX, see ``engines/trt/plugins``); full TensorRT, where importable, builds the
portable graph and the ``tensorrt``-target graph with the AOT plugins.
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
    guarded("deploy model CPU vs CUDA", "torch", lambda: check_torch_cuda(torch))
    if not args.skip_engines:
        with tempfile.TemporaryDirectory() as tmp:
            guarded("engines", "-", lambda: check_engines(torch, args.tile, Path(tmp)))
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
