"""Run a PyTorch program several times in one process, once per seed, and print its last loss.

    python _drive.py PROGRAM [--rewrite] --seeds 0 1 2 -- [program args...]

The program is run with ``runpy`` as ``__main__`` and ``sys.argv = [PROGRAM, '--seed', S, args...]``;
its stdout is captured and the last number on the last line starting with ``final loss`` is
printed as ``RESULT <seed> <loss>``. ``--rewrite`` first changes only the import lines
(``import torch`` -> ``import deepgrad as torch``, ``torch.X`` -> ``deepgrad.X``, ``torchvision`` ->
``deepgrad.vision``): the "import changed" way of running a PyTorch program on deepgrad.
Under ``python -m deepgrad.torch_compat _drive.py ...`` the program runs unchanged on deepgrad.
"""
import contextlib
import io
import os
import re
import sys


def rewrite_imports(src):
    out = []
    for line in src.splitlines():
        stripped = line.lstrip()
        if stripped.startswith(("import ", "from ")):
            m = re.match(r"^(\s*)import (torch|torchvision)\s*$", line)
            if m:
                line = f"{m.group(1)}import {'deepgrad' if m.group(2) == 'torch' else 'deepgrad.vision'} as {m.group(2)}"
            else:
                line = re.sub(r"\btorchvision\b", "deepgrad.vision", line)
                line = re.sub(r"\btorch\.", "deepgrad.", line)
                line = re.sub(r"^(\s*)from torch import", r"\1from deepgrad import", line)
        out.append(line)
    return "\n".join(out) + "\n"


def main():
    argv = sys.argv[1:]
    program = argv.pop(0)
    rewrite = "--rewrite" in argv
    if rewrite:
        argv.remove("--rewrite")
    i = argv.index("--seeds")
    j = argv.index("--") if "--" in argv else len(argv)
    seeds, extra = argv[i + 1:j], argv[j + 1:]
    src = open(program).read()
    if rewrite:
        src = rewrite_imports(src)
    code = compile(src, program, "exec")
    workdir = os.getcwd()
    for seed in seeds:
        sys.argv = [program, "--seed", seed, *extra]
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(code, {"__name__": "__main__", "__file__": program})
        os.chdir(workdir)
        lines = [ln for ln in buf.getvalue().splitlines() if ln.startswith("final loss")]
        if not lines:
            sys.stdout.write(buf.getvalue())
            raise SystemExit(f"{program}: printed no 'final loss' line")
        print("RESULT", seed, re.findall(r"[-+0-9.eE]+(?:nan|inf)?", lines[-1])[-1], flush=True)


if __name__ == "__main__":
    main()
