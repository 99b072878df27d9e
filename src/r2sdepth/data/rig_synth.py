"""Simulated two-camera rigs with exact depth, and copies of a rig root with another calibration:
the helpers that check :mod:`r2sdepth.data.rig` exactly (tests, benchmarks ``rig_alignment`` and
``clock_offset``). Not needed to read a real rig."""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from PIL import Image

from r2sdepth.data import kitti
from r2sdepth.data.rig import warp_rgb_to_spike
from r2sdepth.data.synthetic import DATE, SceneSpec, synthesize
from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.simulate import SimParams, simulate_to_file

__all__ = ["RigSpec", "copy_with_calibration", "synthesize_rig"]


def copy_with_calibration(
    src: str | os.PathLike, dst: str | os.PathLike, change: dict[str, Any], *, overwrite: bool = False
) -> Path:
    """A copy of the rig data root ``src`` at ``dst`` (files hard-linked where the file system
    allows, copied otherwise) whose sequences' ``calib.yaml`` get the keys of ``change`` (e.g.
    ``{"clock_offset_s": 0.1}``): the same recordings with another calibration, to measure what a
    calibration error costs. An existing ``dst`` is replaced only with ``overwrite``."""

    src, dst = Path(src), Path(dst)
    if not any(src.glob("*/calib.yaml")):
        raise R2SDepthError(f"{src}: not a rig data root (no SEQ/calib.yaml below it)")
    s, d = src.resolve(), dst.resolve()
    if d == s or s in d.parents or d in s.parents:
        raise R2SDepthError(f"{dst}: the copy must be outside {src} (and not contain it)")
    if dst.exists():
        if not overwrite:
            raise R2SDepthError(f"{dst} exists (pass overwrite=True to replace it)")
        shutil.rmtree(dst)

    def link_or_copy(a: str, b: str) -> None:
        try:
            os.link(a, b)
        except OSError:  # another file system, or links not allowed
            shutil.copy2(a, b)

    shutil.copytree(src, dst, copy_function=link_or_copy)
    for c in dst.glob("*/calib.yaml"):
        cal = yaml.safe_load(c.read_text())
        c.unlink()  # perhaps a hard link: never edit the source's file
        cal.update(change)
        c.write_text(yaml.safe_dump(cal))
    return dst


def _rot_y(deg: float) -> np.ndarray:
    a = math.radians(deg)
    return np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])


@dataclass(frozen=True)
class _RigGeometry:
    """A simulated rig's cameras: the world camera ``Kw`` (the rendered scenes'), the RGB camera (the
    world image resized: pixel map ``A``), the spike camera ``Ks`` rotated about the vertical axis
    (world pixels -> spike pixels: ``Hws``) and the factor that turns the world camera's depth into
    the spike camera's at each spike pixel."""

    Kw: np.ndarray
    Ks: np.ndarray
    A: np.ndarray
    Hws: np.ndarray
    factor: np.ndarray
    rgb_size: tuple[int, int]
    spike_size: tuple[int, int]


def _rig_geometry(
    Kw: np.ndarray,
    world_size: tuple[int, int],
    rgb_scale: float,
    spike_size: tuple[int, int],
    spike_K: np.ndarray | None,
    yaw_deg: float,
) -> _RigGeometry:
    hw, ww = world_size
    hs, ws = spike_size
    s = rgb_scale
    A = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1]])  # cv2.resize's pixel-centre map
    if spike_K is None:
        spike_K = np.array([[0.58 * ws * 1.1, 0, ws / 2], [0, 1.92 * hs * 1.1, hs / 2], [0, 0, 1]])
    Ks = np.asarray(spike_K, dtype=np.float64)
    R = _rot_y(yaw_deg)
    Hws = Ks @ R @ np.linalg.inv(Kw)  # world pixels -> spike pixels
    # spike-camera depth: z_s(u_s) = z_w(u_w) * R[2] . Kw^-1 [u_w, 1] with u_w = Hws^-1 u_s
    ys, xs = np.mgrid[0:hs, 0:ws]
    uw = np.linalg.inv(Hws) @ np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size)])
    factor = (R[2] @ np.linalg.inv(Kw) @ (uw / uw[2])).reshape(hs, ws)
    rgb_size = (round(hw * rgb_scale), round(ww * rgb_scale))
    return _RigGeometry(Kw, Ks, A, Hws, factor, rgb_size, (hs, ws))


def _write_rig_sequence(
    out: Path,
    q: int,
    geo: _RigGeometry,
    params: SimParams,
    clock_offset_s: float,
    seed: int,
    exposure_changes: bool,
) -> str:
    """Sequence ``q`` of the rendered world as the rig records it: RGB frames and timestamps, the
    spike stream (its clock ``clock_offset_s`` ahead), the spike camera's exact depth and
    ``calib.yaml``. Returns the sequence's folder name."""
    (hs, ws), (hr, wr) = geo.spike_size, geo.rgb_size
    fps, pre_roll_frames = params.video_fps, params.pre_roll_frames
    drive = f"{DATE}/{DATE}_drive_{q:04d}_sync"
    src = sorted((out / "_world" / drive / "image_02" / "data").glob("*.png"))
    gains = (
        0.75 + 0.25 * np.sin(np.arange(len(src)) * 1.7 + 1.3 * q) if exposure_changes else np.ones(len(src))
    )
    root = out / f"seq{q:02d}"
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(exist_ok=True)
    spike_frames = []
    for i, (p, g) in enumerate(zip(src, gains)):
        w = np.clip(np.asarray(Image.open(p), dtype=np.float32) * g, 0, 255).astype(np.uint8)
        Image.fromarray(cv2.resize(w, (wr, hr), interpolation=cv2.INTER_LINEAR)).save(
            root / "rgb" / f"{i:06d}.png"
        )
        spike_frames.append(warp_rgb_to_spike(w, geo.Hws, (hs, ws)))
        zw = kitti.gt_depth(out / "_world", drive, i, "l")
        zs = cv2.warpPerspective(zw, geo.Hws, (ws, hs), flags=cv2.INTER_NEAREST, borderValue=0) * geo.factor
        np.save(root / "depth" / f"{i:06d}.npy", zs.astype(np.float32))
    times = np.arange(len(src)) / fps + 12.5 + 3.0 * q  # the RGB camera's clock
    (root / "rgb" / "timestamps.txt").write_text("".join(f"{t:.6f}\n" for t in times))
    # plane (pre + k) * P is reached at RGB time times[k]: plane 0 at times[0] - pre / fps (spike clock)
    t0_s = times[0] - pre_roll_frames / fps + clock_offset_s
    simulate_to_file(spike_frames, root / "spike.dat", params, seed=seed + q, extra_meta={"t0_s": t0_s})
    calib = {
        "rgb_K": (geo.A @ geo.Kw).tolist(),
        "spike_K": geo.Ks.tolist(),
        "rgb_size": [hr, wr],
        "spike_size": [hs, ws],
        "H_rgb_to_spike": (geo.Hws @ np.linalg.inv(geo.A)).tolist(),
        "clock_offset_s": None,
    }
    (root / "calib.yaml").write_text(yaml.safe_dump(calib))
    return root.name


@dataclass(frozen=True)
class RigSpec:
    """A simulated two-camera rig: synthetic streets rendered at ``world_size`` (pixels, ``(H, W)``)
    are seen by an RGB camera (the world image resized by ``rgb_scale``, bilinear) and by a spike
    camera of ``spike_size`` with intrinsics ``spike_K`` (pixels; default: KITTI-like for its
    size, zoomed 1.1x), rotated ``yaw_deg`` (degrees) about the vertical axis, whose stream is
    simulated at ``planes_per_frame`` x ``fps`` Hz (``pre_roll_frames`` frame intervals before the
    first RGB frame) with its clock ``clock_offset_s`` (seconds) ahead of the RGB camera's. With
    ``exposure_changes`` the scene brightness varies from frame to frame (auto-exposure, lighting),
    which is what makes the offset observable."""

    world_size: tuple[int, int] = (96, 160)
    rgb_scale: float = 0.75
    spike_size: tuple[int, int] = (64, 128)
    spike_K: np.ndarray | None = None
    yaw_deg: float = 1.5
    clock_offset_s: float = 0.0037
    fps: float = 10.0
    planes_per_frame: int = 200
    pre_roll_frames: int = 1
    exposure_changes: bool = True


def synthesize_rig(
    out: str | os.PathLike,
    rig: RigSpec | None = None,
    *,
    sequences: int = 1,
    frames: int = 14,
    seed: int = 3,
    test_sequences: int = 0,
) -> dict[str, Any]:
    """A data root of ``sequences`` simulated rig sequences of ``frames`` frames each, seen by
    ``rig`` (:class:`RigSpec`), that can be checked exactly.

    Writes ``OUT/seqNN/`` (layout in the module docstring; ``calib.yaml`` with the true homography
    and ``clock_offset_s: null``), the spike camera's exact depth, and
    ``OUT/splits/{train,test}_files.txt`` (frames with both neighbours; the last ``test_sequences``
    sequences are the test split, or all when 0). Returns the ground truth: ``H_rgb_to_spike``,
    ``clock_offset_s``, sizes, intrinsics."""

    rig = RigSpec() if rig is None else rig
    out = Path(out)
    world_size = rig.world_size
    synthesize(
        out / "_world",
        SceneSpec(frames=frames, height=world_size[0], width=world_size[1], seed=seed),
        sequences=sequences,
    )
    geo = _rig_geometry(
        kitti.load_calib(out / "_world" / DATE, "02").K,
        world_size,
        rig.rgb_scale,
        rig.spike_size,
        rig.spike_K,
        rig.yaw_deg,
    )
    params = SimParams(
        planes_per_frame=rig.planes_per_frame, video_fps=rig.fps, pre_roll_frames=rig.pre_roll_frames
    )
    names = [
        _write_rig_sequence(out, q, geo, params, rig.clock_offset_s, seed, rig.exposure_changes)
        for q in range(sequences)
    ]
    test = names[len(names) - test_sequences :] if test_sequences else names
    train = [n for n in names if n not in test] or names
    for split, seqs in (("train", train), ("test", test)):
        kitti.write_split(
            out / "splits" / f"{split}_files.txt",
            [kitti.Sample(n, i, "l") for n in seqs for i in range(1, frames - 1)],
        )

    shutil.rmtree(out / "_world")
    return {
        "sequences": names,
        "H_rgb_to_spike": geo.Hws @ np.linalg.inv(geo.A),
        "clock_offset_s": rig.clock_offset_s,
        "rgb_K": geo.A @ geo.Kw,
        "spike_K": geo.Ks,
        "rgb_size": geo.rgb_size,
        "spike_size": geo.spike_size,
        "world_K": geo.Kw,
    }
