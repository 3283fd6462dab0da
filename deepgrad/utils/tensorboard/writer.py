"""``SummaryWriter``: torch.utils.tensorboard's writer, on tensorboardX's event files.

What each part does:

* tensorboardX (optional dependency) supplies the protocol buffers, the TFRecord framing with its
  CRCs and the background thread that flushes an event file every ``flush_secs``; deepgrad uses
  its ``FileWriter`` and summary builders, not its ``SummaryWriter`` (whose ``add_scalars`` folders
  and image scaling differ from torch's).
* This module turns deepgrad Tensors (and CuPy arrays, lists, numbers) into NumPy arrays and builds
  each summary the way torch does, so that a run logged with deepgrad looks in TensorBoard like
  the same run logged with PyTorch.
"""
from __future__ import annotations

import itertools
import os
import socket
import sys
import time
from datetime import datetime

import numpy as np

from ... import backend

__all__ = ["SummaryWriter"]

INSTALL_HINT = "pip install deepgrad[tensorboard]"
_TBX = None
_file_counter = itertools.count()


def _tbx():
    """tensorboardX's modules (imported on first use). tensorboardX imports torch when it can, only
    to name ``torch.Tensor`` in type hints; deepgrad hands it NumPy arrays, so torch is hidden
    during that import when nothing has imported it yet (that saves the 2-6 s torch takes)."""
    global _TBX
    if _TBX is not None:
        return _TBX
    hide = "torch" not in sys.modules
    if hide:
        sys.modules["torch"] = None          # ``import torch`` raises ImportError meanwhile
    try:
        import tensorboardX.summary as summary
        import tensorboardX.utils as utils
        from tensorboardX.writer import FileWriter
        from tensorboardX.proto import (api_pb2, attr_value_pb2, event_pb2, graph_pb2, node_def_pb2,
                                        plugin_hparams_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2,
                                        versions_pb2)
    except ImportError as e:
        raise ImportError(f"deepgrad.utils.tensorboard needs the tensorboardX package, which could not "
                          f"be imported ({e}); install it with `{INSTALL_HINT}`") from e
    finally:
        if hide and sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]

    class NS:
        pass
    ns = NS()
    for k, v in dict(summary=summary, utils=utils, FileWriter=FileWriter, api=api_pb2,
                     attr_value=attr_value_pb2, event=event_pb2, graph=graph_pb2, node_def=node_def_pb2,
                     hparams=plugin_hparams_pb2, pb=summary_pb2, tensor=tensor_pb2,
                     shape=tensor_shape_pb2, versions=versions_pb2).items():
        setattr(ns, k, v)
    _TBX = ns
    return ns


def to_numpy(x):
    """A NumPy array of ``x`` (a deepgrad Tensor, a NumPy or CuPy array, a list or a number),
    detached; float16/bfloat16 become float32 (protobuf and ``np.histogram`` need native floats)."""
    from ...tensor import Tensor
    if isinstance(x, Tensor):
        a = backend.to_numpy(x.detach().array)
    elif isinstance(x, np.ndarray):
        a = x
    elif hasattr(x, "__cuda_array_interface__"):
        a = backend.to_numpy(x)
    else:
        a = np.asarray(x)
    if a.dtype.kind not in "biuf" or a.dtype == np.float16:
        a = a.astype(np.float32)
    return a


def _one_value(x, what):
    a = to_numpy(x)
    if a.size != 1:
        # torch asserts here too (AssertionError), so the same misuse raises the same type
        raise AssertionError(f"SummaryWriter.{what}: the value should contain one element, got shape "
                             f"{tuple(a.shape)}")
    return a.reshape(()).item()


def tensorflow_bins():
    """TensorFlow's default histogram edges: +-1e-12 growing by 10 % a step up to 1e20, and 0."""
    edges, v = [], 1e-12
    while v < 1e20:
        edges.append(v)
        v *= 1.1
    return [-e for e in reversed(edges)] + [0] + edges


def _default_log_dir(comment):
    stamp = datetime.now().strftime("%b%d_%H-%M-%S")
    return os.path.join("runs", stamp + "_" + socket.gethostname() + comment)


class SummaryWriter:
    """Write TensorBoard event files into ``log_dir`` (torch's ``SummaryWriter``).

    ``log_dir`` defaults to ``runs/MonDD_HH-MM-SS_HOSTNAME`` + ``comment``. Events are queued and
    written by a background thread at least every ``flush_secs`` seconds, when ``max_queue``
    are pending, on :meth:`flush` and on :meth:`close` (also at the end of a ``with`` block).

    >>> from deepgrad.utils.tensorboard import SummaryWriter         # doctest: +SKIP
    >>> with SummaryWriter("runs/exp1") as w:
    ...     for step in range(100):
    ...         w.add_scalar("loss/train", 1.0 / (step + 1), step)

    Needs tensorboardX (``pip install deepgrad[tensorboard]``); without it the constructor raises
    ImportError saying so.
    """

    def __init__(self, log_dir=None, comment="", purge_step=None, max_queue=10, flush_secs=120,
                 filename_suffix=""):
        _tbx()
        self.log_dir = os.fspath(log_dir) if log_dir else _default_log_dir(comment)
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = tensorflow_bins()

    # ---- files ------------------------------------------------------------------------------------
    def _new_file_writer(self, path):
        # tensorboardX names a file by the second and the host only: a second writer in the same
        # folder within that second would truncate the first file; the process id and a counter
        # keep names apart, as torch's do
        suffix = f".{os.getpid()}.{next(_file_counter)}{self.filename_suffix}"
        return _tbx().FileWriter(path, self.max_queue, self.flush_secs, suffix)

    def _get_file_writer(self):
        """The writer of ``log_dir`` (re-created after :meth:`close`, as torch does)."""
        if self.all_writers is None or self.file_writer is None:
            tbx = _tbx()
            self.file_writer = fw = self._new_file_writer(self.log_dir)
            self.all_writers = {fw.get_logdir(): fw}
            if self.purge_step is not None:
                # TensorBoard drops the events of this run at steps >= purge_step written before
                step, self.purge_step = self.purge_step, None
                fw.add_event(tbx.event.Event(step=step, file_version="brain.Event:2"))
                fw.add_event(tbx.event.Event(step=step, session_log=tbx.event.SessionLog(
                    status=tbx.event.SessionLog.START)))
        return self.file_writer

    def get_logdir(self):
        """The directory the event files go to."""
        return self.log_dir

    def _add(self, summary, global_step, walltime):
        step = None if global_step is None else int(global_step)
        self._get_file_writer().add_summary(summary, step, walltime)

    # ---- scalars --------------------------------------------------------------------------------
    def add_scalar(self, tag, scalar_value, global_step=None, walltime=None, new_style=False,
                   double_precision=False):
        """Log one number under ``tag`` at ``global_step``. ``new_style`` writes it as a tensor of
        the scalars plugin (float64 with ``double_precision``) instead of a ``simple_value``."""
        self._add(self._scalar(tag, _one_value(scalar_value, "add_scalar"), new_style, double_precision),
                  global_step, walltime)

    @staticmethod
    def _scalar(tag, value, new_style=False, double_precision=False):
        tbx = _tbx()
        Summary = tbx.pb.Summary
        if not new_style:
            return Summary(value=[Summary.Value(tag=tag, simple_value=float(value))])
        proto = tbx.tensor.TensorProto(
            dtype="DT_DOUBLE" if double_precision else "DT_FLOAT",
            **({"double_val": [float(value)]} if double_precision else {"float_val": [float(value)]}))
        meta = tbx.pb.SummaryMetadata(plugin_data=tbx.pb.SummaryMetadata.PluginData(plugin_name="scalars"))
        return Summary(value=[Summary.Value(tag=tag, tensor=proto, metadata=meta)])

    def add_scalars(self, main_tag, tag_scalar_dict, global_step=None, walltime=None):
        """Several curves on one chart: each ``{name: value}`` goes to its own run folder
        ``log_dir/MAINTAG_name`` (``/`` in ``main_tag`` becomes ``_``, as in torch) under the tag
        ``main_tag``."""
        walltime = time.time() if walltime is None else walltime
        base = self._get_file_writer().get_logdir()
        for tag, value in tag_scalar_dict.items():
            path = base + "/" + main_tag.replace("/", "_") + "_" + tag
            fw = self.all_writers.get(path)
            if fw is None:
                fw = self.all_writers[path] = self._new_file_writer(path)
            fw.add_summary(self._scalar(main_tag, _one_value(value, "add_scalars")),
                           None if global_step is None else int(global_step), walltime)

    # ---- histograms -----------------------------------------------------------------------------
    def add_histogram(self, tag, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None):
        """A histogram of ``values`` (any shape). ``bins`` is anything ``np.histogram`` takes, or
        ``"tensorflow"`` (default): TensorFlow's exponentially spaced edges."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        a = to_numpy(values).astype(float)
        if a.size == 0:
            raise ValueError(f"SummaryWriter.add_histogram({tag!r}): the input has no element")
        tbx = _tbx()
        hist = tbx.summary.make_histogram(a, bins, max_bins)
        self._add(tbx.pb.Summary(value=[tbx.pb.Summary.Value(tag=tag, histo=hist)]), global_step, walltime)

    def add_histogram_raw(self, tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts,
                          global_step=None, walltime=None):
        """A histogram from its statistics: ``bucket_limits`` are the right edges of the buckets."""
        if len(bucket_limits) != len(bucket_counts):
            raise ValueError("SummaryWriter.add_histogram_raw: len(bucket_limits) != len(bucket_counts) "
                             f"({len(bucket_limits)} vs {len(bucket_counts)})")
        tbx = _tbx()
        hist = tbx.pb.HistogramProto(min=float(min), max=float(max), num=int(num), sum=float(sum),
                                     sum_squares=float(sum_squares),
                                     bucket_limit=[float(v) for v in to_numpy(bucket_limits).ravel()],
                                     bucket=[float(v) for v in to_numpy(bucket_counts).ravel()])
        self._add(tbx.pb.Summary(value=[tbx.pb.Summary.Value(tag=tag, histo=hist)]), global_step, walltime)

    # ---- images ---------------------------------------------------------------------------------
    def _image(self, tag, img_tensor, dataformats):
        tbx = _tbx()
        a = tbx.utils.convert_to_HWC(to_numpy(img_tensor), dataformats)
        # uint8 images are taken as they are, anything else as [0, 1] floats; out of range clips
        scale = 1 if a.dtype == np.uint8 else 255
        a = (a.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
        return tbx.pb.Summary(value=[tbx.pb.Summary.Value(tag=tag, image=tbx.summary.make_image(a))])

    def add_image(self, tag, img_tensor, global_step=None, walltime=None, dataformats="CHW"):
        """One image: ``dataformats`` ``"CHW"`` (default), ``"HWC"`` or ``"HW"``; 1, 3 or 4
        channels; float values in [0, 1] or uint8 in [0, 255]."""
        self._add(self._image(tag, img_tensor, dataformats), global_step, walltime)

    def add_images(self, tag, img_tensor, global_step=None, walltime=None, dataformats="NCHW"):
        """A batch of images (``"NCHW"`` default, or ``"NHWC"``), shown as one grid of 8 a row."""
        self._add(self._image(tag, img_tensor, dataformats), global_step, walltime)

    def add_figure(self, tag, figure, global_step=None, close=True, walltime=None):
        """A matplotlib figure (or a list of them, shown as a grid), rendered to an image."""
        tbx = _tbx()
        if isinstance(figure, list):
            self.add_images(tag, tbx.utils.figure_to_image(figure, close), global_step, walltime,
                            dataformats="NCHW")
        else:
            self.add_image(tag, tbx.utils.figure_to_image(figure, close), global_step, walltime,
                           dataformats="CHW")

    # ---- text, hyper-parameters, curves ---------------------------------------------------------
    def add_text(self, tag, text_string, global_step=None, walltime=None):
        """Text (Markdown) under ``tag`` (TensorBoard shows it under ``tag/text_summary``)."""
        self._add(_tbx().summary.text(tag, text_string), global_step, walltime)

    def add_pr_curve(self, tag, labels, predictions, global_step=None, num_thresholds=127, weights=None,
                     walltime=None):
        """A precision-recall curve of ``predictions`` (probabilities) against 0/1 ``labels``."""
        labels, predictions = to_numpy(labels), to_numpy(predictions)
        weights = None if weights is None else to_numpy(weights)
        self._add(_tbx().summary.pr_curve(tag, labels, predictions, num_thresholds, weights),
                  global_step, walltime)

    def add_hparams(self, hparam_dict, metric_dict, hparam_domain_discrete=None, run_name=None,
                    global_step=None):
        """One row of TensorBoard's HPARAMS table: the hyper-parameters of a run and its final
        metrics, written into the sub-run ``log_dir/run_name`` (default: the current time).
        ``hparam_domain_discrete`` names all the values a hyper-parameter can take."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        exp, ssi, sei = _hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        run_name = run_name or str(time.time())
        with SummaryWriter(log_dir=os.path.join(self._get_file_writer().get_logdir(), run_name)) as w:
            step = None if global_step is None else int(global_step)
            for s in (exp, ssi, sei):
                w.file_writer.add_summary(s, step)
            for k, v in metric_dict.items():
                w.add_scalar(k, v, global_step)

    # ---- graph ----------------------------------------------------------------------------------
    def add_graph(self, model, input_to_model=None, verbose=False, use_strict_trace=True):
        """The graph of one forward pass of ``model`` on ``input_to_model`` (a Tensor or a tuple):
        one node per op the autograd graph recorded, grouped by the module that ran it
        (``Net/Linear[fc1]/LinearFn_2``), parameters as their own nodes. ``use_strict_trace`` is
        accepted for torch's signature (there is no JIT trace here)."""
        from ._graph import build_graph
        graph = build_graph(model, input_to_model, _tbx())
        if verbose:
            print(graph)
        self._get_file_writer().add_event(_tbx().event.Event(graph_def=graph.SerializeToString()))

    # ---- what deepgrad lacks -----------------------------------------------------------------------
    def _lacks(self, name, instead):
        raise NotImplementedError(f"deepgrad's SummaryWriter does not write {name} (torch.utils.tensorboard."
                                  f"SummaryWriter.{name}); {instead}")

    def add_embedding(self, *args, **kwargs):
        self._lacks("add_embedding", "use tensorboardX.SummaryWriter.add_embedding on NumPy arrays "
                    "(tensor.numpy()) in the same log_dir")

    def add_video(self, *args, **kwargs):
        self._lacks("add_video", "log frames with add_images")

    def add_audio(self, *args, **kwargs):
        self._lacks("add_audio", "use tensorboardX.SummaryWriter.add_audio on a NumPy array")

    def add_mesh(self, *args, **kwargs):
        self._lacks("add_mesh", "use tensorboardX.SummaryWriter.add_mesh on NumPy arrays")

    def add_image_with_boxes(self, *args, **kwargs):
        self._lacks("add_image_with_boxes", "draw the boxes with matplotlib and use add_figure")

    def add_custom_scalars(self, *args, **kwargs):
        self._lacks("add_custom_scalars", "use add_scalars for several curves on one chart")

    # ---- lifetime -------------------------------------------------------------------------------
    def flush(self):
        """Write every pending event to disk now."""
        for w in (self.all_writers or {}).values():
            w.flush()

    def close(self):
        """Flush and close every event file (a later ``add_*`` opens new ones)."""
        for w in (self.all_writers or {}).values():
            w.flush()
            w.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return f"SummaryWriter(log_dir={self.log_dir!r})"


def _hparams(hparam_dict, metric_dict, domain=None):
    """The experiment, session-start and session-end summaries of the hparams plugin (the same
    protocol buffers torch writes: numbers, bools and strings, optional discrete domains)."""
    from google.protobuf import struct_pb2
    tbx = _tbx()
    api, hp, pb = tbx.api, tbx.hparams, tbx.pb
    from ...tensor import Tensor
    domain = domain or {}
    if not isinstance(domain, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for k, v in domain.items():
        if k not in hparam_dict or not isinstance(v, list) or not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same type as "
                            f"hparam_dict[{k}].")
    infos, start = [], hp.SessionStartInfo()
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, Tensor):
            v = _one_value(v, "add_hparams")
        if isinstance(v, (int, float, np.integer, np.floating)):   # bools too, as in torch
            start.hparams[k].number_value = float(v)
            kind, field = "DATA_TYPE_FLOAT64", "number_value"
        elif isinstance(v, str):
            start.hparams[k].string_value = v
            kind, field = "DATA_TYPE_STRING", "string_value"
        else:
            raise ValueError("value should be one of int, float, str, bool, or torch.Tensor")
        info = api.HParamInfo(name=k, type=api.DataType.Value(kind))
        if k in domain:
            info.domain_discrete.CopyFrom(struct_pb2.ListValue(
                values=[struct_pb2.Value(**{field: d}) for d in domain[k]]))
        infos.append(info)

    def wrap(tag, **data):
        content = hp.HParamsPluginData(version=0, **data).SerializeToString()
        meta = pb.SummaryMetadata(plugin_data=pb.SummaryMetadata.PluginData(plugin_name="hparams",
                                                                            content=content))
        return pb.Summary(value=[pb.Summary.Value(tag=tag, metadata=meta)])

    exp = api.Experiment(hparam_infos=infos,
                         metric_infos=[api.MetricInfo(name=api.MetricName(tag=k)) for k in metric_dict])
    return (wrap("_hparams_/experiment", experiment=exp),
            wrap("_hparams_/session_start_info", session_start_info=start),
            wrap("_hparams_/session_end_info",
                 session_end_info=hp.SessionEndInfo(status=api.Status.Value("STATUS_SUCCESS"))))
