"""Data-parallel scaling over MPI: samples/s of a LeNet-5 and a cifar10-quick training step on 1 and
2 processes (one BLAS thread each; the global batch fixed, split among the ranks, as
``deepgrad train --distributed`` does), the share of the step spent blocked in MPI, and the
measured all-reduce bandwidth.

    python benchmarks/bench_distributed.py [--ranks 1,2] [--batch 128] [--steps 8]

Run plainly, it starts itself under ``mpirun`` once per rank count and prints the table; each
rank pins one BLAS thread. The time "in MPI" is measured by timing every call deepgrad makes on
the communicator (the gradient all-reduces' launch, test and wait, SyncBatchNorm's all-reduces,
the buffer broadcasts): the part of the communication that backward did not hide.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LAUNCHED = any(v in os.environ for v in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"))


# ---- timing every MPI call ------------------------------------------------------------------------
class _Clock:
    seconds = 0.0


class TimedRequest:
    def __init__(self, req):
        self.req = req

    def Wait(self):
        t0 = time.perf_counter()
        try:
            return self.req.Wait()
        finally:
            _Clock.seconds += time.perf_counter() - t0

    def Test(self):
        t0 = time.perf_counter()
        try:
            return self.req.Test()
        finally:
            _Clock.seconds += time.perf_counter() - t0


class TimedComm:
    """A communicator whose calls add their duration to ``_Clock.seconds``."""

    def __init__(self, comm):
        self._comm = comm

    def __getattr__(self, name):
        fn = getattr(self._comm, name)
        if not callable(fn):
            return fn

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                out = fn(*args, **kwargs)
            finally:
                _Clock.seconds += time.perf_counter() - t0
            return TimedRequest(out) if name.startswith("I") and out is not None else out
        return timed


# ---- one rank's measurement -----------------------------------------------------------------------
def rank_main(args):
    import numpy as np
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    import deepgrad as dg
    import deepgrad.distributed as dist
    from deepgrad import nn
    from deepgrad.models import lenet5
    from deepgrad.recipes.cnn import QuickNet
    from mpi4py import MPI

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    pg = dist.group.WORLD
    pg.comm = TimedComm(pg.comm)
    per = args.batch // world
    out = {"world": world, "batch": args.batch, "cases": {}}
    for name, build, shape in (("LeNet-5 (MNIST 1x28x28)", lambda: lenet5(num_classes=10), (1, 28, 28)),
                               ("cifar10-quick (3x32x32)", lambda: QuickNet.build(24), (3, 32, 32))):
        dg.manual_seed(0)
        model = nn.parallel.DistributedDataParallel(nn.SyncBatchNorm.convert_sync_batchnorm(build()))
        opt = dg.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        g = np.random.default_rng(rank)
        x = dg.tensor(g.standard_normal((per,) + shape).astype(np.float32))
        y = dg.tensor(g.integers(0, 10, per))
        loss_fn = nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()

        for _ in range(2):
            step()
        times, mpi = [], []
        for _ in range(args.steps):
            pg.comm.Barrier()
            _Clock.seconds = 0.0
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
            mpi.append(_Clock.seconds)
        # the slowest rank sets the pace of a synchronous step
        t = float(np.max(pg.comm.allgather(statistics.median(times))))
        m = float(np.max(pg.comm.allgather(statistics.median(mpi))))
        nparams = sum(p.numel() for p in model.parameters())
        out["cases"][name] = {"step_s": t, "mpi_s": m, "samples_per_s": args.batch / t, "params": nparams}
    # all-reduce bandwidth on float32 buffers
    bw = {}
    comm = pg.comm._comm
    for nbytes in (256 * 1024, 4 * 2 ** 20, 32 * 2 ** 20):
        buf = np.ones(nbytes // 4, np.float32)
        reps = []
        for _ in range(7):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, MPI.SUM)
            reps.append(time.perf_counter() - t0)
        bw[nbytes] = float(np.max(comm.allgather(statistics.median(reps))))
    out["allreduce_s"] = bw
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)


# ---- the driver -------------------------------------------------------------------------------------
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ranks", default="1,2", help="comma-separated process counts (default 1,2)")
    p.add_argument("--batch", type=int, default=128, help="global batch (default 128)")
    p.add_argument("--steps", type=int, default=8, help="timed steps (default 8)")
    args = p.parse_args(argv)
    if LAUNCHED:
        return rank_main(args)
    import numpy as np
    mpirun = os.path.join(os.path.dirname(sys.executable), "mpirun")
    mpirun = mpirun if os.path.exists(mpirun) else shutil.which("mpirun")
    if mpirun is None:
        sys.exit("no mpirun: pip install 'deepgrad[distributed]'")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMPI_MCA_mpi_yield_when_idle="1")
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)               # as on every rank (the header then shows it)
    except ImportError:
        pass
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _timing import machine_header
    print(machine_header())
    results = []
    for n in [int(r) for r in args.ranks.split(",")]:
        cmd = [mpirun, "--oversubscribe", "--allow-run-as-root", "-n", str(n), sys.executable, os.path.abspath(__file__),
               "--batch", str(args.batch), "--steps", str(args.steps)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if proc.returncode or not line:
            sys.exit(f"mpirun -n {n} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        results.append(json.loads(line[0][7:]))
    print(f"\nglobal batch {args.batch}, one BLAS thread per rank; load average {os.getloadavg()[0]:.2f}")
    print(f"{'model':<26}{'ranks':>6}{'step ms':>10}{'samples/s':>11}{'speed-up':>10}{'in MPI':>9}")
    base = {k: v["samples_per_s"] for k, v in results[0]["cases"].items()}
    for r in results:
        for k, v in r["cases"].items():
            print(f"{k:<26}{r['world']:>6}{v['step_s'] * 1e3:>10.1f}{v['samples_per_s']:>11.1f}"
                  f"{v['samples_per_s'] / base[k]:>10.2f}{100 * v['mpi_s'] / v['step_s']:>8.1f}%")
    for k, v in results[0]["cases"].items():
        print(f"{k}: {v['params']} parameters, {4 * v['params'] / 1e6:.2f} MB of float32 gradients")
    for r in results:
        if r["world"] < 2:
            continue
        print(f"\nall-reduce on {r['world']} ranks (float32, MPI_Allreduce, median of 7):")
        for nbytes, s in r["allreduce_s"].items():
            nb = int(nbytes)
            bus = 2 * (r["world"] - 1) / r["world"] * nb / s
            print(f"  {nb / 2 ** 20:8.2f} MiB  {s * 1e3:8.2f} ms  algorithm {nb / s / 1e9:6.2f} GB/s  "
                  f"bus {bus / 1e9:6.2f} GB/s")


if __name__ == "__main__":
    main()
