"""hermes-serve (the C++ HTTP service) under load: throughput, latency, overload, memory, overhead.

    python benchmarks/bench_serve.py [--onnx GRAPH] [--build-dir build/cpp-serve] [--workers 2]
                                     [--threads 1] [--size 64] [--json]

Starts ``hermes-serve`` on a free loopback port and loads it with ``hey`` (Debian package
``hey``), POSTing one small PNG (a SIZExSIZE crop of the astronaut photograph, default
64x64, x2 out, one tile):

- memory: VmRSS of the server (``/proc/PID/status``) after 200 and after 2000 requests
  (concurrency 8), and their ratio (target: within 10%);
- throughput and p50/p99 latency at concurrency 1, 2, 8 and workers*4 (60 requests per
  concurrent client slot at c=1, 60*c at higher c, capped);
- overload: a second server with ``--queue 4``, concurrency 32: the status-code
  distribution must hold only 200 and 503, with no connection errors;
- service overhead against the library alone on the same work: ``hermes-restore
  --buffer`` times ``hermes_restore_buffer`` (PNG bytes in, PNG bytes out: the decode,
  restore and encode each request costs the service), same image, tile and threads per
  worker, first run a warm-up: (a) p50 latency at c=1 / library seconds per image
  (>= 1; the HTTP and queue cost), and (b) at c = workers*4, requests/s x library
  seconds / workers (ideal 1.0; target: at least 1/1.15, i.e. within 1.15x). For
  reference the table also shows the library's in-memory API (decoded pixels, no codec:
  ``--in-memory``) and file API (``hermes-restore`` file to file).

Prints one table (with the CPU cores the server and hey each used per run: hey shares the
machine's cores, which on a small machine lowers the throughput figures) and the CPU's
flags; ``--json`` prints the figures as JSON instead.
Builds libhermes (Release) with scripts/cpp_build.py unless --build-dir already holds
hermes-serve. About 2-3 minutes on 2 cores (40 s of it the model export without --onnx).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cpp_inputs import ROOT, astronaut_png, built, default_graph

LISTENING = re.compile(r"^hermes-serve: listening on http://(?P<host>[^\s/]+):(?P<port>\d+) ")


class Server:
    """hermes-serve on a free loopback port, its stderr drained in a thread."""

    def __init__(self, tool: Path, onnx: Path, *flags: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HERMES_")}
        self.proc = subprocess.Popen([str(tool), "--model", str(onnx), "--port", "0", "--host", "127.0.0.1", *flags],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env)
        self.port = 0
        self.lines: list[str] = []
        ready = threading.Event()

        def drain() -> None:
            for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                m = LISTENING.match(line)
                if m and not self.port:
                    self.port = int(m["port"])
                    ready.set()
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(300) or not self.port:
            self.stop()
            raise SystemExit("bench_serve: hermes-serve did not start: " + "\n".join(self.lines[-20:]))
        self.url = f"http://127.0.0.1:{self.port}/v1/restore"

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise SystemExit("bench_serve: no VmRSS in /proc/PID/status")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _hey(url: str, image: Path, n: int, c: int, csv: bool) -> str:
    cmd = ["hey", "-n", str(n), "-c", str(c), "-m", "POST", "-T", "image/png", "-D", str(image), "-t", "60"]
    done = subprocess.run(cmd + (["-o", "csv"] if csv else []) + [url], capture_output=True, text=True,
                          timeout=600)
    if done.returncode:
        raise SystemExit(f"bench_serve: hey failed: {done.stderr.strip()}")
    return done.stdout


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _load(server: Server, image: Path, n: int, c: int) -> dict:
    """hey -o csv: one row per answered request (hey leaves failed ones out of the CSV)."""
    n = max(c, n // c * c)  # hey sends n/c per client slot
    server_cpu, client_cpu = server.cpu_seconds(), _children_cpu()
    t0 = time.perf_counter()
    text = _hey(server.url, image, n, c, csv=True)
    wall = time.perf_counter() - t0
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, _children_cpu() - client_cpu
    rows = [line.split(",") for line in text.splitlines()[1:] if line.strip()]
    latency = [float(r[0]) for r in rows]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r[6]] = statuses.get(r[6], 0) + 1
    span = max(float(r[7]) + float(r[0]) for r in rows) if rows else float("nan")
    return {"concurrency": c, "requests": n, "answered": len(rows), "errors": n - len(rows), "statuses": statuses,
            "requests_per_s": len(rows) / span, "p50_ms": 1e3 * _percentile(latency, 50),
            "p99_ms": 1e3 * _percentile(latency, 99), "server_cores": server_cpu / wall,
            "hey_cores": client_cpu / wall}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _summary_distributions(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """Status-code and error distributions from hey's summary output."""
    statuses, errors, section = {}, {}, None
    for line in text.splitlines():
        if line.startswith("Status code distribution"):
            section = statuses
        elif line.startswith("Error distribution"):
            section = errors
        elif section is not None:
            m = re.match(r"^\s+\[(\S+)\]\s+(\d+)\s*(.*)$", line)
            if m and section is statuses:
                statuses[m[1]] = int(m[2])
            elif m:
                errors[m[3].strip()] = int(m[1])
    return statuses, errors


def _library(tool: Path, onnx: Path, image: Path, out: Path, threads: int, repeats: int, mode: str | None) -> dict:
    done = subprocess.run([str(tool), str(onnx), str(image), str(out), "--repeat", str(repeats + 1), "--threads",
                           str(threads), "--tile", "256", "--precision", "f32"] + ([mode] if mode else []),
                          capture_output=True, text=True, timeout=600)
    if done.returncode:
        raise SystemExit(f"bench_serve: hermes-restore failed: {done.stderr.strip()}")
    runs = [json.loads(line) for line in done.stdout.splitlines()][1:]  # first: warm-up
    return {"wall_s": statistics.median(r["wall_seconds"] for r in runs),
            "compute_s": statistics.median(r["compute_seconds"] for r in runs), "repeats": repeats}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--onnx", type=Path, default=None, help="portable FP32 graph (default: export the bundled model)")
    ap.add_argument("--build-dir", type=Path, default=ROOT / "build" / "cpp-serve")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1,
                    help="per worker (1: the 2 workers fill a 2-core machine; 0: max(1, cores / workers))")
    ap.add_argument("--size", type=int, default=64, help="the PNG's side in pixels")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    from header import header, print_header
    from hermes_deploy.cpu import cpu_flags, describe_cpu

    if shutil.which("hey") is None:
        raise SystemExit("bench_serve: needs hey (apt-get install hey)")
    serve_tool = built(args.build_dir, "hermes-serve", "bench_serve")
    restore_tool = args.build_dir / "hermes-restore"
    workers = args.workers
    threads = args.threads or max(1, (os.cpu_count() or 1) // workers)
    head = header("C++ hermes-serve / libhermes, OpenVINO (CPU)", "f32", f"{threads} per worker, {workers} workers",
                  image=f"astronaut crop {args.size}x{args.size} PNG")
    if not args.json:
        print_header(head)
    flags = ["--backend", "openvino", "--precision", "f32", "--workers", str(workers), "--threads", str(threads)]
    with tempfile.TemporaryDirectory(prefix="hermes-bench-serve-") as tmp:
        tmp = Path(tmp)
        onnx = default_graph(args.onnx, tmp)
        image = astronaut_png(tmp, args.size)
        print(f"... library alone: hermes-restore --buffer / --in-memory / files, {threads} thread(s)",
              file=sys.stderr, flush=True)
        library = _library(restore_tool, onnx, image, tmp / "lib.png", threads, 20, "--buffer")
        pixels = _library(restore_tool, onnx, image, tmp / "lib-mem.png", threads, 20, "--in-memory")
        files = _library(restore_tool, onnx, image, tmp / "lib-file.png", threads, 20, None)

        print(f"... hermes-serve {' '.join(flags)}: memory over 2000 requests", file=sys.stderr, flush=True)
        server = Server(serve_tool, onnx, *flags)
        try:
            memory = {"start_mib": server.rss_mib()}
            first = _load(server, image, 200, 8)
            memory["after_200_mib"] = server.rss_mib()
            rest = _load(server, image, 1800, 8)
            memory["after_2000_mib"] = server.rss_mib()
            memory["ratio"] = memory["after_2000_mib"] / memory["after_200_mib"]
            memory["errors"] = first["errors"] + rest["errors"]
            memory["statuses"] = {k: first["statuses"].get(k, 0) + rest["statuses"].get(k, 0)
                                  for k in set(first["statuses"]) | set(rest["statuses"])}
            loads = []
            for c in sorted({1, 2, 8, workers * 4}):
                print(f"... concurrency {c}", file=sys.stderr, flush=True)
                loads.append(_load(server, image, min(60 * c, 960), c))
        finally:
            exit_status = server.stop()

        print("... overload: --queue 4, concurrency 32", file=sys.stderr, flush=True)
        overload_server = Server(serve_tool, onnx, *flags, "--queue", "4")
        try:
            statuses, errors = _summary_distributions(_hey(overload_server.url, image, 320, 32, csv=False))
        finally:
            overload_exit = overload_server.stop()
    overload = {"concurrency": 32, "requests": 320, "queue": 4, "statuses": statuses, "errors": errors,
                "only_200_and_503": set(statuses) <= {"200", "503"} and not errors, "exit_status": overload_exit}
    c1 = next(row for row in loads if row["concurrency"] == 1)
    full = next(row for row in loads if row["concurrency"] == workers * 4)
    overhead = {"c1_p50_over_library": c1["p50_ms"] / 1e3 / library["wall_s"],
                "throughput_efficiency": full["requests_per_s"] * library["wall_s"] / workers}
    overhead["throughput_overhead"] = 1 / overhead["throughput_efficiency"]
    overhead["throughput_efficiency_vs_in_memory"] = full["requests_per_s"] * pixels["wall_s"] / workers
    info = {"header": head, "cpu": describe_cpu(), "flags": sorted(f for f in cpu_flags() if f.startswith(("avx", "amx"))),
            "image": f"astronaut crop {args.size}x{args.size} PNG -> {2 * args.size}x{2 * args.size}",
            "workers": workers, "threads_per_worker": threads, "library": library, "library_in_memory": pixels, "library_file_api": files,
            "loads": loads,
            "memory": memory, "overload": overload, "overhead": overhead, "exit_status": exit_status}
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(f"{info['image']}, --workers {workers} --threads {threads}, tile 256 (one tile)")
    print(f"{'run':<34}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'server':>8}{'hey':>6}"
          "  statuses / errors")
    print(f"{'library alone (buffer API, median)':<34}{library['repeats']:>9}{1 / library['wall_s']:>9.1f}"
          f"{1e3 * library['wall_s']:>9.1f}{'':>9}{'':>8}{'':>6}  compute {1e3 * library['compute_s']:.1f} ms/image;"
          " PNG in, PNG out, as the service")
    print(f"{'library in-memory pixels (median)':<34}{pixels['repeats']:>9}{1 / pixels['wall_s']:>9.1f}"
          f"{1e3 * pixels['wall_s']:>9.1f}{'':>9}{'':>8}{'':>6}  no decode or encode")
    print(f"{'library file to file (median)':<34}{files['repeats']:>9}{1 / files['wall_s']:>9.1f}"
          f"{1e3 * files['wall_s']:>9.1f}{'':>9}{'':>8}{'':>6}  + PNG decode, encode and file I/O")
    for row in loads:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(row["statuses"].items()))
        print(f"{'hermes-serve c=' + str(row['concurrency']):<34}{row['requests']:>9}{row['requests_per_s']:>9.1f}"
              f"{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}{row['server_cores']:>8.2f}{row['hey_cores']:>6.2f}"
              f"  {codes}; {row['errors']} errors")
    codes = " ".join(f"{k}:{v}" for k, v in sorted(statuses.items()))
    errs = "; ".join(f"{v}x {k}" for k, v in errors.items()) or "no errors"
    print(f"{'overload c=32 --queue 4':<34}{320:>9}{'':>9}{'':>9}{'':>9}{'':>8}{'':>6}  {codes}; {errs} -> "
          + ("only 200/503: ok" if overload["only_200_and_503"] else "NOT only 200/503"))
    print(f"memory (VmRSS): start {memory['start_mib']:.1f} MiB, after 200 {memory['after_200_mib']:.1f} MiB, "
          f"after 2000 {memory['after_2000_mib']:.1f} MiB, ratio {memory['ratio']:.3f} (target <= 1.10)")
    print(f"overhead (a) c=1 p50 / library: {overhead['c1_p50_over_library']:.3f}x")
    print(f"overhead (b) c={workers * 4} req/s x library s / workers: {overhead['throughput_efficiency']:.3f} "
          f"(ideal 1.0), i.e. {overhead['throughput_overhead']:.3f}x (target <= 1.15x); against the in-memory "
          f"API (no codec): {overhead['throughput_efficiency_vs_in_memory']:.3f}")
    print("server / hey: CPU cores each used during the run (hey shares the machine's cores)")
    print(f"exit status after SIGTERM: {exit_status} and {overload_exit}")


if __name__ == "__main__":
    main()
