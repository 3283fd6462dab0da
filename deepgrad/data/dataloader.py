"""DataLoader: batches from a dataset, collated into Tensors, prefetched in background threads.

Pipeline per batch ``k`` of an epoch: indices (from the batch sampler, drawn in the main thread)
-> fetch (one fancy-index via the dataset's ``_get_batch`` when it has one, else one
``dataset[i]`` per index + ``collate_fn``) -> ``batch_transform`` (array-at-once augmentation) ->
``device``. With ``prefetch > 0`` (the default) fetches run in a thread pool of
``max(1, num_workers)`` threads, up to ``prefetch * max(1, num_workers)`` batches ahead, while the
main thread trains; batches come back in order. An exception raised while fetching is re-raised
in the main thread (with the worker's traceback); abandoning an iterator mid-epoch (``break``,
``del``, garbage collection, ``close()``) cancels pending work and stops its threads.

Randomness: at the start of an epoch the loader draws a base seed from ``generator`` (else the
global generator); while batch ``k`` is fetched, the fetching thread's *default* generator is a
Generator seeded by (base seed, ``k``). Transforms, and any user code in ``Dataset.__getitem__``
that calls ``dg.randn``/``dg.rand``/``torch``-style factories without ``generator=``, draw from it
instead of the shared global stream. So results are reproducible under ``deepgrad.manual_seed`` and
identical for any ``prefetch`` and ``num_workers``, and fetching never advances the main thread's
global stream (which differs from PyTorch with ``num_workers=0``, where ``__getitem__`` draws from
the global generator; the values differ, the reproducibility is the same).
"""
from __future__ import annotations

import collections
import collections.abc
import copy
import numbers
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .. import backend
from ..tensor import Tensor
from . import _rng
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader", "default_collate", "default_convert", "get_worker_info", "WorkerInfo"]

_STR_TYPES = (str, bytes)


def _stack(arrays):
    xp = backend.array_module(*arrays)
    shape = arrays[0].shape
    for k, a in enumerate(arrays):
        if a.shape != shape:
            raise RuntimeError(f"default_collate: stack expects each array to be equal size, but got {shape} "
                               f"at entry 0 and {a.shape} at entry {k}")
    return xp.stack(arrays)


def default_collate(batch):
    """Stack a list of samples into a batch.

    Tensors and ndarrays are stacked along a new first axis (dtype kept, so images made by
    ``ToTensor`` stay float32); as in PyTorch, a batch of Python floats becomes float64 (PyTorch
    calls ``torch.tensor(batch, dtype=torch.float64)``), of Python ints int64 (of bools bool; a
    float among ints gives the default float dtype, as ``torch.tensor`` infers); NumPy scalars
    keep their dtype (mixed ones promote); strings stay a list; tuples are collated position by
    position into a list, lists and other mutable sequences and mappings keep their type (a copy
    is filled in), namedtuples keep their type.
    """
    if len(batch) == 0:
        raise ValueError("default_collate: empty batch")
    elem = batch[0]
    if isinstance(elem, Tensor):
        return Tensor._make(_stack([b.array for b in batch]))
    if isinstance(elem, np.ndarray):
        if elem.dtype.kind in "OUSV":
            raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                            f"found an array of dtype {elem.dtype}")
        return Tensor._make(_stack(batch))
    if hasattr(elem, "__cuda_array_interface__"):
        return Tensor._make(_stack(batch))
    if isinstance(elem, np.generic) and not isinstance(elem, (np.str_, np.bytes_)):
        return Tensor._make(np.array(batch, dtype=_numpy_scalars_dtype(batch)))
    if isinstance(elem, numbers.Integral):          # bool included: torch.tensor(batch) inference
        return Tensor._make(np.array(batch, dtype=_python_numbers_dtype(batch)))
    if isinstance(elem, numbers.Real):
        return Tensor._make(np.array(batch, dtype=np.float64))
    if isinstance(elem, _STR_TYPES):
        return list(batch)
    if isinstance(elem, collections.abc.Mapping):
        out = {k: default_collate([d[k] for d in batch]) for k in elem}
        if type(elem) is dict:
            return out
        try:
            if isinstance(elem, collections.abc.MutableMapping):
                clone = copy.copy(elem)
                clone.update(out)
                return clone
            return type(elem)(out)
        except TypeError:
            return out
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence):
        n = len(elem)
        if any(len(b) != n for b in batch):
            raise RuntimeError("default_collate: each element in list of batch should be of equal size")
        columns = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple) or type(elem) is list:
            return columns
        try:
            if isinstance(elem, collections.abc.MutableSequence):
                clone = copy.copy(elem)
                for i, c in enumerate(columns):
                    clone[i] = c
                return clone
            return type(elem)(columns)
        except TypeError:
            return columns
    if elem is None:
        raise TypeError("default_collate: a sample contains None (datasets must return tensors, arrays, numbers, "
                        "dicts or lists)")
    raise TypeError(f"default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
                    f"found {type(elem).__name__}")


def _python_numbers_dtype(batch):
    """The dtype ``torch.tensor(batch)`` infers for Python numbers: bool if all are bools, the
    default float dtype if any is a float, else int64."""
    if all(isinstance(b, (bool, np.bool_)) for b in batch):
        return np.bool_
    if any(isinstance(b, numbers.Real) and not isinstance(b, numbers.Integral) for b in batch):
        return backend.get_default_dtype()
    return np.int64


def _numpy_scalars_dtype(batch):
    """One NumPy scalar type keeps its dtype; mixed ones promote (Python numbers weakly)."""
    kinds = {type(b) for b in batch}
    if len(kinds) == 1:
        return batch[0].dtype
    return np.result_type(*(np.dtype(k) if issubclass(k, np.generic) else k() for k in kinds))


def default_convert(data):
    """Arrays -> Tensors (recursively), without adding a batch dimension (``batch_size=None``)."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype.kind in "OUSV":
            return data
        return Tensor._make(data)
    if isinstance(data, np.generic) and not isinstance(data, (np.str_, np.bytes_)):
        return Tensor._make(np.asarray(data))
    if isinstance(data, _STR_TYPES):
        return data
    if isinstance(data, collections.abc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


def _to_tensors(tree):
    """Wrap the arrays of an already-collated batch (from ``_get_batch``) like default_collate."""
    if isinstance(tree, Tensor):
        return tree
    if isinstance(tree, np.ndarray) or hasattr(tree, "__cuda_array_interface__"):
        return Tensor._make(tree)
    if isinstance(tree, dict):
        return {k: _to_tensors(v) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return [_to_tensors(v) for v in tree]
    return tree


def _to_device(tree, device, non_blocking=False):
    if isinstance(tree, Tensor):
        return tree.to(device, non_blocking=non_blocking)
    if isinstance(tree, dict):
        return {k: _to_device(v, device, non_blocking) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_to_device(v, device, non_blocking) for v in tree]
    if isinstance(tree, tuple):
        return tuple(_to_device(v, device, non_blocking) for v in tree)
    return tree


def _pin(tree):
    """Every CPU tensor of a batch copied into pinned host memory (``pin_memory=True``)."""
    if isinstance(tree, Tensor):
        return tree.pin_memory() if tree.device.type == "cpu" else tree
    if isinstance(tree, dict):
        return {k: _pin(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_pin(v) for v in tree]
    if isinstance(tree, tuple):
        return tuple(_pin(v) for v in tree)
    return tree


def _apply_batch_transform(batch, fn):
    if isinstance(batch, (list, tuple)) and batch:
        first = fn(batch[0])
        if not isinstance(first, Tensor):
            first = _to_tensors(first)
        return type(batch)([first, *batch[1:]])
    if isinstance(batch, dict):
        raise TypeError("DataLoader: batch_transform needs batches that are tensors or (input, ...) sequences")
    out = fn(batch)
    return out if isinstance(out, Tensor) else _to_tensors(out)


class DataLoader:
    """Iterate a dataset in (shuffled) mini-batches, PyTorch's ``torch.utils.data.DataLoader``.

    Beyond PyTorch's arguments: ``prefetch`` (batches fetched ahead per worker thread; 0 fetches
    synchronously in the main thread), ``batch_transform`` (applied to each collated batch's input,
    e.g. ``transforms.BatchRandomCrop``), ``device`` (move batches there in the background).
    ``num_workers`` is the number of fetching *threads* (NumPy releases the GIL in its copies).

    Randomness in ``Dataset.__getitem__`` (``dg.randn`` and friends, random transforms) is
    deterministic under a seed: while batch ``k`` of an epoch is fetched, the fetching thread's
    default generator is one seeded by (the epoch's base seed, ``k``), so the batches are the same
    with ``prefetch=0`` or ``N`` and any ``num_workers``, and the main thread's global stream is
    not advanced by fetching. The epoch's base seed is drawn from ``generator`` (else the global
    generator) when iteration starts.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, generator=None, *, prefetch=2, prefetch_factor=None,
                 persistent_workers=False, batch_transform=None, device=None, pin_memory_device=""):
        if not isinstance(num_workers, (numbers.Integral, np.integer)) or num_workers < 0:
            raise ValueError(f"DataLoader: num_workers must be a non-negative integer, got {num_workers!r}")
        if prefetch_factor is not None:
            prefetch = prefetch_factor
        if not isinstance(prefetch, (numbers.Integral, np.integer)) or prefetch < 0:
            raise ValueError(f"DataLoader: prefetch must be a non-negative integer, got {prefetch!r}")
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        self.dataset = dataset
        self.num_workers = int(num_workers)
        self.prefetch = int(prefetch)
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        # As PyTorch: pinning needs an accelerator; without one the flag only warns (on iteration).
        self._pin = bool(pin_memory) and backend.cuda_available()
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.batch_transform = batch_transform
        self.device = device
        self.persistent_workers = persistent_workers
        self._is_iterable = isinstance(dataset, IterableDataset)

        if self._is_iterable:
            if shuffle not in (False, None):
                raise ValueError("DataLoader with IterableDataset: expected unspecified shuffle option, got "
                                 f"shuffle={shuffle}")
            if sampler is not None or batch_sampler is not None:
                raise ValueError("DataLoader with IterableDataset: expected unspecified sampler/batch_sampler")
        else:
            if sampler is not None and shuffle:
                raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with batch_size, shuffle, "
                                 "sampler, and drop_last")
            batch_size = None
            drop_last = False
        elif batch_size is None:
            if drop_last:
                raise ValueError("DataLoader: batch_size=None option disables auto-batching and is mutually "
                                 "exclusive with drop_last")
        elif not isinstance(batch_size, (numbers.Integral, np.integer)) or isinstance(batch_size, bool) \
                or batch_size <= 0:
            raise ValueError(f"DataLoader: batch_size should be a positive integer value, got {batch_size!r}")

        if sampler is None and not self._is_iterable:
            sampler = RandomSampler(dataset, generator=generator) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._is_iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (self._is_iterable and batch_size is not None)
        if collate_fn is None:
            self._default_collate = True
            collate_fn = default_collate if self._auto_collation else default_convert
        else:
            self._default_collate = False
        self.collate_fn = collate_fn

    def __len__(self):
        if self._is_iterable:
            n = len(self.dataset)  # TypeError if the stream has no length, as in PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)
        return len(self.sampler)

    def __iter__(self):
        if self.pin_memory and not self._pin:
            import warnings
            warnings.warn("'pin_memory' argument is set as true but no accelerator is found, then device "
                          "pinned memory won't be used.", UserWarning, stacklevel=2)
        return _LoaderIter(self)

    # ---- the work of one batch (runs in a worker thread or the main thread) -----------------
    def _fetch_indices(self, indices):
        ds = self.dataset
        if self._default_collate and self._auto_collation:
            get = getattr(ds, "_get_batch", None)
            if get is not None:
                out = get(np.asarray(indices, dtype=np.int64))
                if out is not None:
                    return _to_tensors(out)
        if hasattr(ds, "__getitems__"):
            samples = ds.__getitems__([int(i) for i in indices])
        else:
            samples = [ds[int(i)] for i in indices]
        return self.collate_fn(samples)

    def _finish(self, batch):
        if self.batch_transform is not None:
            batch = _apply_batch_transform(batch, self.batch_transform)
        if self._pin:
            batch = _pin(batch)
        if self.device is not None:
            batch = _to_device(batch, self.device, non_blocking=self._pin)
        return batch


class WorkerInfo:
    """What ``get_worker_info()`` returns inside a DataLoader worker: ``id`` (0 ..
    ``num_workers - 1``), ``num_workers``, ``seed`` (the epoch's base seed + ``id``) and
    ``dataset``. Workers are threads here, so ``dataset`` is the loader's own object, not a copy."""

    __initialized = False

    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            setattr(self, k, v)
        self.__keys = tuple(kwargs)
        self.__initialized = True

    def __setattr__(self, key, val):
        if self.__initialized:
            raise RuntimeError(f"Cannot assign attributes to {type(self).__name__} objects")
        return super().__setattr__(key, val)

    def __repr__(self):
        body = ", ".join(f"{k}={getattr(self, k)}" for k in self.__keys)
        return f"{type(self).__name__}({body})"


_worker_local = threading.local()


def get_worker_info():
    """``None`` in the main thread (and with ``num_workers=0``); in a DataLoader worker thread,
    a ``WorkerInfo`` (``id``, ``num_workers``, ``seed``, ``dataset``) as PyTorch's.

    An ``IterableDataset``'s ``__iter__`` is called once, in the main thread, so it sees ``None``
    and yields the whole stream once (PyTorch calls it in every worker process, where the
    dataset must split the stream itself using this info)."""
    return getattr(_worker_local, "info", None)


_END = object()


def _run_task(loader, gen, task, arg):
    with _rng.use_generator(gen):
        if task == "indices":
            batch = loader._fetch_indices(arg)
        elif task == "index":
            batch = loader.collate_fn(loader.dataset[int(arg)])
        else:  # "stream": pull the next batch from the dataset iterator
            it = arg
            if loader.batch_size is None:
                try:
                    sample = next(it)
                except StopIteration:
                    return _END
                batch = loader.collate_fn(sample)
            else:
                samples = []
                for _ in range(loader.batch_size):
                    try:
                        samples.append(next(it))
                    except StopIteration:
                        break
                if not samples or (loader.drop_last and len(samples) < loader.batch_size):
                    return _END
                batch = loader.collate_fn(samples)
        return loader._finish(batch)


def _shutdown(executor, futures):
    for f in futures:
        f.cancel()
    futures.clear()
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)


class _LoaderIter:
    def __init__(self, loader):
        self._loader = loader
        self._base_seed = _rng.draw_seed(loader.generator)
        self._k = 0          # batches submitted
        self._exhausted = False
        if loader._is_iterable:
            self._stream = iter(loader.dataset)
            self._tasks = None
        elif loader.batch_sampler is not None:
            bs = loader.batch_sampler
            self._tasks = bs._iter_arrays() if isinstance(bs, BatchSampler) else iter(bs)
            self._kind = "indices"
        else:
            self._tasks = iter(loader.sampler)
            self._kind = "index"
        self._futures = collections.deque()
        self._executor = None
        if loader.prefetch > 0:
            workers = 1 if loader._is_iterable else max(1, loader.num_workers)
            self._depth = loader.prefetch * workers
            init = loader.worker_init_fn
            counter = iter(range(workers))
            lock = threading.Lock()
            base_seed = self._base_seed

            def initializer():
                with lock:
                    wid = next(counter)
                if loader.num_workers > 0:
                    _worker_local.info = WorkerInfo(id=wid, num_workers=loader.num_workers,
                                                    seed=(base_seed + wid) & ((1 << 64) - 1),
                                                    dataset=loader.dataset)
                if init is not None:
                    init(wid)

            self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="deepgrad-data",
                                                initializer=initializer)
            self._finalizer = weakref.finalize(self, _shutdown, self._executor, self._futures)
            self._fill()
        else:
            if loader.worker_init_fn is not None:
                loader.worker_init_fn(0)
            self._finalizer = None

    def __iter__(self):
        return self

    def __len__(self):
        return len(self._loader)

    def _next_task(self):
        """(task, arg) for the next batch, or None at the end of the epoch (main thread only)."""
        if self._exhausted:
            return None
        if self._tasks is None:
            return ("stream", self._stream)
        try:
            return (self._kind, next(self._tasks))
        except StopIteration:
            self._exhausted = True
            return None

    def _submit(self):
        task = self._next_task()
        if task is None:
            return False
        gen = _rng.deferred_generator(self._base_seed, self._k)
        self._k += 1
        self._futures.append(self._executor.submit(_run_task, self._loader, gen, *task))
        return True

    def _fill(self):
        while len(self._futures) < self._depth and self._submit():
            pass

    def __next__(self):
        if self._executor is None:
            task = self._next_task()
            if task is None:
                raise StopIteration
            gen = _rng.deferred_generator(self._base_seed, self._k)
            self._k += 1
            out = _run_task(self._loader, gen, *task)
            if out is _END:
                self._exhausted = True
                raise StopIteration
            return out
        if not self._futures:
            self.close()
            raise StopIteration
        fut = self._futures.popleft()
        try:
            out = fut.result(timeout=self._loader.timeout or None)
        except TimeoutError:
            self.close()
            raise RuntimeError(f"DataLoader timed out after {self._loader.timeout} seconds waiting for a batch") \
                from None
        except BaseException:
            self.close()
            raise
        if out is _END:
            self._exhausted = True
            self.close()
            raise StopIteration
        self._fill()
        return out

    def close(self):
        """Stop prefetching: cancel pending batches and release the worker threads."""
        self._exhausted = True
        if self._finalizer is not None:
            self._finalizer()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
