"""Metric depth without LiDAR: scale a depth map so that the camera sits at its known height
above the ground plane, or from known speed, and camera intrinsics for inputs that carry none
(numpy; torch, imported on first use, for the back-projection and the speed scale's warps and
photometric error, which are training's own).

The rule (:func:`camera_height_scale`): back-project the lower part of the image (rows
``>= lower_start * H``, pixels below the optical axis) with the intrinsics, fit the ground plane
by RANSAC (planes whose normal is within ``max_tilt_deg`` of the camera's vertical axis;
inliers within ``inlier_rel`` x the median depth of the candidates; score: inliers minus the
points below the plane, since the ground is the lowest surface), refine it by least squares on
its inliers and then on narrower bands (1/4, 1/16 of the tolerance), and return
``camera_height / distance(camera, plane)``. The parameters were fixed on synthetic scenes with
exact depth (``tests/test_metric.py``), never on real LiDAR.

Scale from known speed (:func:`speed_scale`): the factor on a depth map at which the frames before
and after, warped into it by a straight forward motion of the known signed distance (what a
speedometer or odometer gives, no rotation), best explain it photometrically.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from r2sdepth.errors import R2SDepthError

if TYPE_CHECKING:
    import torch

KITTI_CAMERA_HEIGHT = 1.65  # metres: KITTI's colour cameras above the road (Geiger et al.)


@dataclass(frozen=True)
class GroundFit:
    """A fitted ground plane ``n . X = d`` (camera coordinates, ``n`` unit, ``d > 0`` metres in the
    depth map's units) and the scale that puts the camera at ``camera_height``."""

    scale: float
    normal: tuple[float, float, float]
    distance: float
    inliers: int
    candidates: int


def backproject(depth: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points ``[H, W, 3]`` (x right, y down, z forward; units of ``depth``) of a
    depth map ``[H, W]`` with intrinsics ``K`` ``[3, 3]`` at the depth map's size: the training
    geometry's :func:`r2sdepth.geometry.backproject` (pixel centres at integers), in float64."""
    # torch-level: the light CLI commands import this module
    import torch  # noqa: PLC0415

    from r2sdepth.geometry import backproject as backproject_torch  # noqa: PLC0415

    depth = np.asarray(depth, np.float64)
    h, w = depth.shape
    K_inv = torch.from_numpy(np.linalg.inv(np.asarray(K, np.float64)))[None]
    pts = backproject_torch(torch.from_numpy(depth)[None, None], K_inv)[0]  # [3, H*W]
    return pts.T.reshape(h, w, 3).numpy()


@dataclass(frozen=True)
class PlaneFit:
    """The ground-plane fit's parameters (see the module docstring; fixed on synthetic scenes with
    exact depth): rows from ``lower_start`` x H down, planes within ``max_tilt_deg`` (degrees) of
    horizontal, inliers within ``inlier_rel`` x the median depth, ``iterations`` RANSAC draws
    among at most ``max_points`` points (drawn with ``seed``)."""

    lower_start: float = 0.55
    max_tilt_deg: float = 5.0
    inlier_rel: float = 0.02
    iterations: int = 300
    max_points: int = 5000
    seed: int = 0


def camera_height_scale(
    depth: np.ndarray, K: np.ndarray, camera_height: float = KITTI_CAMERA_HEIGHT, fit: PlaneFit | None = None
) -> GroundFit:
    """The factor that makes ``depth`` ``[H, W]`` metric: ``camera_height`` (metres) over the
    camera's distance to the ground plane fitted in the back-projected lower image (see the
    module docstring; ``fit``: its parameters). Raises :class:`R2SDepthError` when no plane is
    found (too few valid pixels, or no near-horizontal plane)."""
    if not (math.isfinite(camera_height) and camera_height > 0):
        raise R2SDepthError(f"camera height {camera_height}: must be a positive number of metres")
    fit = PlaneFit() if fit is None else fit
    rng = np.random.default_rng(fit.seed)  # one stream: the subsampling, then the RANSAC draws
    sel = _ground_candidates(depth, K, fit, rng)
    tol = fit.inlier_rel * float(np.median(sel[:, 2]))
    cos_tilt = math.cos(math.radians(fit.max_tilt_deg))
    n, d = _ransac_plane(sel, tol, cos_tilt, fit.iterations, rng)
    n, d, inliers = _refine_plane(sel, n, d, tol, cos_tilt)
    return GroundFit(
        scale=float(camera_height / d),
        normal=tuple(float(x) for x in n),
        distance=d,
        inliers=inliers,
        candidates=len(sel),
    )


def _ground_candidates(
    depth: np.ndarray, K: np.ndarray, fit: PlaneFit, rng: np.random.Generator
) -> np.ndarray:
    """Camera-frame points ``[N, 3]`` of the lower image below the optical axis (at most
    ``fit.max_points``, drawn with ``rng``)."""
    depth = np.asarray(depth, np.float64)
    if depth.ndim != 2:
        raise R2SDepthError(f"depth map must be 2-D, got {depth.shape}")
    pts = backproject(depth, np.asarray(K, np.float64))
    h = depth.shape[0]
    sel = pts[int(fit.lower_start * h) :].reshape(-1, 3)
    sel = sel[np.isfinite(sel).all(1) & (sel[:, 2] > 0) & (sel[:, 1] > 0)]
    if len(sel) < 50:
        raise R2SDepthError(f"ground plane: only {len(sel)} valid pixels below the horizon")
    if len(sel) > fit.max_points:
        sel = sel[rng.choice(len(sel), fit.max_points, replace=False)]
    return sel


def _ransac_plane(
    sel: np.ndarray, tol: float, cos_tilt: float, iterations: int, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The best of ``iterations`` near-horizontal planes ``n . X = d`` through three of ``sel``'s
    points (drawn with ``rng``): most inliers within ``tol`` minus points below it."""
    planes: list[tuple[np.ndarray, float, int]] = []
    for a, b, c in rng.integers(0, len(sel), (iterations, 3)):
        n = np.cross(sel[b] - sel[a], sel[c] - sel[a])
        norm = np.linalg.norm(n)
        if norm < 1e-12:
            continue
        n = n / norm
        if n[1] < 0:
            n = -n  # the normal points down (+y), towards the ground
        d = float(n @ sel[a])
        if n[1] < cos_tilt or d <= 0:
            continue
        r = sel @ n - d
        # the ground is the lowest surface: points below a plane count against it (vehicle bonnets
        # and roofs below the camera are horizontal too, and a near one can hold more pixels)
        planes.append((n, d, int(np.sum(np.abs(r) < tol)) - int(np.sum(r > tol))))
    if not planes:
        raise R2SDepthError("ground plane: no near-horizontal plane below the horizon")
    best_n, best_d, _ = max(planes, key=lambda p: p[2])
    return best_n, best_d


def _refine_plane(
    sel: np.ndarray, n: np.ndarray, d: float, tol: float, cos_tilt: float
) -> tuple[np.ndarray, float, int]:
    """Least squares on the plane's inliers, then on narrower bands (1/4, 1/16 of ``tol``); stops
    where a band has under 3 points or its plane leaves the near-horizontal ones. Returns the plane
    and the number of points of the last band."""
    for band in (tol, tol / 4, tol / 16):
        inl = sel[np.abs(sel @ n - d) < band]
        if len(inl) < 3:
            break
        centre = inl.mean(0)
        m = np.linalg.svd(inl - centre, full_matrices=False)[2][-1]
        m = -m if m[1] < 0 else m
        if m[1] < cos_tilt or float(m @ centre) <= 0:
            break
        n, d = m, float(m @ centre)
    return n, d, len(inl)


def parse_intrinsics(text: str) -> tuple[float, float, float, float]:
    """``"fx,fy,cx,cy"`` (pixels) -> the four numbers, each finite; fx and fy positive."""
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or vals[0] <= 0 or vals[1] <= 0:
        raise R2SDepthError(
            f"--intrinsics {text!r}: expected fx,fy,cx,cy in pixels (fx, fy > 0), "
            "e.g. 721.5,721.5,609.6,172.9"
        )
    return vals  # type: ignore[return-value]


def intrinsics_matrix(
    size: tuple[int, int],
    *,
    intrinsics: tuple[float, float, float, float] | None = None,
    fov_deg: float | None = None,
) -> np.ndarray:
    """``K`` ``[3, 3]`` for an image of ``size`` (rows, columns): from ``fx, fy, cx, cy`` (pixels
    at that size) or from the horizontal field of view ``fov_deg`` (square pixels, principal point
    at the centre: ``fx = (W / 2) / tan(fov / 2)``, ``cx = (W - 1) / 2``)."""
    h, w = size
    if intrinsics is not None:
        fx, fy, cx, cy = intrinsics
    elif fov_deg is not None:
        if not (math.isfinite(fov_deg) and 0 < fov_deg < 180):
            raise R2SDepthError(
                f"--fov {fov_deg}: the horizontal field of view must be between 0 and 180 degrees"
            )
        fx = fy = (w / 2) / math.tan(math.radians(fov_deg) / 2)
        cx, cy = (w - 1) / 2, (h - 1) / 2
    else:
        raise R2SDepthError("intrinsics needed: --intrinsics fx,fy,cx,cy (pixels) or --fov DEGREES")
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


#: the factors :func:`speed_scale` searches: 1/1024 to 1024 (the demo model is x58-84 of metres),
#: first 2^(1/4) apart, then 2^(1/24) (2.9%)
SPEED_SCALE_RANGE = (2.0**-10, 2.0**10)
SPEED_SCALE_STEPS = (2.0**0.25, 2.0 ** (1 / 24))
#: frame pairs nearer than this (metres) carry no scale: a standing camera sees no parallax
MIN_TRAVEL_M = 0.1


def speed_scale_errors(
    depth: torch.Tensor,
    target: torch.Tensor,
    sources: list[torch.Tensor],
    forward: torch.Tensor,
    K: torch.Tensor,
    factors: torch.Tensor,
) -> torch.Tensor:
    """Photometric error ``[B, F]`` of each target image explained by its sources warped with its
    depth times each factor: the mean over pixels of the per-pixel minimum over the sources of
    :func:`~r2sdepth.losses.photometric_error` (SSIM + L1, as in training). ``depth`` ``[B, 1, H, W]``
    (any units), ``target`` and each source ``[B, 3, H, W]`` in [0, 1], ``forward`` ``[B, S]`` the
    signed distance (metres) each source camera lies ahead of the target's along its optical axis
    (negative behind), ``K`` ``[B, 3, 3]`` (or 4x4) at the images' size, ``factors`` ``[B, F]``. The
    motion is a pure translation ``t = (0, 0, -forward)``: a camera that moved ``f`` forward sees
    the scene ``f`` nearer."""
    import torch  # noqa: PLC0415  (torch-level: see the module's docstring)

    from r2sdepth.geometry import warp  # noqa: PLC0415
    from r2sdepth.losses import photometric_error  # noqa: PLC0415

    b, n = factors.shape
    out = torch.empty(b, n, dtype=torch.float32, device=depth.device)
    with torch.no_grad():
        for i in range(b):
            f = factors[i].to(depth.dtype).view(-1, 1, 1, 1)
            tgt = target[i : i + 1].expand(n, -1, -1, -1)
            Ki = K[i : i + 1].expand(n, -1, -1)
            best = None
            for j, src in enumerate(sources):
                if abs(float(forward[i, j])) < MIN_TRAVEL_M:
                    continue  # no parallax: a standing source explains any scale
                T = torch.eye(4, dtype=depth.dtype, device=depth.device).repeat(n, 1, 1)
                T[:, 2, 3] = -forward[i, j]
                warped, _ = warp(src[i : i + 1].expand(n, -1, -1, -1), depth[i : i + 1] * f, T, Ki)
                err = photometric_error(warped, tgt)
                best = err if best is None else torch.minimum(best, err)
            out[i] = best.mean((1, 2, 3)) if best is not None else float("inf")
    return out


def speed_scale(
    depth: torch.Tensor,
    target: torch.Tensor,
    sources: list[torch.Tensor],
    forward: torch.Tensor,
    K: torch.Tensor,
) -> torch.Tensor:
    """Per image ``[B]``, the factor that brings ``depth`` to the units of ``forward`` (metres): the
    minimum of :func:`speed_scale_errors` over :data:`SPEED_SCALE_RANGE`, searched on the coarse
    step of :data:`SPEED_SCALE_STEPS`, then on the fine one within a coarse step of the coarse
    minimum. NaN for an image whose sources all lie within :data:`MIN_TRAVEL_M` of it (no parallax,
    no scale), or whose minimum is at an end of the range (the scale lies outside it)."""
    import torch  # noqa: PLC0415  (torch-level: see the module's docstring)

    lo, hi = SPEED_SCALE_RANGE
    coarse, fine = SPEED_SCALE_STEPS
    b = depth.shape[0]
    n = round(math.log(hi / lo) / math.log(coarse)) + 1
    grid = (lo * coarse ** torch.arange(n, dtype=torch.float64)).expand(b, n)
    k = speed_scale_errors(depth, target, sources, forward, K, grid).argmin(1).cpu()
    inside = (k > 0) & (k < n - 1)
    m = round(math.log(coarse) / math.log(fine))
    around = grid[torch.arange(b), k].view(b, 1) * fine ** torch.arange(-m, m + 1, dtype=torch.float64)
    best = around[
        torch.arange(b), speed_scale_errors(depth, target, sources, forward, K, around).argmin(1).cpu()
    ]
    moving = (forward.abs() >= MIN_TRAVEL_M).any(1).cpu()
    return torch.where(moving & inside, best, torch.full_like(best, float("nan")))
