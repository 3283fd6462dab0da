"""scikit-learn estimators around deepgrad networks: ``NeuralNetClassifier``, ``NeuralNetRegressor``.

A network becomes an estimator whose hyper-parameters are constructor arguments, so sklearn's
model selection works on it::

    from sklearn.model_selection import GridSearchCV
    from deepgrad.sklearn import NeuralNetClassifier

    net = NeuralNetClassifier(max_epochs=5, lr=1e-3, random_state=0)      # an MLP by default
    search = GridSearchCV(net, {"lr": [1e-3, 1e-2], "module__hidden_sizes": [(64,), (256,)]}, cv=3)
    search.fit(X, y)                  # X: (n, features) NumPy array or list; y: labels

* ``module``: a ``Module`` class (built at ``fit`` with the ``module__*`` parameters; if its
  ``__init__`` takes ``in_features`` / ``out_features`` they come from the data: the number of
  features and of classes or targets), a ``Module`` instance (deep-copied at every ``fit``, so each
  fit starts from its weights), or None for :class:`MLP`.
* ``criterion``: a loss class (with ``criterion__*``), instance, name (``"cross_entropy"``, ``"mse"``
  ...) or None (``CrossEntropyLoss`` for the classifier, ``MSELoss`` for the regressor).
* ``optimizer``: a name (``"adam"``, ``"sgd"``, ...) or an ``Optimizer`` class, built with
  ``lr`` and the ``optimizer__*`` parameters (``optimizer__momentum=0.9``).
* ``max_epochs``, ``batch_size`` (-1 or None: the whole set), ``shuffle``, ``device``, ``warm_start``
  (a second ``fit`` continues training the fitted network), ``verbose`` (1: a line per epoch).
* ``random_state``: an int makes ``fit`` deterministic: the initial weights, the shuffles and
  dropout are drawn from generators seeded by it; deepgrad's global random state is restored
  afterwards. None uses the global generator.

The classifier's network returns logits (one per class); ``predict_proba`` is their softmax.
Fitted attributes: ``module_``, ``criterion_``, ``optimizer_``, ``history_`` (one dict per epoch
with its mean training loss), ``n_iter_`` (epochs), ``n_features_in_``, ``classes_``.

Needs scikit-learn (``pip install deepgrad[sklearn]``).
"""
from __future__ import annotations

import contextlib
import copy
import inspect
import math

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as _e:   # pragma: no cover - the test extra pins scikit-learn
    raise ImportError(f"deepgrad.sklearn needs scikit-learn >= 1.6, which could not be imported ({_e}); "
                      "install it with `pip install deepgrad[sklearn]`") from _e

from . import nn
from . import random as _random
from .autograd.grad_mode import no_grad
from .tensor import Tensor
from .train.trainer import _LOSSES, get_optimizer

__all__ = ["NeuralNetClassifier", "NeuralNetRegressor", "NeuralNet", "MLP"]

_PREFIXES = ("module__", "criterion__", "optimizer__")

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
                "logistic": nn.Sigmoid, "identity": nn.Identity}


class MLP(nn.Module):
    """The default network: ``in_features -> hidden_sizes... -> out_features``, an activation
    (``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"gelu"``, ``"identity"``) and optional dropout after
    each hidden layer. Inputs of more than one feature dimension are flattened."""

    def __init__(self, in_features, out_features, hidden_sizes=(100,), activation="relu", dropout=0.0):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"MLP: unknown activation {activation!r}; known: {', '.join(_ACTIVATIONS)}")
        layers, width = [nn.Flatten()], in_features
        for h in tuple(hidden_sizes):
            layers += [nn.Linear(width, int(h)), _ACTIVATIONS[activation]()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = int(h)
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


@contextlib.contextmanager
def _seeded(seed):
    """Draw deepgrad's randomness from ``seed`` inside, then restore the global state; yields a
    NumPy generator for the shuffles (unseeded when ``seed`` is None)."""
    if seed is None:
        yield np.random.default_rng()
        return
    state = _random.get_rng_state()
    _random.manual_seed(seed)
    try:
        yield np.random.default_rng(seed)
    finally:
        _random.set_rng_state(state)


def _init_names():
    return {p.name for p in inspect.signature(NeuralNet.__init__).parameters.values()
            if p.kind is not p.VAR_KEYWORD}


class NeuralNet(BaseEstimator):
    """What the classifier and the regressor share: parameters, building, the training loop."""

    def __init__(self, module=None, *, criterion=None, optimizer="adam", lr=0.01, max_epochs=20,
                 batch_size=64, shuffle=True, device="cpu", random_state=None, warm_start=False,
                 verbose=0, **kwargs):
        self.module = module
        self.criterion = criterion
        self.optimizer = optimizer
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = device
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        # module__*, criterion__*, optimizer__*: kept in a private dict (sklearn's checks allow only
        # the named parameters as public attributes) and read as attributes through __getattr__;
        # a name without those prefixes is refused at fit (sklearn's estimators never raise here)
        self._extra_params = dict(kwargs)

    def __getattr__(self, name):
        extra = self.__dict__.get("_extra_params")
        if extra is not None and name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _extra_names(self):
        return list(self.__dict__.get("_extra_params", {}))

    def get_params(self, deep=True):
        params = super().get_params(deep=deep)
        params.update(self._extra_params)
        return params

    def set_params(self, **params):
        # module__*, criterion__*, optimizer__* (and, as in __init__, any unknown name: fit names it)
        named = _init_names()
        routed = {k: v for k, v in params.items() if k.startswith(_PREFIXES) or k.split("__")[0] not in named}
        self._extra_params.update(routed)
        super().set_params(**{k: v for k, v in params.items() if k not in routed})
        return self

    def _check_extra(self):
        unknown = [k for k in self._extra_names() if not k.startswith(_PREFIXES)]
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameters {unknown} (parameters for "
                            "the parts start with module__, criterion__ or optimizer__)")

    def _routed(self, prefix):
        return {k[len(prefix):]: v for k, v in self._extra_params.items() if k.startswith(prefix)}

    # ---- building -------------------------------------------------------------------------------
    def _build_module(self, n_in, n_out):
        kwargs = self._routed("module__")
        m = MLP if self.module is None else self.module
        if isinstance(m, nn.Module):
            if kwargs:
                raise ValueError(f"{type(self).__name__}: module__* parameters ({', '.join(kwargs)}) need a "
                                 "module class, but module is an instance")
            module = copy.deepcopy(m)
        elif callable(m):
            try:
                sig = inspect.signature(m).parameters
            except (TypeError, ValueError):
                sig = {}
            for name, value in (("in_features", n_in), ("out_features", n_out)):
                if name in sig and name not in kwargs:
                    kwargs[name] = value
            module = m(**kwargs)
            if not isinstance(module, nn.Module):
                raise TypeError(f"{type(self).__name__}: module(...) returned {type(module).__name__}, "
                                "not a deepgrad.nn.Module")
        else:
            raise TypeError(f"{type(self).__name__}: module must be a deepgrad.nn.Module class or instance "
                            f"(or None for an MLP), got {type(m).__name__}")
        return module.to(self.device)

    def _build_criterion(self):
        kwargs = self._routed("criterion__")
        c = self._default_criterion if self.criterion is None else self.criterion
        if isinstance(c, str):
            try:
                c = getattr(nn, _LOSSES[c.lower()])
            except KeyError:
                raise ValueError(f"{type(self).__name__}: unknown criterion {c!r}; known: "
                                 f"{', '.join(sorted(_LOSSES))}") from None
        if isinstance(c, type):
            return c(**kwargs)
        if kwargs:
            raise ValueError(f"{type(self).__name__}: criterion__* parameters need a loss class or name")
        return copy.deepcopy(c) if isinstance(c, nn.Module) else c

    def _build_optimizer(self, params):
        kwargs = self._routed("optimizer__")
        if isinstance(self.optimizer, str):
            return get_optimizer(self.optimizer, params, lr=self.lr, **kwargs)
        if isinstance(self.optimizer, type):
            return self.optimizer(params, lr=self.lr, **kwargs)
        raise TypeError(f"{type(self).__name__}: optimizer must be a name ('adam', 'sgd', ...) or an "
                        f"Optimizer class, got {type(self.optimizer).__name__}")

    def _seed(self):
        if self.random_state is None:
            return None
        if isinstance(self.random_state, (int, np.integer)):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    # ---- training -------------------------------------------------------------------------------
    def _fit(self, X, y, n_out):
        self._check_extra()
        with _seeded(self._seed()) as rng:
            if not (self.warm_start and hasattr(self, "module_")):
                self.module_ = self._build_module(X.shape[1], n_out)
                self.criterion_ = self._build_criterion()
                self.optimizer_ = self._build_optimizer(self.module_.parameters())
                self.history_ = []
            self._train(X, y, rng)
        self.n_iter_ = len(self.history_)
        return self

    def _train(self, X, y, rng):
        module, crit, opt = self.module_, self.criterion_, self.optimizer_
        n = len(X)
        bs = n if self.batch_size in (None, -1) else max(1, min(int(self.batch_size), n))
        module.train()
        for _ in range(int(self.max_epochs)):
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            total = 0.0
            for start in range(0, n, bs):
                idx = order[start:start + bs]
                xb = Tensor._make(X[idx]).to(self.device)
                yb = Tensor._make(y[idx]).to(self.device)
                opt.zero_grad()
                loss = crit(module(xb), yb)
                loss.backward()
                opt.step()
                total += float(loss.item()) * len(idx)
            self.history_.append({"epoch": len(self.history_) + 1, "loss": total / n})
            if self.verbose:
                print(f"epoch {len(self.history_)}: loss {total / n:.4f}")
            if not math.isfinite(total):
                break

    def _forward(self, X):
        """The network's outputs for ``X`` as a float64 NumPy array (eval mode, no graph)."""
        check_is_fitted(self, "module_")
        X = validate_data(self, X, reset=False, dtype=np.float32, allow_nd=True)
        module = self.module_
        was_training = module.training
        module.eval()
        try:
            with no_grad():
                out = module(Tensor._make(X).to(self.device))
        finally:
            module.train(was_training)
        return np.asarray(out.detach().cpu().numpy(), dtype=np.float64)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


class NeuralNetClassifier(ClassifierMixin, NeuralNet):
    """A deepgrad network as a scikit-learn classifier (see :mod:`deepgrad.sklearn`). Labels may be
    any values ``np.unique`` sorts (ints, strings); the network outputs one logit per class."""

    _default_criterion = nn.CrossEntropyLoss

    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,); returns self."""
        X, y = validate_data(self, X, y, dtype=np.float32, allow_nd=True)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                             f"but the data contains only one class: {classes[0]!r}")
        if self.warm_start and hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
            raise ValueError(f"{type(self).__name__}: warm_start needs the classes of the first fit "
                             f"{self.classes_.tolist()}, got {classes.tolist()}")
        self.classes_ = classes
        return self._fit(X, y_idx.astype(np.int64), len(classes))

    def predict_proba(self, X):
        """Class probabilities (the softmax of the logits), shape (n_samples, n_classes)."""
        z = self._forward(X)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        z = self._forward(X)
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    def predict(self, X):
        """The most probable class of each sample."""
        scores = self._forward(X)
        return self.classes_[np.argmax(scores, axis=1)]


class NeuralNetRegressor(RegressorMixin, NeuralNet):
    """A deepgrad network as a scikit-learn regressor (see :mod:`deepgrad.sklearn`); ``y`` of shape
    (n,) gives one output, (n, k) gives k outputs."""

    _default_criterion = nn.MSELoss

    def fit(self, X, y):
        """Train on ``X`` (n_samples, n_features) and targets ``y`` (n_samples,) or (n_samples, k)."""
        X, y = validate_data(self, X, y, dtype=np.float32, allow_nd=True, y_numeric=True, multi_output=True)
        y = np.asarray(y, dtype=np.float32)
        self._y_ndim = y.ndim
        y2 = y.reshape(len(y), -1)
        return self._fit(X, y2, y2.shape[1])

    def predict(self, X):
        """Predicted targets, shape (n_samples,) or (n_samples, k) as ``y`` had."""
        out = self._forward(X)
        return out.reshape(-1) if self._y_ndim == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
