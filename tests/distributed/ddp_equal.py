"""Run under mpirun: DDP on a global batch split across the ranks ends where one process training
on the whole batch ends (weights and batch-norm buffers), and every replica ends equal.

Usage: ddp_equal.py CASE...; a CASE is MODEL:DTYPE:STEPS[:accumulate] with MODEL mlp or cnn (a
small CNN whose batch norms become SyncBatchNorm). ``accumulate`` runs each step as two
micro-batches, the first under ``no_sync()``. Two more cases: ``collectives`` (each collective
against the values NumPy computes from every rank's input) and ``mismatch`` (replicas that differ
are named at DDP construction). Exits 1 on a mismatch; rank 0 prints each case.
"""
import sys

import numpy as np

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn

dist.init_process_group("mpi")
rank, world = dist.get_rank(), dist.get_world_size()
B = 8                                       # the global batch


def build(kind, dtype, seed):
    dg.manual_seed(seed)
    if kind == "mlp":
        m = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    else:
        m = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3))
    return m.to(dtype)


def data(kind, dtype, step):
    g = np.random.default_rng(1000 + step)
    shape = (B, 6) if kind == "mlp" else (B, 2, 8, 8)
    return dg.tensor(g.standard_normal(shape), dtype=dtype), dg.tensor(g.integers(0, 3, B))


def train(model, kind, dtype, steps, parts, shard):
    """``parts`` micro-batches per step (all but the last under no_sync); ``shard`` picks the rows."""
    opt = dg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    for step in range(steps):
        x, y = data(kind, dtype, step)
        x, y = shard(x), shard(y)
        opt.zero_grad()
        n = x.shape[0] // parts
        for k in range(parts):
            xs, ys = x[k * n:(k + 1) * n], y[k * n:(k + 1) * n]
            if k < parts - 1:
                with model.no_sync():
                    (loss_fn(model(xs), ys) / parts).backward()
            else:
                (loss_fn(model(xs), ys) / parts).backward()
        opt.step()
    return model


def case(spec):
    kind, dtype_name, steps, *rest = spec.split(":")
    dtype, steps, parts = getattr(dg, dtype_name), int(steps), 2 if rest == ["accumulate"] else 1
    tol = 1e-10 if dtype_name == "float64" else 1e-5
    # Rank r builds its replica from its own seed: DDP must broadcast rank 0's weights.
    replica = build(kind, dtype, seed=1 + rank)
    if kind == "cnn":
        replica = nn.SyncBatchNorm.convert_sync_batchnorm(replica)
    ddp = nn.parallel.DistributedDataParallel(replica, bucket_cap_mb=0.0005)   # several buckets
    per = B // world
    train(ddp, kind, dtype, steps, parts, lambda t: t[rank * per:(rank + 1) * per])
    ours = {k: v.numpy().astype(np.float64) for k, v in ddp.module.state_dict().items()}
    flat = np.concatenate([v.reshape(-1) for v in ours.values()])
    everyone = [None] * world
    dist.all_gather_object(everyone, flat)
    if rank != 0:
        return True
    spread = max(float(np.max(np.abs(f - flat))) for f in everyone)
    ref = train(build(kind, dtype, seed=1), kind, dtype, steps, 1, lambda t: t)   # one process, whole batch
    worst = max(float(np.max(np.abs(ours[k] - v.numpy().astype(np.float64))))
                for k, v in ref.state_dict().items())
    ok = worst <= tol and spread == 0 and set(ours) == set(ref.state_dict())
    print(f"{spec} on {world} ranks: max difference {worst:.3g} (tolerance {tol:g}), replicas differ by "
          f"{spread:.3g}: {'ok' if ok else 'MISMATCH'}", flush=True)
    return ok


def collectives():
    W, R = world, rank
    base = np.arange(6, dtype=np.float64).reshape(2, 3) + 1.0
    mine = [base * (r + 1) - r for r in range(W)]            # what rank r holds
    ok = []

    def check(name, got, want):
        good = np.array_equal(np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64))
        ok.append(good)
        if not good:
            print(f"rank {R}: {name}: got {got}, want {want}", flush=True)

    ops = {"SUM": np.sum, "AVG": np.mean, "MAX": np.max, "MIN": np.min, "PRODUCT": np.prod}
    for name, f in ops.items():
        t = dg.tensor(mine[R])
        dist.all_reduce(t, op=getattr(dist.ReduceOp, name))
        check("all_reduce " + name, t.numpy(), f(np.stack(mine), axis=0))
    t = dg.tensor(mine[R]).t()                                 # non-contiguous, async
    work = dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True)
    work.wait()
    check("async all_reduce of a transposed tensor", t.numpy(), np.mean(np.stack(mine), axis=0).T)
    for dtype in (dg.float32, dg.int64, dg.float16):
        t = dg.tensor(mine[R]).to(dtype)
        dist.all_reduce(t)
        check(f"all_reduce {dtype}", t.numpy(), np.sum(np.stack(mine), axis=0))
    t = dg.tensor(mine[R])
    dist.broadcast(t, src=W - 1)
    check("broadcast", t.numpy(), mine[W - 1])
    t = dg.tensor(mine[R])
    dist.reduce(t, dst=1, op=dist.ReduceOp.MAX)
    check("reduce", t.numpy(), np.max(np.stack(mine), axis=0) if R == 1 else mine[R])
    out = [dg.zeros(2, 3, dtype=dg.float64) for _ in range(W)]
    dist.all_gather(out, dg.tensor(mine[R]))
    check("all_gather", np.stack([o.numpy() for o in out]), np.stack(mine))
    cat = dg.zeros(2 * W, 3, dtype=dg.float64)
    dist.all_gather_into_tensor(cat, dg.tensor(mine[R]))
    check("all_gather_into_tensor", cat.numpy(), np.concatenate(mine))
    stacked = dg.zeros(W, 2, 3, dtype=dg.float64)
    dist.all_gather_into_tensor(stacked, dg.tensor(mine[R]))
    check("all_gather_into_tensor (stacked)", stacked.numpy(), np.stack(mine))
    # reduce_scatter: rank r's list item k is mine[r] * (k + 1); rank k gets sum_r mine[r] * (k + 1).
    out = dg.zeros(2, 3, dtype=dg.float64)
    dist.reduce_scatter(out, [dg.tensor(mine[R] * (k + 1)) for k in range(W)])
    check("reduce_scatter", out.numpy(), np.sum(np.stack(mine), axis=0) * (R + 1))
    out = dg.zeros(2, 3, dtype=dg.float64)
    dist.reduce_scatter_tensor(out, dg.tensor(np.concatenate([mine[R] * (k + 1) for k in range(W)])),
                               op=dist.ReduceOp.AVG)
    check("reduce_scatter_tensor AVG", out.numpy(), np.mean(np.stack(mine), axis=0) * (R + 1))
    objs = [None] * W
    dist.all_gather_object(objs, {"rank": R})
    ok.append(objs == [{"rank": r} for r in range(W)])
    lst = [R, "x"] if R == 1 else [None, None]
    dist.broadcast_object_list(lst, src=1)
    ok.append(lst == [1, "x"])
    dist.barrier()
    everyone = [None] * W
    dist.all_gather_object(everyone, all(ok))
    if R == 0:
        print(f"collectives on {W} ranks: {'ok' if all(everyone) else 'MISMATCH'}", flush=True)
    return all(everyone)


def mismatch():
    """Rank 1's replica has a wider second layer: every rank's DDP names it and rank 1."""
    m = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 3 if rank != 1 else 5))
    try:
        nn.parallel.DistributedDataParallel(m)
    except RuntimeError as e:
        msg = str(e)
        good = "'1.weight'" in msg and "rank 1" in msg and "(3, 3)" in msg and "(5, 3)" in msg
    else:
        msg, good = "no error", False
    everyone = [None] * world
    dist.all_gather_object(everyone, good)
    if rank == 0:
        print(f"mismatch on {world} ranks: {'ok' if all(everyone) else 'MISMATCH'} ({msg})", flush=True)
    return all(everyone)


class Branchy(nn.Module):
    """``head_b`` is used by rank 0 only (and by nobody when ``use_b`` is False)."""

    def __init__(self):
        super().__init__()
        self.body, self.head_a, self.head_b, self.spare = nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(4, 2), nn.Linear(2, 2)

    def forward(self, x, use_b):
        h = self.body(x)
        return self.head_a(h) + (self.head_b(h) if use_b else 0)


def unused():
    """Parameters without a gradient: a clear error by default; with find_unused_parameters=True,
    a parameter used on some ranks is averaged over all (0 where unused), one used nowhere keeps
    no gradient, and the others are averaged as usual."""
    ok = True
    dg.manual_seed(0)
    ddp = nn.parallel.DistributedDataParallel(Branchy().double())
    x = dg.tensor(np.random.default_rng(rank).standard_normal((4, 3)))
    try:
        ddp(x, True).sum().backward()
    except RuntimeError as e:
        ok &= "spare" in str(e) and "find_unused_parameters=True" in str(e)
    else:
        ok = False
    dg.manual_seed(0)
    ddp = nn.parallel.DistributedDataParallel(Branchy().double(), find_unused_parameters=True)
    ddp(x, rank == 0).sum().backward()
    ok &= ddp.module.spare.weight.grad is None
    # the expected averages, from every rank's inputs
    xs = [np.random.default_rng(r).standard_normal((4, 3)) for r in range(world)]
    w = ddp.module.head_b.weight.detach().numpy()
    ref = Branchy().double()
    ref.load_state_dict(ddp.module.state_dict())
    want_b = np.zeros_like(w)
    want_a = np.zeros_like(w)
    for r in range(world):
        ref.zero_grad()
        ref(dg.tensor(xs[r]), r == 0).sum().backward()
        want_a += ref.head_a.weight.grad.numpy() / world
        if r == 0:
            want_b += ref.head_b.weight.grad.numpy() / world
    ok &= np.allclose(ddp.module.head_b.weight.grad.numpy(), want_b, atol=1e-12)
    ok &= np.allclose(ddp.module.head_a.weight.grad.numpy(), want_a, atol=1e-12)
    everyone = [None] * world
    dist.all_gather_object(everyone, bool(ok))
    if rank == 0:
        print(f"unused on {world} ranks: {'ok' if all(everyone) else 'MISMATCH'}", flush=True)
    return all(everyone)


named = {"collectives": collectives, "mismatch": mismatch, "unused": unused}
results = [named[spec]() if spec in named else case(spec) for spec in sys.argv[1:]]
sys.exit(0 if all(results) else 1)
