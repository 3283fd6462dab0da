"""Shared benchmark helpers: same-process alternating timing of a deepgrad callable against its
PyTorch twin, thread pinning, weight copying and training-step closures."""
from __future__ import annotations

import statistics
import time


def time_pair(fn_dg, fn_torch, number=100, repeat=21, warmup=5, clock=None):
    """Median seconds per call of each callable, measured in alternating rounds so that machine
    noise hits both alike. Returns (deepgrad_median, torch_median). ``clock``: a timer such as
    ``time.process_time`` (``clock_arg``) instead of the wall clock."""
    clock = clock or time.perf_counter
    for _ in range(warmup):
        fn_dg()
        fn_torch()
    td, tt = [], []
    for _ in range(repeat):
        t0 = clock()
        for _ in range(number):
            fn_dg()
        t1 = clock()
        for _ in range(number):
            fn_torch()
        t2 = clock()
        td.append((t1 - t0) / number)
        tt.append((t2 - t1) / number)
    return statistics.median(td), statistics.median(tt)


def clock_arg(name):
    """The timer for a ``--clock wall|cpu`` option: on a machine shared with other jobs the
    process CPU clock (at one thread) does not count the time other processes hold the core."""
    return time.process_time if name == "cpu" else time.perf_counter


def report(rows, title):
    """Print a table of (name, deepgrad seconds, torch seconds) with the ratio."""
    print(f"\n{title} [load average {load_average()}]")
    print(f"{'case':<34}{'deepgrad':>12}{'torch':>12}{'ratio':>8}")
    for name, d, t in rows:
        print(f"{name:<34}{d * 1e6:>10.1f}us{t * 1e6:>10.1f}us{d / t:>8.2f}")


def threads_from_argv(argv=None):
    """Read ``--threads N`` from the command line and pin NumPy's BLAS to it. Call this before
    NumPy is imported: OpenBLAS reads its thread count once, when it loads."""
    import os
    import sys
    argv = sys.argv[1:] if argv is None else argv
    n = os.cpu_count()
    for i, a in enumerate(argv):
        if a == "--threads" and i + 1 < len(argv):
            n = int(argv[i + 1])
        elif a.startswith("--threads="):
            n = int(a.split("=", 1)[1])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)
    return n


def setup_threads(n=None):
    """Pin PyTorch to the same thread count as NumPy's BLAS (all cores by default)."""
    import os
    import torch
    n = n or int(os.environ.get("OPENBLAS_NUM_THREADS", os.cpu_count()))
    torch.set_num_threads(n)
    print(machine_header(), flush=True)
    return n


def cpu_model():
    """The CPU's model name (from /proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    import platform
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:  # pragma: no cover - not Linux
        pass
    return platform.processor() or platform.machine() or "?"


def cpu_flags():
    """The vector-unit flags that decide which kernels run (float16/bfloat16 conversions, AVX-512)."""
    try:
        with open("/proc/cpuinfo") as f:
            have = set(next(ln for ln in f if ln.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):  # pragma: no cover - not Linux
        return ""
    return " ".join(x for x in ("f16c", "avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16")
                    if x in have)


def machine_header():
    """One block naming the machine a benchmark ran on: CPU model and cores, load average,
    NumPy's BLAS (library, version, the kernel it dispatched to, threads) and PyTorch's
    (MKL / oneDNN / OpenBLAS as its build reports, threads)."""
    import os
    import numpy as np
    lines = [f"cpu: {cpu_model()}, {os.cpu_count()} logical cores, flags: {cpu_flags() or '?'}; "
             f"load average {load_average()}"]
    try:
        from threadpoolctl import threadpool_info
        for p in threadpool_info():
            if p.get("user_api") == "blas":
                lines.append(f"numpy {np.__version__} BLAS: {p.get('internal_api')} {p.get('version')}, "
                             f"kernel {p.get('architecture', '?')}, {p.get('num_threads')} threads")
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        lines.append(f"numpy {np.__version__} BLAS: ?")
    try:
        import torch
        cfg = torch.__config__.show()
        blas = next((item.split("=", 1)[1].strip() for item in cfg.replace("\n", ",").split(",")
                     if item.strip().startswith("BLAS_INFO=")), None)
        if blas is None:
            blas = "mkl" if torch.backends.mkl.is_available() else "?"
        isa = torch.backends.cpu.get_cpu_capability()
        lines.append(f"torch {torch.__version__} BLAS: {blas}, oneDNN "
                     f"{'on' if torch.backends.mkldnn.is_available() else 'off'}, CPU capability {isa}, "
                     f"{torch.get_num_threads()} threads")
    except Exception:  # noqa: BLE001 - torch missing or an older build: the header stays short
        pass
    return "\n".join(lines)


def load_average():
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:  # pragma: no cover - not Linux
        return "?"


def copy_weights(dg_model, torch_model):
    """deepgrad's parameters and buffers into the torch twin, by state_dict name (strict)."""
    import numpy as np
    import torch
    sd = {k: torch.tensor(np.array(v.detach().numpy() if hasattr(v, "detach") else v))
          for k, v in dg_model.state_dict().items()}
    torch_model.load_state_dict(sd, strict=True)


def make_step(model, x, y, loss_fn, opt):
    """One training step (zero_grad, forward, loss, backward, optimiser step) as a callable."""
    def step():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
    return step
