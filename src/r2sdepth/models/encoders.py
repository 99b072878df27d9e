"""Encoders: ResNet (torchvision) for RGB and dense spike maps, and a spiking (LIF) variant.

All return the five Monodepth2-style feature maps with channels ``num_ch_enc``
(``[64, 64, 128, 256, 512]`` for ResNet-18 at full width) at strides 2, 4, 8, 16, 32.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torchvision


class ResNetEncoder(nn.Module):
    """ResNet-18/34/50 encoder with ``in_channels`` inputs.

    ``pretrained=True`` loads torchvision's ImageNet weights (needs a network the first time);
    for ``in_channels != 3`` the first convolution's weights are averaged over RGB and repeated.
    ``width`` < 64 builds a thinner ResNet of the same layout (for CPU-sized experiments; no
    pretrained weights).
    """

    def __init__(
        self, num_layers: int = 18, in_channels: int = 3, pretrained: bool = False, width: int = 64
    ) -> None:
        super().__init__()
        blocks = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}
        if num_layers not in blocks:
            raise ValueError(f"num_layers must be 18, 34 or 50, got {num_layers}")
        block = (
            torchvision.models.resnet.Bottleneck if num_layers == 50 else torchvision.models.resnet.BasicBlock
        )
        if width != 64 and pretrained:
            raise ValueError("pretrained weights exist only for width 64")
        if pretrained:
            weights = {18: "ResNet18_Weights", 34: "ResNet34_Weights", 50: "ResNet50_Weights"}[num_layers]
            net = getattr(torchvision.models, f"resnet{num_layers}")(
                weights=getattr(torchvision.models, weights).IMAGENET1K_V1
            )
        else:
            net = torchvision.models.resnet.ResNet(block, blocks[num_layers])
        if width != 64:
            net = _thin_resnet(block, blocks[num_layers], width)
        if in_channels != 3:
            old = net.conv1
            conv = nn.Conv2d(in_channels, old.out_channels, 7, 2, 3, bias=False)
            with torch.no_grad():
                conv.weight.copy_(
                    old.weight.mean(1, keepdim=True).repeat(1, in_channels, 1, 1) * 3 / in_channels
                )
            net.conv1 = conv
        net.fc = nn.Identity()  # the classifier is unused (and would be an unused parameter under DDP)
        self.net = net
        mult = 4 if num_layers == 50 else 1
        self.num_ch_enc = [width, width * mult, 2 * width * mult, 4 * width * mult, 8 * width * mult]
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        n = self.net
        f0 = n.relu(n.bn1(n.conv1(x)))
        f1 = n.layer1(n.maxpool(f0))
        f2 = n.layer2(f1)
        f3 = n.layer3(f2)
        f4 = n.layer4(f3)
        return [f0, f1, f2, f3, f4]


def _thin_resnet(block, layers: list[int], width: int) -> nn.Module:
    """torchvision's ResNet with base width ``width`` instead of 64."""
    net = torchvision.models.resnet.ResNet(block, layers)
    net.inplanes = width
    net.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(width)
    net.layer1 = net._make_layer(block, width, layers[0])
    net.layer2 = net._make_layer(block, 2 * width, layers[1], stride=2)
    net.layer3 = net._make_layer(block, 4 * width, layers[2], stride=2)
    net.layer4 = net._make_layer(block, 8 * width, layers[3], stride=2)
    return net


class _ArcTanSpike(torch.autograd.Function):
    """Heaviside spike with the arctan surrogate gradient ``1 / (1 + 10 x^2)``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        return grad / (1 + 10 * x * x)


class LIF(nn.Module):
    """Leaky integrate-and-fire neurons with a learnable leak and an adaptive threshold.

    ``v = leak * v + x``; spike when ``v >= theta``; soft reset ``v -= theta * s``; threshold
    ``theta = 0.01 + 1.8 * a`` with adaptation ``a`` decaying and driven by the neuron's spikes.
    The state lives across calls until :meth:`reset` (one call per time chunk).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.leak_logit = nn.Parameter(torch.full((1, channels, 1, 1), -4.0))
        self.adapt_logit = nn.Parameter(torch.full((1, channels, 1, 1), -4.0))
        self.v: torch.Tensor | None = None
        self.a: torch.Tensor | None = None

    def reset(self) -> None:
        self.v = None
        self.a = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.v is None or self.v.shape != x.shape:
            self.v = torch.zeros_like(x)
            self.a = torch.zeros_like(x)
        leak = torch.sigmoid(self.leak_logit)
        rho = torch.sigmoid(self.adapt_logit)
        self.v = (1 - leak) * self.v + x
        theta = 0.01 + 1.8 * self.a
        s = _ArcTanSpike.apply(self.v - theta)
        self.v = self.v - theta * s
        self.a = (1 - rho) * self.a + rho * s
        return s


class _SpikingBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.lif = LIF(cout)
        # analog path gates the spiking path (as in the published encoder), so that depth
        # regression does not depend on spike counts alone
        self.gate = nn.Conv2d(cin, cout, 1, stride, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.bn(self.conv(x))
        s = self.lif(y)
        return s, y * torch.sigmoid(self.gate(x))


class SpikingEncoder(nn.Module):
    """Spiking encoder iterated over the K time chunks of the spike representation.

    Input ``[B, K, C, H, W]`` (one dense map per chunk); at each chunk every stage's LIF neurons
    integrate; each stage outputs the mean over chunks of its gated analog response plus its
    firing rate. Widths follow :class:`ResNetEncoder` (``width * [1, 1, 2, 4, 8]``).
    """

    def __init__(self, in_channels: int, width: int = 64) -> None:
        super().__init__()
        ch = [width, width, 2 * width, 4 * width, 8 * width]
        cins = [in_channels] + ch[:-1]
        self.blocks = nn.ModuleList(_SpikingBlock(ci, co, 2) for ci, co in zip(cins, ch))
        self.num_ch_enc = ch

    def forward(self, chunks: torch.Tensor) -> list[torch.Tensor]:
        for b in self.blocks:
            b.lif.reset()
        k = chunks.shape[1]
        acc: list[torch.Tensor | None] = [None] * len(self.blocks)
        for t in range(k):
            x = chunks[:, t]
            for i, b in enumerate(self.blocks):
                s, analog = b(x)
                out = analog + s
                acc[i] = out if acc[i] is None else acc[i] + out
                x = s + analog
        return [a / k for a in acc]  # type: ignore[operator]
