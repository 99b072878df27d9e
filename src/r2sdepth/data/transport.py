"""What a training batch carries from the data loader to the device, and how it is finished there.

A sample's spike window is the largest thing it carries (uint8 ``[T, H, W]``: 15.7 MB at T = 128,
192 x 640) and its colour-jittered copy of the RGB frames the second largest. With
``data.pack_spikes`` the loader sends the window bit-packed along the rows (``[T, H, W / 8]``,
8 pixels per byte, most significant bit first: :func:`pack_spikes`) and :func:`finish_batch`
unpacks it on the training device; with ``data.device_augment`` the loader sends the colour
jitter's draws (``jitter``: ``[4]`` = brightness, contrast, saturation factors and hue shift, and
``jitter_on``) instead of the jittered frames, and :func:`finish_batch` applies them on the device
(:func:`color_jitter`, torchvision's rules per sample). Both give the same batch as the plain
transport (the unpack bit for bit, the jitter to float rounding), with 8x fewer spike bytes and
without the loader's most expensive step. The data module calls :func:`finish_batch` in its
``on_after_batch_transfer`` hook; code that iterates its loaders by hand calls it itself.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

#: keys of a packed / deferred batch that :func:`finish_batch` replaces
PACKED_KEY, JITTER_KEY, JITTER_ON_KEY = "spikes_packed", "jitter", "jitter_on"


#: each byte with its 8 bits in reverse order (a mirrored row of packed pixels, byte by byte)
_REVERSED_BITS = np.array([int(f"{i:08b}"[::-1], 2) for i in range(256)], np.uint8)


def pack_spikes(planes: np.ndarray, flip: bool = False) -> np.ndarray:
    """Bit-pack spike planes along the rows: uint8 0/1 ``[..., W]`` -> uint8 ``[..., ceil(W / 8)]``
    (most significant bit = leftmost pixel; :func:`unpack_spikes` inverts it); ``flip``: of the
    horizontally mirrored planes (``planes[..., ::-1]``).

    When ``W`` is a multiple of 8 the rows pack as one flat bit string (``np.packbits`` along a
    strided last axis is 20-50x slower) and a flip mirrors the packed bytes (byte order and the bits
    within each byte), never a strided copy of the unpacked window."""
    a = np.ascontiguousarray(planes, dtype=np.uint8)
    width = a.shape[-1]
    if width % 8:
        return np.packbits(a[..., ::-1] if flip else a, axis=-1)
    packed = np.packbits(a.reshape(-1)).reshape(*a.shape[:-1], width // 8)
    return _REVERSED_BITS[packed[..., ::-1]] if flip else packed


def unpack_spikes(packed: torch.Tensor, width: int) -> torch.Tensor:
    """Unpack :func:`pack_spikes`' bytes on whatever device they are on: uint8 ``[..., W / 8]`` ->
    uint8 0/1 ``[..., width]`` (the same values as ``np.unpackbits(..., axis=-1)``)."""
    if packed.dtype != torch.uint8:
        raise ValueError(f"packed spikes must be uint8, got {packed.dtype}")
    if packed.shape[-1] * 8 < width:
        raise ValueError(f"{packed.shape[-1]} packed bytes per row hold fewer than {width} pixels")
    shifts = torch.arange(7, -1, -1, device=packed.device, dtype=torch.uint8)
    bits = (packed.unsqueeze(-1) >> shifts) & 1
    return bits.flatten(-2)[..., :width]


def draw_jitter(rng: np.random.Generator) -> np.ndarray:
    """Monodepth2's colour augmentation draws (the same for every frame of a sample):
    float32 ``[4]`` = brightness, contrast, saturation factors in [0.8, 1.2], hue shift in
    [-0.1, 0.1] (fractions of a turn)."""
    b, c, s = (float(rng.uniform(0.8, 1.2)) for _ in range(3))
    return np.array([b, c, s, float(rng.uniform(-0.1, 0.1))], np.float32)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma of ``[..., 3, H, W]`` -> ``[..., 1, H, W]`` (torchvision's weights)."""
    r, g, b = x.unbind(-3)
    return (0.2989 * r + 0.587 * g + 0.114 * b).unsqueeze(-3)


def _shift_hue(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate the hue of RGB ``[..., 3, H, W]`` in [0, 1] by ``shift`` (turns, broadcast to
    ``[..., 1, 1]``) through HSV (hexcone model), value and saturation kept."""
    r, g, b = x.unbind(-3)
    v = torch.maximum(torch.maximum(r, g), b)
    lo = torch.minimum(torch.minimum(r, g), b)
    chroma = v - lo
    grey = chroma == 0
    sat = chroma / torch.where(grey, torch.ones_like(v), v)
    den = torch.where(grey, torch.ones_like(chroma), chroma)
    rc, gc, bc = (v - r) / den, (v - g) / den, (v - b) / den
    hue = torch.where(v == r, bc - gc, torch.where(v == g, 2.0 + rc - bc, 4.0 + gc - rc))
    hue = torch.where(grey, torch.zeros_like(hue), hue)
    hue = torch.fmod(hue / 6.0 + 1.0, 1.0)
    hue = torch.remainder(hue + shift, 1.0)
    # back to RGB: sector i of the hexcone, fraction f inside it
    h6 = hue * 6.0
    i = torch.floor(h6)
    f = h6 - i
    i = i.to(torch.int64) % 6
    p = (v * (1.0 - sat)).clamp(0, 1)
    q = (v * (1.0 - sat * f)).clamp(0, 1)
    t = (v * (1.0 - sat * (1.0 - f))).clamp(0, 1)
    table = torch.stack(
        [
            torch.stack([v, q, p, p, t, v]),  # red of sectors 0..5
            torch.stack([t, v, v, q, p, p]),  # green
            torch.stack([p, p, t, v, v, q]),  # blue
        ]
    )  # [3, 6, ...]
    idx = i.unsqueeze(0).unsqueeze(0).expand(3, 1, *i.shape)
    return torch.gather(table, 1, idx).squeeze(1).movedim(0, -3)


def color_jitter(color: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """Colour jitter with one draw per sample, as torchvision's ``adjust_brightness``,
    ``adjust_contrast``, ``adjust_saturation`` and ``adjust_hue`` applied in that order to each
    sample's frames, then clamped to [0, 1].

    ``color``: float ``[B, F, 3, H, W]`` in [0, 1]; ``params``: ``[B, 4]`` (:func:`draw_jitter`).
    Contrast blends each frame with the mean of its own luma.
    """
    p = params.to(color.dtype).view(-1, 1, 4, 1, 1, 1)
    bright, contrast, sat, hue = p.unbind(2)
    x = (bright * color).clamp(0, 1)
    mean = _gray(x).mean(dim=(-3, -2, -1), keepdim=True)
    x = (contrast * x + (1 - contrast) * mean).clamp(0, 1)
    x = (sat * x + (1 - sat) * _gray(x)).clamp(0, 1)
    x = _shift_hue(x, hue.squeeze(-3))
    return x.clamp(0, 1)


def finish_batch(batch: dict[str, Any]) -> dict[str, Any]:
    """Turn a packed / deferred batch into the plain one, in place, on the batch's device:
    ``spikes_packed`` (uint8 ``[B, T, H, W / 8]``) -> ``spikes`` (uint8 ``[B, T, H, W]``; training
    widths are multiples of 32), ``jitter`` / ``jitter_on`` -> ``color_aug`` (float
    ``[B, F, 3, H, W]``: jittered where ``jitter_on``, ``color`` elsewhere). A plain batch is
    returned unchanged."""
    if PACKED_KEY in batch:
        packed = batch.pop(PACKED_KEY)
        batch["spikes"] = unpack_spikes(packed, packed.shape[-1] * 8)
    if JITTER_KEY in batch:
        params, on = batch.pop(JITTER_KEY), batch.pop(JITTER_ON_KEY).bool()
        color = batch["color"]
        aug = color.clone()
        if bool(on.any()):
            aug[on] = color_jitter(color[on], params[on])
        batch["color_aug"] = aug
    return batch
