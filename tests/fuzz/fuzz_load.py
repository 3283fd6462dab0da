"""A longer fuzzing run of deepgrad.load and the checkpoint schema than the CI test
(tests/train/test_load_fuzz.py), with the same mutation families and the same rule: every outcome
is a load identical to the original, a deepgrad FileError, or (for crafted-but-intact structure
records only) a load of other content. Anything else is a finding: it is counted, and the file is
kept in --keep for reproduction.

    PYTHONPATH=. python tests/fuzz/fuzz_load.py --seconds 300 [--seed 0] [--keep /tmp/fuzz-findings]

Prints the counts of outcomes per mutation family, the slowest load, and the peak RSS of the
process; exits 1 if there was a finding.
"""
import argparse
import collections
import io
import os
import random
import resource
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "train"))

import deepgrad as dg  # noqa: E402
import _ckpt_craft as craft  # noqa: E402


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", default=None, help="folder for files that produced a finding")
    ap.add_argument("--per-case-timeout", type=int, default=10)
    args = ap.parse_args(argv)
    rnd = random.Random(args.seed)
    data = craft.small_checkpoint()
    original = dg.load(io.BytesIO(data))
    counts = collections.Counter()
    findings = collections.Counter()
    slowest = (0.0, None)
    signal.signal(signal.SIGALRM, _alarm)
    families = list(craft.MUTATORS)
    t_end = time.monotonic() + args.seconds
    n = 0
    while time.monotonic() < t_end:
        family = families[n % len(families)]
        n += 1
        kind, mutated = craft.MUTATORS[family](data, rnd)
        t0 = time.perf_counter()
        signal.alarm(args.per_case_timeout)
        try:
            outcome = craft.classify(mutated, original, rebuild=family == "json")
        except Hang:
            outcome = "HANG"
        except BaseException as e:   # noqa: BLE001 - a finding
            if isinstance(e, KeyboardInterrupt):
                raise
            outcome = f"ESCAPED {type(e).__name__}"
        finally:
            signal.alarm(0)
        dt = time.perf_counter() - t0
        if dt > slowest[0]:
            slowest = (dt, f"{family}/{kind}")
        counts[(family, outcome)] += 1
        if outcome not in craft.ALLOWED[family]:
            findings[(family, kind, outcome)] += 1
            if args.keep:
                os.makedirs(args.keep, exist_ok=True)
                with open(os.path.join(args.keep, f"finding-{n}-{family}.npz"), "wb") as f:
                    f.write(mutated)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{n} mutated files in {args.seconds:.0f} s (seed {args.seed})")
    for family in families:
        row = {o: c for (f, o), c in sorted(counts.items()) if f == family}
        print(f"  {family:<11} {sum(row.values()):>7}  " + ", ".join(f"{o} {c}" for o, c in row.items()))
    print(f"slowest load: {slowest[0] * 1000:.1f} ms ({slowest[1]}); peak RSS {peak:.0f} MB")
    if findings:
        print("FINDINGS:")
        for (family, kind, outcome), c in findings.most_common():
            print(f"  {c:>5}  {family}/{kind}: {outcome}")
        return 1
    print("no findings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
