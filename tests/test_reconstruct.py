"""TFP / TFI / display mapping against values worked out by hand, and their errors (the mutants
mutmut found surviving in ``spike/reconstruct.py``, ``docs/results/mutation/``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from r2sdepth.spike.reconstruct import tfi, tfp, to_uint8


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"^tfp expects \[\.\.\., T, H, W\], got shape \[3, 4\]$"):
        tfp(np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match=r"^tfp of an empty window$"):
        tfp(np.zeros((0, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"^tfi expects \[T, H, W\] or \[B, T, H, W\], got shape \[3, 4\]$"):
        tfi(np.zeros((3, 4), np.uint8))
    with pytest.raises(ValueError, match=r"^tfi of an empty window$"):
        tfi(np.zeros((0, 2, 2), np.uint8))
    for bad in (-1, 5, [0, 5], [-1, 2]):
        with pytest.raises(ValueError, match=r"^tfi index .* out of range for a window of 5 planes$"):
            tfi(np.zeros((5, 2, 2), np.uint8), bad)
    assert tfi(np.ones((5, 2, 2), np.uint8), 4).shape == (2, 2)  # the last plane is in range


def test_outputs_are_float32():
    s = (np.arange(5 * 2 * 3).reshape(5, 2, 3) % 3 == 0).astype(np.uint8)
    assert tfp(s).dtype == np.float32
    assert tfi(s).dtype == np.float32 and tfi(s, [1, 3]).dtype == np.float32
    assert tfi(s[None]).dtype == np.float32


@pytest.mark.parametrize("t", [65535, 65536, 70000])
def test_tfp_counts_windows_longer_than_16_bits(t):
    """A pixel firing every plane has TFP 1 and one firing every other plane 0.5, however long the
    window (a 16-bit accumulator would wrap at 65536 planes)."""
    s = np.ones((t, 1, 2), np.uint8)
    s[1::2, 0, 1] = 0
    got = tfp(s)
    assert got[0, 0] == 1.0
    assert got[0, 1] == pytest.approx(((t + 1) // 2) / t, abs=1e-7)


def test_tfp_of_lists_and_tensors():
    assert tfp([[[1, 0]], [[0, 0]]]).tolist() == [[0.5, 0.0]]  # a nested list is an array
    x = torch.tensor([[[1, 1]], [[0, 1]], [[0, 1]], [[0, 1]]], dtype=torch.uint8)
    got = tfp(x)
    assert isinstance(got, torch.Tensor) and got.tolist() == [[0.25, 1.0]]


def test_to_uint8_by_hand():
    img = np.array([[0.0, 0.25], [0.5, 1.0]], np.float32)
    # absolute scale: round(v * 255), half to even
    assert to_uint8(img, percentile=None).tolist() == [[0, 64], [128, 255]]
    # stretched: the 50th percentile of {0, .25, .5, 1} is 0.375 -> 255
    assert to_uint8(img, percentile=50).tolist() == [[0, 170], [255, 255]]
    assert to_uint8(img).tolist() == [[0, 64], [128, 255]]  # 99.5th percentile: 0.9925 -> 255
    dim = img * 0.1
    assert to_uint8(dim, percentile=100).tolist() == [[0, 64], [128, 255]]
    assert to_uint8(np.zeros((2, 2)), percentile=99.5).tolist() == [[0, 0], [0, 0]]  # nothing fired
    assert to_uint8(np.zeros((0, 3))).shape == (0, 3)
    assert to_uint8(np.array([[2.0, -1.0]]), percentile=None).tolist() == [[255, 0]]  # clipped
    assert to_uint8(img).dtype == np.uint8
