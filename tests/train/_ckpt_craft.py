"""Helpers that craft deepgrad files (valid, corrupt or hostile) for the loader's security tests and
the fuzzers (tests/train/test_io_security.py, tests/train/test_load_fuzz.py, benchmarks/fuzz_load.py)."""
import io
import json
import math
import struct
import zipfile
import zlib

import numpy as np

import deepgrad as dg

RECORD = "__deepgrad__.npy"


def npy_bytes(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def zip_members(members, compression=zipfile.ZIP_STORED):
    """A zip (bytes) of ``{name: bytes}``, members stored, CRCs correct."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def members_of(data):
    """``{name: raw bytes}`` of a zip's members (read with zipfile, trusted input only)."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def record_of(data):
    """The structure record (a dict) of a deepgrad file's bytes."""
    raw = members_of(data)[RECORD]
    return json.loads(np.load(io.BytesIO(raw), allow_pickle=False).tobytes().decode())


def with_record(data, record_text):
    """``data`` (a deepgrad file) with its structure record replaced by ``record_text`` (str/bytes),
    re-zipped with correct CRCs."""
    members = members_of(data)
    blob = record_text.encode() if isinstance(record_text, str) else record_text
    members[RECORD] = npy_bytes(np.frombuffer(blob, np.uint8))
    return zip_members(members)


def small_checkpoint():
    """A real, small training checkpoint of recipe ``xor-mlp`` (bytes), after one epoch."""
    from deepgrad import nn, optim
    from deepgrad.data import DataLoader, TensorDataset
    from deepgrad.recipes import get_recipe
    from deepgrad.train import Trainer
    dg.manual_seed(0)
    hp = get_recipe("xor-mlp").hparams(hidden=4)
    model = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2))
    x = np.random.default_rng(0).normal(size=(32, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=dg.Generator().manual_seed(1))
    t = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=0.05), verbose=0,
                meta={"recipe": "xor-mlp", "hparams": hp})
    t.fit(loader, epochs=1)
    buf = io.BytesIO()
    dg.save(t.state_dict(), buf)
    return buf.getvalue()


def mnist_checkpoint(hidden=8):
    """A small but real checkpoint of recipe ``mnist-mlp`` (bytes), untrained."""
    from deepgrad import nn
    from deepgrad.recipes import get_recipe
    from deepgrad.train import Trainer
    recipe = get_recipe("mnist-mlp")
    hp = recipe.hparams(hidden=hidden)
    model = recipe.build_model(hp)
    t = Trainer(model, nn.CrossEntropyLoss(), recipe.build_optimizer(hp, model), verbose=0,
                meta={"recipe": "mnist-mlp", "hparams": hp})
    buf = io.BytesIO()
    dg.save(t.state_dict(), buf)
    return buf.getvalue()


def edit_checkpoint(data, edit):
    """Load ``data`` (trusted), apply ``edit(ckpt_dict)`` (which may return a replacement), and save
    the result as a *valid* file (right CRCs and SHA-256): crafted content, intact container."""
    ckpt = dg.load(io.BytesIO(data))
    out = edit(ckpt)
    buf = io.BytesIO()
    dg.save(ckpt if out is None else out, buf)
    return buf.getvalue()


def central_entries(data):
    """``[(offset of the central-directory entry, offset of its local header, name)]``."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        start = zf.start_dir
        infos = zf.infolist()
    out, pos = [], start
    for info in infos:
        assert data[pos:pos + 4] == b"PK\x01\x02"
        nlen, elen, clen = struct.unpack("<3H", data[pos + 28:pos + 34])
        out.append((pos, info.header_offset, info.filename))
        pos += 46 + nlen + elen + clen
    return out


def set_u16(data, offset, value):
    b = bytearray(data)
    b[offset:offset + 2] = struct.pack("<H", value)
    return bytes(b)


def same(a, b):
    """Deep equality of loaded objects (dtypes, shapes and bits of arrays; NaN equal to NaN)."""
    if isinstance(a, dg.Tensor):
        return (isinstance(b, dg.Tensor) and a.dtype == b.dtype and a.shape == b.shape
                and a.requires_grad == b.requires_grad
                and np.array_equal(a.array.view(np.uint8), b.array.view(np.uint8)) if a.array.size
                else isinstance(b, dg.Tensor) and a.shape == b.shape and a.dtype == b.dtype)
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
                and a.tobytes() == b.tobytes())
    if isinstance(a, dict):
        return type(a) is type(b) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return type(a) is type(b) and a == b


def crc_fixed(data):
    """Re-zip ``data``'s members as they are (even if corrupt), with fresh CRCs: what a careful
    attacker would do after editing a member."""
    return zip_members(members_of_raw(data))


def members_of_raw(data):
    """Like :func:`members_of` but without CRC checks (zipfile checks them at the end of a read)."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            start = info.header_offset
            nlen, elen = struct.unpack("<2H", data[start + 26:start + 30])
            begin = start + 30 + nlen + elen
            out[info.filename] = data[begin:begin + info.compress_size]
    return out


def append_deflated(path, name, size, chunk=1 << 20):
    """Add a deflated member of ``size`` zero bytes to the zip at ``path``, streaming (the test
    process never holds it)."""
    zero = bytes(chunk)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open(name, "w", force_zip64=True) as m:
            for _ in range(size // chunk):
                m.write(zero)
