"""The spike-camera model: integrate-and-fire over temporally up-sampled RGB video.

Per pixel and per spike plane ``k`` (``P = planes_per_frame`` planes between RGB frames
``t-1`` and ``t``)::

    V += gain * L_k (+ dark_current)        # L_k: luminance in [0, 1] during plane k
    spike_k = V >= theta_pixel
    V -= theta_pixel * spike_k              # reset="subtract" (the camera's); "zero": V = 0

with ``V0 ~ U(0, theta)`` per pixel (seeded). For a constant ``L`` the long-run firing rate is
``gain * L / theta`` spikes per plane (one spike per plane at most, so ``gain <= theta`` keeps
the model linear up to white).

Temporal up-sampling (``interp``): plane ``k`` integrates the light of ``(k/P, (k+1)/P]`` of
the interval, whose midpoint is ``a_k = (k + 0.5) / P``:

* ``"hold"``: frame ``t``'s luminance over the whole interval ``(t-1, t]`` (an exposure);
* ``"linear"`` (default): ``L_k = (1 - a_k) L_{t-1} + a_k L_t``, the mean of the linear ramp
  over the plane's interval, so the potential integrates the ramp exactly (sampling the ramp at
  the plane's end instead would make every stream lead the video by half a plane, which is a
  clock-offset bias for rig alignment);
* ``"flow"``: motion-compensated: both frames are warped to ``a_k`` along OpenCV's Farneback
  flow (``F`` from ``t-1`` to ``t``, linear motion) and blended.

Optional sensor effects (off by default): per-pixel threshold mismatch (fixed-pattern noise,
``theta * (1 + fpn_sigma * N(0, 1))``), dark current (added per plane), photon shot noise (the
light of a plane is ``Poisson(shot_photons * gain * L_k) / shot_photons``).

The spike window of an RGB frame (one definition, for written streams and on-the-fly training
alike): the stream is made of *chunks*, one per RGB frame ``t``: the P planes between frames
``t-1`` and ``t``, simulated from a potential drawn from its stationary distribution
``U(0, theta)`` with the seed ``stable_seed(seed, sequence, t)`` (:func:`simulate_chunk`). The
fixed-pattern threshold mismatch is a property of the sensor, seeded by ``(seed, sequence)``
only. Frame ``t``'s window of ``T`` planes (``align="end"``) is the last ``T`` planes of the
chunks ``t - ceil(T/P) + 1 .. t`` (:func:`frame_window`), so it never contains light after frame
``t`` and it is a function of ``(seed, sequence, t)`` and the frames alone: a built stream and
the on-the-fly mode give the same bytes. Before the first frame, ``pre_roll_frames`` chunks
(default 1) hold the first frame's luminance (the camera looking at the first frame), so frame 0
has a window too. A sequence of N frames gives ``(N - 1 + pre_roll_frames) * P`` planes and
frame ``k`` (0-based position) is reached at plane ``(k + pre_roll_frames) * P``; the sidecar's
``frame_plane_index`` lists these per frame id, ``pre_roll_planes`` records the pre-roll.

Two window modes (``SimParams.window_mode``):

* ``per-frame`` (``camera_rate_hz = 0``, Spike-KITTI as published): the P planes of a chunk fill
  the whole interval between frames ``t-1`` and ``t``; the plane rate is ``video_fps * P``
  (640 Hz for P = 64 at KITTI's 10 Hz), so a window sees the scene move for ``T / P`` frames.
* ``camera-rate`` (``camera_rate_hz = R``, e.g. 20 kHz): the chunk of frame ``t`` is the last P
  planes before ``t`` at a real camera's rate, ``P / R`` seconds (3.2 ms for 64 planes at 20 kHz),
  light interpolated linearly within them (:func:`plane_fraction` with ``span = P * fps / R``);
  the rest of the interval is not simulated. Windows are at most P planes long. A written stream
  holds one such chunk per frame (``window_definition`` ``r2sdepth-rate-windows/1``): planes of
  consecutive chunks are not contiguous in time.

Departure from a single continuous simulation: the potential is re-drawn at every RGB frame.
Within a chunk the model is exact; what is lost is the phase of pixels that fire less than
once per chunk (rate below ``1/P`` spikes per plane), whose count per chunk becomes random
instead of regular. This is what makes a window reproducible without simulating the whole
drive before it.

The hot loop is vectorised over pixels (numpy, or torch on CPU/CUDA); only the P-step time
loop is Python.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from tqdm import tqdm

from r2sdepth.errors import R2SDepthError
from r2sdepth.seeds import stable_seed
from r2sdepth.spike.io import SpikeWriter, decode_planes, encode_planes


@dataclass(frozen=True)
class SimParams:
    """Parameters of the spike-camera model (all recorded in the sidecar JSON)."""

    planes_per_frame: int = field(default=128, metadata={"help": "spike planes between two RGB frames (P)"})
    threshold: float = field(default=2.0, metadata={"help": "firing threshold theta"})
    gain: float = field(default=1.0, metadata={"help": "potential added per plane at luminance 1"})
    interp: str = field(
        default="linear", metadata={"help": "luminance between frames", "choices": ("hold", "linear", "flow")}
    )
    reset: str = field(
        default="subtract",
        metadata={"help": "after a spike: subtract theta or reset to zero", "choices": ("subtract", "zero")},
    )
    fpn_sigma: float = field(default=0.0, metadata={"help": "relative per-pixel threshold mismatch"})
    dark_current: float = field(default=0.0, metadata={"help": "potential added per plane in the dark"})
    shot_photons: float = field(
        default=0.0, metadata={"help": "photons per plane at luminance 1 (0: no shot noise)"}
    )
    linearize: bool = field(default=False, metadata={"help": "undo the sRGB curve before integrating"})
    video_fps: float = field(default=10.0, metadata={"help": "RGB frame rate (Hz; plane rate = fps x P)"})
    pre_roll_frames: int = field(
        default=1,
        metadata={"help": "chunks of P planes before frame 0 holding its luminance (frame 0's window)"},
    )
    camera_rate_hz: float = field(
        default=0.0,
        metadata={
            "help": "planes per second of a real camera (e.g. 20000): the chunk of frame t is then the "
            "last P planes before t at this rate (P / rate seconds, light interpolated within them), "
            "not the whole frame interval; 0: P planes spread over the frame interval (Spike-KITTI as "
            "published)"
        },
    )

    def __post_init__(self) -> None:

        for name in (
            "threshold",
            "gain",
            "fpn_sigma",
            "dark_current",
            "shot_photons",
            "video_fps",
            "camera_rate_hz",
        ):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise R2SDepthError(f"{name} must be a finite number, got {v!r}")
        if isinstance(self.planes_per_frame, bool) or not isinstance(self.planes_per_frame, int):
            raise R2SDepthError(f"planes_per_frame must be an integer, got {self.planes_per_frame!r}")
        if self.planes_per_frame < 1:
            raise R2SDepthError("planes_per_frame must be >= 1")
        if not self.threshold > 0:
            raise R2SDepthError("threshold must be > 0")
        if not self.gain > 0:
            raise R2SDepthError("gain must be > 0")
        if self.interp not in ("hold", "linear", "flow"):
            raise R2SDepthError(f"interp must be hold, linear or flow, got {self.interp!r}")
        if self.reset not in ("subtract", "zero"):
            raise R2SDepthError(f"reset must be subtract or zero, got {self.reset!r}")
        if self.fpn_sigma < 0 or self.dark_current < 0 or self.shot_photons < 0:
            raise R2SDepthError("noise parameters must be >= 0")
        if not self.video_fps > 0:
            raise R2SDepthError("video_fps must be > 0")
        if int(self.pre_roll_frames) != self.pre_roll_frames or self.pre_roll_frames < 1:
            raise R2SDepthError("pre_roll_frames must be an integer >= 1")
        if self.camera_rate_hz < 0:
            raise R2SDepthError(
                f"camera_rate_hz must be >= 0 (0: planes spread over the frame interval), "
                f"got {self.camera_rate_hz}"
            )
        if self.camera_rate_hz and self.span > 1:
            raise R2SDepthError(
                f"{self.planes_per_frame} planes at camera_rate_hz={self.camera_rate_hz:g} last "
                f"{1e3 * self.planes_per_frame / self.camera_rate_hz:.4g} ms, longer than the "
                f"{1e3 / self.video_fps:.4g} ms between RGB frames: use fewer planes per frame or "
                "camera_rate_hz 0"
            )

    @property
    def rate_hz(self) -> float:
        """Spike planes per second: ``camera_rate_hz`` in camera-rate mode, else video fps x planes per
        frame (the published mode's planes fill the frame interval)."""
        return float(self.camera_rate_hz) if self.camera_rate_hz else self.video_fps * self.planes_per_frame

    @property
    def span(self) -> float:
        """Fraction of the interval between two RGB frames that a chunk's P planes cover: 1 in the
        published mode, ``P * video_fps / camera_rate_hz`` at a camera's rate."""
        return self.planes_per_frame * self.video_fps / self.camera_rate_hz if self.camera_rate_hz else 1.0

    @property
    def window_mode(self) -> str:
        """``"camera-rate"`` or ``"per-frame"`` (P planes per RGB frame, Spike-KITTI as published)."""
        return "camera-rate" if self.camera_rate_hz else "per-frame"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_sim_params(path: str | os.PathLike) -> dict[str, Any]:
    """The camera-model values of a parameter file (``r2sdepth fit-sim`` output, JSON or YAML): its
    ``sim`` section (or the whole file when it has none). Unknown keys are an error naming the
    closest valid one; the values are checked by building :class:`SimParams`."""

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
        doc = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        raise R2SDepthError(f"{p}: unreadable camera-model file ({e.__class__.__name__}: {e})") from None
    sim = doc.get("sim", doc) if isinstance(doc, dict) else None
    if not isinstance(sim, dict):
        raise R2SDepthError(f"{p}: a camera-model file must be a mapping (with a 'sim' section)")
    names = list(SimParams.__dataclass_fields__)
    for k in sim:
        if k not in names:
            close = difflib.get_close_matches(str(k), names, n=1)
            raise R2SDepthError(
                f"{p}: unknown camera-model key {k!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            )
    SimParams(**sim)
    return dict(sim)


def luminance(img: np.ndarray, *, linearize: bool = False) -> np.ndarray:
    """RGB (uint8/uint16/float in [0, 1]) ``[H, W, 3]`` or gray ``[H, W]`` -> float32 ``[H, W]``
    in [0, 1] (ITU-R BT.601 weights; ``linearize`` undoes the sRGB transfer curve first)."""
    a = np.asarray(img)
    if a.dtype == np.uint8:
        x = a.astype(np.float32) / 255.0
    elif a.dtype == np.uint16:
        x = a.astype(np.float32) / 65535.0
    else:
        x = a.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise R2SDepthError("frame contains NaN or inf")
    x = np.clip(x, 0.0, 1.0)
    if linearize:
        x = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)
    if x.ndim == 3 and x.shape[2] == 1:
        return np.ascontiguousarray(x[..., 0])
    if x.ndim == 3 and x.shape[2] in (3, 4):  # RGB or RGBA: the weights read the first three channels
        return (x[..., 0] * 0.299 + x[..., 1] * 0.587 + x[..., 2] * 0.114).astype(np.float32)
    if x.ndim != 2:
        raise R2SDepthError(f"frame must be [H, W] or [H, W, 3], got shape {list(x.shape)}")
    return x


def plane_fraction(k: int, planes: int, span: float = 1.0) -> float:
    """Where between two RGB frames (0 = frame t-1, 1 = frame t) plane ``k`` of ``planes`` takes
    its light: the midpoint of the interval it integrates. The P planes cover the last ``span``
    of the frame interval (1: all of it, ``(k/P, (k+1)/P]``, midpoint ``(k + 0.5) / P``; at a
    camera's rate ``span = P * fps / rate``): ``1 - span + span * (k + 0.5) / P``."""
    if span == 1.0:
        return (k + 0.5) / planes
    return 1.0 - span + span * (k + 0.5) / planes


#: OpenCV's Farneback optical flow for ``interp="flow"``: a 4-level pyramid halving each time, 15-pixel
#: windows, 3 iterations, 5-pixel polynomial neighbourhoods with sigma 1.2
FARNEBACK = {
    "pyr_scale": 0.5,
    "levels": 4,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}


def _flow_interpolator(l0: np.ndarray, l1: np.ndarray):
    """Return ``f(a) -> L_a`` warping both frames along Farneback flow (linear motion)."""

    g0 = np.clip(l0 * 255, 0, 255).astype(np.uint8)
    g1 = np.clip(l1 * 255, 0, 255).astype(np.uint8)
    f01 = cv2.calcOpticalFlowFarneback(g0, g1, None, **FARNEBACK)
    f10 = cv2.calcOpticalFlowFarneback(g1, g0, None, **FARNEBACK)
    h, w = l0.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))

    def at(a: float) -> np.ndarray:
        # backward warps: the pixel at time a came from x - a*F01 in frame 0 and from
        # x - (1-a)*F10 in frame 1 (flows evaluated at the target pixel: small-motion approx.)
        w0 = cv2.remap(
            l0, gx - a * f01[..., 0], gy - a * f01[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        w1 = cv2.remap(
            l1,
            gx - (1 - a) * f10[..., 0],
            gy - (1 - a) * f10[..., 1],
            cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )
        return (1 - a) * w0 + a * w1

    return at


_KERNEL: Any = None


def fused_kernel_applies(params: SimParams, backend: str = "numpy") -> bool:
    """Whether the fused numba kernel simulates ``params`` (the noise-free-shot hold/linear model on
    the numpy backend; ``R2SDEPTH_NO_NUMBA=1`` turns it off); it then gives the same spikes as the
    numpy loop, several times faster."""
    return (
        backend == "numpy"
        and params.interp != "flow"
        and params.shot_photons == 0
        and os.environ.get("R2SDEPTH_NO_NUMBA") != "1"
        and _packed_kernel() is not None
    )


def _packed_kernel():
    """The fused integrate-and-fire + bit-packing kernel (numba), or ``None`` if numba is absent.

    Same float32 operations in the same order as the numpy path, so both give identical bytes.
    """
    global _KERNEL
    if _KERNEL is None:
        try:
            import numba  # noqa: PLC0415  heavy (JIT compiler): only the numba backend needs it
        except ImportError:
            _KERNEL = False
            return None

        @numba.njit(cache=True, nogil=True)
        def kernel(v, th, inc0, step, planes, zero_reset, flip, out):  # pragma: no cover (jit)
            h, w = v.shape
            sp = np.empty(w, np.uint8)
            inc = np.empty(w, np.float32)
            aligned = (w % 8) == 0
            for i in range(h):
                r = h - 1 - i if flip else i
                base = r * w
                vrow = v[i]
                trow = th[i]
                srow = step[i]
                for j in range(w):
                    inc[j] = inc0[i, j]
                for p in range(planes):
                    if zero_reset:
                        for j in range(w):
                            inc[j] += srow[j]
                            x = vrow[j] + inc[j]
                            s = x >= trow[j]
                            sp[j] = s
                            vrow[j] = x * np.float32(1 - s)
                    else:
                        for j in range(w):
                            inc[j] += srow[j]
                            x = vrow[j] + inc[j]
                            s = x >= trow[j]
                            sp[j] = s
                            vrow[j] = x - trow[j] * np.float32(s)
                    orow = out[p]
                    if aligned:
                        b0 = base >> 3
                        for b in range(w >> 3):
                            q = 8 * b
                            orow[b0 + b] = (
                                sp[q]
                                | (sp[q + 1] << 1)
                                | (sp[q + 2] << 2)
                                | (sp[q + 3] << 3)
                                | (sp[q + 4] << 4)
                                | (sp[q + 5] << 5)
                                | (sp[q + 6] << 6)
                                | (sp[q + 7] << 7)
                            )
                    else:
                        for j in range(w):
                            if sp[j]:
                                k = base + j
                                orow[k >> 3] |= np.uint8(1 << (k & 7))
            return out

        _KERNEL = kernel
    return _KERNEL or None


class SpikeSimulator:
    """Stateful integrate-and-fire simulator for one pixel array ``H x W``.

    ``backend="numpy"`` (default, fastest on CPU) or ``"torch"`` (``device`` "cpu"/"cuda").
    Feed luminance frames in order: :meth:`start` with frame 0, then :meth:`advance` with each
    next frame returns the ``[P, H, W]`` bool planes between the two frames.
    """

    def __init__(
        self,
        height: int,
        width: int,
        params: SimParams | None = None,
        seed: int = 0,
        *,
        backend: str = "numpy",
        device: str = "cpu",
        fpn_seed: int | None = None,
    ) -> None:
        self.h, self.w = int(height), int(width)
        self.p = params or SimParams()
        self.seed = int(seed)
        self.backend, self.device = backend, device
        if backend not in ("numpy", "torch"):
            raise R2SDepthError(f"backend must be numpy or torch, got {backend!r}")
        self.rng = np.random.default_rng(self.seed)
        th = np.full((self.h, self.w), self.p.threshold, np.float32)
        if self.p.fpn_sigma > 0:
            # the sensor's fixed pattern: its own seed when given (the same for every chunk)
            frng = self.rng if fpn_seed is None else np.random.default_rng(int(fpn_seed))
            th *= 1.0 + self.p.fpn_sigma * frng.standard_normal((self.h, self.w), np.float32)
            np.maximum(th, 0.05 * self.p.threshold, out=th)
        self.theta = th
        self.v = (self.rng.random((self.h, self.w), np.float32) * th).astype(np.float32)
        self.prev: np.ndarray | None = None

    def start(self, lum0: np.ndarray) -> None:
        """Set frame 0 (luminance ``[H, W]`` in [0, 1])."""
        self.prev = self._check(lum0)

    def _check(self, lum: np.ndarray) -> np.ndarray:
        lum = np.asarray(lum, dtype=np.float32)
        if lum.shape != (self.h, self.w):
            raise R2SDepthError(
                f"frame of shape {list(lum.shape)} does not match the simulator's {self.h}x{self.w}"
            )
        if not np.all(np.isfinite(lum)):
            raise R2SDepthError("frame contains NaN or inf")
        return lum

    def plane_luminance(self, l0: np.ndarray, l1: np.ndarray) -> Iterator[np.ndarray]:
        """The luminance of each of the P planes between ``l0`` and ``l1`` (float32 [H, W])."""
        p = self.p.planes_per_frame
        if self.p.interp == "hold":
            for _ in range(p):
                yield l1
        elif self.p.interp == "linear":
            for k in range(p):
                a = np.float32(plane_fraction(k, p, self.p.span))
                yield l0 + a * (l1 - l0)
        else:
            at = _flow_interpolator(l0, l1)
            for k in range(p):
                yield at(plane_fraction(k, p, self.p.span))

    def advance(self, lum1: np.ndarray) -> np.ndarray:
        """Simulate the planes between the previous frame and ``lum1``: bool ``[P, H, W]``."""
        if self.prev is None:
            raise R2SDepthError("SpikeSimulator.start(frame0) must be called before advance()")
        lum1 = self._check(lum1)
        if self.backend == "torch":
            out = self._advance_torch(self.prev, lum1)
        else:
            out = self._advance_numpy(self.prev, lum1)
        self.prev = lum1
        return out

    def _ramp(self, l0: np.ndarray, l1: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """First per-plane increment ``gain * L (+ dark)`` and its per-plane step (``None`` for
        hold); the numpy loop and the fused kernel share it so their bytes stay identical."""
        g, dark = np.float32(self.p.gain), np.float32(self.p.dark_current)
        if self.p.interp == "hold":
            return g * l1 + dark, None
        # the loops add ``step`` before each plane: start half a step back so that plane k gets
        # the light at plane_fraction(k, P, span) (the same value, incrementally)
        if self.p.span == 1.0:
            step = (g / np.float32(self.p.planes_per_frame)) * (l1 - l0)
            return g * l0 + dark - np.float32(0.5) * step, step
        span = np.float32(self.p.span)
        step = (g * span / np.float32(self.p.planes_per_frame)) * (l1 - l0)
        return g * (l0 + (np.float32(1) - span) * (l1 - l0)) + dark - np.float32(0.5) * step, step

    def advance_packed(self, lum1: np.ndarray) -> np.ndarray:
        """Like :meth:`advance` but returns the planes packed in the ``.dat`` layout (uint8
        ``[P, ceil(H*W/8)]``, LSB first, rows bottom to top). Uses the fused numba kernel for
        the noise-free hold/linear model on the numpy backend (identical bytes, ~5x faster)."""
        kern = _packed_kernel() if fused_kernel_applies(self.p, self.backend) else None
        if kern is None:
            return encode_planes(self.advance(lum1))
        if self.prev is None:
            raise R2SDepthError("SpikeSimulator.start(frame0) must be called before advance()")
        l1 = self._check(lum1)
        l0 = self.prev
        p = self.p.planes_per_frame
        inc0, step = self._ramp(l0, l1)
        if step is None:
            step = np.zeros_like(l1)
        out = np.zeros((p, (self.h * self.w + 7) // 8), np.uint8)
        kern(
            self.v,
            self.theta,
            inc0.astype(np.float32),
            step.astype(np.float32),
            p,
            self.p.reset == "zero",
            True,
            out,
        )
        self.prev = l1
        return out

    def _advance_numpy(self, l0: np.ndarray, l1: np.ndarray) -> np.ndarray:
        p, g = self.p.planes_per_frame, np.float32(self.p.gain)
        spk = np.empty((p, self.h, self.w), dtype=bool)
        v, th = self.v, self.theta
        tmp = np.empty_like(v)
        scalar_th = self.p.fpn_sigma == 0
        th_s = np.float32(self.p.threshold)
        dark = np.float32(self.p.dark_current)
        noisy = self.p.shot_photons > 0 or self.p.interp == "flow"
        if not noisy:
            # incremental linear ramp: inc_k = g*(l0 + a_k (l1 - l0)) (+ dark), one add per plane
            inc, step = self._ramp(l0, l1)
        lum_iter = self.plane_luminance(l0, l1) if noisy else None
        for k in range(p):
            if noisy:
                lk = next(lum_iter)  # type: ignore[arg-type]
                if self.p.shot_photons > 0:
                    n = self.p.shot_photons
                    lk = (self.rng.poisson(np.maximum(lk, 0) * (g * n)) / n).astype(np.float32)
                    v += lk
                else:
                    v += g * lk
                if dark:
                    v += dark
            else:
                if step is not None:
                    inc += step
                v += inc
            s = spk[k]
            np.greater_equal(v, th_s if scalar_th else th, out=s)
            if self.p.reset == "subtract":
                if scalar_th:
                    np.multiply(s, th_s, out=tmp)
                else:
                    np.multiply(s, th, out=tmp)
                v -= tmp
            else:
                np.logical_not(s, out=s)  # reuse as keep-mask, then restore
                v *= s
                np.logical_not(s, out=s)
        return spk

    def _advance_torch(self, l0: np.ndarray, l1: np.ndarray) -> np.ndarray:
        import torch  # noqa: PLC0415  spike/ works without torch: only the torch backend needs it

        dev = torch.device(self.device)
        p, g = self.p.planes_per_frame, self.p.gain
        v = torch.from_numpy(self.v).to(dev)
        th = torch.from_numpy(self.theta).to(dev)
        gen = torch.Generator(device=dev).manual_seed(int(self.rng.integers(2**62)))
        spk = torch.empty((p, self.h, self.w), dtype=torch.bool, device=dev)
        if self.p.interp == "flow":
            lums = [torch.from_numpy(np.ascontiguousarray(x)).to(dev) for x in self.plane_luminance(l0, l1)]
        else:
            t0, t1 = torch.from_numpy(l0).to(dev), torch.from_numpy(l1).to(dev)
        for k in range(p):
            if self.p.interp == "flow":
                lk = lums[k]
            elif self.p.interp == "hold":
                lk = t1
            else:
                a = plane_fraction(k, p, self.p.span)
                lk = t0 + a * (t1 - t0)
            if self.p.shot_photons > 0:
                n = self.p.shot_photons
                lk = torch.poisson(lk.clamp_min(0) * (g * n), generator=gen) / n
                v += lk
            else:
                v += g * lk
            if self.p.dark_current:
                v += self.p.dark_current
            s = v >= th
            spk[k] = s
            if self.p.reset == "subtract":
                v -= th * s
            else:
                v *= ~s
        self.v = v.cpu().numpy()
        return spk.cpu().numpy()


def simulate_chunk(
    lum_prev: np.ndarray,
    lum_cur: np.ndarray,
    params: SimParams | None = None,
    *,
    seed: int = 0,
    sequence: str = "",
    frame: int = 0,
    packed: bool = False,
    backend: str = "numpy",
    device: str = "cpu",
) -> np.ndarray:
    """The chunk of RGB frame ``frame``: the P planes between ``lum_prev`` (frame ``frame - 1``)
    and ``lum_cur`` (frame ``frame``), luminance ``[H, W]`` in [0, 1]. Returns uint8 0/1
    ``[P, H, W]``, or with ``packed`` the ``.dat`` bytes ``[P, ceil(H*W/8)]`` (same spikes).
    Deterministic from ``(seed, sequence, frame)`` (see the module docstring)."""
    l0, l1 = np.asarray(lum_prev, np.float32), np.asarray(lum_cur, np.float32)
    if l0.ndim != 2:
        raise R2SDepthError(f"luminance must be [H, W], got shape {list(l0.shape)}")
    sim = SpikeSimulator(
        l0.shape[0],
        l0.shape[1],
        params,
        stable_seed(seed, sequence, int(frame)),
        backend=backend,
        device=device,
        fpn_seed=stable_seed(seed, sequence, "fpn"),
    )
    sim.start(l0)
    if packed:
        return sim.advance_packed(l1)
    return sim.advance(l1).view(np.uint8)


def frame_window(
    lum: Any,
    frame: int,
    length: int,
    params: SimParams | None = None,
    *,
    seed: int = 0,
    sequence: str = "",
    first_frame: int = 0,
) -> np.ndarray:
    """The ``length``-plane window of RGB frame ``frame`` (``align="end"``): uint8 ``[T, H, W]``,
    oldest plane first, the last ``T`` planes of the chunks ``frame - ceil(T/P) + 1 .. frame``.

    ``lum(j)`` returns frame ``j``'s luminance ``[H, W]`` for ``first_frame <= j <= frame`` (only
    those are asked for: the window is causal); chunks before ``first_frame`` are the pre-roll
    (the first frame held). Raises when the window reaches before the pre-roll, exactly where a
    written stream (:func:`simulate_to_file`) has no planes."""
    params = params or SimParams()
    p = params.planes_per_frame
    if params.camera_rate_hz and int(length) > p:
        raise R2SDepthError(
            f"a {length}-plane window at camera_rate_hz={params.camera_rate_hz:g}: camera-rate chunks hold "
            f"{p} planes (sim.planes_per_frame); raise it to {length} or shorten the window"
        )
    n = -(-int(length) // p)
    j0 = frame - n + 1
    if j0 < first_frame - params.pre_roll_frames + 1:
        raise R2SDepthError(
            f"the {length}-plane window of frame {frame} starts before the stream's pre-roll "
            f"({params.pre_roll_frames} x {p} planes before frame {first_frame}); raise "
            f"sim.pre_roll_frames to {first_frame - j0 + 1} or shorten the window"
        )
    cache: dict[int, np.ndarray] = {}

    def get(j: int) -> np.ndarray:
        j = max(j, first_frame)
        if j not in cache:
            cache[j] = np.asarray(lum(j), np.float32)
        return cache[j]

    fused = fused_kernel_applies(params)

    def chunk(j: int) -> np.ndarray:
        kw = dict(seed=seed, sequence=sequence, frame=j)
        if not fused:
            return simulate_chunk(get(j - 1), get(j), params, **kw)
        # the fused kernel writes .dat bytes: decoding them is cheaper than the numpy loop (same spikes)
        h, w = get(j).shape
        return decode_planes(simulate_chunk(get(j - 1), get(j), params, packed=True, **kw), h, w)

    return np.concatenate([chunk(j) for j in range(j0, frame + 1)])[-int(length) :]


def _stream_meta(params: SimParams, seed: int, sequence: str, source: str) -> dict[str, Any]:
    """What a simulated stream's sidecar records of how it was made (before its frames are known)."""
    return {
        "simulator": {"model": "integrate-and-fire", **params.to_dict()},
        "planes_per_frame": params.planes_per_frame,
        "video_fps": params.video_fps,
        "seed": int(seed),
        "sequence": str(sequence),
        "source": str(source),
        "window_definition": "r2sdepth-rate-windows/1" if params.camera_rate_hz else "r2sdepth-chunks/1",
        "window_mode": params.window_mode,
        "pre_roll_planes": int(params.pre_roll_frames) * params.planes_per_frame,
    }


def simulate_to_file(
    frames: Iterable[np.ndarray],
    out: str | os.PathLike,
    params: SimParams | None = None,
    *,
    seed: int = 0,
    sequence: str = "",
    source: str = "",
    backend: str = "numpy",
    device: str = "cpu",
    extra_meta: dict[str, Any] | None = None,
    frame_ids: list[int] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Simulate a whole sequence of RGB/gray frames into the stream ``out`` (atomic) and its
    sidecar; returns the sidecar content. Needs at least two frames.

    The stream is the pre-roll followed by one chunk per frame (module docstring): frame ``k``'s
    window read from it equals :func:`frame_window` for the same ``(seed, sequence, frame id)``.
    ``frame_ids``: the dataset's consecutive frame numbers (e.g. KITTI's file numbers), the keys
    of the sidecar's ``frame_plane_index`` and of the chunk seeds; default 0, 1, 2, ...
    """
    params = params or SimParams()
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise R2SDepthError(f"{source or out}: no frames") from None
    l0 = luminance(first, linearize=params.linearize)
    h, w = l0.shape
    ids = list(frame_ids) if frame_ids is not None else None
    if ids is not None and any(b != a + 1 for a, b in zip(ids, ids[1:])):
        raise R2SDepthError(
            f"{out}: frame ids must be consecutive (chunk seeds and windows are per frame id)"
        )
    f0 = ids[0] if ids else 0
    r = int(params.pre_roll_frames)
    meta = {**_stream_meta(params, seed, sequence, source), **(extra_meta or {})}
    bar = None
    if progress:
        bar = tqdm(unit="frame", leave=False, desc=Path(out).name)
    sha = hashlib.sha256()
    n_frames = 0
    prev = l0

    def chunk(l_prev: np.ndarray, l_cur: np.ndarray, j: int) -> np.ndarray:
        return simulate_chunk(
            l_prev,
            l_cur,
            params,
            seed=seed,
            sequence=sequence,
            frame=j,
            packed=True,
            backend=backend,
            device=device,
        )

    with SpikeWriter(out, h, w, rate_hz=params.rate_hz, meta=meta) as wr:

        def put(packed: np.ndarray) -> None:
            sha.update(memoryview(packed).cast("B"))
            wr.append_packed(packed)

        for j in range(f0 - r + 1, f0 + 1):  # pre-roll: the first frame held
            put(chunk(l0, l0, j))
        n_frames = 1
        for img in it:
            cur = luminance(img, linearize=params.linearize)
            if cur.shape != (h, w):
                raise R2SDepthError(
                    f"{source or out}: frame {n_frames} is {cur.shape[1]}x{cur.shape[0]}, "
                    f"the first is {w}x{h}"
                )
            put(chunk(prev, cur, f0 + n_frames))
            prev = cur
            n_frames += 1
            if bar is not None:
                bar.update(1)
        if n_frames < 2:
            raise R2SDepthError(f"{source or out}: at least two frames are needed, got 1")
        if ids is not None and len(ids) != n_frames:
            raise R2SDepthError(f"{out}: {len(ids)} frame ids for {n_frames} frames")
        wr.meta["rgb_frames"] = n_frames
        index = [(k + r) * params.planes_per_frame for k in range(n_frames)]
        wr.meta["frame_plane_index"] = index if ids is None else {str(f): i for f, i in zip(ids, index)}
        wr.meta["sha256"] = sha.hexdigest()
        wr.meta["bytes"] = wr.frames * ((h * w + 7) // 8)
        result = wr.sidecar_meta()
    if bar is not None:
        bar.close()
    return result
