"""deepgrad.distributed, DistributedDataParallel, SyncBatchNorm and DistributedSampler.

In-process tests cover the one-process world (no launcher) and the sampler; the multi-process
behaviour runs the scripts in tests/distributed/ under ``mpirun`` (Open MPI from the ``test``
extra's wheels, or a system MPI) with 2 and 4 processes and a timeout, so a hang fails the test.
"""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SCRIPTS = os.path.join(HERE, "distributed")


def _mpirun():
    beside = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return beside if os.path.exists(beside) else shutil.which("mpirun")


MPIRUN = _mpirun()


def _flags():
    """Open MPI needs leave to start more ranks than cores and to run as root (CI); MPICH's
    launcher knows neither flag."""
    if MPIRUN is None:
        return []
    try:
        version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return ["--oversubscribe", "--allow-run-as-root"] if ("Open MPI" in version or "prte" in version.lower()) else []


MPIRUN_FLAGS = _flags()
needs_mpi = pytest.mark.skipif(MPIRUN is None or not dist.is_available(),
                               reason="no mpirun beside the Python executable or on PATH, or no mpi4py "
                                      "(pip install 'deepgrad[test]' installs mpi4py and Open MPI)")


def mpi_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMPI_MCA_mpi_yield_when_idle="1", OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               MKL_NUM_THREADS="1", PRTE_MCA_prte_silence_shared_fs="1")
    for k in list(env):             # a test run under a launcher must not leak its rank into ours
        if k.startswith(("OMPI_COMM_WORLD", "PMIX_", "PMI_")):
            del env[k]
    return env


# ---- the one-process world and the errors -------------------------------------------------------
@pytest.fixture
def world1():
    dist.init_process_group("mpi", world_size=1)
    yield
    dist.destroy_process_group()


def test_init_outside_a_launcher_says_how_to_launch(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    for k in ("OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ValueError, match=r"mpirun -n 4 python script.py.*deepgrad run -n 4"):
        dist.init_process_group("mpi")
    with pytest.raises(ValueError, match="mpirun"):
        dist.init_process_group("mpi", world_size=2)
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="mpirun"):
        dist.init_process_group()
    assert not dist.is_initialized()


@pytest.mark.parametrize("backend", ["gloo", "nccl"])
def test_other_backends_name_mpi(backend):
    with pytest.raises(NotImplementedError, match="'mpi'"):
        dist.init_process_group(backend, world_size=1)
    with pytest.raises(ValueError, match="'mpi'"):
        dist.init_process_group("carrier-pigeon", world_size=1)


def test_one_process_world(world1):
    assert dist.is_initialized() and dist.get_rank() == 0 and dist.get_world_size() == 1
    assert dist.get_backend() == "mpi"
    with pytest.raises(ValueError, match="twice"):
        dist.init_process_group("mpi", world_size=1)
    t = dg.tensor([1.0, -2.0, 3.0])
    for op in (dist.ReduceOp.SUM, dist.ReduceOp.AVG, dist.ReduceOp.MAX, dist.ReduceOp.MIN, dist.ReduceOp.PRODUCT):
        dist.all_reduce(t, op=op)
    dist.all_reduce(t, async_op=True).wait()
    dist.broadcast(t, src=0)
    assert t.tolist() == [1.0, -2.0, 3.0]
    out = [dg.zeros(3)]
    dist.all_gather(out, t)
    assert out[0].tolist() == t.tolist()
    big = dg.zeros(3)
    dist.all_gather_into_tensor(big, t)
    assert big.tolist() == t.tolist()
    objs = [None]
    dist.all_gather_object(objs, {"a": 1})
    assert objs == [{"a": 1}]
    with pytest.raises(ValueError, match="src=1"):
        dist.broadcast(t, src=1)
    with pytest.raises(ValueError, match="AVG"):
        dist.all_reduce(dg.tensor([1, 2]), op=dist.ReduceOp.AVG)
    with pytest.raises(TypeError, match="Tensor"):
        dist.all_reduce(np.ones(2))
    dist.barrier()


def test_ddp_and_syncbn_in_a_one_process_world_are_the_plain_model(world1):
    dg.manual_seed(0)
    plain = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).double()
    dg.manual_seed(0)
    ddp = nn.parallel.DistributedDataParallel(
        nn.SyncBatchNorm.convert_sync_batchnorm(
            nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).double()))
    assert isinstance(ddp.module[1], nn.SyncBatchNorm)
    x = dg.randn(6, 3, dtype=dg.float64)
    plain(x).pow(2).sum().backward()
    ddp(x).pow(2).sum().backward()
    assert list(ddp.state_dict()) == ["module." + k for k in plain.state_dict()]
    for (k, a), b in zip(plain.named_parameters(), ddp.module.parameters()):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=0, atol=1e-14, err_msg=k)


def test_convert_sync_batchnorm_like_torch():
    ours = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3, momentum=0.3)))
    theirs = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
        torch.nn.Sequential(torch.nn.Conv2d(1, 3, 3), torch.nn.BatchNorm2d(3, momentum=0.3)))
    assert type(ours[1]).__name__ == type(theirs[1]).__name__ == "SyncBatchNorm"
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert (ours[1].momentum, ours[1].eps, ours[1].num_features) == (theirs[1].momentum, theirs[1].eps, 3)


def test_distributed_data_parallel_needs_a_group():
    with pytest.raises(ValueError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))


# ---- DistributedSampler against torch's --------------------------------------------------------
SAMPLER_CASES = [(n, w, drop, shuffle) for n in (0, 1, 7, 10, 13) for w in (1, 3, 4) for drop in (False, True)
                 for shuffle in (False, True) if not (n == 0 and not drop)]


@pytest.mark.parametrize("n,world,drop_last,shuffle", SAMPLER_CASES)
def test_distributed_sampler_like_torch(n, world, drop_last, shuffle):
    ours = [dg.data.DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=shuffle, seed=5,
                                       drop_last=drop_last) for r in range(world)]
    theirs = [torch.utils.data.DistributedSampler(range(n), num_replicas=world, rank=r, shuffle=shuffle, seed=5,
                                                  drop_last=drop_last) for r in range(world)]
    for epoch in (0, 1):
        for o, t in zip(ours, theirs):
            o.set_epoch(epoch)
            t.set_epoch(epoch)
        got, want = [list(o) for o in ours], [list(t) for t in theirs]
        assert [len(o) for o in ours] == [len(t) for t in theirs] == [len(g) for g in got]
        if not shuffle:
            assert got == want                       # index for index
        else:                                       # deepgrad's generator is not torch's: same structure
            order = [i for k in range(len(got[0])) for g in got for i in g[k:k + 1]]
            perm = list(dg.randperm(n, generator=dg.Generator().manual_seed(5 + epoch)).tolist())
            padded = (perm * (1 + len(order) // max(n, 1)))[:len(order)]
            assert order == padded
            if not drop_last:                       # every index is visited (the cut ones differ)
                assert sorted(set(i for g in got for i in g)) == sorted(set(i for t in want for i in t))
    if shuffle and n > 3:
        ours[0].set_epoch(0)
        a = list(ours[0])
        ours[0].set_epoch(1)
        assert list(ours[0]) != a or n < 4


def test_distributed_sampler_misuse_like_torch():
    for kwargs in ({"num_replicas": 2, "rank": 2}, {"num_replicas": 2, "rank": -1}):
        with pytest.raises(ValueError, match="Invalid rank"):
            dg.data.DistributedSampler(range(4), **kwargs)
        with pytest.raises(ValueError, match="Invalid rank"):
            torch.utils.data.DistributedSampler(range(4), **kwargs)
    with pytest.raises(ValueError):     # no group: torch raises ValueError too
        dg.data.DistributedSampler(range(4))


def test_distributed_sampler_feeds_a_dataloader():
    ds = dg.data.TensorDataset(dg.arange(10))
    s = dg.data.DistributedSampler(ds, num_replicas=2, rank=1, shuffle=False)
    got = [b[0].tolist() for b in dg.data.DataLoader(ds, batch_size=2, sampler=s)]
    assert got == [[1, 3], [5, 7], [9]]


# ---- several processes under mpirun --------------------------------------------------------------
# Each job is an mpirun launch of a few seconds, mostly spent starting Python and MPI; the jobs the
# selected tests need all start together when the first of them runs, so their start-up overlaps.
CASES = ["collectives", "mismatch", "unused", "mlp:float64:3", "cnn:float64:2", "cnn:float32:2",
         "mlp:float64:2:accumulate"]
RESUME_HP = dict(epochs=1, subset=64, batch_size=16, verbose=0, plots=False, distributed=True)
JOB_TIMEOUT = 150


def _job_specs(tmp):
    ddp = os.path.join(SCRIPTS, "ddp_equal.py")
    fail = os.path.join(SCRIPTS, "fail.py")
    code = ("import sys; from deepgrad.recipes import train_recipe; "
            f"train_recipe('xor-mlp', out=sys.argv[1], **{RESUME_HP!r})")
    return {"ddp2": (2, [ddp, *CASES]), "ddp4": (4, [ddp, *CASES[3:]]), "raise": (2, [fail, "raise"]),
            "kill": (2, [fail, "kill"]), "cli": (2, [fail, "cli", os.path.join(tmp, "cli")]), "resume": (None, ["-m", "deepgrad", "run", "-n", "2", "python", "-c", code, os.path.join(tmp, "two")])}


# which jobs each test waits for
JOBS_OF_TEST = {"test_ddp_equals_one_process_on_the_global_batch[2]": "ddp2",
                "test_ddp_equals_one_process_on_the_global_batch[4]": "ddp4",
                "test_a_failing_rank_ends_every_rank[raise]": "raise",
                "test_a_failing_rank_ends_every_rank[kill]": "kill",
                "test_a_failing_rank_ends_every_rank[cli]": "cli",
                "test_resume_on_another_number_of_ranks_equals_an_uninterrupted_run": "resume"}


class Jobs:
    def __init__(self, specs, wanted, tmp):
        self.started = {}
        for key in wanted:
            n, args = specs[key]
            log = open(os.path.join(tmp, key + ".log"), "w+")
            cmd = [MPIRUN, *MPIRUN_FLAGS, "-n", str(n), sys.executable, *args]
            if n is None:          # through `deepgrad run`, which finds mpirun and execs it
                cmd = [sys.executable, *args]
            proc = subprocess.Popen(cmd, env=mpi_env(), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
            self.started[key] = (proc, log, time.monotonic(), " ".join(args[:2]))

    def result(self, key):
        """(returncode, output) of job ``key``; fails the test if it outlives JOB_TIMEOUT."""
        proc, log, t0, what = self.started[key]
        try:
            proc.wait(timeout=max(1.0, JOB_TIMEOUT - (time.monotonic() - t0)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            log.seek(0)
            pytest.fail(f"mpirun {what} hung for more than {JOB_TIMEOUT} s:\n{log.read()[-3000:]}")
        log.seek(0)
        return proc.returncode, log.read()

    def close(self):
        for proc, log, _, _ in self.started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()


@pytest.fixture(scope="module")
def jobs(request, tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("mpi"))
    selected = {item.name for item in request.session.items}
    wanted = [job for test, job in JOBS_OF_TEST.items() if test in selected]
    j = Jobs(_job_specs(tmp), wanted, tmp)
    j.tmp = tmp
    yield j
    j.close()


@needs_mpi
@pytest.mark.parametrize("n", [2, 4])
def test_ddp_equals_one_process_on_the_global_batch(n, jobs):
    """Collectives against NumPy, the replica check, unused parameters (2 ranks), then DDP on a
    global batch of 8 split among n ranks against one process: an MLP and a CNN with SyncBatchNorm,
    float64 (1e-10) and float32 (1e-5), weights and running statistics, and no_sync accumulation."""
    rc, out = jobs.result(f"ddp{n}")
    assert rc == 0, out[-4000:]
    assert out.count(": ok") == (len(CASES) if n == 2 else len(CASES) - 3), out[-4000:]


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "kill", "cli"])
def test_a_failing_rank_ends_every_rank(how, jobs):
    rc, out = jobs.result(how)
    assert rc != 0, out[-3000:]
    assert "finished" not in out
    if how == "raise":
        assert "rank 1 fails on purpose" in out and "aborting all ranks" in out, out[-3000:]
    elif how == "cli":
        assert "deepgrad train: error:" in out and "divide evenly" in out, out[-3000:]
    else:
        assert "signal 9" in out or "Killed" in out or "killed" in out, out[-3000:]


@needs_mpi
def test_resume_on_another_number_of_ranks_equals_an_uninterrupted_run(jobs, tmp_path, monkeypatch):
    """Epoch 1 of a recipe on 2 ranks (started with `deepgrad run -n 2`), resumed for epoch 2 in a
    one-process world, ends where two epochs in a one-process world end (the same global batch of 16)."""
    from deepgrad.recipes import train_recipe
    rc, out = jobs.result("resume")
    assert rc == 0, out[-3000:]
    two = os.path.join(jobs.tmp, "two")
    assert sorted(os.listdir(two)) == ["checkpoint.npz", "history.csv", "history.json", "result.json"]
    monkeypatch.setenv("WORLD_SIZE", "1")
    hp = {**RESUME_HP, "epochs": 2}
    try:
        resumed = train_recipe("xor-mlp", out=str(tmp_path / "resumed"), resume=os.path.join(two, "checkpoint.npz"),
                               **hp)
        dist.destroy_process_group()
        whole = train_recipe("xor-mlp", out=str(tmp_path / "whole"), **hp)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    a = dg.load(str(tmp_path / "resumed" / "checkpoint.npz"))["model"]
    b = dg.load(str(tmp_path / "whole" / "checkpoint.npz"))["model"]
    assert set(a) == set(b) and not any(k.startswith("module.") for k in a)
    for k in a:
        np.testing.assert_allclose(a[k].numpy(), b[k].numpy(), rtol=0, atol=1e-5, err_msg=k)
    assert resumed["history"][0]["loss"] == pytest.approx(whole["history"][0]["loss"], abs=1e-6)
    assert resumed["epochs"] == whole["epochs"] == 2


def test_deepgrad_run_builds_the_mpirun_command():
    from deepgrad.cli import mpirun_command
    cmd = mpirun_command(3, ["train", "xor-mlp", "--distributed"], mpirun="/bin/true")
    assert cmd[0] == "/bin/true"
    assert cmd[cmd.index("-n") + 1:] == ["3", sys.executable, "-m", "deepgrad", "train", "xor-mlp", "--distributed"]
    assert mpirun_command(2, ["x.py", "a"], mpirun="/bin/true")[-3:] == [sys.executable, "x.py", "a"]
    with pytest.raises(ValueError, match="nothing to run"):
        mpirun_command(2, [], mpirun="/bin/true")
