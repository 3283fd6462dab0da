import torch


def make_grid(t, nrow=8, padding=2, normalize=False, **kw):
    return t[0] if t.dim() == 4 else t


def save_image(t, fp, **kw):
    pass
