"""``deepgrad.torch_compat``: unchanged PyTorch programs run on deepgrad, never on the real torch.

Each shim run is a fresh interpreter (the test process has the real torch imported as the oracle,
and install() must refuse to run next to it, which is itself checked here).
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import deepgrad as dg
from deepgrad import torch_compat

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# An ordinary PyTorch training script: nothing in it knows about deepgrad. Weights come from a fixed
# formula and the batches are full, so PyTorch and deepgrad must print the same losses.
SCRIPT = textwrap.dedent('''
    import json, sys
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    import torch.optim as optim
    from torch.utils.data import DataLoader, TensorDataset
    from torch.optim.lr_scheduler import StepLR

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)
            self.fc2 = nn.Linear(8, 3)

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)))

    model = Net().to(device)
    with torch.no_grad():
        for i, p in enumerate(model.parameters()):
            n = p.numel()
            p.copy_((torch.arange(n, dtype=torch.float32).reshape(p.shape) * 0.37 + i).sin() * 0.5)
    x = (torch.arange(96, dtype=torch.float32).reshape(24, 4) * 0.731).cos()
    y = (torch.arange(24) * 7) % 3
    loader = DataLoader(TensorDataset(x, y), batch_size=24, shuffle=False)
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    sched = StepLR(opt, step_size=2, gamma=0.5)
    losses = []
    for epoch in range(6):
        for xb, yb in loader:
            xb, yb = xb.to(device, non_blocking=True), yb.to(device)
            opt.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
        sched.step()
        losses.append(float(f"{loss:.6f}"))
    mods = [m for m in list(sys.modules) if m == "torch" or m.startswith("torch.")]
    real = sorted(m for m in mods if "site-packages/torch" in (getattr(sys.modules[m], "__file__", "") or ""))
    print(json.dumps({"losses": losses, "torch_name": torch.__name__, "nn_name": nn.__name__,
                      "linear_module": nn.Linear.__module__, "real_torch_files": real,
                      "argv": sys.argv, "main": __name__}))
''')


def run_py(args, cwd, env_extra=None, timeout=180):
    env = dict(os.environ, PYTHONPATH=ROOT, **(env_extra or {}))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_unchanged_torch_script_runs_on_deepgrad_with_torchs_losses(tmp_path, capsys, monkeypatch):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    r = run_py(["-m", "deepgrad.torch_compat", str(script), "--flag", "7"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ours = json.loads(r.stdout.strip().splitlines()[-1])
    assert ours["torch_name"] == "deepgrad" and ours["nn_name"] == "deepgrad.nn"
    assert ours["linear_module"].startswith("deepgrad.")
    assert ours["real_torch_files"] == []                   # the real torch was never imported
    assert ours["argv"] == [str(script), "--flag", "7"] and ours["main"] == "__main__"
    monkeypatch.setattr(sys, "argv", [str(script)])       # the same file under the real PyTorch, in-process
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)   # restored after
    exec(compile(SCRIPT, str(script), "exec"), {"__name__": "__main__"})
    theirs = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert theirs["torch_name"] == "torch"
    assert ours["losses"] == pytest.approx(theirs["losses"], rel=1e-4, abs=1e-5)
    assert ours["losses"][-1] < ours["losses"][0]


NAMES_CHECK = textwrap.dedent('''
    import sys, json
    import deepgrad, deepgrad.torch_compat as tc
    had_utils = hasattr(deepgrad, "utils")
    tc.install()
    import torch, torch.nn, torch.nn.functional, torch.optim.lr_scheduler, torch.utils.data
    import torch.cuda.amp, torch.backends.cudnn, torch.distributed, torch.jit, torch.amp, torch.autograd
    import torchvision, torchvision.transforms as T
    from torchvision import datasets, models
    from torch.utils.data import DataLoader
    from torch.nn.parallel import DistributedDataParallel, DataParallel
    from torch.cuda.amp import GradScaler, autocast
    import torch.optim.sgd                       # resolved by the hook to deepgrad.optim.sgd
    import torch.utils.data.dataloader as tdl    # torch.utils.data.X -> deepgrad.data.X
    import deepgrad.vision
    out = {
        "same": [torch is deepgrad, torch.nn is deepgrad.nn, sys.modules["torch.utils.data"] is deepgrad.data,
                 torch.utils.data.DataLoader is deepgrad.data.DataLoader, T is deepgrad.vision.transforms,
                 torchvision is deepgrad.vision, torchvision.datasets is deepgrad.vision.datasets,
                 models is deepgrad.vision.models, T.ToTensor is deepgrad.data.transforms.ToTensor,
                 datasets.MNIST is deepgrad.data.MNIST, torchvision.utils is deepgrad.vision.utils,
                 torch.cuda.amp.GradScaler is deepgrad.cuda.amp.GradScaler, DataParallel is deepgrad.nn.DataParallel,
                 torch.optim.sgd is deepgrad.optim.sgd, deepgrad.optim.sgd.__spec__.name == "deepgrad.optim.sgd",
                 tdl is deepgrad.data.dataloader],
        "errors": {},
    }
    for name in ("torch._C", "torch.no_such_module", "torchvision.ops", "torch.utils.cpp_extension"):
        try:
            __import__(name)
            out["errors"][name] = "imported"
        except ModuleNotFoundError as e:
            out["errors"][name] = "deepgrad" in str(e)
    tc.uninstall()
    out["after"] = [n for n in sys.modules if n == "torch" or n.startswith(("torch.", "torchvision"))]
    out["utils_restored"] = hasattr(deepgrad, "utils") == had_utils
    import importlib.util
    spec = importlib.util.find_spec("torch")          # the real one is findable again (not imported: slow)
    out["reimport"] = None if spec is None else spec.origin
    print(json.dumps(out))
''')


def test_install_maps_names_blocks_missing_ones_and_uninstalls(tmp_path):
    (tmp_path / "check.py").write_text(NAMES_CHECK)
    # PYTHONNOUSERSITE etc. unchanged: the real torch *is* importable here, so "reimport" shows uninstall works
    r = run_py([str(tmp_path / "check.py")], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert all(out["same"]), out["same"]
    assert out["errors"] == {k: True for k in out["errors"]}, out["errors"]
    assert out["after"] == [] and out["utils_restored"]
    assert out["reimport"] == torch.__file__


def test_install_refuses_next_to_the_real_torch():
    assert "torch" in sys.modules and sys.modules["torch"] is torch   # this test process imported the oracle
    with pytest.raises(RuntimeError, match="already imported"):
        torch_compat.install()
    assert not torch_compat.is_installed() and sys.modules["torch"] is torch


def test_module_mode_help_and_missing_file(tmp_path):
    pkg = tmp_path / "proj"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "run.py").write_text("import sys, torch\nprint(torch.__name__, sys.argv[1:], __name__)\n")
    r = run_py(["-m", "deepgrad.torch_compat", "-m", "proj.run", "a", "b"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["deepgrad", "['a',", "'b']", "__main__"]
    assert torch_compat.main(["--help"]) == 0
    assert torch_compat.main([]) == 2
    assert torch_compat.main([str(tmp_path / "nope.py")]) == 2


def test_mapping_table_only_names_deepgrad_modules():
    # every eagerly mapped name resolves to a deepgrad module (or a stand-in package), never to torch
    for name in torch_compat.MAPPED:
        target = torch_compat._target(name)
        assert target is None or target.startswith("deepgrad"), (name, target)
    assert torch_compat._target("torch.utils.data.dataloader") == "deepgrad.data.dataloader"
    assert torch_compat._target("torch.utils.data") == "deepgrad.data"
    assert torch_compat._target("torchvision.transforms") == "deepgrad.vision.transforms"
    assert torch_compat._target("torch._C") == "deepgrad._C"
    assert torch_compat._deepgrad_module("torch._C") is None            # private names are never mapped
    assert torch_compat._deepgrad_module("torchvision.io") is None      # deepgrad.vision has no io
    assert torch_compat._target("numpy") is None
    assert dg.nn.parallel.DataParallel is dg.nn.DataParallel
