"""float32 <-> float16 conversions through the CPU's F16C instructions (a compiled fast path).

NumPy 2.4's float16 casts are scalar loops on CPUs without AVX-512 (3-20 ns an element), and the
NumPy-only conversions of ops/_lowp.py cost ~1 ns (float16 -> float32) and ~2 ns (float32 ->
float16) an element: 11 whole-array passes. On the MLP training step that is most of what float16
costs over float32 (each step rounds the gradient, the momentum buffer and the parameter: three
parameter-sized float32 -> float16 conversions). x86 CPUs since 2012 (Ivy Bridge, AMD Piledriver)
convert 8 elements per instruction (VCVTPS2PH / VCVTPH2PS): ~0.1 ns an element. float32 ->
bfloat16 is ml_dtypes' cast at ~0.7 ns (and ~1.1 ns when the rounded float32 value is kept for an
optimiser's shadow); the same integer rounding in AVX2 registers takes ~0.1-0.2 ns.

The rule (visible, as DESIGN.md asks of fast paths): ``available()`` is True when this is an
x86-64 Linux CPU with AVX and F16C (AVX2 as well for bfloat16), a C compiler (``$CC``, else ``cc``)
built the kernel below into the user cache (``$XDG_CACHE_HOME/deepgrad/kernels`` or
``~/.cache/deepgrad/kernels``, else a private temp dir; once per machine, ~0.2-1 s, on the first
float16/bfloat16 conversion) and ``DEEPGRAD_F16C`` is not ``0``. Otherwise (no compiler, another
CPU, no writable private folder) ops/_lowp.py's NumPy conversions run: the same bits, slower.
``set_enabled(False)`` switches the fast path off at run time (the tests run both paths).

Bits: VCVTPS2PH with immediate 0 rounds to nearest, ties to even, whatever MXCSR holds, with
subnormal results and overflow to inf, as NumPy's cast. Only NaN differs (the instruction quiets a
signalling NaN and NumPy keeps the payload as it is), so ``f32_to_f16`` reports a NaN and the
caller converts that array with NumPy; ``f16_to_f32`` rewrites NaN lanes with NumPy's bits itself.
The bfloat16 kernel declines NaNs the same way (ml_dtypes writes its own NaN and warns on a
signalling one). tests/test_lowp.py holds both to NumPy's and ml_dtypes' casts on every
float16/bfloat16, the midpoints between them and their neighbours, and random float32 patterns
(overflow, underflow, ties, NaN payloads), with the kernel on and off.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

_SOURCE = r"""
#include <stdint.h>
#include <string.h>
#include <immintrin.h>

/* bit 0: AVX and F16C (the float16 conversions), bit 1: AVX2 (the bfloat16 one) */
int dg_cpu_features(void) {
    __builtin_cpu_init();
    return (__builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c") ? 1 : 0)
         | (__builtin_cpu_supports("avx2") ? 2 : 0);
}

/* float32 -> float16 bits (h, may be NULL), rounding to nearest even; keep: x is overwritten with
   the float16 values as float32. Returns 1 at the first 8 elements holding a NaN (written up to
   there: rounding again what is rounded changes nothing, so the caller may redo the array), else 0. */
__attribute__((target("avx,f16c")))
int dg_f32_to_f16(float *x, uint16_t *h, int64_t n, int keep) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) return 1;
        __m128i r = _mm256_cvtps_ph(v, 0);
        if (h) _mm_storeu_si128((__m128i *)(h + i), r);
        if (keep) _mm256_storeu_ps(x + i, _mm256_cvtph_ps(r));
    }
    if (i < n) {
        float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        uint16_t hb[8];
        int64_t k = n - i;
        memcpy(buf, x + i, (size_t)k * sizeof(float));
        __m256 v = _mm256_loadu_ps(buf);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) return 1;
        __m128i r = _mm256_cvtps_ph(v, 0);
        _mm_storeu_si128((__m128i *)hb, r);
        _mm256_storeu_ps(buf, _mm256_cvtph_ps(r));
        if (h) memcpy(h + i, hb, (size_t)k * sizeof(uint16_t));
        if (keep) memcpy(x + i, buf, (size_t)k * sizeof(float));
    }
    return 0;
}

/* float32 -> bfloat16 bits (h, may be NULL), rounding to nearest even on the bits as ml_dtypes
   does (adding 0x7FFF plus the kept part's lowest bit, then dropping the low 16 bits: subnormals and
   overflow to inf included); keep: x is overwritten with the bfloat16 values as float32. Returns 1
   at the first NaN (written up to there; ml_dtypes makes NaNs its own way and warns on signalling
   ones, so the caller redoes the array with it), else 0. */
__attribute__((target("avx2")))
int dg_f32_to_bf16(float *x, uint16_t *h, int64_t n, int keep) {
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7FFF);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        if (_mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(v0, v0, _CMP_UNORD_Q),
                                            _mm256_cmp_ps(v1, v1, _CMP_UNORD_Q)))) return 1;
        __m256i b0 = _mm256_castps_si256(v0), b1 = _mm256_castps_si256(v1);
        __m256i r0 = _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(b0, 16), one));
        __m256i r1 = _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(b1, 16), one));
        b0 = _mm256_srli_epi32(_mm256_add_epi32(b0, r0), 16);
        b1 = _mm256_srli_epi32(_mm256_add_epi32(b1, r1), 16);
        if (h) _mm256_storeu_si256((__m256i *)(h + i),
                                   _mm256_permute4x64_epi64(_mm256_packus_epi32(b0, b1), 0xD8));
        if (keep) {
            _mm256_storeu_ps(x + i, _mm256_castsi256_ps(_mm256_slli_epi32(b0, 16)));
            _mm256_storeu_ps(x + i + 8, _mm256_castsi256_ps(_mm256_slli_epi32(b1, 16)));
        }
    }
    for (; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, 4);
        if ((b & 0x7FFFFFFFu) > 0x7F800000u) return 1;
        b = (b + 0x7FFFu + ((b >> 16) & 1u)) >> 16;
        if (h) h[i] = (uint16_t)b;
        if (keep) {
            b <<= 16;
            memcpy(x + i, &b, 4);
        }
    }
    return 0;
}

/* float16 bits -> float32, exact; a NaN keeps its payload (NumPy's bits). */
__attribute__((target("avx,f16c")))
void dg_f16_to_f32(const uint16_t *h, float *x, int64_t n) {
    const __m128i expo = _mm_set1_epi16(0x7C00);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i r = _mm_loadu_si128((const __m128i *)(h + i));
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(r));
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(r, expo), expo))) {
            for (int j = 0; j < 8; j++) {
                uint32_t b = h[i + j];
                if ((b & 0x7C00u) == 0x7C00u && (b & 0x3FFu)) {
                    uint32_t f = ((b & 0x8000u) << 16) | 0x7F800000u | ((b & 0x3FFu) << 13);
                    memcpy(x + i + j, &f, 4);
                }
            }
        }
    }
    for (; i < n; i++) {
        uint16_t hb[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        float buf[8];
        uint32_t b = h[i];
        hb[0] = (uint16_t)b;
        _mm256_storeu_ps(buf, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)hb)));
        if ((b & 0x7C00u) == 0x7C00u && (b & 0x3FFu)) {
            uint32_t f = ((b & 0x8000u) << 16) | 0x7F800000u | ((b & 0x3FFu) << 13);
            memcpy(buf, &f, 4);
        }
        x[i] = buf[0];
    }
}
"""

_state = {"lib": None, "tried": False, "bf16": False, "enabled": os.environ.get("DEEPGRAD_F16C", "1") != "0",
          "error": None}


def _cache_dirs():
    cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path.home() / ".cache"
    yield base / "deepgrad" / "kernels"
    yield Path(tempfile.gettempdir()) / f"deepgrad-kernels-{os.getuid() if hasattr(os, 'getuid') else 0}"


def _private(path):
    """Only a file or folder this user owns and nobody else may write to is loaded from (the temp
    dir is shared: another user could have put a library there)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (not hasattr(os, "getuid") or st.st_uid == os.getuid()) and not st.st_mode & 0o022


def _build():
    """Load the kernel, compiling it first if the cache lacks it; None when that is impossible."""
    if platform.machine().lower() not in ("x86_64", "amd64") or not sys.platform.startswith("linux"):
        _state["error"] = f"not an x86-64 Linux machine ({platform.machine()}, {sys.platform})"
        return None
    cc = os.environ.get("CC", "cc")
    key = hashlib.sha256((_SOURCE + cc + platform.machine()).encode()).hexdigest()[:16]
    name = f"f16c_{key}.so"
    for d in _cache_dirs():
        path = d / name
        try:
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as e:
            _state["error"] = f"cannot build in {d}: {e}"
            continue
        if not _private(d):
            _state["error"] = f"{d} is not this user's or others may write to it"
            continue
        if not path.exists():
            try:
                fd, tmp = tempfile.mkstemp(suffix=".so", dir=d)
                os.close(fd)
                src = tmp[:-3] + ".c"
                with open(src, "w") as f:
                    f.write(_SOURCE)
                try:
                    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", tmp, src],
                                       capture_output=True, text=True, timeout=120)
                finally:
                    os.unlink(src)
                if r.returncode != 0:
                    os.unlink(tmp)
                    _state["error"] = f"{cc} failed: {r.stderr.strip()[-500:]}"
                    return None
                os.chmod(tmp, 0o755)             # (the linker's mode follows the umask)
                os.replace(tmp, path)            # atomic: concurrent builders write the same file
            except (OSError, subprocess.SubprocessError) as e:
                _state["error"] = f"cannot build in {d}: {e}"
                continue
        if not _private(path):
            _state["error"] = f"{path} is not this user's or others may write to it"
            continue
        try:
            lib = ctypes.CDLL(str(path))
        except OSError as e:
            _state["error"] = f"cannot load {path}: {e}"
            continue
        feats = lib.dg_cpu_features()
        if not feats & 1:
            _state["error"] = "this CPU lacks AVX or F16C"
            return None
        _state["bf16"] = bool(feats & 2)
        lib.dg_f32_to_f16.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int)
        lib.dg_f32_to_f16.restype = ctypes.c_int
        lib.dg_f16_to_f32.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64)
        lib.dg_f16_to_f32.restype = None
        lib.dg_f32_to_bf16.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int)
        lib.dg_f32_to_bf16.restype = ctypes.c_int
        _state["error"] = None
        global _ptr
        _ptr = _pick_ptr()
        return lib
    return None


def _ptr_ctypes(a):
    return a.ctypes.data


_PTR_AT = ctypes.c_void_p.from_address
_PTR_OFFSET = object.__basicsize__       # PyArrayObject: the object header, then ``char *data``


def _ptr_struct(a):
    return _PTR_AT(id(a) + _PTR_OFFSET).value


def _pick_ptr():
    """An array's data address: read from the array object itself (~0.4 us) when that agrees with
    NumPy's ``.ctypes.data`` (~1-5 us, a third of a small conversion's time) on a few arrays, else
    ``.ctypes.data``."""
    base = np.arange(24, dtype=np.float32)
    probes = [base, base[3:], base.reshape(4, 6)[:, 2], np.zeros(7, np.float16)[1:], np.empty(0, np.float32)]
    try:
        if all(_ptr_struct(a) == a.ctypes.data for a in probes if a.size):
            return _ptr_struct
    except Exception:                    # pragma: no cover - an unusual interpreter
        pass
    return _ptr_ctypes


_ptr = _ptr_ctypes


def _lib():
    if not _state["enabled"]:
        return None
    if not _state["tried"]:
        _state["tried"] = True
        try:
            _state["lib"] = _build()
        except Exception as e:           # pragma: no cover - never let the fast path break float16
            _state["lib"], _state["error"] = None, f"{type(e).__name__}: {e}"
    return _state["lib"] if _state["enabled"] else None


def available() -> bool:
    """Whether the F16C conversions are in use (built, supported by this CPU and enabled)."""
    return _lib() is not None


def set_enabled(flag: bool) -> bool:
    """Switch the fast path on or off (the NumPy conversions run when off); returns the previous
    setting."""
    prev = _state["enabled"]
    _state["enabled"] = bool(flag)
    return prev


def why_unavailable():
    """Why the kernel is not in use (None when it is)."""
    if not _state["enabled"]:
        return "switched off (DEEPGRAD_F16C=0 or set_enabled(False))"
    _lib()
    return _state["error"]


def f32_to_f16(x, out, keep):
    """``out`` (C-contiguous, 16-bit, ``x.size`` elements; None for none) gets the float16 bits of
    the C-contiguous float32 array ``x``; ``keep``: ``x`` is overwritten with the rounded values.
    Returns False when ``x`` holds a NaN or the kernel is off: then ``out`` may be partly written
    and ``x`` (``keep``) partly rounded, which leaves the same result to a second conversion."""
    lib = _lib()
    if lib is None:
        return False
    return not lib.dg_f32_to_f16(_ptr(x), None if out is None else _ptr(out), x.size, 1 if keep else 0)


def f16_to_f32(h, out):
    """``out`` (C-contiguous float32) gets the exact values of the C-contiguous float16 array
    ``h``; False when the kernel is off."""
    lib = _lib()
    if lib is None:
        return False
    lib.dg_f16_to_f32(_ptr(h), _ptr(out), h.size)
    return True


def f32_to_bf16(x, out, keep):
    """As ``f32_to_f16`` for bfloat16 (``out``: a C-contiguous bfloat16 or uint16 array; needs
    AVX2): the bits ml_dtypes' cast gives. False when ``x`` holds a NaN or the kernel is off."""
    lib = _lib()
    if lib is None or not _state["bf16"]:
        return False
    return not lib.dg_f32_to_bf16(_ptr(x), None if out is None else _ptr(out), x.size, 1 if keep else 0)
