"""Real PyTorch programs, written the way their authors write them, run on deepgrad.

Each program in ``tests/programs/`` is a PyTorch script in the style of a widely used one (the
official examples' MNIST, VAE, DCGAN, word-level language model, time-sequence prediction and
regression scripts; the quick-start, CIFAR-10 and custom-Function tutorials; nanoGPT- and
minGPT-style GPT training; a scalar-autograd check file). Each is run three ways:

* on PyTorch itself, with several seeds: the oracle and its seed-to-seed spread;
* unchanged, through ``python -m deepgrad.torch_compat`` (``torch`` is deepgrad);
* with only the import lines changed (``import deepgrad as torch``, ``deepgrad.vision`` for
  torchvision).

deepgrad's final loss must lie within PyTorch's spread (or match it where the program has no
randomness). torchvision cannot be installed beside the torch 2.13 CPU wheel, so the PyTorch runs
use a small stand-in (``programs/oracle_stubs``) for the few torchvision pieces they touch.
"""
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from deepgrad.data.datasets import shared_datasets_dir

HERE = Path(__file__).resolve().parent / "programs"
DRIVE = str(HERE / "_drive.py")

# program: (extra args, torch seeds, deepgrad seeds (shim, import-changed), tolerance). tolerance: ("exact", rel) when the
# program draws no random numbers; ("spread", k, rel_floor) otherwise: |dg - mean| <= max(k * std,
# rel_floor * |mean|).
PROGRAMS = {
    "scalar_autograd.py": ([], ["0"], ["0", "0"], ("exact", 1e-9)),
    "legendre_function.py": ([], ["0"], ["0", "0"], ("exact", 1e-5)),
    "regression.py": ([], ["0", "1", "2", "3"], ["4", "5"], ("spread", 4, 1.0)),
    "mnist_cnn.py": ([], ["1", "2", "3"], ["4", "5"], ("spread", 4, 0.15)),
    "vae.py": ([], ["1", "2", "3"], ["4", "5"], ("spread", 4, 0.05)),
    "dcgan.py": ([], ["1", "2", "3"], ["4", "5"], ("spread", 4, 0.15)),
    "quickstart.py": ([], ["0", "1", "2"], ["3", "4"], ("spread", 4, 0.1)),
    "cifar_tutorial.py": ([], ["0", "1", "2"], ["3", "4"], ("spread", 4, 0.05)),
    "word_lm.py": ([], ["1", "2", "3"], ["4", "5"], ("spread", 4, 0.05)),
    "time_sequence.py": ([], ["0", "1", "2"], ["3", "4"], ("spread", 4, 0.5)),
    "nanogpt_like.py": ([], ["1", "2", "3"], ["4", "5"], ("spread", 4, 0.05)),
    "mingpt_like.py": ([], ["1", "2", "3"], ["4", "5"], ("spread", 4, 0.2)),
}


def _env(extra_path=None):
    env = dict(os.environ)
    data = shared_datasets_dir()
    env["DEEPGRAD_DATA"] = str(data)
    env["OMP_NUM_THREADS"] = env["OPENBLAS_NUM_THREADS"] = "1"
    env["PYTHONHASHSEED"] = "0"      # mingpt_like splits its data by hash(str(...)), as minGPT's demo does
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([extra_path, env.get("PYTHONPATH", "")])
    return env


def _start(args, env, cwd):
    return subprocess.Popen([sys.executable, *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _results(proc, what):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, f"{what} failed (exit {proc.returncode}):\n{out[-3000:]}\n{err[-6000:]}"
    vals = [float(line.split()[2]) for line in out.splitlines() if line.startswith("RESULT ")]
    assert vals, f"{what} printed no result:\n{out[-3000:]}"
    return vals


@pytest.mark.skipif(shared_datasets_dir() is None, reason="shared datasets folder not found")
@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_pytorch_program_runs_on_deepgrad(program, tmp_path):
    extra, torch_seeds, dg_seeds, tol = PROGRAMS[program]
    prog = str(HERE / program)
    procs = {
        "torch": _start([DRIVE, prog, "--seeds", *torch_seeds, "--", *extra],
                        _env(str(HERE / "oracle_stubs")), tmp_path),
        "shim": _start(["-m", "deepgrad.torch_compat", DRIVE, prog, "--seeds", dg_seeds[0], "--", *extra],
                       _env(), tmp_path),
        "import-changed": _start([DRIVE, prog, "--rewrite", "--seeds", dg_seeds[1], "--", *extra],
                                 _env(), tmp_path),
    }
    ref = _results(procs["torch"], f"{program} on PyTorch")
    for how in ("shim", "import-changed"):
        for v in _results(procs[how], f"{program} on deepgrad ({how})"):
            if tol[0] == "exact":
                assert v == pytest.approx(ref[0], rel=tol[1]), f"{program} ({how}): {v} vs PyTorch {ref[0]}"
            else:
                mean, std = statistics.fmean(ref), statistics.stdev(ref)
                bound = max(tol[1] * std, tol[2] * abs(mean))
                assert abs(v - mean) <= bound, (f"{program} ({how}): final loss {v:.5g} outside PyTorch's "
                                                f"spread {ref} (mean {mean:.5g}, allowed +-{bound:.3g})")
