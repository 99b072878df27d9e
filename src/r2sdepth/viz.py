"""Pictures and animations: spike reconstructions, colour-mapped depth, GIF/MP4.

No torch import at module level. Every file is written atomically.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from PIL import Image

from r2sdepth.atomic import atomic_path, save_png
from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.io import SpikeStream
from r2sdepth.spike.reconstruct import tfi, tfp, to_uint8


def check_animation_path(path: str | os.PathLike) -> None:
    """Fail early (before any work) when ``path`` cannot be written as an animation."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise R2SDepthError(f"{path}: animation must end in .gif or .mp4")
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as e:
            raise R2SDepthError(f"{path}: MP4 output needs imageio-ffmpeg (pip install 'r2sdepth[video]')") from e


def save_animation(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """Save uint8 frames (``[H, W]`` or ``[H, W, 3]``) as an animated GIF or an MP4 (by suffix).

    MP4 needs the ``imageio-ffmpeg`` package (``pip install r2sdepth[video]``).
    """
    import imageio.v3 as iio

    path = Path(path)
    check_animation_path(path)
    if not frames:
        raise R2SDepthError(f"{path}: no frames to animate")
    with atomic_path(path) as tmp:
        if path.suffix.lower() == ".gif":
            iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
        else:  # .mp4
            arr = np.stack([f if f.ndim == 3 else np.repeat(f[..., None], 3, -1) for f in frames])
            # H.264 wants even sizes
            h, w = arr.shape[1] - arr.shape[1] % 2, arr.shape[2] - arr.shape[2] % 2
            iio.imwrite(tmp, arr[:, :h, :w], extension=".mp4", fps=fps, codec="libx264",
                        plugin="pyav" if _has_pyav() else None)
    return path


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401
    except ImportError:
        return False
    return True


def colorize(values: np.ndarray, cmap: str = "magma", vmin: float | None = None,
             vmax: float | None = None) -> np.ndarray:
    """Colour-map ``[H, W]`` floats to uint8 ``[H, W, 3]`` (matplotlib-free: a 256-entry LUT).

    Non-finite values are drawn black. ``vmin``/``vmax`` default to the minimum and the 95th percentile
    (the usual range for disparity pictures).
    """
    v = np.asarray(values, dtype=np.float32)
    finite = np.isfinite(v)
    if vmin is None:
        vmin = float(v[finite].min()) if finite.any() else 0.0
    if vmax is None:
        vmax = float(np.percentile(v[finite], 95)) if finite.any() else 1.0
    x = np.clip((v - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    idx = np.where(finite, np.rint(x * 255), 0).astype(np.uint8)
    rgb = _lut(cmap)[idx]
    rgb[~finite] = 0
    return rgb


_CMAP_ANCHORS = {
    # (position, r, g, b) anchors of perceptually uniform maps, sampled from their definitions
    "magma": [(0.0, 0, 0, 4), (0.13, 28, 16, 68), (0.25, 79, 18, 123), (0.38, 129, 37, 129),
              (0.5, 181, 54, 122), (0.63, 229, 80, 100), (0.75, 251, 135, 97),
              (0.88, 254, 194, 135), (1.0, 252, 253, 191)],
    "plasma": [(0.0, 13, 8, 135), (0.13, 75, 3, 161), (0.25, 125, 3, 168), (0.38, 168, 34, 150),
               (0.5, 203, 70, 121), (0.63, 229, 107, 93), (0.75, 248, 148, 65),
               (0.88, 253, 195, 40), (1.0, 240, 249, 33)],
    "gray": [(0.0, 0, 0, 0), (1.0, 255, 255, 255)],
}


def _lut(name: str) -> np.ndarray:
    if name not in _CMAP_ANCHORS:
        raise ValueError(f"unknown colour map {name!r}; choose from {sorted(_CMAP_ANCHORS)}")
    a = np.array(_CMAP_ANCHORS[name], dtype=np.float64)
    x = np.linspace(0, 1, 256)
    return np.stack([np.interp(x, a[:, 0], a[:, c]) for c in (1, 2, 3)], -1).round().astype(np.uint8)


def reconstruct_indices(n: int, window: int, *, index: int | None = None,
                        every: int | None = None) -> list[int]:
    """Centre indices of the reconstructions to make in a stream of ``n`` planes."""
    if window <= 0 or window > n:
        raise R2SDepthError(f"window {window} must be between 1 and the stream length {n}")
    half = window // 2
    if index is not None:
        if not 0 <= index < n:
            raise R2SDepthError(f"index {index} out of range for a stream of {n} planes")
        return [index]
    step = every or window
    if step <= 0:
        raise R2SDepthError("--every must be positive")
    return list(range(half, n - (window - half) + 1, step))


def reconstruct_window(stream: SpikeStream, centre: int, window: int, method: str) -> np.ndarray:
    """TFP/TFI image ``[H, W]`` float32 in [0, 1] of the window centred on plane ``centre``
    (clipped to the stream's ends)."""
    n = len(stream)
    t0 = min(max(centre - window // 2, 0), max(n - window, 0))
    w = stream.read(t0, min(t0 + window, n))
    if method == "tfp":
        return tfp(w)
    if method == "tfi":
        return tfi(w, centre - t0)
    raise R2SDepthError(f"unknown reconstruction method {method!r} (tfp or tfi)")


MAX_ANIMATION_FRAMES = 600  # a GIF/MP4 of a long recording shows this many evenly spaced frames


def animation_keep(n: int, limit: int | None = None) -> set[int]:
    """Indices (of ``n`` outputs) that go into an animation: all of them up to ``limit``
    (default :data:`MAX_ANIMATION_FRAMES`), else ``limit`` evenly spaced ones, so the
    animation's memory does not grow with the input."""
    limit = int(limit or MAX_ANIMATION_FRAMES)
    if n <= limit:
        return set(range(n))
    return {int(round(i * (n - 1) / (limit - 1))) for i in range(limit)}


def save_reconstructions(
    stream: SpikeStream,
    out_dir: str | os.PathLike,
    *,
    method: str = "tfp",
    window: int = 32,
    index: int | None = None,
    every: int | None = None,
    gif: str | os.PathLike | None = None,
    progress: bool = False,
) -> list[Path]:
    """Write 8-bit PNGs ``{I:06d}.png`` (I = plane index at the window's centre), optional GIF.

    The display stretch (99.5th percentile -> 255) is shared by all images of one call so that
    brightness is comparable across the sequence. Memory does not depend on the stream's
    length: a first pass accumulates a histogram of the image values (exact for TFP, whose
    values are multiples of 1/window; 1/65536 resolution for TFI), a second pass recomputes and
    writes each image; the GIF keeps at most ``MAX_ANIMATION_FRAMES`` evenly spaced frames.
    """
    if gif is not None:
        check_animation_path(Path(gif))
    idx = reconstruct_indices(len(stream), window, index=index, every=every)
    bins = window + 1 if method == "tfp" else 65536
    hist = np.zeros(bins, np.int64)
    for i in _progress(idx, progress):
        img = reconstruct_window(stream, i, window, method)
        hist += np.bincount(np.clip(np.rint(img.ravel() * (bins - 1)), 0, bins - 1).astype(np.int64), minlength=bins)
    cum = np.cumsum(hist)
    hi = float(np.searchsorted(cum, 0.995 * cum[-1]) / (bins - 1)) or 1.0
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keep = animation_keep(len(idx)) if gif is not None else set()
    paths, frames = [], []
    for k, i in enumerate(idx):
        u8 = to_uint8(reconstruct_window(stream, i, window, method) / hi, percentile=None)
        paths.append(save_png(out / f"{i:06d}.png", u8))
        if k in keep:
            frames.append(u8)
    if gif is not None:
        save_animation(gif, frames, fps=10.0)
    return paths


def _progress(it: Iterable, enabled: bool) -> Iterable:
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, unit="img", leave=False)
