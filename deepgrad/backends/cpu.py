"""``deepgrad.backends.cpu``."""


def get_cpu_capability() -> str:
    return "DEFAULT"


from .._malloc import keep_freed_memory, keeping_freed_memory  # noqa: E402,F401  (deepgrad's own knob, not in torch)
