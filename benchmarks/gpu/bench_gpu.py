"""deepgrad on CuPy against PyTorch CUDA eager, in one process, on one GPU.

    python benchmarks/gpu/bench_gpu.py [--out DIR] [--repeat R] [--only mlp,resnet20,char_lstm]

Training steps (forward, cross-entropy, backward, SGD step) of the MLP 784-512-512-10 (batch 128),
ResNet-20 (batch 128, 3x32x32) and the char-LSTM (T=64, B=32, H=256), the twins of
tests/gpu/gpu_models.py starting from the same weights and batch. Each round times ``number``
steps of deepgrad, then of PyTorch (alternating, so drift hits both), each bracketed by a device
synchronisation; the median seconds per step and the ratio deepgrad / PyTorch are reported.

Launch overhead: a chain of small ops (``y = y * a + b`` on 32x32, and 32x32 matmuls) whose GPU
work is negligible, so the time per op is the CPU cost of issuing it (Python, the framework,
the kernel launch): reported in microseconds per op for both frameworks, with and without grad.

Writes ``bench_gpu.json`` and ``bench_gpu.txt`` into ``--out`` (default: $OUT, else .).
``DEEPGRAD_GPU_DRY=1``: a dry run without a GPU (deepgrad on the strict stand-in, PyTorch on its
CPU, tiny sizes): it checks this script, its numbers mean nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "gpu"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import deepgrad as dg  # noqa: E402
from gpu_common import DRY, DDEV, TDEV  # noqa: E402
import gpu_models  # noqa: E402


def sync():
    if DRY:
        return
    dg.cuda.synchronize()
    torch.cuda.synchronize()


def header():
    info = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "deepgrad_dry_run": DRY, "time_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())}
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    if not DRY:
        import cupy
        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        info.update(gpu=name.decode() if isinstance(name, bytes) else str(name),
                    cupy=cupy.__version__, cuda_runtime=cupy.cuda.runtime.runtimeGetVersion(),
                    cuda_driver=cupy.cuda.runtime.driverGetVersion(),
                    torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    gpu_memory_gib=round(props["totalGlobalMem"] / 2 ** 30, 1),
                    torch_gpu=torch.cuda.get_device_name())
    return info


def time_alternating(fns, number, repeat, warmup=3):
    """{name: median seconds per call}, rounds alternating between the callables."""
    for f in fns.values():
        for _ in range(warmup):
            f()
    sync()
    times = {k: [] for k in fns}
    for _ in range(repeat):
        for k, f in fns.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(number):
                f()
            sync()
            times[k].append((time.perf_counter() - t0) / number)
    return {k: statistics.median(v) for k, v in times.items()}, times


def step_pair(name):
    """(deepgrad step, torch step) of benchmark model ``name`` on the GPU, same weights and batch."""
    dg.manual_seed(0)
    dm, x, y = gpu_models.build(name, dg, small=DRY)
    tm, _, _ = gpu_models.build(name, torch, small=DRY)
    gpu_models.same_weights(dm, tm, torch)
    dm.to(DDEV)
    tm.to(TDEV)
    sd = gpu_models.make_step(dm, dg.tensor(x, device=DDEV), dg.tensor(y, device=DDEV),
                              gpu_models.optimizer(name, dg, dm.parameters()), dg)
    st = gpu_models.make_step(tm, torch.tensor(x, device=TDEV), torch.tensor(y, device=TDEV),
                              gpu_models.optimizer(name, torch, tm.parameters()), torch)
    return sd, st


def launch_overhead(n_ops, repeat):
    """Microseconds of wall time per small op (GPU work negligible: the CPU cost of issuing it)."""
    rows = {}
    for grad in (False, True):
        for kind in ("mul_add", "matmul"):
            def chain(lib, dev):
                a = lib.ones(32, 32, device=dev) * 0.5
                b = lib.ones(32, 32, device=dev) * 0.25
                x = lib.ones(32, 32, device=dev, requires_grad=grad)

                def run():
                    y = x
                    if kind == "mul_add":
                        for _ in range(n_ops // 2):
                            y = y * a + b               # two ops
                    else:
                        for _ in range(n_ops):
                            y = (y @ a)
                    return y
                return run
            fns = {"deepgrad": chain(dg, DDEV), "torch": chain(torch, TDEV)}
            with (torch.enable_grad() if grad else torch.no_grad()):
                ctx = dg.enable_grad() if grad else dg.no_grad()
                with ctx:
                    med, _ = time_alternating(fns, 1, repeat)
            key = f"{kind}{'_grad' if grad else ''}"
            rows[key] = {k: v / n_ops * 1e6 for k, v in med.items()}
            rows[key]["ratio"] = rows[key]["deepgrad"] / rows[key]["torch"]
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT", "."))
    p.add_argument("--repeat", type=int, default=3 if DRY else 9)
    p.add_argument("--only", default="mlp,resnet20,char_lstm")
    p.add_argument("--launch-ops", type=int, default=20 if DRY else 400)
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if not DRY:
        torch.backends.cuda.matmul.allow_tf32 = False     # PyTorch's default for matmul
        torch.backends.cudnn.benchmark = True             # PyTorch eager at its best for the CNN
    result = {"header": header(), "steps": {}, "launch_us_per_op": {}, "fused_kernel_fallbacks": {}}
    lines = [json.dumps(result["header"], indent=1)]

    def emit(text):
        print(text, flush=True)
        lines.append(text)

    emit(f"\n{'training step':<28}{'deepgrad ms':>12}{'torch ms':>10}{'ratio':>8}")
    number = {"mlp": 20, "resnet20": 5, "char_lstm": 5}
    for name in args.only.split(","):
        t0 = time.perf_counter()
        sd, st = step_pair(name)
        med, raw = time_alternating({"deepgrad": sd, "torch": st}, 2 if DRY else number[name], args.repeat)
        ratio = med["deepgrad"] / med["torch"]
        result["steps"][name] = {"deepgrad_s": med["deepgrad"], "torch_s": med["torch"], "ratio": ratio,
                                 "rounds_s": raw, "bench_wall_s": time.perf_counter() - t0}
        emit(f"{name:<28}{med['deepgrad'] * 1e3:>12.2f}{med['torch'] * 1e3:>10.2f}{ratio:>8.2f}")
        _write(args.out, result, lines)
    emit(f"\n{'launch overhead (us/op)':<28}{'deepgrad':>12}{'torch':>10}{'ratio':>8}")
    result["launch_us_per_op"] = launch_overhead(args.launch_ops, args.repeat)
    for k, r in result["launch_us_per_op"].items():
        emit(f"{k:<28}{r['deepgrad']:>12.1f}{r['torch']:>10.1f}{r['ratio']:>8.2f}")
    from deepgrad.ops import _cuda_kernels as _ck
    result["fused_kernel_fallbacks"] = dict(_ck.FALLBACKS)
    if not DRY:
        result["memory"] = {"deepgrad_max_allocated": dg.cuda.max_memory_allocated(),
                            "torch_max_allocated": torch.cuda.max_memory_allocated()}
    emit(f"\nfused-kernel fallbacks: {result['fused_kernel_fallbacks'] or 'none'}")
    _write(args.out, result, lines)
    return 0


def _write(out, result, lines):
    with open(os.path.join(out, "bench_gpu.json"), "w") as f:
        json.dump(result, f, indent=1, default=str)
    with open(os.path.join(out, "bench_gpu.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if DRY:
        from deepgrad.ops import _cuda_kernels as _ck
        from deepgrad.testing import strict_cuda
        with strict_cuda():
            _ck.FORCE[0] = True
            sys.exit(main())
    sys.exit(main())
