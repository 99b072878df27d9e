"""Point clouds from depth maps: binary little-endian PLY (x, y, z float32; red, green, blue uint8).

Points are in the camera frame (x right, y down, z forward), in the depth map's units (metres
when the depth is metric), one vertex per valid pixel (finite depth > 0), row-major order.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from r2sdepth.atomic import write_bytes_atomic
from r2sdepth.errors import R2SDepthError
from r2sdepth.metric import backproject

_VERTEX = np.dtype([("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])


def depth_to_points(
    depth: np.ndarray, K: np.ndarray, color: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[N, 3]`` float32 and colours ``[N, 3]`` uint8 of the valid pixels of ``depth``
    ``[H, W]`` (``K`` at its size); ``color``: ``[H, W, 3]`` or ``[H, W]`` uint8 (grey for None)."""
    depth = np.asarray(depth, np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    pts = backproject(depth, K)[valid].astype(np.float32)
    if color is None:
        rgb = np.full((len(pts), 3), 200, np.uint8)
    else:
        c = np.asarray(color)
        if c.shape[:2] != depth.shape:
            raise R2SDepthError(f"point colours {c.shape[:2]} do not match the depth map {depth.shape}")
        c = np.repeat(c[..., None], 3, -1) if c.ndim == 2 else c[..., :3]
        rgb = c[valid].astype(np.uint8)
    return pts, rgb


def write_ply(path: str | os.PathLike, points: np.ndarray, colors: np.ndarray, *, comment: str = "") -> Path:
    """Write ``points`` ``[N, 3]`` and ``colors`` ``[N, 3]`` uint8 as a binary PLY (atomic)."""
    points = np.asarray(points, np.float32)
    if points.ndim != 2 or points.shape[1] != 3 or colors.shape != points.shape:
        raise R2SDepthError(f"PLY: points {points.shape} and colours {colors.shape} must both be [N, 3]")
    v = np.empty(len(points), _VERTEX)
    v["x"], v["y"], v["z"] = points.T
    v["red"], v["green"], v["blue"] = np.asarray(colors, np.uint8).T
    head = ["ply", "format binary_little_endian 1.0"]
    head += [f"comment {line}" for line in comment.splitlines() if line]
    head += [
        f"element vertex {len(v)}",
        "property float x",
        "property float y",
        "property float z",
        "property uchar red",
        "property uchar green",
        "property uchar blue",
        "end_header",
    ]
    write_bytes_atomic(path, ("\n".join(head) + "\n").encode("ascii") + v.tobytes())
    return Path(path)


def read_ply(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Points ``[N, 3]`` and colours ``[N, 3]`` of a PLY written by :func:`write_ply`."""
    data = Path(path).read_bytes()
    end = data.find(b"end_header\n")
    if not data.startswith(b"ply\n") or end < 0:
        raise R2SDepthError(f"{path}: not a PLY file")
    header = data[:end].decode("ascii", "replace").splitlines()
    if "format binary_little_endian 1.0" not in header:
        raise R2SDepthError(f"{path}: only binary little-endian PLY files are read")
    n = next((int(h.split()[2]) for h in header if h.startswith("element vertex")), None)
    body = data[end + len(b"end_header\n") :]
    if n is None or len(body) != n * _VERTEX.itemsize:
        raise R2SDepthError(f"{path}: truncated or unexpected PLY body")
    v = np.frombuffer(body, _VERTEX)
    return np.stack([v["x"], v["y"], v["z"]], 1), np.stack([v["red"], v["green"], v["blue"]], 1)
