"""Self-supervised losses: photometric reprojection (SSIM + L1), auto-masking, smoothness.

Monodepth2's recipe: for every output scale the disparity is upsampled to full resolution, the
source frames are warped into the target with the predicted depth and pose, the per-pixel
reprojection error ``0.85 * (1 - SSIM) / 2 + 0.15 * L1`` is minimised over source frames, pixels
where an unwarped source already matches better are masked out (auto-masking: static scenes,
objects moving with the camera), and an edge-aware smoothness term on the mean-normalised
disparity is added with weight ``1e-3 / 2^scale``.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.geometry import disp_to_depth, warp


class SSIM(nn.Module):
    """Per-pixel ``(1 - SSIM) / 2`` over 3x3 windows with reflection padding, ``[B, C, H, W]``.

    The target's share (its padded image, local mean and variance) does not depend on the
    prediction: :meth:`target_stats` computes it once for every source and scale of a step, and
    ``forward`` takes it as ``y_stats`` (same operations, so the same numbers)."""

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(3, 1)
        self.pad = nn.ReflectionPad2d(1)
        self.c1, self.c2 = 0.01**2, 0.03**2

    def target_stats(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(padded y [B, C, H+2, W+2], local mean [B, C, H, W], local variance [B, C, H, W])``."""
        y = self.pad(y)
        my = self.pool(y)
        return y, my, self.pool(y * y) - my * my

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        y_stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        y, my, sy = self.target_stats(y) if y_stats is None else y_stats
        x = self.pad(x)
        mx = self.pool(x)
        sx = self.pool(x * x) - mx * mx
        sxy = self.pool(x * y) - mx * my
        n = (2 * mx * my + self.c1) * (2 * sxy + self.c2)
        d = (mx * mx + my * my + self.c1) * (sx + sy + self.c2)
        return torch.clamp((1 - n / d) / 2, 0, 1)


_SSIM: nn.Module = SSIM()


def can_compile(device: torch.device | str) -> str | None:
    """Why ``torch.compile`` (inductor) cannot build kernels for ``device`` here, or None when it can:
    a C++ compiler on CPU, triton on a GPU."""
    if torch.device(device).type == "cuda":
        try:
            import triton  # noqa: F401, PLC0415  optional: only its presence is checked
        except ImportError:
            return "triton is not installed"
        return None
    if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        return "no C++ compiler (c++, g++ or clang++) on PATH"
    return None


@contextmanager
def compiled_ssim(on: bool, device: torch.device | str = "cpu") -> Iterator[None]:
    """Within the block, :func:`photometric_error` runs SSIM through ``torch.compile`` (its
    elementwise chain fused forward and backward; the same numbers within float32 rounding).
    Where :func:`can_compile` says no, SSIM stays eager and one warning says why."""
    global _SSIM
    why = can_compile(device) if on else None
    if why:
        warnings.warn(f"speed.compile_ssim: {why}; SSIM runs eagerly", R2SDepthWarning, stacklevel=3)
    if not on or why:
        yield
        return
    eager, _SSIM = _SSIM, torch.compile(SSIM())
    try:
        yield
    finally:
        _SSIM = eager


def resize_bilinear(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    """``x`` ``[B, C, h, w]`` resized bilinearly to ``size`` ``(H, W)`` with pixel centres aligned
    (``align_corners=False``: Monodepth2's upsampling of its coarse disparities); ``x`` itself when
    it already has that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def target_stats(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The SSIM statistics of ``target`` ``[B, 3, H, W]`` that :func:`photometric_error` reuses."""
    return _SSIM.target_stats(target)  # eager also when _SSIM is compiled (the wrapper forwards it)


def photometric_error(
    pred: torch.Tensor,
    target: torch.Tensor,
    alpha: float = 0.85,
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``alpha * (1 - SSIM) / 2 + (1 - alpha) * L1`` averaged over channels -> ``[B, 1, H, W]``.
    ``stats``: :func:`target_stats` of ``target`` when already computed."""
    l1 = (pred - target).abs().mean(1, keepdim=True)
    ssim = _SSIM.to(pred.device)(pred, target, stats).mean(1, keepdim=True)
    return alpha * ssim + (1 - alpha) * l1


def smoothness(disp: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Edge-aware first-order smoothness of the mean-normalised disparity (scalar)."""
    d = disp / (disp.mean((2, 3), keepdim=True) + 1e-7)
    gx = (d[..., :, :-1] - d[..., :, 1:]).abs()
    gy = (d[..., :-1, :] - d[..., 1:, :]).abs()
    ix = (img[..., :, :-1] - img[..., :, 1:]).abs().mean(1, keepdim=True)
    iy = (img[..., :-1, :] - img[..., 1:, :]).abs().mean(1, keepdim=True)
    return (gx * torch.exp(-ix)).mean() + (gy * torch.exp(-iy)).mean()


def identity_error(
    target: torch.Tensor,
    sources: list[torch.Tensor],
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Auto-masking's reference ``[B, 1, H, W]``: the per-pixel minimum over the *unwarped*
    sources of the photometric error against ``target`` (``[B, 3, H, W]``), plus noise of 1e-5
    that breaks ties between identical frames. It does not depend on the prediction, so one
    computation serves every output scale (Monodepth2 recomputes it per scale). ``stats``: the
    target's :func:`target_stats` when already computed."""
    stats = target_stats(target) if stats is None else stats
    ident = torch.cat([photometric_error(s, target, stats=stats) for s in sources], 1)
    ident = ident + torch.randn_like(ident) * 1e-5
    return ident.min(1, keepdim=True).values


def reprojection_terms(
    disp: torch.Tensor,
    target: torch.Tensor,
    sources: list[torch.Tensor],
    poses: list[torch.Tensor],
    K: torch.Tensor,
    *,
    min_depth: float = 0.1,
    max_depth: float = 100.0,
    automask: bool = True,
    ident_best: torch.Tensor | None = None,
    stats: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-pixel reprojection error at full resolution for one disparity scale.

    ``disp`` ``[B, 1, h, w]`` (any scale; upsampled to the target's size), ``target`` and
    ``sources`` ``[B, 3, H, W]``, ``poses`` target->source ``[B, 4, 4]``, ``K`` ``[B, 3, 3]`` for
    the full resolution. Returns ``loss_map`` ``[B, 1, H, W]`` (min over sources, auto-masked
    pixels set to the identity error so they carry no gradient), ``reproj`` (min over the warped
    sources only), ``mask`` (1 where the warped error wins) and ``depth``. ``ident_best``: the
    :func:`identity_error` of ``target`` and ``sources``, ``stats`` the target's
    :func:`target_stats`, when already computed.
    """
    disp = resize_bilinear(disp, target.shape[-2:])
    _, depth = disp_to_depth(disp, min_depth, max_depth)
    K_inv = torch.inverse(K[:, :3, :3])
    stats = target_stats(target) if stats is None else stats
    errs = []
    for src, T in zip(sources, poses):
        warped, _ = warp(src, depth, T, K, K_inv)
        errs.append(photometric_error(warped, target, stats=stats))
    reproj = torch.cat(errs, 1)
    best = reproj.min(1, keepdim=True).values
    if automask:
        if ident_best is None:
            ident_best = identity_error(target, sources, stats)
        mask = (best < ident_best).to(best.dtype)
        loss_map = torch.minimum(best, ident_best)
    else:
        mask = torch.ones_like(best)
        loss_map = best
    return {"loss_map": loss_map, "reproj": best, "mask": mask, "depth": depth}


def self_supervised_loss(
    disps: dict[int, torch.Tensor],
    target: torch.Tensor,
    sources: list[torch.Tensor],
    poses: list[torch.Tensor],
    K: torch.Tensor,
    *,
    smooth_weight: float = 1e-3,
    min_depth: float = 0.1,
    max_depth: float = 100.0,
    automask: bool = True,
) -> dict[str, Any]:
    """The multi-scale loss: mean over scales of (photometric + smoothness / 2^s).

    Returns ``loss`` (scalar), ``photo`` (the photometric part), and per-scale ``maps``
    (reprojection terms, for distillation weighting).
    """
    total, photo = 0.0, 0.0
    maps = {}
    stats = target_stats(target)  # the target's SSIM statistics and auto-mask: the same at every scale
    ident_best = identity_error(target, sources, stats) if automask else None
    for s, disp in sorted(disps.items()):
        t = reprojection_terms(
            disp,
            target,
            sources,
            poses,
            K,
            min_depth=min_depth,
            max_depth=max_depth,
            automask=automask,
            ident_best=ident_best,
            stats=stats,
        )
        p = t["loss_map"].mean()
        sm = smoothness(disp, resize_bilinear(target, disp.shape[-2:]))
        total = total + p + smooth_weight * sm / (2**s)
        photo = photo + p
        maps[s] = t
    n = len(disps)
    return {"loss": total / n, "photo": photo / n, "maps": maps}


def velocity_loss(
    poses: list[torch.Tensor], travel: torch.Tensor, axis: str = "norm", forward: torch.Tensor | None = None
) -> torch.Tensor:
    """PackNet-SfM's velocity supervision: mean over the batch and the source frames of
    ``| ||t_i|| - travel_i |``, ``t_i`` the translation of the target->source pose ``[B, 4, 4]``
    (its norm is the distance between the two camera centres) and ``travel`` ``[B, S]`` the
    distance the camera really moved (metres). ``axis="forward"``: ``| t_i,z + forward_i |``, the
    component along the optical axis only, with its sign (a vehicle's signed forward speed, oxts
    ``vf``): ``forward`` ``[B, S]`` is the source camera's displacement along the target camera's
    heading (metres, negative for a source behind), and a camera that moved ``f`` forward sees the
    scene ``f`` nearer (``X_s = X_t - f`` along z: ``t_z = -f``). The sign matters: a pose net
    that moves backwards by the right distance would otherwise satisfy the term, and its warp is
    then best served by depths pushed to the far limit. ``axis="both"``: the sum of the two terms
    (the forward component and the length: together they also hold the sideways motion to what the
    poses say, ``sqrt(travel^2 - forward^2)``)."""
    if axis not in ("norm", "forward", "both"):
        raise R2SDepthError(f"velocity axis must be norm, forward or both, got {axis!r}")
    t = torch.stack([p[:, :3, 3] for p in poses], 1)
    loss = t.new_zeros(())
    if axis in ("forward", "both"):
        if forward is None:
            raise R2SDepthError("the forward velocity term needs the signed forward travel (travel_forward)")
        loss = loss + (t[..., 2] + forward.to(t.dtype)).abs().mean()
    if axis in ("norm", "both"):
        loss = loss + (t.norm(dim=-1) - travel.to(t.dtype)).abs().mean()
    return loss


# -- stage 2: cross-modality distillation ---------------------------------------------------------
# Teacher tensors are always detached here, so gradients reach only the student (and connectors).


def _resize_weight(w: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor | None:
    if w is None or w.shape[-2:] == size:
        return w
    return (
        F.adaptive_avg_pool2d(w, size)
        if w.shape[-1] >= size[-1]
        else F.interpolate(w, size=size, mode="nearest")
    )


def _weighted_mean(x: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """Mean of ``x`` ``[B, 1, H, W]`` under weights ``w`` (same shape or None); 0 if all weights are 0."""
    if w is None:
        return x.mean()
    return (x * w).sum() / w.sum().clamp_min(1e-6)


def feature_distill_loss(
    student: list[torch.Tensor], teacher: list[torch.Tensor], weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Normalised L2 between (connector-mapped) student and teacher features, mean over stages.

    Each feature vector (the channels at one pixel) is L2-normalised, so the loss compares
    directions, not magnitudes (spike and RGB features differ in scale): per pixel
    ``||s/|s| - t/|t|||^2`` in [0, 4]. ``weight`` ``[B, 1, H, W]`` (any resolution) weights pixels.
    """
    total = 0.0
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise ValueError(f"feature shapes differ: student {tuple(s.shape)}, teacher {tuple(t.shape)}")
        d = (
            (F.normalize(s, dim=1, eps=1e-6) - F.normalize(t.detach(), dim=1, eps=1e-6))
            .pow(2)
            .sum(1, keepdim=True)
        )
        total = total + _weighted_mean(d, _resize_weight(weight, s.shape[-2:]))
    return total / len(student)


def attention_map(f: torch.Tensor) -> torch.Tensor:
    """Spatial attention ``[B, H*W]``: the channel mean of ``f^2``, L2-normalised per sample."""
    return F.normalize(f.pow(2).mean(1).flatten(1), dim=1, eps=1e-8)


def attention_transfer_loss(student: list[torch.Tensor], teacher: list[torch.Tensor]) -> torch.Tensor:
    """Activation transfer (Zagoruyko and Komodakis): squared distance between the student's and
    the teacher's normalised spatial attention maps, summed over pixels, mean over stages and
    batch. A differentiable stand-in for matching which neurons fire. Channels may differ."""
    total = 0.0
    for s, t in zip(student, teacher):
        if s.shape[-2:] != t.shape[-2:]:
            raise ValueError(f"feature sizes differ: student {tuple(s.shape)}, teacher {tuple(t.shape)}")
        total = total + (attention_map(s) - attention_map(t.detach())).pow(2).sum(1).mean()
    return total / len(student)


def si_log_loss(
    student_depth: torch.Tensor,
    teacher_depth: torch.Tensor,
    weight: torch.Tensor | None = None,
    lam: float = 0.85,
) -> torch.Tensor:
    """Scale-invariant log loss (Eigen et al.): ``mean(d^2) - lam * mean(d)^2``, ``d = log s - log t``,
    per image under pixel weights, averaged over the batch. Depths ``[B, 1, H, W]`` (metres);
    the teacher is resized to the student. ``lam = 1`` ignores a global scale; ``lam < 1`` keeps
    a small penalty on it, so the loss is 0 only when the depths agree."""
    t = resize_bilinear(teacher_depth.detach(), student_depth.shape[-2:])
    d = torch.log(student_depth.clamp_min(1e-6)) - torch.log(t.clamp_min(1e-6))
    w = torch.ones_like(d) if weight is None else _resize_weight(weight, d.shape[-2:])
    wsum = w.sum((1, 2, 3)).clamp_min(1e-6)
    m1 = (d * w).sum((1, 2, 3)) / wsum
    m2 = (d * d * w).sum((1, 2, 3)) / wsum
    valid = (w.sum((1, 2, 3)) > 0).to(d.dtype)
    return ((m2 - lam * m1 * m1) * valid).sum() / valid.sum().clamp_min(1.0)


def affine_normalise(
    x: torch.Tensor, weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per image, ``(x - shift) / scale`` of ``[B, 1, H, W]`` maps with ``shift`` the weighted mean
    and ``scale`` the weighted mean absolute deviation from it (``[B]`` each; clamped to >= 1e-8, so
    a constant map normalises to 0). Returns ``(normalised, shift, scale)``; differentiable in ``x``.

    The scale is positive by construction: unlike a least-squares fit of one map onto another, it
    cannot flip a map's sign, so a student aligned this way cannot learn the teacher's disparity
    upside down (a least-squares scale did, measured: see README, "An external teacher")."""
    w = torch.ones_like(x) if weight is None else weight.to(x.dtype)
    dims = (1, 2, 3)
    sw = w.sum(dims).clamp_min(1e-12)
    shift = (w * x).sum(dims) / sw
    scale = ((w * (x - shift.view(-1, 1, 1, 1)).abs()).sum(dims) / sw).clamp_min(1e-8)
    return (x - shift.view(-1, 1, 1, 1)) / scale.view(-1, 1, 1, 1), shift, scale


def ssi_disparity_loss(
    student_disp: torch.Tensor, teacher_disp: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Scale-and-shift-invariant loss for a relative-disparity teacher (MiDaS-style): per image,
    student and teacher disparities ``[B, 1, H, W]`` are each normalised by
    :func:`affine_normalise` (weighted mean shift, weighted mean absolute deviation scale) and the
    loss is the weighted mean absolute difference of the normalised maps. A teacher's arbitrary
    output units (any positive scale and any shift) do not change it; a constant student scores
    1; a student whose disparity is an increasing affine map of the teacher's scores 0, a
    decreasing one 2. The teacher is resized to the student and detached; images whose weights
    are all 0 are left out."""
    t = resize_bilinear(teacher_disp.detach(), student_disp.shape[-2:])
    w = torch.ones_like(student_disp) if weight is None else _resize_weight(weight, student_disp.shape[-2:])
    ns, _, _ = affine_normalise(student_disp, w)
    nt, _, _ = affine_normalise(t, w)
    dims = (1, 2, 3)
    wsum = w.sum(dims)
    per = (w * (ns - nt).abs()).sum(dims) / wsum.clamp_min(1e-12)
    valid = (wsum > 0).to(per.dtype)
    return (per * valid).sum() / valid.sum().clamp_min(1.0)


def adaptive_pixel_weights(
    student_err: torch.Tensor,
    teacher_err: torch.Tensor,
    teacher_mask: torch.Tensor | None = None,
    mode: str = "hard",
) -> torch.Tensor:
    """Where to trust the teacher, per pixel, from photometric reprojection errors ``[B, 1, H, W]``.

    * ``hard``: 1 where the teacher's error is lower than the student's, else 0;
    * ``soft``: ``e_s / (e_s + e_t)`` (0.5 where they tie, -> 1 where the teacher is much better);
    * ``none``: 1 everywhere.

    ``teacher_mask`` (the teacher's auto-mask: 1 where its warp beat the unwarped source) zeroes
    pixels whose error says nothing about depth (static scene, objects moving with the camera).
    """
    es, et = student_err.detach(), teacher_err.detach()
    if mode == "hard":
        w = (et < es).to(es.dtype)
    elif mode == "soft":
        w = es / (es + et).clamp_min(1e-8)
    elif mode == "none":
        w = torch.ones_like(es)
    else:
        raise ValueError(f"pixel weighting must be hard, soft or none, got {mode!r}")
    if teacher_mask is not None:
        w = w * teacher_mask.detach()
    return w
