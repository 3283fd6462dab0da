"""Reverse-mode automatic differentiation: graph nodes, the engine, grad(), gradcheck, anomaly mode."""
from .grad_mode import no_grad, enable_grad, set_grad_enabled, is_grad_enabled, inference_mode
from .function import Function, FunctionCtx, once_differentiable
from .custom import Variable
from .api import grad, backward, detect_anomaly, set_detect_anomaly, is_anomaly_enabled
from .gradcheck import gradcheck, gradgradcheck
from . import functional

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "inference_mode",
           "Function", "FunctionCtx", "once_differentiable", "Variable", "grad", "backward",
           "detect_anomaly", "set_detect_anomaly", "is_anomaly_enabled", "gradcheck",
           "gradgradcheck", "functional"]
