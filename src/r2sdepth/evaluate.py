"""Depth metrics and the KITTI Eigen evaluation protocol.

Per image: the prediction is resized to the ground truth's size (bilinearly, in disparity as the
published protocol does), pixels with ``min_depth < gt < max_depth`` inside the crop are kept
(Garg crop by default: rows 0.40810811 H - 0.99189189 H, cols 0.03594771 W - 0.96405229 W),
monocular predictions are median-scaled per image (``median(gt) / median(pred)``) or multiplied
by a fixed scale, clamped to ``[min_depth, max_depth]``; the seven standard metrics are computed
per image and averaged over images.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.lib import format as npf
from tqdm import tqdm

from r2sdepth.atomic import atomic_path, write_bytes_atomic, write_json_atomic
from r2sdepth.config import resolve_split
from r2sdepth.data.drives import DriveKind, kind_for
from r2sdepth.data.kitti import (
    gt_depth,
    read_split,
    resolve_gt_source,
    scale_intrinsics,
)
from r2sdepth.errors import R2SDepthError
from r2sdepth.metric import KITTI_CAMERA_HEIGHT, camera_height_scale

SCALINGS = ("median", "camera-height", "camera-height-run", "none", "fixed")
METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
CROPS = {
    "garg": (0.40810811, 0.99189189, 0.03594771, 0.96405229),
    "eigen": (0.3324324, 0.91351351, 0.0359477, 0.96405229),
}


def compute_metrics(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The standard metrics between matched 1-D arrays of positive depths (metres)."""
    gt = np.asarray(gt, np.float64)
    pred = np.asarray(pred, np.float64)
    if gt.size == 0:
        raise R2SDepthError("no valid ground-truth pixels to evaluate")
    thresh = np.maximum(gt / pred, pred / gt)
    return {
        "abs_rel": float(np.mean(np.abs(gt - pred) / gt)),
        "sq_rel": float(np.mean((gt - pred) ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean((gt - pred) ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "a1": float(np.mean(thresh < 1.25)),
        "a2": float(np.mean(thresh < 1.25**2)),
        "a3": float(np.mean(thresh < 1.25**3)),
    }


def crop_mask(shape: tuple[int, int], crop: str | None = "garg") -> np.ndarray:
    """Boolean ``[H, W]`` mask of the evaluation crop (``None``/"none": whole image)."""
    h, w = shape
    m = np.zeros((h, w), bool)
    if crop in (None, "none"):
        m[:] = True
        return m
    if crop not in CROPS:
        raise R2SDepthError(f"unknown crop {crop!r}; choose garg, eigen or none")
    top, bottom, left, right = CROPS[crop]
    m[int(top * h) : int(bottom * h), int(left * w) : int(right * w)] = True
    return m


def resize_to(pred_depth: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a depth map to ``shape`` bilinearly in disparity (as the published protocol)."""

    pred_depth = np.asarray(pred_depth, np.float32)
    if pred_depth.shape == tuple(shape):
        return pred_depth
    disp = 1.0 / np.maximum(pred_depth, 1e-6)
    disp = cv2.resize(disp, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return 1.0 / np.maximum(disp, 1e-6)


@dataclass(frozen=True)
class EvalProtocol:
    """How predictions are scored (defaults: the KITTI Eigen protocol as Monodepth2 runs it):
    ``crop`` (``garg``, ``eigen`` or None), ground truth kept in ``[min_depth, max_depth]``
    (metres) and predictions clipped to it, ``scaling`` (one of :data:`SCALINGS`; ``fixed``
    multiplies by ``scale``), ``camera_height`` (metres) for the camera-height scalings."""

    crop: str | None = "garg"
    min_depth: float = 1e-3
    max_depth: float = 80.0
    scaling: str = "median"
    scale: float = 1.0
    camera_height: float = KITTI_CAMERA_HEIGHT


def evaluate_depths(
    preds: Sequence[np.ndarray],
    gts: Sequence[np.ndarray],
    protocol: EvalProtocol | None = None,
    *,
    intrinsics: Sequence[np.ndarray] | None = None,
) -> dict[str, Any]:
    """Evaluate depth predictions (metres, any size) against ground truths (0 = invalid) under
    ``protocol`` (:class:`EvalProtocol`; default median scaling).

    ``protocol.scaling``: ``median`` per-image
    ``median(gt) / median(pred)``; ``camera-height`` per-image
    :func:`r2sdepth.metric.camera_height_scale` of the prediction with ``intrinsics[i]`` (``K``
    at the prediction's size) and ``camera_height`` metres (no ground truth used; an image
    whose plane fit fails takes the median factor of the others, counted in
    ``scale_failures``); ``camera-height-run`` the median of those factors for every image (one
    camera at one height: the per-image fits' noise averages out; evaluate one camera per run);
    ``none`` the prediction as it is; ``fixed`` times ``scale``.
    Returns the seven metrics averaged over images, ``n`` images, ``scaling``, for ``median``
    and ``camera-height`` the median and relative spread of the per-image factors
    (``ratio_median``, ``ratio_std``), and for the others ``gt_ratio_median`` (how far the scaled
    prediction is from the ground truth's scale: 1 = metric).
    """
    if len(preds) != len(gts):
        raise R2SDepthError(f"{len(preds)} predictions for {len(gts)} ground-truth maps")
    if not len(gts):
        raise R2SDepthError("nothing to evaluate")
    pr = EvalProtocol() if protocol is None else protocol
    crop, min_depth, max_depth, scale, camera_height = (
        pr.crop,
        pr.min_depth,
        pr.max_depth,
        pr.scale,
        pr.camera_height,
    )
    scaling = _checked_scaling(pr.scaling, scale)
    preds = [_as_2d(p, i) for i, p in enumerate(preds)]
    factors = (
        _camera_height_factors(preds, intrinsics, camera_height, per_run=scaling == "camera-height-run")
        if scaling.startswith("camera-height")
        else None
    )
    per, ratios, gt_ratios, skipped = [], [], [], []
    for i, (p, g) in enumerate(zip(preds, gts)):
        pair = _valid_pixels(i, p, g, crop, min_depth, max_depth)
        if pair is None:
            skipped.append(i)
            continue
        gv, pv = pair[0], pair[1] * scale
        if scaling == "median":
            r = float(np.median(gv) / max(np.median(pv), 1e-12))
            ratios.append(r)
            pv = pv * r
        elif factors is not None:
            ratios.append(factors[0][i])
            pv = pv * factors[0][i]
        if scaling != "median":
            gt_ratios.append(float(np.median(gv) / max(np.median(pv), 1e-12)))
        pv = np.clip(pv, min_depth, max_depth)
        per.append(compute_metrics(gv, pv))
    if not per:
        raise R2SDepthError("no image has valid ground truth inside the crop")
    return _summary(per, skipped, scaling, factors, camera_height, ratios, gt_ratios)


def _checked_scaling(scaling: str, scale: float) -> str:
    """``scaling`` if it is one of :data:`SCALINGS` and ``scale`` fits it; else a one-line error."""
    if scaling not in SCALINGS:
        raise R2SDepthError(f"scaling {scaling!r}: choose one of {', '.join(SCALINGS)}")
    if not (np.isfinite(scale) and scale > 0):
        raise R2SDepthError(f"scale {scale}: must be a positive finite number")
    if scaling != "fixed" and scale != 1.0:
        raise R2SDepthError(
            f"a fixed scale ({scale}) applies to scaling 'fixed' only (asked for {scaling!r})"
        )
    return scaling


def _valid_pixels(
    i: int, p: np.ndarray, g: Any, crop: str | None, min_depth: float, max_depth: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Ground truth and prediction (metres) of image ``i`` at the pixels the protocol scores: the
    prediction brought to the ground truth's size (:func:`resize_to`, in disparity), ground truth in
    ``(min_depth, max_depth)`` inside the crop. None when no pixel is valid."""
    g = np.asarray(g, np.float32)
    if g.ndim != 2:
        raise R2SDepthError(f"image {i}: depth maps must be 2-D, got pred {p.shape}, gt {g.shape}")
    if p.shape != g.shape:
        if np.any(p <= 0):
            raise R2SDepthError(
                f"image {i}: prediction has {int(np.sum(p <= 0))} non-positive depths (depth "
                "must be > 0 to resize in disparity; for disparities use --pred-kind disp)"
            )
        p = resize_to(p, g.shape)
    with np.errstate(invalid="ignore"):
        mask = (g > min_depth) & (g < max_depth) & crop_mask(g.shape, crop)
    if not mask.any():
        return None
    if np.any(p[mask] <= 0):
        raise R2SDepthError(
            f"image {i}: prediction has {int(np.sum(p[mask] <= 0))} non-positive depths where "
            "the ground truth is valid (depth must be > 0; for disparities use --pred-kind disp)"
        )
    return g[mask], p[mask]


def _summary(
    per: list[dict[str, float]],
    skipped: list[int],
    scaling: str,
    factors: tuple[list[float], int] | None,
    camera_height: float,
    ratios: list[float],
    gt_ratios: list[float],
) -> dict[str, Any]:
    """The seven metrics averaged over the scored images and what the scaling did."""
    out: dict[str, Any] = {k: float(np.mean([m[k] for m in per])) for k in METRICS}
    out["n"] = len(per)
    if skipped:
        out["skipped_no_gt"] = skipped
        warnings.warn(
            f"{len(skipped)} image(s) have no valid ground truth inside the crop and were not "
            f"evaluated (first: image {skipped[0]})",
            RuntimeWarning,
            stacklevel=3,
        )
    out["scaling"] = scaling
    out["median_scaling"] = scaling == "median"
    if factors is not None:
        out["camera_height"] = float(camera_height)
        out["scale_failures"] = factors[1] if factors is not None else 0
    if ratios:
        out["ratio_median"] = float(np.median(ratios))
        out["ratio_std"] = float(np.std(np.array(ratios) / np.median(ratios)))
    if gt_ratios:
        out["gt_ratio_median"] = float(np.median(gt_ratios))
    return out


def _as_2d(p: np.ndarray, i: int) -> np.ndarray:
    p = np.asarray(p, np.float32)
    if p.ndim == 3 and p.shape[0] == 1:
        p = p[0]
    if p.ndim != 2:
        raise R2SDepthError(f"image {i}: depth maps must be 2-D, got pred {p.shape}")
    if not np.all(np.isfinite(p)):
        raise R2SDepthError(f"image {i}: prediction contains NaN or inf")
    return p


def _camera_height_factors(
    preds: Sequence[np.ndarray],
    intrinsics: Sequence[np.ndarray] | None,
    camera_height: float,
    per_run: bool = False,
) -> tuple[list[float], int]:
    """Per-image camera-height factors (failed fits take the others' median; ``per_run``: every
    image takes the median) and the number of failed fits."""
    if intrinsics is None or len(intrinsics) != len(preds):
        raise R2SDepthError(
            "camera-height scaling needs the intrinsics of every prediction "
            "(--data with calibration files, or a checkpoint run)"
        )
    got: list[float | None] = []
    for p, K in zip(preds, intrinsics):
        try:
            got.append(camera_height_scale(p, K, camera_height).scale)
        except R2SDepthError:
            got.append(None)
    ok = [f for f in got if f is not None]
    if not ok:
        raise R2SDepthError("camera-height scaling: no ground plane found in any prediction")
    fill = float(np.median(ok))
    return [fill if (f is None or per_run) else f for f in got], len(got) - len(ok)


def mean_depth_baseline(
    train_gts: Iterable[np.ndarray] | None,
    gts: Sequence[np.ndarray],
    protocol: EvalProtocol | None = None,
    *,
    mean: float | None = None,
) -> dict[str, Any]:
    """Metrics of the trivial baseline: the mean training depth (metres, from ``train_gts`` or
    given as ``mean``) everywhere, no scaling (``protocol``'s crop and depth range)."""
    pr = replace(EvalProtocol() if protocol is None else protocol, scaling="none", scale=1.0)
    if mean is None:
        vals = [np.asarray(g)[np.asarray(g) > 0] for g in train_gts or ()]
        mean = float(np.mean(np.concatenate([v[v < pr.max_depth] for v in vals])))
    preds = [np.full(np.asarray(g).shape, mean, np.float32) for g in gts]
    res = evaluate_depths(preds, gts, pr)
    res["mean_depth"] = float(mean)
    return res


#: the flat-road prior's far cap (metres), fixed once for every drive (issue 23's figures use it)
FLAT_ROAD_FAR = 25.0


def flat_road_prior(
    shape: tuple[int, int],
    K: np.ndarray,
    camera_height: float = KITTI_CAMERA_HEIGHT,
    far: float = FLAT_ROAD_FAR,
) -> np.ndarray:
    """Depth ``[H, W]`` (metres) of a flat road seen by a level camera ``camera_height`` metres
    above it, and nothing else: row ``v`` (pixel centres, ``K`` ``[3, 3]`` at ``shape``) below the
    horizon (the principal row ``cy``) sees the road at ``z = fy * camera_height / (v - cy)``;
    rows at or above the horizon, and road beyond ``far``, are ``far``. It learns nothing: a
    model that cannot beat it (under the same median scaling) has learnt only a road's layout."""
    h, w = (int(v) for v in shape)
    fy, cy = float(K[1, 1]), float(K[1, 2])
    if not (camera_height > 0 and far > 0 and fy > 0):
        raise R2SDepthError("flat-road prior: camera height, far cap and focal length must be positive")
    dv = np.arange(h, dtype=np.float64) - cy
    with np.errstate(divide="ignore"):
        z = np.where(dv > 0, fy * camera_height / np.where(dv > 0, dv, 1.0), far)
    return np.repeat(np.minimum(z, far).astype(np.float32)[:, None], w, axis=1)


def flat_road_baseline(
    gts: Sequence[np.ndarray],
    intrinsics: Sequence[np.ndarray],
    protocol: EvalProtocol | None = None,
    *,
    far: float = FLAT_ROAD_FAR,
) -> dict[str, Any]:
    """Metrics of :func:`flat_road_prior` (``intrinsics[i]`` at ground truth ``i``'s size; the
    protocol's camera height) under ``protocol`` (median scaling by default, as the models are
    scored)."""
    if len(intrinsics) != len(gts):
        raise R2SDepthError(f"{len(intrinsics)} intrinsics for {len(gts)} ground-truth maps")
    pr = EvalProtocol() if protocol is None else protocol
    preds = [
        flat_road_prior(np.asarray(g).shape[-2:], K, pr.camera_height, far) for g, K in zip(gts, intrinsics)
    ]
    res = evaluate_depths(preds, gts, pr)
    res["far_cap_m"] = far
    return res


def constant_median_baseline(
    gts: Sequence[np.ndarray], protocol: EvalProtocol | None = None
) -> dict[str, Any]:
    """Metrics of a constant map under ``protocol`` (default per-image median scaling: it already
    knows each image's median depth, the stronger trivial baseline for median-scaled models)."""
    return evaluate_depths([np.ones(np.asarray(g).shape, np.float32) for g in gts], gts, protocol)


class _ArrayOnlyUnpickler:
    """Unpickles numpy arrays only (what an object array of depth maps holds); any other global
    (``os.system``, ``builtins.eval``, ...) is refused before it is called."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    @classmethod
    def load(cls, f, where: str):

        allowed = cls.ALLOWED

        class U(pickle.Unpickler):
            def find_class(self, module: str, name: str):
                if (module, name) not in allowed:
                    raise R2SDepthError(
                        f"{where}: refusing to load pickled {module}.{name} (only numpy arrays are accepted)"
                    )
                return super().find_class(module, name)

        return U(f).load()


def _read_npy(f, where: str) -> np.ndarray:
    """One ``.npy`` stream: plain arrays as numpy reads them, object arrays through
    :class:`_ArrayOnlyUnpickler` (never ``allow_pickle=True``)."""

    version = npf.read_magic(f)
    shape, fortran, dtype = (
        npf.read_array_header_1_0(f) if version == (1, 0) else npf.read_array_header_2_0(f)
    )
    if dtype.hasobject:
        arr = _ArrayOnlyUnpickler.load(f, where)
        if not isinstance(arr, np.ndarray):
            raise R2SDepthError(f"{where}: expected an array, found {type(arr).__name__}")
        return arr
    count = int(np.prod(shape)) if shape else 1
    data = np.frombuffer(f.read(count * dtype.itemsize), dtype=dtype)
    if data.size != count:
        raise R2SDepthError(f"{where}: truncated array ({data.size} of {count} values)")
    return data.reshape(shape, order="F" if fortran else "C")


def load_npz_maps(path: str | os.PathLike, key: str = "data") -> list[np.ndarray]:
    """Depth/disparity maps from Monodepth2-style files, without executing pickled code:
    ``.npz`` (key ``data``: ``[N, H, W]`` array or object array of maps, e.g. ``gt_depths.npz``)
    or ``.npy`` (``[N, H, W]``, e.g. Monodepth2's saved disparities)."""

    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: file not found")
    try:
        if path.suffix.lower() == ".npy":
            with open(path, "rb") as f:
                arr = _read_npy(f, str(path))
        else:
            with zipfile.ZipFile(path) as z:
                names = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
                if key not in names:
                    raise R2SDepthError(f"{path}: no key '{key}' (keys: {names})")
                with z.open(key + ".npy") as f:
                    arr = _read_npy(f, str(path))
    except R2SDepthError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise R2SDepthError(
            f"{path}: unreadable {path.suffix or 'file'} ({e.__class__.__name__}: {e})"
        ) from e
    except Exception as e:  # noqa: BLE001 (a corrupt pickle raises many kinds)
        raise R2SDepthError(f"{path}: corrupt array data ({e.__class__.__name__}: {e})") from e
    if arr.ndim == 2:
        arr = arr[None]
    out = []
    for i, a in enumerate(arr):
        a = np.asarray(a)
        if a.dtype.hasobject or not np.issubdtype(a.dtype, np.number):
            raise R2SDepthError(f"{path}: map {i} is not numeric ({a.dtype})")
        out.append(a.astype(np.float32))
    return out


def npz_attribute(path: str | os.PathLike, key: str) -> str | None:
    """A string stored beside the maps (e.g. ``gt_source``), or None."""

    try:
        with zipfile.ZipFile(path) as z:
            if key + ".npy" not in z.namelist():
                return None
            with z.open(key + ".npy") as f:
                a = _read_npy(f, str(path))
        return str(a.item()) if a.dtype.kind == "U" else None
    except (OSError, ValueError, zipfile.BadZipFile, R2SDepthError):
        return None


def save_npz_maps(path: str | os.PathLike, maps: Sequence[np.ndarray], **attrs: str) -> None:
    """Save maps as Monodepth2's ``gt_depths.npz`` format: key ``data``, an object array;
    ``attrs`` (e.g. ``gt_source="velodyne"``) are stored as string arrays beside it."""

    arr = np.empty(len(maps), dtype=object)
    for i, m in enumerate(maps):
        arr[i] = np.asarray(m, np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, data=arr, **{k: np.array(str(v)) for k, v in attrs.items()})


def export_gt(
    kitti_root: str | os.PathLike,
    split: str | os.PathLike,
    out: str | os.PathLike,
    progress: bool = False,
    source: str = "auto",
) -> int:
    """Write the ground truth of every split line (native size, split order) to ``out``, with
    the ground-truth source (:func:`r2sdepth.data.kitti.gt_depth`) recorded as ``gt_source``."""

    src = resolve_gt_source(kitti_root, source)
    samples = read_split(split)
    it: Iterable = samples
    if progress:
        it = tqdm(samples, unit="img", desc="export-gt")
    maps = [gt_depth(kitti_root, s.drive, s.frame, s.cam, source=src) for s in it]
    save_npz_maps(out, maps, gt_source=src)
    return len(maps)


def split_gt(
    kitti_root: str | os.PathLike, split: str | os.PathLike, source: str = "auto"
) -> list[np.ndarray]:
    """Ground-truth maps of a split, in order, all from one source (see ``gt_depth``), each from
    its drive's recording kind (:mod:`r2sdepth.data.drives`: a rig sequence's ``depth/``, a
    KITTI-layout drive's LiDAR or exact depth)."""

    src = resolve_gt_source(kitti_root, source)
    kinds: dict[str, DriveKind] = {}
    out = []
    for s in read_split(split):
        if s.drive not in kinds:
            kinds[s.drive] = kind_for(kitti_root, s.drive, gt_source=src)
        out.append(kinds[s.drive].gt(s.cam, s.frame))
    return out


def split_intrinsics(
    root: str | os.PathLike, split: str | os.PathLike, sizes: Sequence[tuple[int, int]]
) -> list[np.ndarray]:
    """``K`` ``[3, 3]`` of every split line scaled to ``sizes[i]`` (the prediction's rows,
    columns), from its drive's recording kind (:mod:`r2sdepth.data.drives`: the drive's
    ``calib_cam_to_cam.txt`` for the KITTI raw layout and synthetic scenes, a rig sequence's
    spike camera)."""

    samples = read_split(split)
    if len(samples) != len(sizes):
        raise R2SDepthError(f"{len(sizes)} predictions for {len(samples)} split lines")
    cache: dict[tuple[str, str], tuple[np.ndarray, tuple[int, int]]] = {}
    out = []
    for s, size in zip(samples, sizes):
        key = (s.drive, s.cam)
        if key not in cache:
            cache[key] = kind_for(root, s.drive).native_intrinsics(s.cam, s.frame)
        K, native = cache[key]
        out.append(scale_intrinsics(K, native, tuple(size)))
    return out


def markdown_table(rows: dict[str, dict[str, Any]], extra: Sequence[str] = ()) -> str:
    """A Markdown table, one row per named result."""
    cols = list(METRICS) + list(extra)
    lines = ["| model | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for name, r in rows.items():
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(path: str | os.PathLike, results: dict[str, Any]) -> None:

    write_json_atomic(path, results)


@dataclass
class EvalJob:
    """What ``r2sdepth eval`` is asked to score (its flags), with the decisions made in one place:
    which scaling, where the ground truth comes from, how predictions are read, which baselines.

    ``gt``: a ``gt_depths.npz``, or ``data`` + ``split`` (KITTI layout; ``gt_source`` as
    :func:`r2sdepth.data.kitti.resolve_gt_source`); ``pred``: an ``.npz`` / ``.npy`` of maps
    (``pred_kind``: depth or disp, required for ``.npy``); ``scaling``: one of :data:`SCALINGS`
    (None: ``fixed`` when ``no_median_scaling`` or a ``scale`` other than 1 is given, else
    ``median``); ``baselines``: the constant map and, with ``data`` + ``split``, the flat-road
    prior; ``baseline_split``: the mean-training-depth baseline from that split's ground truth.
    """

    data: str | None = None
    split: str | None = None
    gt: str | None = None
    gt_source: str = "auto"
    pred: str | None = None
    pred_kind: str | None = None
    crop: str = "garg"
    min_depth: float = 1e-3
    max_depth: float = 80.0
    scaling: str | None = None
    no_median_scaling: bool = False
    scale: float = 1.0
    camera_height: float = KITTI_CAMERA_HEIGHT
    baselines: bool = False
    baseline_split: str | None = None

    def __post_init__(self) -> None:
        if self.no_median_scaling and self.scaling not in (None, "fixed"):
            raise R2SDepthError(f"--no-median-scaling contradicts --scaling {self.scaling}")
        if self.scaling is None:
            self.scaling = "fixed" if self.no_median_scaling or self.scale != 1.0 else "median"
        if self.split and self.data:
            self.split = str(resolve_split(self.split, self.data))  # relative: under data first, as train
        if self.baselines and self.scaling != "median":
            raise R2SDepthError(f"--baselines are scored under median scaling, not --scaling {self.scaling}")
        if self.baseline_split and not self.data:
            raise R2SDepthError("--baseline-split needs --data")

    @property
    def protocol(self) -> EvalProtocol:
        """The :class:`EvalProtocol` of the flags."""
        return EvalProtocol(
            crop=self.crop,
            min_depth=self.min_depth,
            max_depth=self.max_depth,
            scaling=self.scaling,
            scale=self.scale,
            camera_height=self.camera_height,
        )

    def ground_truth(self) -> tuple[list[np.ndarray], str]:
        """The ground-truth maps (metres, 0 = invalid) and a description of their source."""
        if self.gt:
            src = npz_attribute(self.gt, "gt_source") or f"file {Path(self.gt).name} (source not recorded)"
            return load_npz_maps(self.gt), src
        if self.data and self.split:
            src = resolve_gt_source(self.data, self.gt_source)
            return split_gt(self.data, self.split, src), src
        raise R2SDepthError("ground truth needed: --gt gt_depths.npz, or --data DIR with --split FILE")

    def predictions(self) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """``pred``'s maps as depth (disparities inverted) and, for camera-height scaling, the
        intrinsics of the split at their sizes."""
        if self.pred_kind is None and Path(self.pred).suffix.lower() == ".npy":
            raise R2SDepthError(
                f"{self.pred}: say what the .npy holds with --pred-kind depth or --pred-kind disp "
                "(Monodepth2 saves disparities as .npy; read as depth they give wrong metrics)"
            )
        preds = load_npz_maps(self.pred)
        if self.pred_kind == "disp":
            preds = [1.0 / np.maximum(p, 1e-6) for p in preds]
        Ks = None
        if self.scaling.startswith("camera-height"):
            if not (self.data and self.split):
                raise R2SDepthError(
                    "--scaling camera-height with --pred needs --data and --split (the intrinsics)"
                )
            Ks = split_intrinsics(self.data, self.split, [p.shape[-2:] for p in preds])
        return preds, Ks

    def score(
        self,
        named: dict[str, tuple[Sequence[np.ndarray], Sequence[np.ndarray] | None]],
        gts: Sequence[np.ndarray],
        gt_source: str,
    ) -> dict[str, dict[str, Any]]:
        """Rows of the table: each ``name -> (predictions, intrinsics or None)`` scored by
        :func:`evaluate_depths`, then the baselines asked for; every row records ``gt_source``."""
        pr = self.protocol
        rows = {name: evaluate_depths(p, gts, pr, intrinsics=K) for name, (p, K) in named.items()}
        if self.baseline_split:
            rows["mean-depth baseline"] = mean_depth_baseline(
                split_gt(self.data, self.baseline_split, self.gt_source), gts, pr
            )
        if self.baselines:
            rows["constant"] = constant_median_baseline(gts, pr)
            if self.data and self.split:
                Ks_gt = split_intrinsics(self.data, self.split, [g.shape[-2:] for g in gts])
                rows["flat-road prior"] = flat_road_baseline(gts, Ks_gt, pr)
        for r in rows.values():
            r["gt_source"] = gt_source
        return rows


def report(rows: dict[str, dict[str, Any]], out: str | os.PathLike | None) -> str:
    """The Markdown table of ``rows``; with ``out``, the results JSON there (one row: that row's
    object) and the table beside it (``.md``), both written atomically."""
    table = markdown_table(rows, extra=("n",))
    if out:
        write_results(out, rows if len(rows) > 1 else next(iter(rows.values())))
        write_bytes_atomic(Path(out).with_suffix(".md"), (table + "\n").encode())
    return table
