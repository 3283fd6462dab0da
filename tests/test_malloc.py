"""deepgrad._malloc: freed large blocks stay in the heap (no page faults when a step's
temporaries are allocated again), switchable, and harmless where glibc is absent."""
import os
import platform
import subprocess
import sys

import pytest

from deepgrad import _malloc

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt is glibc's")


_CHILD = """
import resource, numpy as np, deepgrad as dg
from deepgrad import _malloc
def faults(fn):
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    fn()
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0
def step():
    for _ in range(16):                # 1 MiB arrays (below NumPy's huge-page size) written and freed
        a = np.empty(1 << 18, np.float32)
        a.fill(1.0)
        del a
assert dg.backends.cpu.keeping_freed_memory() is True       # on at import
step()
on = faults(step)
assert _malloc.keep_freed_memory(False) is True
assert not dg.backends.cpu.keeping_freed_memory()
off = faults(step)
assert _malloc.keep_freed_memory(True) is True
step()
print(on, off, faults(step))
"""


@glibc
def test_keep_freed_memory_reuses_pages():
    # a fresh interpreter: the setting is process-wide, and other libraries loaded by the test
    # session (Open MPI's memory hooks) change glibc's allocator behaviour too
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert out.returncode == 0, out.stderr
    on, off, again = map(int, out.stdout.split())
    assert on < 200 and again < 200          # 16 x 256 pages without it
    assert off > 2000


def test_keep_freed_memory_never_raises(monkeypatch):
    monkeypatch.setattr(_malloc, "_mallopt", lambda: None)
    try:
        assert _malloc.keep_freed_memory(True) is False
        assert not _malloc.keeping_freed_memory()
    finally:
        monkeypatch.undo()
        _malloc.keep_freed_memory(True)


def test_environment_switch(monkeypatch):
    calls = []
    monkeypatch.setattr(_malloc, "keep_freed_memory", lambda on=True: calls.append(on))
    monkeypatch.setenv("DEEPGRAD_KEEP_FREED_MEMORY", "0")
    _malloc._at_import()
    assert calls == []
    monkeypatch.setenv("DEEPGRAD_KEEP_FREED_MEMORY", "1")
    _malloc._at_import()
    assert calls == [True]
