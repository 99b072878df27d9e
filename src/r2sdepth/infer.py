"""Checkpoint -> depth predictions (for ``eval`` on splits; ``infer`` on streams and folders).

A checkpoint records its modality and sizes (``checkpoint["r2sdepth"]``), so nothing else is
needed to load it. ``modality`` selects what to feed and which head to read:

* ``rgb`` model: RGB -> depth;
* ``spike`` model (stage 1 spike-only or a stage-2 student): spike window -> depth;
* ``fusion`` model: ``fusion`` = RGB + spikes -> teacher head; ``spike`` = spikes only ->
  student head.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Subset
from tqdm import tqdm

from r2sdepth.atomic import atomic_path, save_png, write_json_atomic
from r2sdepth.backends import SpikeRuntime, resolve_backend
from r2sdepth.checkpoint import check_window, rate_mismatch, trained_window, trained_windows
from r2sdepth.config import DataConfig, TrainConfig
from r2sdepth.data.dataset import SampleOptions, SplitDataset, collate
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.kitti import write_depth_png
from r2sdepth.data.sources import Item, SourceOptions, source_kind
from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.geometry import disp_to_depth
from r2sdepth.metric import MIN_TRAVEL_M, camera_height_scale, intrinsics_matrix, speed_scale
from r2sdepth.models.r2sdepth import spike_depth
from r2sdepth.pointcloud import depth_to_points, write_ply
from r2sdepth.spike.io import fit_spatial
from r2sdepth.spike.reconstruct import stretch, tfi, tfp, to_uint8
from r2sdepth.spike.simulate import SimParams
from r2sdepth.train.load import load_checkpoint as _load
from r2sdepth.viz import (
    animation_keep,
    check_animation_path,
    depth_picture,
    display_range,
    save_animation,
    window_panel,
)


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """See :func:`r2sdepth.train.load.load_checkpoint` (kept here for existing imports)."""
    return _load(path, device)


RECONSTRUCTED = ("rgb-tfp", "rgb-tfi")  # an RGB network on a spike window's TFP / TFI reconstruction


def reconstructed_rgb(spikes: torch.Tensor, method: str) -> torch.Tensor:
    """Spike windows ``[B, T, H, W]`` -> the grey image an RGB network is given in their place,
    ``[B, 3, H, W]`` float in [0, 1]: TFP (the window's firing rate) or TFI (inverse inter-spike
    interval at the window's centre), each image stretched so that its 99.5th percentile is 1
    (:func:`~r2sdepth.spike.reconstruct.stretch`, as ``r2sdepth reconstruct`` displays it)."""
    s = spikes.detach().cpu().numpy()
    img = tfp(s) if method == "tfp" else tfi(s)
    grey = torch.from_numpy(stretch(img)).to(spikes.device)
    return grey[:, None].expand(-1, 3, -1, -1).contiguous()


def resolve_modality(meta: dict[str, Any], modality: str | None) -> str:
    own = meta["modality"]
    modality = modality or own
    allowed = {"rgb": {"rgb", *RECONSTRUCTED}, "spike": {"spike"}, "fusion": {"fusion", "spike"}}[own]
    if modality not in allowed:
        raise R2SDepthError(f"a {own} checkpoint cannot run as {modality} (choose {sorted(allowed)})")
    return modality


@torch.no_grad()
def predict_batch(
    module,
    batch: dict[str, Any],
    modality: str,
    post_process: bool = False,
    runtime: SpikeRuntime | None = None,
) -> torch.Tensor:
    """Depth ``[B, 1, H, W]`` (metres) for a collated batch (its ``color``, never the training
    jitter's ``color_aug``, and/or ``spikes``); ``post_process``: flip
    post-processing (:func:`r2sdepth.models.r2sdepth.flip_blend`; spike-only models). ``runtime``:
    where the spike-only path runs (:mod:`r2sdepth.backends`; default eager PyTorch)."""
    net = module.net
    cfg = net.cfg
    if modality == "spike":
        if runtime is not None:
            return runtime(batch["spikes"], post_process=post_process)
        return spike_depth(net, batch["spikes"], post_process=post_process)
    if post_process:
        raise R2SDepthError(f"--post-process is for spike-only prediction, not --modality {modality}")
    if modality in RECONSTRUCTED:  # the baseline a user with an ordinary depth network has
        disp = net(rgb=reconstructed_rgb(batch["spikes"], modality[4:]))["disp"][0]
    elif modality == "rgb":
        disp = net(rgb=batch["color"][:, 0])["disp"][0]
    else:
        disp = net(rgb=batch["color"][:, 0], spikes=batch["spikes"])["disp"][0]
    return disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])[1]


def predict_split(
    checkpoint: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str | os.PathLike,
    *,
    modality: str | None = None,
    spike_root: str | os.PathLike | None = None,
    batch_size: int = 4,
    device: str = "cpu",
    progress: bool = False,
    post_process: bool = False,
) -> tuple[list[np.ndarray], str]:
    """Depth maps (metres, network size) for every line of ``split``; and a display name
    (``progress``: a progress bar on stderr). ``post_process``: flip post-processing (spike-only).
    The maps' intrinsics: :func:`r2sdepth.evaluate.split_intrinsics` at their sizes."""

    module, meta = load_checkpoint(checkpoint, device)
    modality = resolve_modality(meta, modality)
    sample = SampleOptions(context=(), need_spikes=modality in ("spike", "fusion", *RECONSTRUCTED))
    ds = SplitDataset(_drive_options(meta, data_root, spike_root), split, sample)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    preds: list[np.ndarray] = []
    if progress:
        loader = tqdm(loader, unit="batch", leave=False, desc="predict")
    for batch in loader:
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        depth = predict_batch(module, batch, modality, post_process)
        preds.extend(depth[:, 0].float().cpu().numpy())
    run = Path(checkpoint).parent.parent.name or Path(checkpoint).stem
    name = f"{run} ({modality}{', pp' if post_process else ''})"
    return preds, name


# -- r2sdepth infer: depth from spike streams, image folders and videos ----------------------------


def _drive_options(
    meta: dict[str, Any], data_root: str | os.PathLike, spike_root: str | os.PathLike | None
) -> DriveOptions:
    """The frames and spike windows a checkpoint was trained on (size, window, simulated camera)."""
    d = meta.get("data", {})
    return DriveOptions(
        root=data_root,
        height=meta["height"],
        width=meta["width"],
        window=trained_window(meta),
        align=d.get("align", DataConfig.align),
        spike_root=spike_root,
        sim=SimParams(**(d.get("sim") or {})),
        seed=d.get("seed", TrainConfig.seed),
    )


def speed_scale_split(
    checkpoint: str | os.PathLike,
    data_root: str | os.PathLike,
    split: str | os.PathLike,
    *,
    modality: str | None = None,
    spike_root: str | os.PathLike | None = None,
    max_frames: int | None = None,
    batch_size: int = 4,
    device: str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Scale from known speed: the factor that makes ``checkpoint``'s depth metric, from frames
    with known motion and no depth labels (:func:`r2sdepth.metric.speed_scale` per frame of
    ``split``, each with the frames before and after it and the signed distances travelled from the
    drive's ``poses.txt`` or oxts; RGB frames as the photometric reference). ``max_frames``: that
    many frames evenly spread over the split. Returns ``factor`` (median over the frames that moved),
    ``per_frame`` (NaN: no scale), ``frames`` (used) and ``skipped``, ``quartiles`` of the factors."""
    module, meta = load_checkpoint(checkpoint, device)
    modality = resolve_modality(meta, modality)
    sample = SampleOptions(
        context=(-1, 1), travel=True, need_spikes=modality in ("spike", "fusion", *RECONSTRUCTED)
    )
    ds = SplitDataset(_drive_options(meta, data_root, spike_root), split, sample)
    idx = np.arange(len(ds))
    if max_frames is not None and max_frames < len(ds):
        idx = np.unique(np.linspace(0, len(ds) - 1, max_frames).round().astype(int))
    loader = DataLoader(Subset(ds, idx.tolist()), batch_size=batch_size, shuffle=False, collate_fn=collate)
    if progress:
        loader = tqdm(loader, unit="batch", leave=False, desc="speed scale")
    factors: list[float] = []
    for batch in loader:
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        depth = predict_batch(module, batch, modality).float()
        color = batch["color"].float()
        sources = [color[:, j] for j in range(1, color.shape[1])]
        factors += speed_scale(depth, color[:, 0], sources, batch["travel_forward"], batch["K"]).tolist()
    f = np.asarray(factors, dtype=np.float64)
    ok = f[np.isfinite(f)]
    if not ok.size:
        raise R2SDepthError(
            f"{split}: no frame gives a scale (each needs a frame before or after it at least "
            f"{MIN_TRAVEL_M} m away, and a scale within 1/1024-1024 of the prediction's)"
        )
    q1, q3 = np.percentile(ok, [25, 75])
    return {
        "factor": float(np.median(ok)),
        "per_frame": f.tolist(),
        "frames": int(ok.size),
        "skipped": int(f.size - ok.size),
        "quartiles": [float(q1), float(q3)],
    }


def fit_to_multiple(h: int, w: int, multiple: int = 32) -> tuple[int, int]:
    """The smallest size ``>= (h, w)`` whose sides are multiples of ``multiple``."""
    return -(-h // multiple) * multiple, -(-w // multiple) * multiple


def fit_rgb(frames: np.ndarray, size: tuple[int, int], mode: str) -> torch.Tensor:
    """uint8 frames ``[B, h, w, 3]`` -> float ``[B, 3, H, W]`` in [0, 1] at the network size:
    ``pad`` as :func:`fit_spatial`, ``resize`` bilinear with antialiasing (spikes use nearest
    so that they stay binary; images need no such care)."""
    rgb = torch.from_numpy(np.ascontiguousarray(np.asarray(frames).transpose(0, 3, 1, 2))).float() / 255
    if mode == "resize":
        return torch.nn.functional.interpolate(
            rgb, size=size, mode="bilinear", align_corners=False, antialias=True
        )
    return torch.from_numpy(np.ascontiguousarray(fit_spatial(rgb.numpy(), size, "pad")))


def depth_from_net(depth: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Network depth ``[B, 1, H, W]`` -> ``[B, 1, h, w]`` at the input's size (crop, or resize in
    disparity)."""

    if tuple(depth.shape[-2:]) == tuple(size):
        return depth
    if mode == "pad":
        return depth[..., : size[0], : size[1]]
    return 1.0 / F.interpolate(1.0 / depth, size=size, mode="bilinear", align_corners=False)


OWN_OUTPUTS = {
    "depth": ".npy",
    "depth_png": ".png",
    "depth_tiff": ".tiff",
    "color": ".png",
    "pointcloud": ".ply",
}


def input_intrinsics(
    hw: tuple[int, int],
    intrinsics: tuple[float, float, float, float] | None,
    fov: float | None,
    known: np.ndarray | None = None,
) -> np.ndarray | None:
    """``K`` ``[3, 3]`` at the input's size: from ``intrinsics`` or ``fov`` (one of them), else the
    source's own ``known`` ``[3, 3]`` (a rig's spike camera), else None."""
    if intrinsics is not None and fov is not None:
        raise R2SDepthError("give --intrinsics or --fov, not both")
    if intrinsics is not None or fov is not None:
        return intrinsics_matrix(tuple(hw), intrinsics=intrinsics, fov_deg=fov)
    return np.asarray(known, np.float64) if known is not None else None


def _height_factor(
    dmap: np.ndarray, K: np.ndarray, camera_height: float, done: list[float], name: str
) -> float:
    """The camera-height factor of one map (appended to ``done``); a map without a ground plane
    takes the median of the earlier factors."""
    try:
        f = camera_height_scale(dmap, K, camera_height).scale
    except R2SDepthError as e:
        if not done:
            raise R2SDepthError(
                f"window {name}: {e}; --camera-height needs the ground in view (or give --scale)"
            ) from None
        f = float(np.median(done))
    done.append(f)
    return f


def _clear_stale_outputs(out: Path) -> int:
    """Remove the per-window files an earlier run left in ``out`` (only names this command
    writes: ``depth/NNNNNN.npy`` etc.), so the folder holds exactly what ``summary.json`` lists."""

    n = 0
    for sub, ext in OWN_OUTPUTS.items():
        d = out / sub
        if d.is_dir():
            for f in d.iterdir():
                if f.is_file() and f.suffix == ext and re.fullmatch(r"\d{6}", f.stem):
                    f.unlink()
                    n += 1
    return n


#: rows of the colour pictures at least (the depth files keep the input's size)
COLOR_MIN_ROWS = 192


def _save_outputs(
    out: Path, name: str, depth: np.ndarray, d_range: tuple[float, float], metric: bool
) -> None:
    """``depth/NAME.npy`` (float32, model units or metres); ``depth_png/NAME.png`` (uint16,
    KITTI's depth x 256) when ``metric``, else ``depth_tiff/NAME.tiff`` (float32, lossless: model
    units of self-supervised depth span too few x256 levels); ``color/NAME.png`` (inverse depth,
    magma, fixed range ``d_range`` with a colour bar in metres / model units, enlarged by a whole
    factor to at least :data:`COLOR_MIN_ROWS` rows)."""

    (out / "depth").mkdir(parents=True, exist_ok=True)
    d32 = depth.astype(np.float32)
    with atomic_path(out / "depth" / f"{name}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, d32)
    if metric:
        write_depth_png(out / "depth_png" / f"{name}.png", depth)
    else:
        (out / "depth_tiff").mkdir(parents=True, exist_ok=True)
        with atomic_path(out / "depth_tiff" / f"{name}.tiff") as tmp:
            Image.fromarray(d32, mode="F").save(tmp, format="TIFF")
    units = "m" if metric else "model units"
    # at least 192 rows (a whole factor, nearest): a figure a paper can use from a 64-row map
    save_png(out / "color" / f"{name}.png", depth_picture(d32, *d_range, units, min_height=COLOR_MIN_ROWS))


def _warn_rate(meta: dict[str, Any], rate_hz: float, window: int, source: Path) -> None:
    """Warn when a recording's plane rate is not the one the model was trained at."""
    why = rate_mismatch(meta, rate_hz, window)
    if why:
        warnings.warn(f"{source}: {why}", R2SDepthWarning, stacklevel=3)


def network_fit(
    hw: tuple[int, int], net_size: tuple[int, int] | None, fit: str, trained: tuple[Any, Any]
) -> tuple[str, tuple[int, int]]:
    """How an input of size ``hw`` meets the network: ``(mode, (H, W))``. ``net_size`` given: resized
    to it. Else ``fit="resize"`` (default): resized to the size the checkpoint was trained at
    (as Monodepth2's ``test_simple.py``), and ``fit="pad"``: padded to multiples of 32 (the input's
    own scale; only sensible when objects appear at the trained size). Depth comes back at ``hw``."""
    if net_size is not None:
        return "resize", (int(net_size[0]), int(net_size[1]))
    if fit == "resize" and None not in trained:
        return "resize", (int(trained[0]), int(trained[1]))
    return "pad", fit_to_multiple(*hw)


def checkpoint_is_metric(meta: dict[str, Any]) -> bool | None:
    """Whether a checkpoint's depths are metres without a scale (its ``metric`` entry: trained
    with a stereo baseline or the camera's speed; the depth-label loss is scale-invariant, so
    labels alone do not make a model metric). Older checkpoints: stage 1 from ``data.stereo``;
    a stage-2 student inherits its teacher's scale, which its metadata does not say (None)."""
    if "metric" in meta and meta.get("stage") != 2:
        return bool(meta["metric"])
    if meta.get("stage") == 2:
        return None
    return bool((meta.get("data") or {}).get("stereo"))


def _batches(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    """Lists of up to ``size`` consecutive items (a followed stream uses 1: no waiting for a batch)."""
    chunk: list[Item] = []
    for it in items:
        chunk.append(it)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class InferOptions:
    """The options of :func:`run_infer` (the CLI's ``infer`` flags), checked by :meth:`check`
    before anything is loaded or written.

    ``window``: planes per window (default: the checkpoint's); ``stride_planes``: planes between
    windows of a stream (default: the window); ``stride_frames``: frames between outputs of a
    folder / video (default 1); ``net_size`` ``(H, W)``: network input (multiples of 32; default:
    the trained size, see :func:`network_fit`); ``fit``: ``resize`` or ``pad``; ``scale``:
    multiplies the network's depth; ``metric``: depths are metres after ``scale`` (default: when a
    scale or a camera height is given); ``modality``: the model path to run; ``gif`` / ``mp4``:
    animation paths; ``stream_kw``: ``.dat`` layout options; ``gt``: ground truth per frame
    (folders) for the animation; ``intrinsics`` ``(fx, fy, cx, cy)`` (pixels at the input's size)
    or ``fov`` (degrees); ``pointcloud``: PLY per output; ``camera_height`` (metres): scale from the
    ground plane; ``follow`` / ``idle_timeout`` (seconds): a stream still being written;
    ``backend``: where the spike-only network runs (:mod:`r2sdepth.backends`: ``auto``, ``torch``,
    ``onnxruntime``).
    """

    window: int | None = None
    stride_planes: int | None = None
    stride_frames: int | None = None
    net_size: tuple[int, int] | None = None
    device: str = "cpu"
    batch_size: int = 8
    scale: float = 1.0
    modality: str | None = None
    gif: str | os.PathLike | None = None
    mp4: str | os.PathLike | None = None
    stream_kw: dict[str, Any] | None = None
    gt: list[np.ndarray] | None = None
    metric: bool | None = None
    progress: bool = True
    intrinsics: tuple[float, float, float, float] | None = None
    fov: float | None = None
    pointcloud: bool = False
    camera_height: float | None = None
    fit: str = "resize"
    follow: bool = False
    idle_timeout: float = 10.0
    backend: str = "auto"

    def check(self) -> None:
        """Refuse bad options (one-line errors)."""
        resolve_backend(self.backend, self.device)
        for anim in (self.gif, self.mp4):
            if anim:
                check_animation_path(anim)
        if self.follow and (self.gif or self.mp4):
            raise R2SDepthError(
                "--follow writes depth as windows arrive; --gif/--mp4 need the whole recording "
                "(run without --follow once it is finished)"
            )
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise R2SDepthError(
                f"--scale {self.scale}: depths are multiplied by it, so it must be a positive finite number"
            )
        if not (np.isfinite(self.idle_timeout) and self.idle_timeout > 0):
            raise R2SDepthError(f"--idle-timeout {self.idle_timeout}: must be a positive number of seconds")
        if self.fit not in ("resize", "pad"):
            raise R2SDepthError(f"fit must be 'resize' or 'pad', got {self.fit!r}")
        for flag, v in (("--stride-planes", self.stride_planes), ("--stride-frames", self.stride_frames)):
            if v is not None and int(v) <= 0:
                raise R2SDepthError(f"{flag} must be positive")
        if self.net_size is not None:
            nh, nw = (int(v) for v in self.net_size)
            if nh <= 0 or nw <= 0 or nh % 32 or nw % 32:
                raise R2SDepthError(f"--net-size {nh}x{nw}: the network needs positive multiples of 32")

    @property
    def animated(self) -> bool:
        return bool(self.gif or self.mp4)


def _source_modality(kind: type, meta: dict[str, Any], modality: str | None, checkpoint: Any) -> str:
    """The model path to run on a source of ``kind`` (a spike stream alone feeds only the spike
    path; other kinds any path the checkpoint has)."""
    if kind.modalities is None:
        return resolve_modality(meta, modality)
    if meta["modality"] == "rgb" and modality not in RECONSTRUCTED:
        raise R2SDepthError(
            f"{checkpoint}: an rgb checkpoint cannot run on a spike stream (give it a folder of images or "
            "a video, or --modality rgb-tfp / rgb-tfi: the RGB network on the TFP / TFI reconstruction)"
        )
    modality = resolve_modality(meta, modality or kind.modalities[0])
    if modality not in kind.modalities:
        raise R2SDepthError(f"a spike stream alone can only feed a spike model (asked for {modality})")
    return modality


def _check_camera(K: np.ndarray | None, pointcloud: bool, camera_height: float | None, scale: float) -> None:
    """Point clouds and camera-height scaling need intrinsics ``K``; the height sets the scale."""
    if (pointcloud or camera_height is not None) and K is None:
        raise R2SDepthError(
            ("--pointcloud" if pointcloud else "--camera-height") + " needs the camera's intrinsics: "
            "--intrinsics fx,fy,cx,cy (pixels at the input's size) or --fov DEGREES"
        )
    if camera_height is not None:
        if scale != 1.0:
            raise R2SDepthError("--camera-height sets the scale itself: drop --scale")
        if not (np.isfinite(camera_height) and camera_height > 0):
            raise R2SDepthError(f"--camera-height {camera_height}: must be a positive number of metres")


def _warn_size_and_units(plan: InferPlan, o: InferOptions, checkpoint: Any) -> None:
    """Warn when the network size differs from the trained one, and when ``--metric`` is asked
    of a model whose depths are not metres."""
    net_hw, trained = plan.net_hw, plan.trained
    if None not in trained and tuple(net_hw) != tuple(int(v) for v in trained):
        warnings.warn(
            f"network input {net_hw[0]}x{net_hw[1]} differs from the {trained[0]}x{trained[1]} the "
            f"checkpoint was trained at (depth may suffer): --net-size {trained[0]}x{trained[1]} "
            "resizes the input to it",
            R2SDepthWarning,
            stacklevel=4,
        )
    if (
        plan.metric
        and o.scale == 1.0
        and o.camera_height is None
        and checkpoint_is_metric(plan.meta) is False
    ):
        warnings.warn(
            f"--metric: {checkpoint} was trained without a metric scale (no stereo pair or speed); "
            "its depths are metres only up to one factor per image, so the KITTI 16-bit PNGs "
            "(depth x 256) will not be metres: give --scale or --camera-height",
            R2SDepthWarning,
            stacklevel=4,
        )


def _save_pointcloud(
    out: Path, name: str, dmap: np.ndarray, K: np.ndarray, rgb: Any, spikes: np.ndarray | None, metric: bool
) -> None:
    """``out/pointcloud/NAME.ply`` of ``dmap`` ``[H, W]`` with ``K``, coloured by the RGB frame or
    the TFP of the spike window ``[T, H, W]``."""
    color = (
        np.asarray(rgb)[..., :3] if rgb is not None else to_uint8(tfp(spikes)) if spikes is not None else None
    )
    pts, cols = depth_to_points(dmap, K, color)
    units = "m" if metric else "model units"
    write_ply(
        out / "pointcloud" / f"{name}.ply",
        pts,
        cols,
        comment=f"r2sdepth infer {name}; units: {units}; camera frame",
    )


@dataclass
class InferPlan:
    """What one :func:`run_infer` call resolved before the first window: the model, the path it
    runs, the input source and its camera, and the network's size."""

    module: Any
    meta: dict[str, Any]
    modality: str
    window: int
    src: Any  # an open r2sdepth.data.sources.InferSource
    hw: tuple[int, int]  # output size: the input's
    K: np.ndarray | None  # [3, 3] at the input's size
    trained: tuple[Any, Any]
    fit: str  # resize | pad
    net_hw: tuple[int, int]
    metric: bool
    runtime: SpikeRuntime | None = None  # the spike-only path's backend (None: another path)


def resolve_plan(checkpoint: Any, source: Path, out: Path, o: InferOptions) -> InferPlan:
    """Step 1: load the checkpoint, pick the source kind and the model path once, open the
    source, resolve its intrinsics and the network's size (errors before anything is written)."""
    module, meta = load_checkpoint(checkpoint, o.device)
    d = meta.get("data", {})
    window = int(o.window or trained_window(meta))
    kind = source_kind(source, o.follow)
    modality = _source_modality(kind, meta, o.modality, checkpoint)
    if meta["modality"] != "rgb" and modality != "rgb":
        check_window(meta, window)
    opts = SourceOptions(
        window=window,
        need_spikes=modality != "rgb",
        need_rgb=modality in ("rgb", "fusion") or o.animated,
        stride_planes=o.stride_planes,
        stride_frames=o.stride_frames,
        stream_kw=dict(o.stream_kw or {}),
        sim=dict(d.get("sim") or {}),
        seed=int(d.get("seed", 0)),
        out=out,
        follow=o.follow,
        idle_timeout=o.idle_timeout,
    )
    src = kind(source, opts)
    try:
        if modality != "rgb" and src.recorded:
            _warn_rate(meta, src.rate_hz, window, source)
        hw = src.hw
        K = input_intrinsics(hw, o.intrinsics, o.fov, src.intrinsics)
        _check_camera(K, o.pointcloud, o.camera_height, o.scale)
        trained = (meta.get("height"), meta.get("width"))
        fit, net_hw = network_fit(hw, o.net_size, o.fit, trained)
    except BaseException:
        src.close()
        raise
    metric = bool(o.metric) if o.metric is not None else (o.scale != 1.0 or o.camera_height is not None)
    runtime = SpikeRuntime(module.net, resolve_backend(o.backend, o.device)) if modality == "spike" else None
    return InferPlan(module, meta, modality, window, src, hw, K, trained, fit, net_hw, metric, runtime)


def predict_chunk(plan: InferPlan, chunk: list[Item], device: str, scale: float) -> tuple[np.ndarray, Any]:
    """Steps 2 and 3: the chunk's network inputs (spike windows ``[B, T, h, w]`` and/or RGB at the
    network's size) -> depth float32 ``[B, H, W]`` at the input's size, times ``scale``; also
    returns the spike windows ``[B, T, H, W]`` at the input's size (None for an rgb path)."""
    batch: dict[str, Any] = {}
    spk = np.stack([it.spikes for it in chunk]) if plan.modality != "rgb" else None
    if spk is not None:
        net_spk = np.ascontiguousarray(fit_spatial(spk, plan.net_hw, plan.fit))
        batch["spikes"] = torch.from_numpy(net_spk).to(device)
    if plan.modality in ("rgb", "fusion"):
        rgb = fit_rgb(np.stack([it.rgb for it in chunk]), plan.net_hw, plan.fit)
        batch["color"] = rgb[:, None].to(device)
    depth = predict_batch(plan.module, batch, plan.modality, runtime=plan.runtime)
    depth = depth_from_net(depth, plan.hw, plan.fit) * scale
    return depth[:, 0].float().cpu().numpy(), spk


class OutputWriter:
    """Step 4: everything written per output (depth files, camera-height factor, point cloud,
    animation panel) and the running figures the summary reports (memory independent of the
    input's length)."""

    def __init__(self, plan: InferPlan, out: Path, o: InferOptions) -> None:
        self.plan, self.out, self.o = plan, out, o
        self.n_out, self.d_lo, self.d_hi = 0, float("inf"), float("-inf")
        self.panels: list[np.ndarray] = []
        self.keep = animation_keep(plan.src.count) if o.animated else set()
        self.height_scales: list[float] = []
        self.latencies: list[float] = []
        self.span: tuple[float, float] | None = None  # --follow: first window on disk, last depth written
        self.d_range: tuple[float, float] | None = None
        self.gt_range: tuple[float, float] | None = None
        self.names: list[str] = []
        if out.is_dir():
            _clear_stale_outputs(out)

    def write(self, it: Item, dmap: np.ndarray, spikes: np.ndarray | None) -> None:
        """One output: ``dmap`` ``[H, W]`` of item ``it`` (its spike window ``[T, H, W]``)."""
        p, o, name = self.plan, self.o, it.name
        self.names.append(name)
        if o.camera_height is not None:
            dmap = dmap * _height_factor(dmap, p.K, o.camera_height, self.height_scales, name)
        if self.d_range is None:
            self.d_range = display_range(dmap)
        _save_outputs(self.out, name, dmap, self.d_range, p.metric)
        if it.arrived is not None:
            done = time.monotonic()
            self.latencies.append(done - it.arrived)
            self.span = (self.span[0] if self.span else it.arrived, done)
        if o.pointcloud:
            _save_pointcloud(self.out, name, dmap, p.K, it.rgb, spikes, p.metric)
        if self.n_out in self.keep:
            self._add_panel(it, dmap, spikes)
        self.n_out += 1
        self.d_lo, self.d_hi = min(self.d_lo, float(dmap.min())), max(self.d_hi, float(dmap.max()))

    def _add_panel(self, it: Item, dmap: np.ndarray, spikes: np.ndarray | None) -> None:
        gt = self.o.gt
        g = it.gt if it.gt is not None else gt[it.index] if gt is not None and it.index is not None else None
        self.panels.append(
            window_panel(
                spikes,
                self.plan.window,
                dmap,
                self.d_range,
                self.plan.metric,
                g,
                it.rgb,
                self.plan.modality,
                self.gt_range,
            )
        )
        if g is not None and (g > 0).any():
            self.gt_range = self.gt_range or display_range(g)

    def finish(self) -> None:
        """The animations (GIF / MP4) of the kept panels."""
        for path in (self.o.gif, self.o.mp4):
            if path:
                save_animation(path, self.panels, fps=10.0)

    def summary(self, checkpoint: Any, source: Path, wall: float) -> dict[str, Any]:
        """Step 5: ``summary.json``'s content."""
        p, o = self.plan, self.o
        n = self.n_out
        s = {
            "checkpoint": str(checkpoint),
            "input": str(source),
            "kind": p.src.kind,
            "modality": p.modality,
            "backend": p.runtime.backend if p.runtime is not None else "torch",
            "window": p.window,
            "outputs": n,
            "input_size": list(p.hw),
            "network_size": list(p.net_hw),
            "fit": p.fit,
            "trained_size": list(p.trained),
            "trained_windows": trained_windows(p.meta),
            "input_rate_hz": p.src.rate_hz,
            "stride": p.src.stride(),
            "scale": o.scale,
            "names": self.names,
            "depth_range": [self.d_lo, self.d_hi],
            "animation_frames": len(self.panels),
            "intrinsics": p.K.tolist() if p.K is not None else None,
            "camera_height": o.camera_height,
            "camera_height_scales": self.height_scales or None,
            "pointclouds": "pointcloud/ (binary PLY, camera frame)" if o.pointcloud else None,
            "depth_units": "m" if p.metric else "model units (metres up to scale)",
            "depth_image": "depth_png/ (uint16, KITTI: depth x 256)"
            if p.metric
            else "depth_tiff/ (float32 TIFF, lossless)",
            "color_range": list(self.d_range) if self.d_range else None,
            "seconds": wall,
            "windows_per_second": n / wall if wall > 0 else None,
        }
        if o.follow:
            # latency: a window's last plane first seen on disk -> its depth written; windows/s over
            # the busy span (not the start-up or the final --idle-timeout wait)
            lat = self.latencies
            s["latency_s"] = {
                "median": float(np.median(lat)) if lat else None,
                "max": float(np.max(lat)) if lat else None,
            }
            span = self.span
            s["windows_per_second"] = n / (span[1] - span[0]) if span and span[1] > span[0] else None
        return s


def run_infer(
    checkpoint: str | os.PathLike,
    source: str | os.PathLike,
    out: str | os.PathLike,
    options: InferOptions | None = None,
    **kw: Any,
) -> dict[str, Any]:
    """Depth for every window of a spike stream (``.dat``), or every frame of an image folder /
    video (RGB models get the frames; spike models get spikes simulated from them with the
    checkpoint's camera model), or every RGB frame of a rig sequence (a folder with
    ``calib.yaml``, :mod:`r2sdepth.data.rig`: the recorded spikes, the window chosen by time,
    RGB warped into the spike camera; outputs in the spike camera's frame; its ``depth/`` as
    ground truth of the animation when present).

    ``options`` (:class:`InferOptions`; keyword arguments override its fields). Writes per-window
    outputs (see :func:`_save_outputs`) named by the window's last plane ``{t1:06d}`` (streams),
    the image's stem (folders) or the frame ``{i:06d}`` (videos, rigs), ``summary.json``, and
    optional GIF/MP4 of labelled ``TFP | depth (| RGB) (| ground truth)`` panels
    (:func:`r2sdepth.viz.window_panel`; with ground truth the prediction panel is scaled by the
    per-frame median ratio and shares the ground truth's colour range).

    The steps: resolve the input (:func:`resolve_plan`: the source kind and model path chosen
    once, :mod:`r2sdepth.data.sources`) -> windows in batches -> predict
    (:func:`predict_chunk`) -> write outputs (:class:`OutputWriter`) -> summary. Outputs are at
    the input's resolution (sensor size for streams, frame size for folders); the network sees
    the input resized to the size the checkpoint was trained at (``fit="resize"``), or to
    ``net_size``, or padded to multiples of 32 (``fit="pad"``); a warning is issued when that
    differs from the trained size. ``follow``: each window is processed when its last plane is
    on disk, until no plane arrives for ``idle_timeout`` seconds or Ctrl-C; the summary has
    ``latency_s`` and ``windows_per_second``. ``metric`` selects KITTI's 16-bit PNG over the
    float32 TIFF. A rerun into the same ``out`` first removes the per-window files of the earlier
    run. ``camera_height`` (metres): each map is scaled so that the camera sits that high above
    the ground plane fitted in it (:func:`r2sdepth.metric.camera_height_scale`; a window without
    a plane takes the median factor of the earlier ones).
    """
    o = replace(options or InferOptions(), **kw)
    o.check()
    source, out = Path(source), Path(out)
    plan = resolve_plan(checkpoint, source, out, o)
    _warn_size_and_units(plan, o, checkpoint)
    writer = OutputWriter(plan, out, o)
    bar = None
    if o.progress:
        bar = tqdm(total=plan.src.count, unit="win", leave=False, desc="infer")
    t_start = time.monotonic()
    try:
        for chunk in _batches(plan.src.items(), 1 if o.follow else o.batch_size):
            depth, spk = predict_chunk(plan, chunk, o.device, o.scale)
            for j, (it, dmap) in enumerate(zip(chunk, depth)):
                writer.write(it, dmap, spk[j] if spk is not None else None)
            if bar is not None:
                bar.update(len(chunk))
    except KeyboardInterrupt:
        if not o.follow:
            raise
    finally:
        if bar is not None:
            bar.close()
        plan.src.close()
    writer.finish()
    summary = writer.summary(checkpoint, source, time.monotonic() - t_start)
    write_json_atomic(out / "summary.json", summary)
    return summary
