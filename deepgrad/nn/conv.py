"""Convolution modules (Conv1d, Conv2d, ...): written by the conv engineer."""
