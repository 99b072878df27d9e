"""Intensity reconstructions from spike planes: TFP and TFI.

* TFP ("texture from playback"): the mean firing over a window, ``I = mean_t S[t]``; for an
  integrate-and-fire pixel this is ``gain * L / theta``, proportional to the light.
* TFI ("texture from inter-spike interval"): ``I_t = 1 / (t_next - t_prev)``, the inverse of
  the interval between the last spike at or before ``t`` and the first spike after ``t``;
  a pixel firing every plane gives 1. Where a side has no spike inside the window, the interval
  is capped at the window length (``1 / T``), the dimmest value the window can express.

Both return float32 images in [0, 1]. Inputs are uint8/bool 0/1 planes ``[T, H, W]`` or a
batch ``[B, T, H, W]``; :func:`tfp` also accepts a torch tensor (time axis ``-3``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def tfp(spikes: Any, *, axis: int = -3) -> Any:
    """Firing rate over the time axis: ``[..., T, H, W] -> [..., H, W]`` float32 in [0, 1].

    Works on numpy arrays and (without importing torch here) on torch tensors.
    """
    if hasattr(spikes, "float") and hasattr(spikes, "mean") and not isinstance(spikes, np.ndarray):
        return spikes.float().mean(dim=axis)
    spikes = np.asarray(spikes)
    if spikes.ndim < 3:
        raise ValueError(f"tfp expects [..., T, H, W], got shape {list(spikes.shape)}")
    t = spikes.shape[axis]
    if t == 0:
        raise ValueError("tfp of an empty window")
    # Summing uint8 as uint16/int32 is exact and faster than float mean.
    acc = np.add.reduce(spikes, axis=axis, dtype=np.int32 if t > 65535 else np.uint16)
    return acc.astype(np.float32) / np.float32(t)


def _prev_next(spikes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per plane and pixel: index of the last spike at or before t (or -1) and of the first
    spike strictly after t (or T), both int32 ``[T, H, W]``."""
    t = spikes.shape[0]
    idx = np.arange(t, dtype=np.int32).reshape((t,) + (1,) * (spikes.ndim - 1))
    fired = spikes.astype(bool, copy=False)
    prev = np.where(fired, idx, np.int32(-1))
    np.maximum.accumulate(prev, axis=0, out=prev)
    nxt = np.where(fired, idx, np.int32(t))
    nxt = np.minimum.accumulate(nxt[::-1], axis=0)[::-1]
    # first spike strictly after t = first spike at or after t + 1
    after = np.empty_like(nxt)
    after[:-1] = nxt[1:]
    after[-1] = t
    return prev, after


def tfi(spikes: Any, index: int | Sequence[int] | None = None) -> np.ndarray:
    """Inverse inter-spike interval at plane ``index`` (default: the window's centre).

    ``spikes``: ``[T, H, W]`` (or ``[B, T, H, W]``, same index for every sample).
    ``index``: an int -> ``[H, W]`` (``[B, H, W]``); a sequence -> ``[N, H, W]`` (``[B, N, H, W]``).
    Returns float32 in [0, 1].
    """
    spikes = np.asarray(spikes)
    if spikes.ndim == 4:
        return np.stack([tfi(s, index) for s in spikes])
    if spikes.ndim != 3:
        raise ValueError(f"tfi expects [T, H, W] or [B, T, H, W], got shape {list(spikes.shape)}")
    t = spikes.shape[0]
    if t == 0:
        raise ValueError("tfi of an empty window")
    scalar = index is None or np.isscalar(index)
    idx = np.atleast_1d(np.asarray(t // 2 if index is None else index, dtype=np.int64))
    if np.any(idx < 0) or np.any(idx >= t):
        raise ValueError(f"tfi index {index} out of range for a window of {t} planes")
    if scalar:
        i = int(idx[0])
        fired = spikes.astype(bool, copy=False)
        # last spike at or before i: argmax over the reversed prefix
        pre = fired[: i + 1][::-1]
        has_prev = pre.any(axis=0)
        prev = i - pre.argmax(axis=0)
        post = fired[i + 1 :]
        if post.shape[0]:
            has_next = post.any(axis=0)
            nxt = i + 1 + post.argmax(axis=0)
        else:
            has_next = np.zeros(spikes.shape[1:], bool)
            nxt = np.zeros(spikes.shape[1:], np.int64)
        interval = np.where(has_prev & has_next, nxt - prev, t)
        return (1.0 / np.maximum(interval, 1)).astype(np.float32)
    prev, nxt = _prev_next(spikes)
    prev, nxt = prev[idx], nxt[idx]
    interval = np.where((prev >= 0) & (nxt < t), nxt - prev, t)
    return (1.0 / np.maximum(interval, 1)).astype(np.float32)


def stretch(img: np.ndarray, *, percentile: float | None = 99.5) -> np.ndarray:
    """A [0, 1] reconstruction ``[..., H, W]`` stretched so that each image's ``percentile`` maps to
    1 (clipped to [0, 1]; real cameras rarely fire every plane, so raw rates look dark); ``None``
    keeps the absolute scale. float32."""
    img = np.asarray(img, dtype=np.float32)
    if percentile is None or not img.size:
        return np.clip(img, 0.0, 1.0)
    flat = img.reshape(-1, img.shape[-2] * img.shape[-1]) if img.ndim >= 2 else img.reshape(1, -1)
    hi = np.percentile(flat, percentile, axis=1).astype(np.float32)
    scale = np.where(hi > 0, 1.0 / np.maximum(hi, 1e-30), 1.0).astype(np.float32)
    return np.clip(flat * scale[:, None], 0.0, 1.0).reshape(img.shape)


def to_uint8(img: np.ndarray, *, percentile: float | None = 99.5) -> np.ndarray:
    """Map a [0, 1] reconstruction to an 8-bit image for display (:func:`stretch`, one stretch for
    the whole array)."""
    img = np.asarray(img, dtype=np.float32)
    if not img.size:
        return img.astype(np.uint8)
    flat = stretch(img.reshape(1, -1), percentile=percentile)
    return np.rint(flat * 255.0).astype(np.uint8).reshape(img.shape)
