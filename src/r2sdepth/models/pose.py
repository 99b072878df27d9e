"""Pose network: ResNet on a pair of RGB frames -> axis-angle + translation (Monodepth2 style)."""

from __future__ import annotations

import torch
import torch.nn as nn

from r2sdepth.models.encoders import ResNetEncoder


class PoseNet(nn.Module):
    """``pose(a, b)``: images ``[B, 3, H, W]`` x 2 -> axis-angle ``[B, 3]``, translation ``[B, 3]``
    of the motion from ``a``'s camera to ``b``'s. The raw outputs are multiplied by ``scale``
    (Monodepth2 uses 0.01 with ImageNet-pretrained encoders; from scratch, small translations make
    the depth head saturate at ``min_depth`` early in training, so a larger value helps).
    ``zero_init`` zeroes the last layer, so training starts from the identity motion."""

    def __init__(
        self,
        num_layers: int = 18,
        pretrained: bool = False,
        width: int = 64,
        scale: float = 0.01,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.encoder = ResNetEncoder(num_layers, in_channels=6, pretrained=pretrained, width=width)
        c = self.encoder.num_ch_enc[-1]
        self.head = nn.Sequential(
            nn.Conv2d(c, 256, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, 3, 1, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 6, 1),
        )
        if zero_init:  # start from "no motion" instead of a random constant motion
            nn.init.zeros_(self.head[-1].weight)
            nn.init.zeros_(self.head[-1].bias)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.cat([a, b], 1) - 0.45) / 0.225  # ImageNet-style normalisation, as the depth encoder
        f = self.encoder(x)[-1]
        out = self.scale * self.head(f).mean((2, 3))
        return out[:, :3], out[:, 3:]
