"""Fuzzing deepgrad.load (a bounded budget for CI; tests/fuzz/fuzz_load.py runs longer).

Starting from a real small checkpoint, each example applies one mutation: raw bytes (flips,
insertions, deletions, truncation), structure-aware edits made in place (zip header fields, .npy
header text, the structure record's bytes, member names), structure-record JSON edits re-zipped with
correct CRCs (crafted but intact files, also rebuilt as recipe models), and member edits re-zipped
with correct CRCs (caught by SHA-256). Every outcome must be a load identical to the original, a
deepgrad FileError, or (only for the intact crafted records) a load of other content: any other
exception type fails the test, and the deadline catches hangs."""
import io

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import deepgrad as dg
import _ckpt_craft as craft

_ORIGINAL = {}


def original():
    if not _ORIGINAL:
        data = craft.small_checkpoint()
        _ORIGINAL["data"] = data
        _ORIGINAL["obj"] = dg.load(io.BytesIO(data))
    return _ORIGINAL["data"], _ORIGINAL["obj"]


FUZZ = settings(max_examples=100, deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.parametrize("family", ["raw", "structure", "json", "member+crc"])
@FUZZ
@given(rnd=st.randoms(use_true_random=False))
def test_load_outcomes_are_identical_or_file_error(family, rnd):
    data, obj = original()
    kind, mutated = craft.MUTATORS[family](data, rnd)
    outcome = craft.classify(mutated, obj, rebuild=family == "json")
    assert outcome in craft.ALLOWED[family], (family, kind, outcome)
