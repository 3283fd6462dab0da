"""Run under mpirun: rank 1 fails in the middle of DDP training while the others keep training
(and would wait forever in their next all-reduce). ``fail.py raise``: rank 1 raises;
``fail.py kill``: rank 1 is killed by SIGKILL; ``fail.py cli``: ``deepgrad train --distributed``
refuses rank 1's options (a handled error, exit status 1) while rank 0 trains. All ranks must exit,
with an error."""
import os
import signal
import sys

import deepgrad as dg
import deepgrad.distributed as dist
from deepgrad import nn

dist.init_process_group("mpi")
rank = dist.get_rank()
if sys.argv[1] == "cli":
    from deepgrad import cli
    batch = "15" if rank == 1 else "16"
    sys.exit(cli.main(["train", "xor-mlp", "--distributed", "--subset", "64", "--batch-size", batch, "--epochs", "50",
                       "--out", sys.argv[2], "-q"]))
dg.manual_seed(0)
model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))
opt = dg.optim.SGD(model.parameters(), lr=0.01)
for step in range(100000):
    if rank == 1 and step == 3:
        if sys.argv[1] == "raise":
            raise RuntimeError("rank 1 fails on purpose")
        os.kill(os.getpid(), signal.SIGKILL)
    opt.zero_grad()
    model(dg.randn(3, 4)).pow(2).mean().backward()
    opt.step()
print("rank", rank, "finished: the failure was not noticed")
