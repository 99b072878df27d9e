"""The R2SDepth network: RGB branch, spike branch, per-stage fusion, teacher and student heads.

Modalities:

* ``rgb``: ResNet encoder on RGB -> depth decoder (a Monodepth2-like baseline);
* ``spike``: spike representation -> spike encoder -> depth decoder (spike-only network);
* ``fusion``: both encoders; per stage ``f = w_rgb * f_rgb + f_spike`` (``w_rgb`` annealed and
  clamped at 0, or a learned gate) -> the fusion (teacher) decoder; the spike features also feed
  a spike (student) decoder when ``student_decoder`` is on.

Inputs: RGB ``[B, 3, H, W]`` in [0, 1]; spikes ``[B, T, H, W]``; ``H, W`` multiples of 32.
Outputs are sigmoid disparities per scale; depth = :func:`r2sdepth.geometry.disp_to_depth`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from r2sdepth.config import section
from r2sdepth.geometry import disp_to_depth
from r2sdepth.models.decoder import DepthDecoder
from r2sdepth.models.encoders import ResNetEncoder, SpikingEncoder
from r2sdepth.models.spike_repr import SpikeRepresentation

MODALITIES = ("rgb", "spike", "fusion")


def fusion_weight(epoch: float, horizon: float = 10.0, offset: float = 0.0, floor: float = 0.0) -> float:
    """The adaptive RGB weight ``clamp(1 - (epoch + offset) / horizon, floor, 1)``.

    ``offset=1, horizon=10`` is the paper's schedule (0.9 at epoch 0, 0 from epoch 9), clamped
    at 0 where the published code went negative. ``epoch`` may be fractional.
    """
    return float(min(1.0, max(floor, 1.0 - (epoch + offset) / horizon)))


class Gate(nn.Module):
    """Learned fusion gate: ``f = g * f_rgb + f_spike``, ``g = sigmoid(conv1x1([f_rgb, f_spike]))``."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2 * c, c, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.constant_(self.conv.bias, 2.0)  # start close to RGB-weighted

    def forward(self, fr: torch.Tensor, fs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(torch.cat([fr, fs], 1))) * fr + fs


class SpikeBranch(nn.Module):
    """Spike window ``[B, T, H, W]`` -> encoder features (the student's path)."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.repr = SpikeRepresentation(**cfg["spike_repr"])
        self.kind = cfg["spike_encoder"]
        if self.kind == "resnet":
            self.encoder: nn.Module = ResNetEncoder(
                cfg["num_layers"], in_channels=self.repr.out_channels, width=cfg["width"]
            )
        elif self.kind == "spiking":
            self.encoder = SpikingEncoder(self.repr.bins + self.repr.out_channels, width=cfg["width"])
        else:
            raise ValueError(f"spike_encoder must be resnet or spiking, got {self.kind!r}")
        self.num_ch_enc = self.encoder.num_ch_enc

    def forward(self, spikes: torch.Tensor) -> list[torch.Tensor]:
        dense = self.repr(spikes)
        if self.kind == "resnet":
            return self.encoder(dense)
        chunks = self.repr.chunk_maps(spikes)  # [B, K, bins, H, W]
        k = chunks.shape[1]
        ctx = dense.unsqueeze(1).expand(-1, k, -1, -1, -1)
        return self.encoder(torch.cat([chunks, ctx], 2))


class R2SDepthNet(nn.Module):
    """RGB / spike / fusion depth network (see module docstring)."""

    def __init__(self, cfg: dict[str, Any] | None = None) -> None:
        super().__init__()
        cfg = section("model", cfg)
        if cfg["modality"] not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {cfg['modality']!r}")
        self.cfg = cfg
        self.modality = cfg["modality"]
        dw = cfg["decoder_width"]
        if self.modality in ("rgb", "fusion"):
            self.rgb_encoder = ResNetEncoder(cfg["num_layers"], 3, cfg["pretrained"], cfg["width"])
            ch = self.rgb_encoder.num_ch_enc
        if self.modality in ("spike", "fusion"):
            self.spike = SpikeBranch(cfg)
            ch = self.spike.num_ch_enc
        self.decoder = DepthDecoder(ch, width=dw)  # rgb / spike / fusion (teacher) decoder
        if self.modality == "fusion":
            if cfg["fusion"]["mode"] == "gate":
                self.gates = nn.ModuleList(Gate(c) for c in ch)
            elif cfg["fusion"]["mode"] != "anneal":
                raise ValueError("fusion.mode must be anneal or gate")
            if cfg["student_decoder"]:
                self.student_decoder = DepthDecoder(ch, width=dw)
        self.register_buffer("w_rgb", torch.tensor(1.0))
        if cfg.get("init_depth"):
            self.init_depth_prior(float(cfg["init_depth"]))

    def init_depth_prior(self, depth: float) -> None:
        """Set every disparity head's bias so that a zero input predicts ``depth`` metres:
        ``sigmoid(b) = (1/depth - 1/max_depth) / (1/min_depth - 1/max_depth)``
        (:func:`r2sdepth.geometry.disp_to_depth` inverted)."""
        lo, hi = float(self.cfg["min_depth"]), float(self.cfg["max_depth"])
        if not lo < depth < hi:
            raise ValueError(
                f"model.init_depth {depth} must lie between model.min_depth {lo} and max_depth {hi}"
            )
        s = (1 / depth - 1 / hi) / (1 / lo - 1 / hi)
        for dec in (getattr(self, "decoder", None), getattr(self, "student_decoder", None)):
            if dec is not None:
                for head in dec.heads.values():
                    nn.init.constant_(head[-1].bias, math.log(s / (1 - s)))

    @staticmethod
    def normalize(rgb: torch.Tensor) -> torch.Tensor:
        return (rgb - 0.45) / 0.225

    def set_epoch(self, epoch: float) -> float:
        """Update the annealed RGB weight for (fractional) ``epoch``; returns it."""
        f = self.cfg["fusion"]
        w = fusion_weight(epoch, f["horizon"], f["offset"], f["floor"])
        self.w_rgb.fill_(w)
        return w

    def fuse(self, fr: list[torch.Tensor], fs: list[torch.Tensor]) -> list[torch.Tensor]:
        if hasattr(self, "gates"):
            return [g(a, b) for g, a, b in zip(self.gates, fr, fs)]
        return [self.w_rgb * a + b for a, b in zip(fr, fs)]

    def forward(self, rgb: torch.Tensor | None = None, spikes: torch.Tensor | None = None) -> dict[str, Any]:
        """Returns ``disp`` (the main head: rgb / spike / fusion teacher), and in fusion mode
        ``disp_student`` (spike decoder) and the features ``feat_rgb``, ``feat_spike``, ``feat_fused``."""
        out: dict[str, Any] = {}
        if self.modality in ("rgb", "fusion"):
            if rgb is None:
                raise ValueError(f"a {self.modality} model needs an RGB input")
            out["feat_rgb"] = self.rgb_encoder(self.normalize(rgb))
        if self.modality in ("spike", "fusion"):
            if spikes is None:
                raise ValueError(f"a {self.modality} model needs a spike window")
            out["feat_spike"] = self.spike(spikes)
        if self.modality == "rgb":
            out["disp"] = self.decoder(out["feat_rgb"])
        elif self.modality == "spike":
            out["disp"] = self.decoder(out["feat_spike"])
        else:
            out["feat_fused"] = self.fuse(out["feat_rgb"], out["feat_spike"])
            out["disp"] = self.decoder(out["feat_fused"])
            if hasattr(self, "student_decoder"):
                out["disp_student"] = self.student_decoder(out["feat_spike"])
        return out


def geometric_mean_disparity(disps: list[torch.Tensor], min_depth: float, max_depth: float) -> torch.Tensor:
    """Sigmoid disparities ``[B, 1, H, W]`` of several networks -> the one sigmoid disparity whose
    depth (:func:`~r2sdepth.geometry.disp_to_depth`) is the geometric mean of theirs per pixel:
    ``1 / depth = exp(mean_i log(1 / depth_i))``, mapped back through ``disp_to_depth``'s affine map.
    A global factor of one member's depth moves the result by a global factor only."""
    lo, hi = 1.0 / max_depth, 1.0 / min_depth
    log_scaled = torch.stack([torch.log(lo + (hi - lo) * d) for d in disps]).mean(0)
    return (torch.exp(log_scaled) - lo) / (hi - lo)


class SpikeEnsemble(nn.Module):
    """Several independently trained spike-only networks of one architecture (``cfg``) as one:
    depth is the geometric mean of the members' depths per pixel, at every output scale
    (:func:`geometric_mean_disparity`). It takes the place of a spike :class:`R2SDepthNet` on every
    spike-only path (``eval``, ``infer``, ``export``, the API); it is not trained further (a teacher
    or an ``adapt`` start needs one network)."""

    def __init__(self, cfg: dict[str, Any], n_members: int) -> None:
        super().__init__()
        cfg = section("model", cfg)
        if cfg["modality"] != "spike":
            raise ValueError(f"an ensemble is of spike-only networks, not {cfg['modality']!r} ones")
        if n_members < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {n_members}")
        self.cfg = cfg
        self.modality = "spike"
        self.members = nn.ModuleList(R2SDepthNet(cfg) for _ in range(n_members))

    def forward(self, rgb: torch.Tensor | None = None, spikes: torch.Tensor | None = None) -> dict[str, Any]:
        """``{"disp": {scale: [B, 1, H_s, W_s]}}`` for a spike window ``[B, T, H, W]`` (``rgb`` unused)."""
        if spikes is None:
            raise ValueError("a spike ensemble needs a spike window")
        outs = [m(spikes=spikes)["disp"] for m in self.members]
        lo, hi = float(self.cfg["min_depth"]), float(self.cfg["max_depth"])
        return {"disp": {k: geometric_mean_disparity([o[k] for o in outs], lo, hi) for k in outs[0]}}


def student_forward(net: R2SDepthNet | SpikeEnsemble, spikes: torch.Tensor) -> dict[int, torch.Tensor]:
    """The spike-only path of any model with a spike branch: representation -> encoder ->
    student decoder (fusion models) or the main decoder (spike models), or every member of a
    :class:`SpikeEnsemble` combined. No RGB anywhere."""
    if isinstance(net, SpikeEnsemble):
        return net(spikes=spikes)["disp"]
    if net.modality == "spike":
        return net.decoder(net.spike(spikes))
    if net.modality == "fusion" and hasattr(net, "student_decoder"):
        return net.student_decoder(net.spike(spikes))
    raise ValueError(f"a {net.modality} model without a spike decoder has no spike-only path")


def flip_blend(disp: torch.Tensor, disp_flipped: torch.Tensor) -> torch.Tensor:
    """Flip post-processing of a disparity ``[B, 1, H, W]`` (Godard et al.'s, as Monodepth2's
    ``--post_process``): ``disp_flipped`` is the prediction for the mirrored input, mirrored back.
    Each map's left edge is occluded in a different way, so the leftmost 5% of columns take
    ``disp_flipped``, the rightmost 5% ``disp``, and a ramp 5% wide hands over to the mean of the
    two, which fills the middle."""
    w = disp.shape[-1]
    x = torch.linspace(0.0, 1.0, w, device=disp.device, dtype=disp.dtype)
    left = (1.0 - (20.0 * (x - 0.05)).clamp(0.0, 1.0)).view(1, 1, 1, w)  # 1 on the left edge
    right = left.flip(-1)
    return right * disp + left * disp_flipped + (1.0 - left - right) * 0.5 * (disp + disp_flipped)


def spike_depth(
    net: R2SDepthNet | SpikeEnsemble, spikes: torch.Tensor, post_process: bool = False
) -> torch.Tensor:
    """Depth (model units, metres up to scale) ``[B, 1, H, W]`` from a spike window ``[B, T, H, W]``
    through :func:`student_forward`'s finest scale: the one spike-only prediction path, used by
    ``eval``/``infer`` (:func:`r2sdepth.infer.predict_batch`) and by the exported graph.
    ``post_process``: the window and its mirror image in one batch, blended by :func:`flip_blend`
    (twice the compute)."""
    if post_process:
        both = student_forward(net, torch.cat([spikes, spikes.flip(-1)]))[0]
        disp = flip_blend(both[: len(spikes)], both[len(spikes) :].flip(-1))
    else:
        disp = student_forward(net, spikes)[0]
    return disp_to_depth(disp, float(net.cfg["min_depth"]), float(net.cfg["max_depth"]))[1]


def build_model(cfg: dict[str, Any] | None = None) -> R2SDepthNet:
    return R2SDepthNet(cfg)
