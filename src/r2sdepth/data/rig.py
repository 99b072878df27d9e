"""Paired recordings of a real two-camera rig: an RGB camera next to (or co-axial with) a spike
camera, each with its own lens, size and clock.

Layout of one paired sequence::

    SEQ/rgb/NNNNNN.png|.jpg    RGB frames, name order = time order
    SEQ/rgb/timestamps.txt     one time per frame, seconds on the RGB camera's clock
    SEQ/spike.dat              the spike stream (real-camera .dat)
    SEQ/spike.json             its sidecar: height, width, rate_hz, and t0_s (the time of plane 0,
                               seconds on the spike camera's clock)
    SEQ/depth/NNNNNN.npy       optional: depth (metres, float32, 0 = invalid) in the spike camera
                               frame, for evaluation (e.g. a simulated rig's exact depth)
    SEQ/calib.yaml             rgb_K, spike_K (3x3, pixels), rgb_size, spike_size ([rows, cols]);
                               H_rgb_to_spike (3x3 homography, co-axial rigs) or R, t (RGB -> spike
                               camera extrinsics, metres); clock_offset_s: t_spike = t_rgb + offset
                               (null: estimated from the data)

Temporal alignment: the spike window of RGB frame ``i`` is chosen by time, not by a simulated
plane index: the window ends (exclusive) at ``floor((t_rgb[i] + offset - t0_s) * rate_hz)``, the planes
completed by then (causal).
An unknown clock offset is estimated by maximising the correlation between the change of the
RGB frames' mean luminance from frame to frame and the change of the spike camera's firing rate
at the corresponding times (the rate of an integrate-and-fire pixel is proportional to its
luminance), searched in steps of 1/8 plane and refined by a parabola.

A folder of such sequences is a data root for ``train``, ``distill``, ``eval`` and ``infer``'s
split mode: split lines ``<sequence> <frame index> l``; :class:`r2sdepth.data.dataset.SplitDataset`
reads rig sequences (those with ``calib.yaml``) through this module. Simulated rigs with exact
depth and calibration variants (tests, benchmarks) are made by :mod:`r2sdepth.data.rig_synth`.

Spatial alignment: RGB frames are warped into the spike camera's image plane, so the photometric
loss, the spike window and the predicted depth share one camera (depth is in the spike camera's
frame, with ``spike_K``). Co-axial rigs give the homography directly; side-by-side rigs use the
rotation's infinite homography ``spike_K R rgb_K^-1``, which ignores the parallax of the baseline
(a pixel error of ``f * baseline / depth``: about 0.3 px at 10 m for a 2 cm baseline at f = 150 px).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from r2sdepth.data.kitti import FRAME_SUFFIXES
from r2sdepth.errors import R2SDepthError
from r2sdepth.frames import read_image
from r2sdepth.spike.io import SpikeStream, read_sidecar
from r2sdepth.spike.simulate import luminance

__all__ = [
    "RigCalibration",
    "RigSequence",
    "estimate_clock_offset",
    "planes_before",
    "read_rig_calibration",
    "rgb_to_spike_homography",
    "rig_depth",
    "warp_rgb_to_spike",
]


@dataclass
class RigCalibration:
    """Both cameras' intrinsics (pixels), sizes ``(rows, cols)``, the RGB -> spike mapping and
    the clock offset (seconds, ``t_spike = t_rgb + offset``; None when unknown)."""

    rgb_K: np.ndarray
    spike_K: np.ndarray
    rgb_size: tuple[int, int]
    spike_size: tuple[int, int]
    H_rgb_to_spike: np.ndarray | None = None
    R: np.ndarray | None = None
    t: np.ndarray | None = None
    clock_offset_s: float | None = None


def _matrix(cfg: dict[str, Any], key: str, shape: tuple[int, ...], where: Path) -> np.ndarray | None:
    v = cfg.get(key)
    if v is None:
        return None
    try:
        a = np.asarray(v, dtype=np.float64).reshape(shape)
    except (TypeError, ValueError):
        raise R2SDepthError(
            f"{where}: {key} must be a {'x'.join(map(str, shape))} matrix of numbers"
        ) from None
    if not np.isfinite(a).all():
        raise R2SDepthError(f"{where}: {key} has non-finite entries")
    return a


def read_rig_calibration(path: str | os.PathLike) -> RigCalibration:
    """Read and check ``calib.yaml`` (see the module docstring); one-line errors."""

    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(
            f"{path}: rig calibration not found (calib.yaml: rgb_K, spike_K, sizes, "
            "H_rgb_to_spike or R/t, clock_offset_s)"
        )
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise R2SDepthError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise R2SDepthError(f"{path}: a mapping of calibration keys is expected")
    rgb_K, spike_K = _matrix(cfg, "rgb_K", (3, 3), path), _matrix(cfg, "spike_K", (3, 3), path)
    if rgb_K is None or spike_K is None:
        raise R2SDepthError(f"{path}: rgb_K and spike_K (3x3 intrinsics, pixels) are required")
    sizes = []
    for key in ("rgb_size", "spike_size"):
        v = cfg.get(key)
        if not (
            isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, int) and x > 0 for x in v)
        ):
            raise R2SDepthError(f"{path}: {key} must be [rows, cols] (positive integers), got {v!r}")
        sizes.append((int(v[0]), int(v[1])))
    H = _matrix(cfg, "H_rgb_to_spike", (3, 3), path)
    R, t = _matrix(cfg, "R", (3, 3), path), _matrix(cfg, "t", (3,), path)
    if H is None and R is None:
        raise R2SDepthError(
            f"{path}: give H_rgb_to_spike (co-axial rig) or R and t (RGB -> spike extrinsics)"
        )
    off = cfg.get("clock_offset_s")
    if off is not None and (
        isinstance(off, bool) or not isinstance(off, (int, float)) or not math.isfinite(off)
    ):
        raise R2SDepthError(f"{path}: clock_offset_s must be a number of seconds or null, got {off!r}")
    return RigCalibration(rgb_K, spike_K, sizes[0], sizes[1], H, R, t, None if off is None else float(off))


def rgb_to_spike_homography(calib: RigCalibration) -> np.ndarray:
    """3x3 map of RGB pixels to spike-camera pixels: the given homography, else ``spike_K R rgb_K^-1``."""
    if calib.H_rgb_to_spike is not None:
        return calib.H_rgb_to_spike
    assert calib.R is not None
    return calib.spike_K @ calib.R @ np.linalg.inv(calib.rgb_K)


def warp_rgb_to_spike(img: np.ndarray, H: np.ndarray, spike_size: tuple[int, int]) -> np.ndarray:
    """An RGB (or gray) image warped into the spike camera's image plane ``spike_size``
    (bilinear; pixels that the RGB camera does not see are 0)."""

    return cv2.warpPerspective(
        np.asarray(img),
        np.asarray(H, dtype=np.float64),
        (spike_size[1], spike_size[0]),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def planes_before(t_rgb: float | np.ndarray, t0_s: float, rate_hz: float, offset_s: float) -> np.ndarray:
    """Planes (int64) of the spike stream completed at RGB-clock time ``t_rgb`` (seconds),
    ``floor((t_rgb + offset - t0) * rate)``: the exclusive end of the frame's causal window."""
    return np.floor((np.asarray(t_rgb, dtype=np.float64) + offset_s - t0_s) * rate_hz + 1e-9).astype(np.int64)


def estimate_clock_offset(
    rgb_times: np.ndarray,
    rgb_luminance: np.ndarray,
    plane_counts: np.ndarray,
    t0_s: float,
    rate_hz: float,
    *,
    search_s: float = 0.05,
    window_planes: int | None = None,
) -> dict[str, Any]:
    """Clock offset (seconds, ``t_spike = t_rgb + offset``) maximising the Pearson correlation of
    the frame-to-frame change of the RGB mean luminance ``rgb_luminance[i]`` (any units) and of
    the spike rate (mean of ``plane_counts`` over ``window_planes`` centred on each frame time).

    Plane ``i`` integrates the light of spike-clock times ``(t0 + i / rate, t0 + (i + 1) / rate]``;
    windows sit at fractional plane positions (counts linear within a plane). Searches
    ``[-search_s, search_s]`` in steps of 1/8 plane and refines the peak by a parabola through
    the three best correlations. Returns ``offset_s``, ``correlation`` at the peak, the correlation
    curve (``offsets_s``, ``correlations``) and ``usable_frames``. Needs frames whose luminance
    changes (static, evenly lit scenes carry no timing information: refused).
    """
    t = np.asarray(rgb_times, dtype=np.float64)
    lum = np.asarray(rgb_luminance, dtype=np.float64)
    counts = np.asarray(plane_counts, dtype=np.float64)
    if t.ndim != 1 or t.shape != lum.shape or t.size < 4:
        raise R2SDepthError("clock offset: need at least 4 RGB frames with one time and one luminance each")
    if not np.all(np.diff(t) > 0):
        raise R2SDepthError("clock offset: RGB timestamps must increase")
    frame_dt = float(np.median(np.diff(t)))
    w = int(window_planes or max(2, round(0.25 * frame_dt * rate_hz)))
    # cumulative count at plane-time y (plane i integrates [i, i+1)), linear within a plane, so a
    # window can sit at a fractional position: rounding it to whole planes biased the estimate by
    # up to half a plane, the same for every frame of a regularly timed sequence
    csum = np.concatenate([[0.0], np.cumsum(counts)])
    n = counts.size
    grid = np.arange(n + 1, dtype=np.float64)
    sub = 8  # search steps per plane
    shifts = np.arange(-int(round(search_s * rate_hz * sub)), int(round(search_s * rate_hz * sub)) + 1) / sub
    base = (t - t0_s) * rate_hz  # plane-time of each frame at offset 0 (fractional)
    d_lum = np.diff(lum)
    if np.std(d_lum) <= 1e-12:
        raise R2SDepthError("clock offset: the RGB frames' luminance does not change: nothing to align on")
    corr = np.full(shifts.size, np.nan)
    used = 0
    for j, s in enumerate(shifts):
        lo = base + s - 0.5 * w
        hi = lo + w
        ok = (lo >= 0) & (hi <= n)
        okd = ok[1:] & ok[:-1]
        if okd.sum() < 3:
            continue
        rate = np.where(ok, (np.interp(hi, grid, csum) - np.interp(lo, grid, csum)) / w, np.nan)
        dr = np.diff(rate)[okd]
        dl = d_lum[okd]
        if np.std(dr) <= 1e-12:
            continue
        corr[j] = float(np.corrcoef(dl, dr)[0, 1])
        used = max(used, int(okd.sum()) + 1)
    if not np.isfinite(corr).any():
        raise R2SDepthError(
            "clock offset: the spike stream does not cover the RGB frames at any offset searched"
        )
    k = int(np.nanargmax(corr))
    frac = 0.0
    if 0 < k < corr.size - 1 and np.isfinite(corr[k - 1]) and np.isfinite(corr[k + 1]):
        den = corr[k - 1] - 2 * corr[k] + corr[k + 1]
        if den < 0:
            frac = float(np.clip(0.5 * (corr[k - 1] - corr[k + 1]) / den, -0.5, 0.5)) / sub
    return {
        "offset_s": float((shifts[k] + frac) / rate_hz),
        "correlation": float(corr[k]),
        "offsets_s": shifts / rate_hz,
        "correlations": corr,
        "usable_frames": used,
        "window_planes": w,
    }


def rig_depth(seq: str | os.PathLike, i: int) -> np.ndarray:
    """Ground-truth depth (metres, float32 ``[H, W]``, 0 = invalid) of frame ``i`` of a rig
    sequence, in the spike camera: ``SEQ/depth/NNNNNN.npy``."""
    p = Path(seq) / "depth" / f"{i:06d}.npy"
    if not p.is_file():
        raise R2SDepthError(
            f"{p}: no ground-truth depth for this rig frame (evaluation needs depth/NNNNNN.npy)"
        )
    try:
        d = np.load(p, allow_pickle=False)
    except ValueError as e:
        raise R2SDepthError(f"{p}: not a depth array ({e})") from None
    if d.ndim != 2:
        raise R2SDepthError(f"{p}: depth must be [H, W], got shape {d.shape}")
    return d.astype(np.float32)


class RigSequence:
    """One paired sequence (layout in the module docstring): RGB frames and times, the spike
    stream, the calibration; spike windows chosen by time, RGB brought into the spike camera."""

    def __init__(
        self,
        root: str | os.PathLike,
        *,
        clock_offset_s: float | None = None,
        estimate_offset: bool | None = None,
    ) -> None:

        self.root = Path(root)
        rgb = self.root / "rgb"
        self.frames = (
            sorted(p for p in rgb.glob("*") if p.suffix.lower() in FRAME_SUFFIXES) if rgb.is_dir() else []
        )
        if not self.frames:
            raise R2SDepthError(f"{rgb}: no RGB frames (PNG/JPEG)")
        ts = rgb / "timestamps.txt"
        if not ts.is_file():
            raise R2SDepthError(f"{ts}: RGB timestamps missing (one time in seconds per frame)")
        try:
            self.times = np.array([float(x) for x in ts.read_text().split()], dtype=np.float64)
        except ValueError:
            raise R2SDepthError(f"{ts}: timestamps must be numbers (seconds), one per line") from None
        if self.times.size != len(self.frames):
            raise R2SDepthError(f"{ts}: {self.times.size} timestamps for {len(self.frames)} frames")
        if self.times.size > 1 and not np.all(np.diff(self.times) > 0):
            raise R2SDepthError(f"{ts}: timestamps must increase")
        self.stream = SpikeStream(self.root / "spike.dat")
        meta = read_sidecar(self.root / "spike.dat") or {}
        if "t0_s" not in meta:
            raise R2SDepthError(
                f"{self.root / 'spike.json'}: t0_s (time of plane 0 on the spike clock) is required"
            )
        self.t0_s = float(meta["t0_s"])
        self.rate_hz = float(self.stream.rate_hz)
        self.calib = read_rig_calibration(self.root / "calib.yaml")
        if (self.stream.height, self.stream.width) != self.calib.spike_size:
            raise R2SDepthError(
                f"{self.root}: spike stream is {self.stream.height}x{self.stream.width}, calib.yaml "
                f"says spike_size {self.calib.spike_size[0]}x{self.calib.spike_size[1]}"
            )
        self.H = rgb_to_spike_homography(self.calib)
        self.offset_estimate: dict[str, Any] | None = None
        if clock_offset_s is not None:
            self.clock_offset_s = float(clock_offset_s)
        elif self.calib.clock_offset_s is not None and not estimate_offset:
            self.clock_offset_s = self.calib.clock_offset_s
        else:
            self.offset_estimate = self.estimate_offset()
            self.clock_offset_s = self.offset_estimate["offset_s"]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def K(self) -> np.ndarray:
        """Intrinsics of the spike camera: the camera every sample is expressed in."""
        return self.calib.spike_K

    def rgb(self, i: int) -> np.ndarray:
        """RGB frame ``i`` as the RGB camera saw it, uint8 ``[h, w, 3]``."""

        img = read_image(self.frames[i])
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, -1)
        if img.shape[:2] != self.calib.rgb_size:
            raise R2SDepthError(
                f"{self.frames[i]}: {img.shape[0]}x{img.shape[1]}, calib.yaml says rgb_size "
                f"{self.calib.rgb_size[0]}x{self.calib.rgb_size[1]}"
            )
        return img[..., :3]

    def rgb_in_spike_camera(self, i: int) -> np.ndarray:
        """RGB frame ``i`` warped into the spike camera's image plane, uint8 ``[H, W, 3]``."""
        return warp_rgb_to_spike(self.rgb(i), self.H, self.calib.spike_size)

    def window_ends(self) -> np.ndarray:
        """Exclusive end plane of every RGB frame's causal window (int64 ``[N]``)."""
        return planes_before(self.times, self.t0_s, self.rate_hz, self.clock_offset_s)

    def window(self, i: int, length: int) -> np.ndarray:
        """The ``length`` planes that end when RGB frame ``i`` is taken (by time), uint8 ``[T, H, W]``."""
        end = int(planes_before(self.times[i], self.t0_s, self.rate_hz, self.clock_offset_s))
        if end - length < 0 or end > len(self.stream):
            raise R2SDepthError(
                f"{self.root}: the {length}-plane window of RGB frame {i} (t = {self.times[i]:.6f} s) "
                f"[{end - length}, {end}) leaves the stream of {len(self.stream)} planes"
            )
        return self.stream.read(end - length, end)

    def depth(self, i: int) -> np.ndarray:
        """Ground-truth depth of frame ``i`` in the spike camera (``depth/NNNNNN.npy``), float32."""
        d = rig_depth(self.root, i)
        if d.shape != self.calib.spike_size:
            raise R2SDepthError(
                f"{self.root}: depth of frame {i} is {d.shape}, the spike camera is {self.calib.spike_size}"
            )
        return d

    def estimate_offset(self, search_s: float = 0.05) -> dict[str, Any]:
        """Estimate the clock offset from the data (:func:`estimate_clock_offset`)."""

        lum = np.array([float(luminance(self.rgb_in_spike_camera(i)).mean()) for i in range(len(self))])
        return estimate_clock_offset(
            self.times, lum, self.stream.plane_counts(), self.t0_s, self.rate_hz, search_s=search_s
        )
