"""Training on top of the PyTorch-like core: a Keras-like ``fit``/``evaluate``/``predict``, a
``Trainer`` class, callbacks (progress bar, early stopping, checkpoints, CSV/JSON logs, curves, lr
schedules) and checkpoints that resume bit for bit.

>>> from deepgrad.train import fit, EarlyStopping, ModelCheckpoint       # doctest: +SKIP
>>> history = fit(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters()), train_loader,
...               epochs=10, val_loader=val_loader,
...               callbacks=[EarlyStopping(patience=2), ModelCheckpoint("runs/last.npz")])
"""
from .callbacks import (Callback, CallbackList, History, ProgressBar, EarlyStopping, ModelCheckpoint,
                        CSVLogger, JSONLogger, PlotHistory, LearningRateScheduler, TerminateOnNaN,
                        LambdaCallback)
from .metrics import accuracy, binary_accuracy, top_k_accuracy, get_metric
from .plots import plot_history
from .trainer import (Trainer, fit, evaluate, predict, get_optimizer, get_loss, load_checkpoint,
                      capture_rng_state, restore_rng_state)
from .trainer import validate_checkpoint  # noqa: E402
from .tensorboard import TensorBoard  # noqa: E402  (tensorboardX is imported when it logs)

__all__ = ["Trainer", "fit", "evaluate", "predict", "History", "Callback", "CallbackList", "ProgressBar",
           "EarlyStopping", "ModelCheckpoint", "CSVLogger", "JSONLogger", "PlotHistory",
           "LearningRateScheduler", "TerminateOnNaN", "LambdaCallback", "accuracy", "binary_accuracy",
           "top_k_accuracy", "get_metric", "plot_history", "get_optimizer", "get_loss", "load_checkpoint",
           "capture_rng_state", "restore_rng_state", "validate_checkpoint", "TensorBoard"]
