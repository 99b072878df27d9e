"""Pictures and animations: spike reconstructions, colour-mapped depth, GIF/MP4.

No torch import at module level. Every file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import imageio.v3 as iio
import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

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
            import imageio_ffmpeg  # noqa: F401, PLC0415  optional dependency (the video extra): a probe
        except ImportError as e:
            raise R2SDepthError(
                f"{path}: MP4 output needs imageio-ffmpeg (pip install 'r2sdepth[video]')"
            ) from e


def save_animation(path: str | os.PathLike, frames: Sequence[np.ndarray], fps: float = 10.0) -> Path:
    """Save uint8 frames (``[H, W]`` or ``[H, W, 3]``) as an animated GIF or an MP4 (by suffix).

    MP4 needs the ``imageio-ffmpeg`` package (``pip install r2sdepth[video]``).
    """

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
            iio.imwrite(
                tmp,
                arr[:, :h, :w],
                extension=".mp4",
                fps=fps,
                codec="libx264",
                plugin="pyav" if _has_pyav() else None,
            )
    return path


def _has_pyav() -> bool:
    try:
        import av  # noqa: F401, PLC0415  optional dependency: a probe
    except ImportError:
        return False
    return True


def colorize(
    values: np.ndarray, cmap: str = "magma", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Colour-map ``[H, W]`` floats to uint8 ``[H, W, 3]`` with a matplotlib colour map (256 levels).

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


def _lut(name: str) -> np.ndarray:
    """256-entry uint8 LUT of a matplotlib colour map (``magma``, ``plasma``, ``gray``, ...)."""

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown colour map {name!r} (a matplotlib colour map name)") from None
    return np.rint(cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.uint8)


def _font(size: int):

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed bitmap size
        return ImageFont.load_default()


#: tick mantissas in order of preference (1, 2, 5 first; finer ones only where room is left)
_MANTISSAS = (1.0, 2.0, 5.0, 3.0, 1.5, 4.0, 2.5, 1.2, 6.0, 8.0, 7.0, 9.0, 1.4, 1.6, 1.8)


def _round_sig(v: float, up: bool) -> float:
    """``v`` rounded to 2 significant digits, up or down (so a rounded end stays in range)."""
    e = 10 ** (np.floor(np.log10(v)) - 1)
    return float((np.ceil(v / e) if up else np.floor(v / e)) * e)


def colorbar_ticks(
    height: int, d_near: float, d_far: float, label_h: int, n_max: int = 6
) -> list[tuple[float, int, int]]:
    """Ticks of a colour bar ``height`` rows tall whose colour is inverse depth (``d_near`` at row
    0, ``d_far`` at the last row): ``(depth, tick row, label top row)``, at most ``n_max``. Label
    boxes ``label_h`` rows tall stay inside the bar's rows, at least one blank row apart (and at
    least a seventh of the bar, so that tall bars spread them), each within ``label_h`` rows of
    its tick: the rounded ends first, then round values (1, 2, 5 x 10^k before finer ones)."""
    if not (np.isfinite(d_near) and np.isfinite(d_far) and 0 < d_near < d_far) or height < label_h:
        return []
    hi, lo = 1.0 / d_near, 1.0 / d_far
    gap = max(label_h + 1, height // 7)
    ends = [_round_sig(d_near, up=True), _round_sig(d_far, up=False)]
    k0, k1 = int(np.floor(np.log10(d_near))), int(np.ceil(np.log10(d_far)))
    nice = [m * 10.0**k for m in _MANTISSAS for k in range(k0, k1 + 1)]
    chosen: list[tuple[float, int, int]] = []
    for v in ends + nice:
        v = float(f"{v:.6g}")
        if not (d_near <= v <= d_far) or any(v == c[0] for c in chosen) or len(chosen) >= n_max:
            continue
        y = int(round((hi - 1.0 / v) / (hi - lo) * (height - 1)))
        top = min(max(y - label_h // 2, 0), height - label_h)
        if abs(top + label_h // 2 - y) <= label_h and all(abs(top - c[2]) >= gap for c in chosen):
            chosen.append((v, y, top))
    return sorted(chosen, key=lambda c: c[1])


def depth_colorbar(
    height: int, d_near: float, d_far: float, units: str, cmap: str = "magma", width: int = 64
) -> np.ndarray:
    """Colour bar ``[height, W, 3]`` for :func:`depth_picture` (colour = inverse depth, labelled
    in depth): ``units`` on top, under it the bar with near (bright) at the top and far (dark) at
    the bottom, ticks from :func:`colorbar_ticks` (labels never overprint each other or the units);
    ``W`` is ``width`` or wider where the labels need it."""

    lut = _lut(cmap)
    bar_w = max(6, width // 5)
    font = _font(max(8, min(12, height // 8)))
    _, y0, _, y1 = font.getbbox("0123456789.")
    label_h = int(y1 - y0)
    u_box = font.getbbox(units)
    r0 = int(u_box[3] - u_box[1]) + 3  # the bar starts under the units line
    ticks = colorbar_ticks(height - r0, d_near, d_far, label_h)
    texts = [f"{v:g}" for v, _, _ in ticks]
    width = max(width, bar_w + 5 + int(max(font.getlength(t) for t in [*texts, units])) + 2)
    img = np.full((height, width, 3), 255, np.uint8)
    pos = np.linspace(1.0, 0.0, height - r0)  # top = near = high disparity
    img[r0:, :bar_w] = lut[np.rint(pos * 255).astype(int)][:, None]
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    draw.text((1, 1 - u_box[1]), units, fill=(90, 90, 90), font=font)
    for (_, y, top), text in zip(ticks, texts):
        draw.line([(bar_w, r0 + y), (bar_w + 3, r0 + y)], fill=(0, 0, 0))
        draw.text((bar_w + 5, r0 + top - y0), text, fill=(0, 0, 0), font=font)
    return np.asarray(pil)


def depth_picture(
    depth: np.ndarray,
    d_near: float,
    d_far: float,
    units: str,
    cmap: str = "magma",
    colorbar: bool = True,
    min_height: int = 0,
) -> np.ndarray:
    """Colour picture of a depth map ``[H, W]`` (``units``: "m" or "model units"): colour =
    inverse depth on the fixed range ``[1 / d_far, 1 / d_near]`` (the same for every picture
    of a figure, so prediction and ground truth compare), invalid (<= 0, NaN) black; with a
    labelled colour bar on the right. ``min_height``: the map is enlarged by a whole factor
    (nearest: no smoothing of the depth) to at least that many rows, the bar drawn at that height."""
    d = np.asarray(depth, dtype=np.float32)
    disp = np.where(np.isfinite(d) & (d > 0), 1.0 / np.maximum(d, 1e-12), np.nan)
    pic = colorize(disp, cmap, vmin=1.0 / d_far, vmax=1.0 / d_near)
    k = max(1, -(-int(min_height) // pic.shape[0])) if min_height else 1
    if k > 1:
        pic = pic.repeat(k, 0).repeat(k, 1)
    if not colorbar:
        return pic
    return np.concatenate([pic, depth_colorbar(pic.shape[0], d_near, d_far, units, cmap)], 1)


def labelled(img: np.ndarray, title: str, min_height: int = 0) -> np.ndarray:
    """``img`` (uint8 ``[H, W]``/``[H, W, 3]``) scaled up to at least ``min_height`` rows
    (nearest, whole factors) under a white title strip."""

    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, -1)
    k = max(1, -(-min_height // a.shape[0])) if min_height else 1
    if k > 1:
        a = a.repeat(k, 0).repeat(k, 1)
    strip = Image.new("RGB", (a.shape[1], 16), (255, 255, 255))
    ImageDraw.Draw(strip).text((3, 2), title, fill=(0, 0, 0), font=_font(12))
    return np.concatenate([np.asarray(strip), a], 0)


def reconstruct_indices(
    n: int, window: int, *, index: int | None = None, every: int | None = None
) -> list[int]:
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
        hist += np.bincount(
            np.clip(np.rint(img.ravel() * (bins - 1)), 0, bins - 1).astype(np.int64), minlength=bins
        )
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

    return tqdm(it, unit="img", leave=False)


def display_range(depth: np.ndarray) -> tuple[float, float]:
    """Colour range ``(near, far)`` of a run's pictures: 2nd and 98th percentiles of the valid
    depth of its first map (kept for every later picture)."""
    v = depth[np.isfinite(depth) & (depth > 0)]
    if v.size == 0:
        return 1.0, 100.0
    near, far = (float(x) for x in np.percentile(v, [2, 98]))
    return near, max(far, near * 1.01)


def window_panel(
    spikes: np.ndarray | None,
    window: int,
    dmap: np.ndarray,
    d_range: tuple[float, float],
    metric: bool,
    gt: np.ndarray | None,
    rgb: np.ndarray | None,
    modality: str,
    gt_range: tuple[float, float] | None,
) -> np.ndarray:
    """One animation frame of ``infer``: labelled ``TFP | depth (| RGB) (| ground truth or colour
    bar)`` panels. ``spikes`` ``[T, H, W]``, ``dmap`` / ``gt`` ``[H, W]`` (metres or model units;
    with ground truth the prediction is shown times its median ratio in the ground truth's range
    ``gt_range``), ``rgb`` ``[H, W, 3]`` uint8."""
    big = 192  # panel rows: small network inputs are scaled up (whole factors)
    units = "m" if metric else "model units"
    row = (
        [labelled(to_uint8(tfp(spikes)), f"spikes: TFP of {window} planes", big)]
        if spikes is not None
        else []
    )
    has_gt = gt is not None and bool((gt > 0).any())
    if has_gt:
        gt_range = gt_range or display_range(gt)
        ratio = float(np.median(gt[gt > 0]) / np.median(dmap[gt > 0]))
        row.append(
            labelled(
                depth_picture(dmap * ratio, *gt_range, "m", colorbar=False),
                f"prediction x median ratio {ratio:.3g}",
                big,
            )
        )
    else:
        row.append(labelled(depth_picture(dmap, *d_range, units, colorbar=False), "prediction", big))
    if rgb is not None:
        f = np.asarray(rgb)
        row.append(
            labelled(
                f[..., :3] if f.ndim == 3 else f, "RGB" + ("" if modality != "spike" else " (not used)"), big
            )
        )
    if has_gt:
        row.append(labelled(depth_picture(gt, *gt_range, "m"), "ground truth (m)", big))
    else:
        row.append(labelled(depth_colorbar(row[-1].shape[0] - 16, *d_range, units), "depth"))
    return np.concatenate(row, 1)
