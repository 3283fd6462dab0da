"""``torch.xpu`` (Intel GPUs): deepgrad has no XPU backend, so it answers as PyTorch does on a
machine without one (device-selection boilerplate runs unchanged)."""


def is_available():
    return False


def device_count():
    return 0


def manual_seed(seed):
    """Seeding an absent device is ignored, as in PyTorch."""


def manual_seed_all(seed):
    """Seeding an absent device is ignored, as in PyTorch."""


def synchronize(device=None):
    raise RuntimeError("deepgrad has no XPU device (torch.xpu.synchronize needs one)")


def empty_cache():
    """Nothing is cached without a device."""
