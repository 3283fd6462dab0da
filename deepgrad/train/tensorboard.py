"""The ``TensorBoard`` callback: ``fit``'s curves in TensorBoard (Keras' callback of that name).

>>> from deepgrad.train import fit, TensorBoard                          # doctest: +SKIP
>>> fit(model, "cross_entropy", opt, train_loader, epochs=10, val_loader=val_loader,
...     callbacks=[TensorBoard("runs/mlp", update_freq=50, histogram_freq=1)])
$ tensorboard --logdir runs
"""
from __future__ import annotations

from .callbacks import Callback

__all__ = ["TensorBoard"]


class TensorBoard(Callback):
    """Log the training run to TensorBoard event files.

    * after every epoch: each logged value (``loss``, the metrics, ``val_*``, ``lr``) as
      ``epoch/NAME`` at step ``epoch + 1``;
    * with ``update_freq="batch"`` (every batch) or an int N (every N batches): the batch loss and
      the learning rate as ``batch/loss`` and ``batch/lr`` at the global batch number (from 1,
      continuing across epochs and resumed runs);
    * every ``histogram_freq`` epochs (0: never): histograms of each parameter
      (``weights/NAME``) and of its last gradient (``grads/NAME``);
    * with ``example_input`` (a batch of inputs): the model's graph once, when training begins.

    ``log_dir`` defaults to torch's ``runs/DATE_HOST``; pass ``writer`` to log into a
    :class:`~deepgrad.utils.tensorboard.SummaryWriter` of your own (it is flushed, not closed, at
    the end). Needs tensorboardX: ``pip install deepgrad[tensorboard]``.
    """

    def __init__(self, log_dir=None, update_freq="epoch", histogram_freq=0, example_input=None,
                 writer=None, comment=""):
        if not (update_freq in ("epoch", "batch") or (isinstance(update_freq, int) and update_freq > 0)):
            raise ValueError(f"TensorBoard: update_freq must be 'epoch', 'batch' or a positive int, "
                             f"got {update_freq!r}")
        if not (isinstance(histogram_freq, int) and histogram_freq >= 0):
            raise ValueError(f"TensorBoard: histogram_freq must be an int >= 0, got {histogram_freq!r}")
        self.log_dir = log_dir
        self.comment = comment
        self.update_freq = 1 if update_freq == "batch" else update_freq
        self.histogram_freq = histogram_freq
        self.example_input = example_input
        self.writer = writer
        self._own_writer = writer is None
        self.step = 0                   # batches trained so far, over all epochs

    def on_train_begin(self, logs=None):
        if self.writer is None:
            from ..utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(self.log_dir, comment=self.comment)
        if self.example_input is not None:
            self.writer.add_graph(self.model, self.example_input)

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.update_freq != "epoch" and self.step % self.update_freq == 0:
            self.writer.add_scalar("batch/loss", logs["loss"], self.step)
            self.writer.add_scalar("batch/lr", self.trainer.optimizer.param_groups[0]["lr"], self.step)

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"epoch/{name}", value, epoch + 1)
        if self.histogram_freq and (epoch + 1) % self.histogram_freq == 0:
            for name, p in self.model.named_parameters():
                self.writer.add_histogram(f"weights/{name}", p, epoch + 1)
                if p.grad is not None:
                    self.writer.add_histogram(f"grads/{name}", p.grad, epoch + 1)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is None:
            return
        if self._own_writer:
            self.writer.close()
            self.writer = None
        else:
            self.writer.flush()

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, state):
        self.step = int(state["step"])
