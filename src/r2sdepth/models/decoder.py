"""Monodepth2-style multi-scale depth decoder: sigmoid disparity at scales 0..3."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    """3x3 conv (reflection padding) + ELU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(cin, cout, 3)
        self.act = nn.ELU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.pad(x)))


class DepthDecoder(nn.Module):
    """Features (strides 2..32) -> ``{scale: disparity [B, 1, H/2^s, W/2^s]}`` for s in 0..3,
    sigmoid outputs in [0, 1] (map to depth with :func:`r2sdepth.geometry.disp_to_depth`)."""

    def __init__(
        self, num_ch_enc: list[int], scales: tuple[int, ...] = (0, 1, 2, 3), width: int = 16
    ) -> None:
        super().__init__()
        self.scales = tuple(scales)
        self.num_ch_enc = list(num_ch_enc)
        self.num_ch_dec = [width, 2 * width, 4 * width, 8 * width, 16 * width]
        self.up0 = nn.ModuleList()
        self.up1 = nn.ModuleList()
        for i in range(4, -1, -1):
            cin = num_ch_enc[-1] if i == 4 else self.num_ch_dec[i + 1]
            self.up0.append(ConvBlock(cin, self.num_ch_dec[i]))
            cin = self.num_ch_dec[i] + (num_ch_enc[i - 1] if i > 0 else 0)
            self.up1.append(ConvBlock(cin, self.num_ch_dec[i]))
        self.heads = nn.ModuleDict(
            {
                str(s): nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(self.num_ch_dec[s], 1, 3))
                for s in self.scales
            }
        )

    def forward(self, feats: list[torch.Tensor]) -> dict[int, torch.Tensor]:
        out: dict[int, torch.Tensor] = {}
        x = feats[-1]
        for j, i in enumerate(range(4, -1, -1)):
            x = self.up0[j](x)
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            if i > 0:
                skip = feats[i - 1]
                if x.shape[-2:] != skip.shape[-2:]:
                    x = F.interpolate(x, size=skip.shape[-2:], mode="nearest")
                x = torch.cat([x, skip], 1)
            x = self.up1[j](x)
            if i in self.scales:
                out[i] = torch.sigmoid(self.heads[str(i)](x))
        return out
