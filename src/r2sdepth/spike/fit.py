"""Fit the spike-camera model (:class:`r2sdepth.spike.simulate.SimParams`) to a real recording.

What a recording tells about its sensor, and how each figure is estimated (``fit_sim``):

* **Firing rates**: the per-pixel rate ``r`` (spikes per plane) over ``planes`` planes, and its
  quantiles. In the model ``r = min(1, (gain * L + dark_current) / theta)`` for a pixel of luminance
  ``L``, so the rates fix ``gain / theta`` and ``dark_current / theta`` only (``theta`` is kept).
* **Gain and dark current**: with ``reference`` luminance (the frames the simulator will be fed,
  e.g. the user's RGB video or a KITTI drive), the quantiles of the real rates are matched to the
  quantiles of the reference luminance (both 3 x 3 box-filtered, so that the threshold mismatch
  does not widen the rates' distribution) by least squares on ``r_q = a L_q + b`` over the unsaturated
  quantiles 5..95 % (``r_q < 0.95``): ``gain = a theta``, ``dark_current = max(b, 0) theta``. This
  assumes the recording's scene has the reference's brightness distribution; without a
  reference, gain and dark current are not fitted (the result says so).
* **Threshold mismatch** (fixed-pattern noise): in the model ``log r = log(gain L) - log theta_i``,
  so the log-rate step between horizontally adjacent unsaturated pixels (``0.05 < r < 0.9``) has
  variance ``2 fpn_sigma^2`` where the scene is flat. ``fpn_sigma`` = the robust spread (1.4826 MAD,
  which ignores the minority of pairs on edges) of those steps over sqrt(2), less in quadrature what
  counting alone gives (a count over N planes is off by up to one spike: relative variance
  ``1 / (6 (r N)^2)``, averaged). Scene texture finer than a pixel reads as mismatch (an upper bound).
* **Hot pixels**: pixels firing at more than 3x their neighbourhood's median and above 0.05
  (they fire without the light their neighbours see); their share is reported, not simulated.
* **TFP / TFI against the rate**: the slope and correlation of the TFI reconstruction (1 / inter-spike
  interval) on the rate map, which a simulated stream of the fitted model should reproduce.

Validated on streams simulated with known parameters (``tests/test_fit_sim.py``): see the README.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.io import SpikeStream
from r2sdepth.spike.simulate import SimParams

QUANTILES = tuple(range(5, 100, 5))  # percent


def rate_map(spikes: np.ndarray) -> np.ndarray:
    """Per-pixel firing rate (spikes per plane) of planes ``[T, H, W]``: float64 ``[H, W]``."""
    return np.asarray(spikes, np.float64).mean(axis=0)


def _median3(x: np.ndarray) -> np.ndarray:
    """3 x 3 median (edges replicated), ``[H, W]`` -> ``[H, W]``."""
    p = np.pad(x, 1, mode="edge")
    h, w = x.shape
    stack = np.stack([p[i : i + h, j : j + w] for i in range(3) for j in range(3)])
    return np.median(stack, axis=0)


def estimate_fpn(rate: np.ndarray, planes: int) -> dict[str, float]:
    """Relative per-pixel threshold mismatch from a rate map over ``planes`` planes (see the module
    docstring); also the share of hot pixels."""
    ok = (rate > 0.05) & (rate < 0.9)
    pair = ok[:, 1:] & ok[:, :-1]
    if pair.sum() < 100:
        raise R2SDepthError(
            "too few unsaturated pixels to estimate the threshold mismatch "
            f"({int(pair.sum())} pairs; a longer or brighter recording helps)"
        )
    lr = np.log(np.maximum(rate, 1e-6))
    d = (lr[:, 1:] - lr[:, :-1])[pair]
    robust = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
    c = np.maximum(rate[ok] * planes, 1.0)
    counting = float(np.mean(1.0 / (6.0 * c**2)))
    sigma = math.sqrt(max(robust**2 - counting, 0.0))
    med = _median3(rate)
    hot = (rate > 3 * med) & (rate > 0.05)
    return {
        "fpn_sigma": sigma,
        "log_ratio_spread": robust,
        "counting_spread": math.sqrt(counting),
        "pixel_pairs": int(pair.sum()),
        "hot_pixel_share": float(hot.mean()),
    }


def _box3(x: np.ndarray) -> np.ndarray:
    """3 x 3 mean (edges replicated): per-pixel mismatch averages out (variance / 9), the scene stays."""
    p = np.pad(np.asarray(x, np.float64), 1, mode="edge")
    h, w = x.shape
    return sum(p[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def fit_gain(rate: np.ndarray, reference: list[np.ndarray], threshold: float) -> dict[str, Any]:
    """``gain`` and ``dark_current`` matching the quantiles of the rate map ``[H, W]`` to those of the
    reference luminance (frames ``[h, w]`` in [0, 1]), both 3 x 3 box-filtered first so that the
    threshold mismatch does not widen the rates' distribution; see the module docstring."""
    rq = np.percentile(_box3(rate), QUANTILES)
    lq = np.percentile(np.concatenate([_box3(f).ravel() for f in reference]), QUANTILES)
    keep = rq < 0.95
    if keep.sum() < 3 or np.ptp(lq[keep]) <= 0:
        raise R2SDepthError("the recording is saturated or the reference is flat: cannot fit the gain")
    a, b = np.polyfit(lq[keep], rq[keep], 1)
    if not a > 0:
        raise R2SDepthError(
            f"rates fall with brightness (slope {a:.3g}): the reference does not match the recording"
        )
    fit = np.minimum(a * lq + b, 1.0)
    return {
        "gain": float(a * threshold),
        "dark_current": float(max(b, 0.0) * threshold),
        "quantile_rmse": float(np.sqrt(np.mean((fit - rq) ** 2))),
    }


def tfi_relation(spikes: np.ndarray, rate: np.ndarray) -> dict[str, float]:
    """Slope and correlation of the TFI image (1 / the mean inter-spike interval in planes) on the
    rate map, over pixels with at least two spikes."""
    t = spikes.shape[0]
    first = np.argmax(spikes, axis=0)
    last = t - 1 - np.argmax(spikes[::-1], axis=0)
    n = spikes.sum(axis=0)
    ok = n >= 2
    if ok.sum() < 10:
        return {"tfi_slope": float("nan"), "tfi_corr": float("nan")}
    tfi = (n[ok] - 1) / np.maximum(last[ok] - first[ok], 1)
    slope = float(np.polyfit(rate[ok], tfi, 1)[0])
    return {"tfi_slope": slope, "tfi_corr": float(np.corrcoef(rate[ok], tfi)[0, 1])}


def fit_sim(
    stream: SpikeStream,
    *,
    reference: list[np.ndarray] | None = None,
    planes: int = 2000,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Fit :class:`SimParams` to a recording: returns ``{"sim": {...}, "stats": {...}}`` where
    ``sim`` holds the fitted parameters (and the camera's rate as ``camera_rate_hz``), ready for
    ``--sim-params`` / ``data.sim``. ``reference``: luminance frames ``[h, w]`` in [0, 1] of a scene
    like the recording's (for gain and dark current). ``planes``: how many planes to use (from the start)."""
    n = min(int(planes), len(stream))
    if n < 32:
        raise R2SDepthError(f"{stream.path}: {n} planes are too few to fit a camera model (32 at least)")
    spikes = stream.read(0, n)
    rate = rate_map(spikes)
    theta = float(threshold if threshold is not None else SimParams().threshold)
    fpn = estimate_fpn(rate, n)
    sim: dict[str, Any] = {
        "threshold": theta,
        "fpn_sigma": round(fpn["fpn_sigma"], 4),
        "camera_rate_hz": float(stream.rate_hz),
    }
    stats: dict[str, Any] = {
        "planes": n,
        "mean_rate": float(rate.mean()),
        "rate_quantiles": dict(
            zip((f"p{q}" for q in QUANTILES), np.percentile(rate, QUANTILES).round(4).tolist())
        ),
        "saturated_share": float((rate >= 0.99).mean()),
        **fpn,
        **tfi_relation(spikes, rate),
    }
    if reference is not None:
        g = fit_gain(rate, reference, theta)
        sim["gain"], sim["dark_current"] = round(g["gain"], 4), round(g["dark_current"], 4)
        stats["quantile_rmse"] = g["quantile_rmse"]
    else:
        stats["gain"] = "not fitted (no reference frames)"
    SimParams(**sim)  # the result must be a valid camera model
    return {"sim": sim, "stats": stats, "source": str(stream.path)}
