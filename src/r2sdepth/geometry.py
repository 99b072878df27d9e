"""Camera geometry in torch: back-projection, projection, pose vectors, view-synthesis warping.

Conventions: camera frame x right, y down, z forward (KITTI/OpenCV); intrinsics ``K`` ``[B, 3, 3]``
in pixels of the image they are used with; a pose ``T`` ``[B, 4, 4]`` maps points of one camera
frame into another; depth in metres ``[B, 1, H, W]``; images ``[B, C, H, W]``.

Precision: every function here computes in float32 with autocast switched off, whatever the
caller's precision (``16-mixed``/``bf16-mixed`` training). In float16 the projected pixel
coordinates of a 640-wide image are off by up to ~1 px (10 mantissa bits for values up to a few
hundred) and the photometric gradient with respect to disparity by tens of percent.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
import torch.nn.functional as F

_F = TypeVar("_F", bound=Callable)


def _device_type(args: tuple, kwargs: dict) -> str:
    for a in (*args, *kwargs.values()):
        if torch.is_tensor(a):
            return a.device.type
    return "cpu"


def float32_geometry(fn: _F) -> _F:
    """Run ``fn`` with autocast disabled and its floating-point tensor arguments in float32.

    Applied as ``name = float32_geometry(_name)`` below rather than as a decorator: the mutation
    tool (mutmut) leaves decorated functions alone, and these are the ones whose mistakes matter."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        def up(x):
            return (
                x.float() if torch.is_tensor(x) and x.is_floating_point() and x.dtype != torch.float64 else x
            )

        with torch.autocast(_device_type(args, kwargs), enabled=False):
            return fn(*(up(a) for a in args), **{k: up(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


def pixel_grid(h: int, w: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Homogeneous pixel coordinates ``[3, H*W]`` (u, v, 1), row-major, pixel centres at integers."""
    grid = torch.ones(3, h, w, device=device, dtype=dtype)
    grid[0] = torch.arange(w)  # u, the column (copied into the grid's device and dtype)
    grid[1] = torch.arange(h)[:, None]  # v, the row
    return grid.reshape(3, h * w)


def _backproject(depth: torch.Tensor, K_inv: torch.Tensor) -> torch.Tensor:
    """Depth ``[B, 1, H, W]`` -> camera points ``[B, 3, H*W]`` (metres)."""
    b, _, h, w = depth.shape
    pix = pixel_grid(h, w, depth.device, depth.dtype)
    rays = K_inv[:, :3, :3] @ pix.unsqueeze(0)
    return rays * depth.reshape(b, 1, h * w)


backproject = float32_geometry(_backproject)


def _project(
    points: torch.Tensor, K: torch.Tensor, T: torch.Tensor | None = None, eps: float = 1e-7
) -> tuple[torch.Tensor, torch.Tensor]:
    """Camera points ``[B, 3, N]`` (optionally moved by ``T`` ``[B, 4, 4]``) -> pixels ``[B, 2, N]``
    and their depth ``[B, 1, N]``."""
    if T is not None:
        points = T[:, :3, :3] @ points + T[:, :3, 3:4]
    p = K[:, :3, :3] @ points
    z = p[:, 2:3]
    return p[:, :2] / z.clamp(min=eps), z


project = float32_geometry(_project)


def _axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle ``[B, 3]`` (radians) -> rotation ``[B, 3, 3]`` (stable near 0)."""
    theta2 = (aa * aa).sum(-1, keepdim=True)
    theta = torch.sqrt(theta2.clamp(min=1e-12))
    k = aa / theta
    small = theta2 < 1e-8
    kx, ky, kz = k.unbind(-1)
    zero = torch.zeros_like(kx)
    Kx = torch.stack([zero, -kz, ky, kz, zero, -kx, -ky, kx, zero], -1).reshape(-1, 3, 3)
    s, c = torch.sin(theta)[..., None], torch.cos(theta)[..., None]
    eye = torch.eye(3, device=aa.device, dtype=aa.dtype).expand_as(Kx)
    R = eye + s * Kx + (1 - c) * (Kx @ Kx)
    # first-order expansion for tiny angles keeps the gradient finite
    ax, ay, az = aa.unbind(-1)
    Ka = torch.stack([zero, -az, ay, az, zero, -ax, -ay, ax, zero], -1).reshape(-1, 3, 3)
    R_small = eye + Ka
    return torch.where(small[..., None], R_small, R)


axis_angle_to_matrix = float32_geometry(_axis_angle_to_matrix)


def _pose_vec_to_matrix(
    axisangle: torch.Tensor, translation: torch.Tensor, invert: bool = False
) -> torch.Tensor:
    """Pose vector (axis-angle ``[B, 3]``, translation ``[B, 3]``) -> ``[B, 4, 4]``.

    ``invert=True`` returns the inverse transform (used for the frame before the target, as in
    Monodepth2, so one network predicts both directions consistently).
    """
    R = axis_angle_to_matrix(axisangle)
    t = translation.unsqueeze(-1)
    if invert:
        R = R.transpose(1, 2)
        t = -R @ t
    T = torch.zeros(R.shape[0], 4, 4, device=R.device, dtype=R.dtype)
    T[:, :3, :3] = R
    T[:, :3, 3:] = t
    T[:, 3, 3] = 1
    return T


pose_vec_to_matrix = float32_geometry(_pose_vec_to_matrix)


def _warp(
    src: torch.Tensor,
    depth: torch.Tensor,
    T_tgt_to_src: torch.Tensor,
    K: torch.Tensor,
    K_inv: torch.Tensor | None = None,
    padding_mode: str = "border",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthesize the target view from ``src`` ``[B, C, H, W]`` (differentiable).

    ``depth``: target depth ``[B, 1, H, W]``; ``T_tgt_to_src``: maps target camera points into
    the source camera ``[B, 4, 4]``; ``K``: ``[B, 3, 3]`` (or 4x4). Returns the warped image and a
    validity mask ``[B, 1, H, W]`` (projection inside the source image and in front of it).
    """
    b, _, h, w = depth.shape
    if K_inv is None:
        K_inv = torch.inverse(K[:, :3, :3])
    pts = backproject(depth, K_inv)
    pix, z = project(pts, K, T_tgt_to_src)
    u = pix[:, 0].reshape(b, h, w)
    v = pix[:, 1].reshape(b, h, w)
    grid = torch.stack([2 * u / (w - 1) - 1, 2 * v / (h - 1) - 1], -1)
    out = F.grid_sample(src, grid, mode="bilinear", padding_mode=padding_mode, align_corners=True)
    valid = (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1) & (z.reshape(b, h, w) > 0)
    return out, valid.unsqueeze(1).to(src.dtype)


warp = float32_geometry(_warp)


def _disp_to_depth(
    disp: torch.Tensor, min_depth: float = 0.1, max_depth: float = 100.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigmoid disparity in [0, 1] -> (scaled disparity, depth in [min_depth, max_depth])."""
    min_disp, max_disp = 1.0 / max_depth, 1.0 / min_depth
    scaled = min_disp + (max_disp - min_disp) * disp
    return scaled, 1.0 / scaled


disp_to_depth = float32_geometry(_disp_to_depth)


def rescale_translation(T: torch.Tensor, distance: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Poses ``[B, 4, 4]`` with each translation scaled to length ``distance`` ``[B]`` (metres),
    its direction kept (a zero translation stays zero)."""
    t = T[:, :3, 3]
    n = t.norm(dim=-1, keepdim=True)
    out = T.clone()
    out[:, :3, 3] = t * (distance.to(t.dtype)[:, None] / n.clamp_min(eps))
    return out
