"""Spike window -> dense tensor: frequency, temporal (ConvGRU) and affinity aggregation.

Input: binary spike window ``[B, T, H, W]`` (uint8 or float 0/1, oldest plane first).

1. Frequency aggregation: firing rate over the window, ``[B, 1, H, W]``.
2. Temporal aggregation: the window in ``K`` chunks of ``T / K`` planes; each chunk is summarised
   as ``bins`` sub-window firing rates and fed to a ConvGRU cell (3x3, ``hidden`` channels)
   whose state is carried across chunks (the published code reset it). The hidden state after
   each chunk is an output: ``[B, K * hidden, H, W]``.
3. Affinity aggregation, per sample: two 3x3 convs of the temporal map at half resolution,
   averaged along rows and along columns; their outer product through a sigmoid is an attention
   map that weights a conv of the frequency map; upsampled and added to the temporal map.
   (The published code mixed samples across the batch; this works for any batch size.)

Output: ``[B, C, H, W]`` with ``C = K * hidden (+ 1 when include_rate)``; ``include_rate`` also
passes the firing-rate map itself (a departure that makes the intensity cue explicit).
:meth:`SpikeRepresentation.chunk_maps` gives one map per chunk for the spiking encoder.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvGRUCell(nn.Module):
    """Convolutional GRU cell: ``h' = (1 - z) h + z tanh(W [x, r h])``."""

    def __init__(self, in_ch: int, hid_ch: int, k: int = 3) -> None:
        super().__init__()
        self.hid = hid_ch
        self.gates = nn.Conv2d(in_ch + hid_ch, 2 * hid_ch, k, padding=k // 2)
        self.cand = nn.Conv2d(in_ch + hid_ch, hid_ch, k, padding=k // 2)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None) -> torch.Tensor:
        if h is None:
            h = x.new_zeros(x.shape[0], self.hid, *x.shape[-2:])
        z, r = torch.sigmoid(self.gates(torch.cat([x, h], 1))).chunk(2, 1)
        c = torch.tanh(self.cand(torch.cat([x, r * h], 1)))
        return (1 - z) * h + z * c


class SpikeRepresentation(nn.Module):
    """Spike window ``[B, T, H, W]`` -> dense map ``[B, out_channels, H, W]``."""

    def __init__(self, chunks: int = 4, bins: int = 8, hidden: int = 1, include_rate: bool = True) -> None:
        super().__init__()
        self.k, self.bins, self.hidden, self.include_rate = chunks, bins, hidden, include_rate
        c = chunks * hidden
        self.gru = ConvGRUCell(bins, hidden)
        self.aff_a = nn.Conv2d(c, 1, 3, padding=1)
        self.aff_b = nn.Conv2d(c, 1, 3, padding=1)
        self.freq_conv = nn.Conv2d(1, c, 3, padding=1)
        self.out_channels = c + (1 if include_rate else 0)

    def _binned(self, spikes: torch.Tensor) -> torch.Tensor:
        """``[B, T, H, W]`` -> ``[B, K, bins, H, W]`` sub-window firing rates."""
        b, t, h, w = spikes.shape
        per = self.k * self.bins
        if t % per:
            raise ValueError(f"spike window length {t} must be a multiple of chunks*bins = {per}")
        x = spikes.float().reshape(b, self.k, self.bins, t // per, h, w)
        return x.mean(3)

    def chunk_maps(self, spikes: torch.Tensor) -> torch.Tensor:
        """Per-chunk inputs ``[B, K, bins, H, W]`` (for the spiking encoder)."""
        return self._binned(spikes)

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        if spikes.dim() != 4:
            raise ValueError(f"spikes must be [B, T, H, W], got {list(spikes.shape)}")
        x = self._binned(spikes)
        freq = x.mean((1, 2)).unsqueeze(1)  # [B, 1, H, W] firing rate
        h, outs = None, []
        for k in range(self.k):
            h = self.gru(x[:, k], h)  # state carried across chunks
            outs.append(h)
        temporal = torch.cat(outs, 1)
        th = F.avg_pool2d(temporal, 2, ceil_mode=True)
        a = self.aff_a(th).mean(3, keepdim=True)  # [B, 1, h, 1]   per sample
        bb = self.aff_b(th).mean(2, keepdim=True)  # [B, 1, 1, w]
        attn = torch.sigmoid(a * bb)  # outer product -> [B, 1, h, w]
        fh = self.freq_conv(F.avg_pool2d(freq, 2, ceil_mode=True))
        aff = F.interpolate(attn * fh, size=temporal.shape[-2:], mode="bilinear", align_corners=False)
        out = temporal + aff
        if self.include_rate:
            out = torch.cat([freq, out], 1)
        return out
