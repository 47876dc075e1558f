"""Timing helpers shared by the benchmarks.

Everything here is plain Python + NumPy (PyTorch is optional everywhere), so a
benchmark runs with the project's interpreter as well as with a venv that has
torch.  Timings on a shared machine are noisy: every number a benchmark prints
is a MEDIAN of several repetitions taken after warm-up runs, and comparisons are
ratios measured in the same process, one right after the other.
"""

import json
import os
import platform
import statistics
import sys
import time

import numpy as np


def median_time(fn, reps=5, warmup=1):
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls.

    Returns (median, all times) so callers can also report the spread.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def median_split(step_fns, reps=5, warmup=1):
    """Time a sequence of dependent callables run back to back (e.g. forward, backward).

    ``step_fns`` is a list of callables; each repetition runs all of them in
    order and records each one's duration.  Returns a list with the median of
    each step and the median of their per-repetition sum.
    """
    for _ in range(warmup):
        for fn in step_fns:
            fn()
    per_step = [[] for _ in step_fns]
    totals = []
    for _ in range(reps):
        total = 0.0
        for index, fn in enumerate(step_fns):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            per_step[index].append(elapsed)
            total += elapsed
        totals.append(total)
    return [statistics.median(t) for t in per_step], statistics.median(totals)


def interleaved_split(candidates, reps=5, warmup=1):
    """Time several candidates taking turns, each a list of dependent callables.

    ``candidates`` maps a name to a list of callables (e.g. [forward, backward]).
    Every repetition runs each candidate once, one after the other, so a burst of
    load from other processes hits all of them alike and their RATIO stays
    meaningful on a shared machine.  Returns name -> (median of each step,
    median of the per-repetition sum).
    """
    names = list(candidates)
    for _ in range(warmup):
        for name in names:
            for fn in candidates[name]:
                fn()
    per_step = {name: [[] for _ in candidates[name]] for name in names}
    totals = {name: [] for name in names}
    for _ in range(reps):
        for name in names:
            total = 0.0
            for index, fn in enumerate(candidates[name]):
                start = time.perf_counter()
                fn()
                elapsed = time.perf_counter() - start
                per_step[name][index].append(elapsed)
                total += elapsed
            totals[name].append(total)
    return {
        name: ([statistics.median(t) for t in per_step[name]], statistics.median(totals[name]))
        for name in names
    }


def numpy_matmul_rate(n=2048, reps=7, dtype=np.float32, xp=None, synchronize=None):
    """This machine's float32 matrix-multiply rate with NumPy (or ``xp``, e.g. CuPy), in GFLOP/s.

    An n x n by n x n product is 2 n^3 floating-point operations; the rate is
    computed from the median of ``reps`` products (one warm-up). ``synchronize``
    is called after each product (a GPU's work is queued, not done, when matmul returns).
    """
    xp = np if xp is None else xp
    rng = np.random.default_rng(0)
    a = xp.asarray(rng.standard_normal((n, n), dtype=np.float32).astype(dtype))
    b = xp.asarray(rng.standard_normal((n, n), dtype=np.float32).astype(dtype))
    out = xp.empty((n, n), dtype=dtype)
    wait = synchronize or (lambda: None)
    seconds, _ = median_time(lambda: (xp.matmul(a, b, out=out), wait()), reps=reps, warmup=2)
    return 2.0 * n**3 / seconds / 1e9


def torch_matmul_rate(torch, n=2048, reps=7, device="cpu"):
    """The same measurement with ``torch.matmul`` (for information only)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    wait = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    seconds, _ = median_time(lambda: (torch.matmul(a, b, out=out), wait()), reps=reps, warmup=2)
    return 2.0 * n**3 / seconds / 1e9


def numpy_blas_info():
    """A short description of the BLAS NumPy was built with (and uses, if threadpoolctl is there)."""
    info = {"numpy": np.__version__}
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = blas.get("name")
        info["blas_version"] = blas.get("version")
        info["blas_config"] = blas.get("openblas configuration")
        simd = config.get("SIMD Extensions", {})
        info["simd_found"] = simd.get("found")
    except Exception as exc:  # older NumPy without mode="dicts"
        info["blas"] = f"unknown ({exc})"
    try:
        import threadpoolctl

        pools = threadpoolctl.threadpool_info()
        info["threadpools"] = [
            {
                k: p.get(k)
                for k in ("internal_api", "version", "num_threads", "architecture", "threading_layer")
            }
            for p in pools
        ]
    except Exception:
        pass
    return info


def environment_info():
    """Interpreter, CPU and the environment variables that steer BLAS threading."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP_", "MKL_", "GOTO", "BLIS"))}
    blas = sys.modules.get("nn.blas")
    if blas is not None and blas.OPENBLAS_THREAD_TIMEOUT and "OPENBLAS_THREAD_TIMEOUT" not in env:
        env["OPENBLAS_THREAD_TIMEOUT"] = (
            f"{blas.OPENBLAS_THREAD_TIMEOUT} (at NumPy's load, nn.configure_blas)"
        )
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "cpu": cpu,
        "cores": cores,
        "env": env,
    }


def try_import_torch():
    """torch, or None when it is not installed (the benchmark then omits its columns)."""
    try:
        import torch

        return torch
    except Exception:
        return None


def write_json(path, payload):
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2, default=_json_default)
        handle.write("\n")


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def format_table(headers, rows, align=None):
    """Plain-text table: ``rows`` are lists of already formatted strings."""
    widths = [
        max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
        for i, h in enumerate(headers)
    ]
    align = align or ["<"] + [">"] * (len(headers) - 1)

    def line(cells):
        return "  ".join(f"{str(c):{a}{w}}" for c, a, w in zip(cells, align, widths))

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out.extend(line(r) for r in rows)
    return "\n".join(out)
