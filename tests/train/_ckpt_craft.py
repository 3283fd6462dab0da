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
            if name.endswith(".npy"):                   # a valid .npy: a header, then the zeros
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"descr": "|u1", "fortran_order": False,
                                                              "shape": (size // chunk * chunk,)})
                m.write(header.getvalue())
            for _ in range(size // chunk):
                m.write(zero)


# ---- mutation engines for the fuzzers (rnd: a random.Random) ----------------------------------------
INTERESTING_16 = (0, 1, 8, 9, 12, 14, 99, 0x7FFF, 0x8000, 0xFFFF)
INTERESTING_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)


def mutate_raw(data, rnd):
    """A random byte-level mutation: flips, random bytes, insertions, deletions, truncation."""
    b = bytearray(data)
    kind = rnd.choice(("flip", "set", "insert", "delete", "truncate", "duplicate", "multi"))
    n = len(b)
    if kind == "flip":
        i = rnd.randrange(n)
        b[i] ^= 1 << rnd.randrange(8)
    elif kind == "set":
        b[rnd.randrange(n)] = rnd.randrange(256)
    elif kind == "insert":
        i = rnd.randrange(n + 1)
        b[i:i] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
    elif kind == "delete":
        i = rnd.randrange(n)
        del b[i:i + rnd.randrange(1, 65)]
    elif kind == "truncate":
        del b[rnd.randrange(n):]
    elif kind == "duplicate":
        i = rnd.randrange(n)
        j = min(n, i + rnd.randrange(1, 200))
        k = rnd.randrange(n)
        b[k:k] = b[i:j]
    else:
        for _ in range(rnd.randrange(2, 9)):
            b[rnd.randrange(n)] = rnd.randrange(256)
    return kind, bytes(b)


def _zip_fields(data):
    """Offsets of the zip's header fields: [(offset, width, name)]."""
    fields = []
    for central, local, _ in central_entries(data):
        for off, w, name in ((4, 2, "c.version"), (8, 2, "c.flags"), (10, 2, "c.method"), (16, 4, "c.crc"),
                             (20, 4, "c.csize"), (24, 4, "c.usize"), (28, 2, "c.nlen"), (30, 2, "c.elen"),
                             (32, 2, "c.clen"), (42, 4, "c.offset")):
            fields.append((central + off, w, name))
        for off, w, name in ((6, 2, "l.flags"), (8, 2, "l.method"), (14, 4, "l.crc"), (18, 4, "l.csize"),
                             (22, 4, "l.usize"), (26, 2, "l.nlen"), (28, 2, "l.elen")):
            fields.append((local + off, w, name))
    end = data.rfind(b"PK\x05\x06")
    for off, w, name in ((8, 2, "e.count_disk"), (10, 2, "e.count"), (12, 4, "e.cdsize"), (16, 4, "e.cdoffset"),
                         (20, 2, "e.comment")):
        fields.append((end + off, w, name))
    return fields


def mutate_structure(data, rnd):
    """A structure-aware mutation made in place (CRCs left as they were): zip header fields, .npy
    header text, bytes of the structure record, member names."""
    kind = rnd.choice(("zipfield", "npyheader", "record", "name"))
    b = bytearray(data)
    if kind == "zipfield":
        off, w, name = rnd.choice(_zip_fields(data))
        values = INTERESTING_16 if w == 2 else INTERESTING_32
        v = rnd.choice(values) if rnd.random() < 0.7 else rnd.randrange(1 << (8 * w))
        b[off:off + w] = v.to_bytes(w, "little")
        return f"zipfield:{name}", bytes(b)
    if kind == "npyheader":
        starts = [i for i in range(len(data)) if data.startswith(b"\x93NUMPY", i)]
        i = rnd.choice(starts)
        j = data.index(b"\n", i)
        header = data[i + 10:j]
        edits = [(b"'<f4'", b"'<f2'"), (b"'<f4'", b"'<f8'"), (b"'<f4'", b"'|O' "), (b"'<f4'", b"'>f4'"),
                 (b"'<f4'", b"'<i4'"), (b"False", b"True "), (b"(", b"[") , (b"'shape': (", b"'shape': (9"),
                 (b"'descr'", b"'dxscr'"), (b"'<i8'", b"'<u8'"), (b"'|u1'", b"'|i1'")]
        old, new = rnd.choice(edits)
        if old in header:
            header = header.replace(old, new, 1)
        else:
            k = rnd.randrange(len(header))
            header = header[:k] + bytes([rnd.choice(b"0123456789(),'{}: ")]) + header[k + 1:]
        b[i + 10:j] = header[:j - i - 10].ljust(j - i - 10, b" ")
        return "npyheader", bytes(b)
    if kind == "record":
        i = data.index(b'{"format"')
        j = i + data[i:].index(b"PK")
        k = rnd.randrange(i, j)
        b[k] = rnd.choice(b'{}[]",:0123456789-eE.nulltrfas_') if rnd.random() < 0.7 else rnd.randrange(256)
        return "record", bytes(b)
    name_at = [m for m in range(len(data)) if data.startswith(b".npy", m)]
    k = rnd.choice(name_at) - 1
    b[k] = rnd.choice(b"0123456789a_")
    return "name", bytes(b)


_JSON_VALUES = ['-5', '0', '1e999', '"x"', 'null', 'true', '[]', '{}', '[' * 50 + ']' * 50, '9' * 5000,
                '{"__tensor__":"a0"}', '{"__float__":"nan"}', '{"__tuple__":[1]}', '{"__dict__":[[1,2]]}',
                '{"__evil__":1}', '"\\ud800"', '1.5', '2147483648', '-1e308']


def mutate_record_json(data, rnd):
    """Edit the structure record's JSON (replace a value, delete or add an entry, rename a key) and
    re-zip with correct CRCs: a crafted but intact file. Outcome: a load, or FileError."""
    rec = members_of(data)[RECORD]
    text = np.load(io.BytesIO(rec), allow_pickle=False).tobytes().decode()
    import re
    spots = [m for m in re.finditer(r'(?<=[:\[,])(-?\d[\d.eE+-]*|"[^"\\]*"|true|false|null)', text)]
    kind = rnd.choice(("value", "value", "key", "drop"))
    if kind == "value" and spots:
        m = rnd.choice(spots)
        text = text[:m.start()] + rnd.choice(_JSON_VALUES) + text[m.end():]
    elif kind == "key":
        keys = list(re.finditer(r'"[A-Za-z_][A-Za-z0-9_]*":', text))
        m = rnd.choice(keys)
        text = text[:m.start()] + rnd.choice(['"__tensor__":', '"hidden":', '"epoch":', '"x":', '"__dict__":',
                                              '"lr":', '"model":', '"version":']) + text[m.end():]
    else:
        m = rnd.choice(spots)
        s = max(text.rfind(",", 0, m.start()), 0)
        text = text[:s] + text[m.end():]
    return f"json:{kind}", with_record(data, text)


def mutate_member_fixed_crc(data, rnd):
    """Change bytes of an array member (header or data) and re-zip with correct CRCs: only the
    SHA-256 (or the header checks) can catch it."""
    members = members_of(data)
    name = rnd.choice([n for n in members if n != RECORD])
    raw = bytearray(members[name])
    i = rnd.randrange(len(raw))
    raw[i] ^= 1 << rnd.randrange(8)
    members[name] = bytes(raw)
    return "member+crc", zip_members(members)


MUTATORS = {"raw": mutate_raw, "structure": mutate_structure, "json": mutate_record_json,
            "member+crc": mutate_member_fixed_crc}
#: outcomes each family may have: an in-place mutation must load identically or be refused; a
#: crafted-but-intact record (CRCs fixed) may also load with other content
ALLOWED = {"raw": {"identical", "FileError", "UnsafeFileError"},
           "structure": {"identical", "FileError", "UnsafeFileError"},
           "json": {"identical", "different", "FileError", "UnsafeFileError"},
           "member+crc": {"identical", "FileError", "UnsafeFileError"}}


def classify(data, original, rebuild=False):
    """Load ``data``; returns "identical", "different", or the name of the deepgrad error raised.
    Any other exception propagates (a fuzzer's finding). ``rebuild``: when the file loads, also
    rebuild its recipe model (:func:`deepgrad.recipes.load_trained`), which must succeed or raise
    FileError."""
    try:
        obj = dg.load(io.BytesIO(data))
    except dg.FileError as e:
        return type(e).__name__
    if rebuild:
        from deepgrad.recipes import load_trained
        try:
            load_trained(io.BytesIO(data))
        except dg.FileError:
            pass
    return "identical" if same(obj, original) else "different"
