"""``deepgrad.nn.utils.rnn``: where PyTorch users look for the packed-sequence helpers."""
from ..rnn import (PackedSequence, pack_padded_sequence, pad_packed_sequence, pack_sequence,  # noqa: F401
                   pad_sequence, unpack_sequence, unpad_sequence)

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pack_sequence", "pad_sequence",
           "unpack_sequence", "unpad_sequence"]
