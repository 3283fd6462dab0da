"""The lecture notes' MNIST network trained with the Keras-like ``fit`` on top of the PyTorch-like
core: data loader, model, optimiser, schedule, early stopping, checkpoints, logs and curves.

    python examples/mnist_fit.py            # ~98% test accuracy
    python examples/mnist_fit.py 2000 2     # first 2000 images, 2 epochs: a quick look
"""
import sys

import numpy as np

import deepgrad as dg
from deepgrad import nn, optim
from deepgrad.data import MNIST, DataLoader, TensorDataset
from deepgrad.train import CSVLogger, EarlyStopping, ModelCheckpoint, PlotHistory, fit

n = int(sys.argv[1]) if len(sys.argv) > 1 else None
epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 10
dg.manual_seed(0)


def arrays(train):
    ds = MNIST(train=train)                               # the copy bundled with deepgrad
    x = np.asarray(ds.data[:n], np.float32).reshape(-1, 784) / 255
    return (x - 0.1307) / 0.3081, np.asarray(ds.targets[:n])


x, y = arrays(True)
cut = len(x) * 11 // 12                                   # hold out 1/12 (5,000 images) for validation
train = DataLoader(TensorDataset(x[:cut], y[:cut]), batch_size=128, shuffle=True)
val = DataLoader(TensorDataset(x[cut:], y[cut:]), batch_size=1000)
test = DataLoader(TensorDataset(*arrays(False)), batch_size=1000)

model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                      nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.2),
                      nn.Linear(512, 10))
opt = optim.Adam(model.parameters(), lr=1e-3)
sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * len(train))

history = fit(model, nn.CrossEntropyLoss(), opt, train, epochs=epochs, val_loader=val,
              scheduler=sched, scheduler_interval="batch",
              callbacks=[EarlyStopping(monitor="val_loss", patience=3),
                         ModelCheckpoint("runs/example/last.npz"),
                         CSVLogger("runs/example/history.csv"), PlotHistory("runs/example")])
result = history.trainer.evaluate(test)                   # the best epoch's weights (EarlyStopping)
print(f"test accuracy {100 * result['accuracy']:.2f}% after {len(history)} epochs; "
      "checkpoint, log and curves in runs/example/")
