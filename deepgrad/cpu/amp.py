"""``deepgrad.cpu.amp``: PyTorch's deprecated ``cpu.amp.autocast(...)`` / ``cpu.amp.GradScaler``."""
from .. import amp as _amp

autocast, GradScaler = _amp._device_spellings("cpu", __name__)
