"""The Python API: depth from spike windows in a few lines.

    import r2sdepth
    from r2sdepth.spike import SpikeStream

    with SpikeStream("car_250x400.dat", 250, 400) as st:
        window = st.read(0, 64)                              # uint8 [T, H, W]
    depth = r2sdepth.predict("demo", window)                 # float32 [H, W], model units

    model = r2sdepth.load_model("runs/student/checkpoints/last.ckpt", device="cuda")
    depths = model.predict(windows)                          # [B, T, H, W] -> [B, H, W]

Every prediction goes through the one spike-only path that ``r2sdepth infer``, ``eval`` and the
exported models use (:func:`r2sdepth.models.r2sdepth.spike_depth`), with ``infer``'s spatial fit
(resize to the trained size or ``net_size`` and back, or pad to multiples of 32 and crop back;
:meth:`DepthModel.stream` for a live source). Depth is in the
model's units: metres up to one scale factor per image for self-supervised models.
"""

from __future__ import annotations

import os
import queue
import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch

from r2sdepth.backends import SpikeRuntime, resolve_backend
from r2sdepth.checkpoint import check_window, checkpoint_path, rate_mismatch, trained_window, trained_windows
from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.infer import (
    depth_from_net,
    fit_rgb,
    fit_spatial,
    network_fit,
    predict_batch,
    resolve_modality,
)
from r2sdepth.train.load import load_checkpoint


class DepthModel:
    """A checkpoint loaded once for repeated predictions (``load_model``).

    Attributes: ``modality`` (of the checkpoint), ``window`` (planes per window it was trained
    with), ``rate_hz`` (their planes per second) and ``window_mode`` (``camera-rate`` or
    ``per-frame``), ``trained_size`` (``(H, W)`` it was trained at), ``device``, ``meta`` (checkpoint
    metadata), ``runtime`` (where the spike-only network runs: ``runtime.backend`` is ``onnxruntime``
    or ``torch``; ``backend="auto"`` picks ONNX Runtime on a CPU when it is installed, see
    :mod:`r2sdepth.backends`).
    """

    def __init__(
        self, checkpoint: str | os.PathLike = "demo", device: str = "cpu", backend: str = "auto"
    ) -> None:
        self.checkpoint = checkpoint_path(checkpoint)
        self.module, self.meta = load_checkpoint(self.checkpoint, device)
        self.device = device
        self.runtime = SpikeRuntime(self.module.net, resolve_backend(backend, device))
        self.modality: str = self.meta["modality"]
        self.window = trained_window(self.meta)
        self.trained_size = (int(self.meta["height"]), int(self.meta["width"]))
        tw = trained_windows(self.meta)
        self.rate_hz: float = tw["rate_hz"]
        self.window_mode: str = tw["mode"]

    def __repr__(self) -> str:
        return (
            f"DepthModel({str(self.checkpoint)!r}, modality={self.modality!r}, window={self.window}, "
            f"trained_size={self.trained_size[0]}x{self.trained_size[1]}, device={self.device!r}, "
            f"backend={self.runtime.backend!r})"
        )

    def predict(
        self,
        spikes: np.ndarray,
        *,
        rgb: np.ndarray | None = None,
        net_size: tuple[int, int] | None = None,
        rate_hz: float | None = None,
        fit: str = "resize",
    ) -> np.ndarray:
        """Depth for spike windows.

        ``spikes``: ``[T, H, W]`` or ``[B, T, H, W]``, binary (bool / uint8 / float 0-1), oldest
        plane first. ``rgb``: ``[H, W, 3]`` / ``[B, H, W, 3]`` uint8 frames, only for rgb or
        fusion checkpoints (``modality`` then ``rgb``/``fusion``; without it, the spike-only path).
        ``net_size``: network input ``(H, W)``, multiples of 32; without it ``fit="resize"``
        (default) resizes to the trained size and ``fit="pad"`` pads to multiples of 32
        (:func:`r2sdepth.infer.network_fit`, as ``r2sdepth infer``).
        ``rate_hz``: the windows' planes per second (a camera's rate); warns when it is not the
        rate the model was trained at (:func:`r2sdepth.checkpoint.rate_mismatch`).
        Returns float32 depth ``[H, W]`` / ``[B, H, W]`` at the input's size.
        """

        x = np.asarray(spikes)
        single = x.ndim == 3
        if single:
            x = x[None]
        if x.ndim != 4 or min(x.shape) == 0:
            raise R2SDepthError(
                f"spikes must be [T, H, W] or [B, T, H, W], got shape {tuple(np.shape(spikes))}"
            )
        if x.dtype == np.uint8 or x.dtype == np.bool_:
            if x.dtype == np.uint8 and x.max() > 1:
                raise R2SDepthError("spikes must be binary (0/1)")
        elif not np.isfinite(x).all() or ((x != 0) & (x != 1)).any():
            raise R2SDepthError("spikes must be binary (0/1)")
        x = x.astype(np.uint8, copy=False)
        modality = resolve_modality(self.meta, "spike" if rgb is None else None)
        if modality != "rgb":
            check_window(self.meta, x.shape[1])
            why = rate_mismatch(self.meta, float(rate_hz), x.shape[1]) if rate_hz is not None else None
            if why:
                warnings.warn(why, R2SDepthWarning, stacklevel=2)
        hw = x.shape[-2:]
        if fit not in ("resize", "pad"):
            raise R2SDepthError(f"fit must be 'resize' or 'pad', got {fit!r}")
        mode, net_hw = network_fit(hw, net_size, fit, self.trained_size)
        if net_hw[0] <= 0 or net_hw[1] <= 0 or net_hw[0] % 32 or net_hw[1] % 32:
            raise R2SDepthError(f"net_size {net_hw[0]}x{net_hw[1]}: the network needs multiples of 32")
        batch: dict[str, Any] = {
            "spikes": torch.from_numpy(np.ascontiguousarray(fit_spatial(x, net_hw, mode))).to(self.device)
        }
        if modality in ("rgb", "fusion"):
            im = np.asarray(rgb)
            im = im[None] if im.ndim == 3 else im
            if im.shape[0] != x.shape[0] or im.shape[1:3] != hw or im.shape[-1] != 3:
                raise R2SDepthError(
                    f"rgb must be [B, {hw[0]}, {hw[1]}, 3] matching the spikes, got {im.shape}"
                )
            batch["color"] = fit_rgb(im, net_hw, mode)[:, None].to(self.device)
        with torch.no_grad():
            depth = depth_from_net(
                predict_batch(self.module, batch, modality, runtime=self.runtime), hw, mode
            )
        out = depth[:, 0].float().cpu().numpy()
        return out[0] if single else out

    def stream(
        self, windows: Iterable[np.ndarray], *, queue_size: int = 4, **kw: Any
    ) -> Iterator[np.ndarray]:
        """Depth maps ``[H, W]`` (float32, model units) for an iterator of spike windows
        ``[T, H, W]`` (e.g. a camera SDK's callback loop), in order, one per window.

        A reader thread pulls windows into a queue of at most ``queue_size``: when the model falls
        behind, the producer blocks instead of memory growing. An error raised by the iterator is
        raised here; closing the generator early stops the reader. ``kw``: as :meth:`predict`
        (``net_size``, ``fit``, ``rate_hz``)."""
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise R2SDepthError(f"queue_size must be a positive integer, got {queue_size!r}")
        q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=queue_size)
        stop = threading.Event()

        def put(msg: tuple[str, Any]) -> bool:
            while not stop.is_set():
                try:
                    q.put(msg, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def reader() -> None:
            try:
                for w in windows:
                    if not put(("window", w)):
                        return
                put(("end", None))
            except BaseException as e:  # handed to the consumer, raised there
                put(("error", e))

        t = threading.Thread(target=reader, name="r2sdepth-stream-reader", daemon=True)
        t.start()
        try:
            while True:
                what, v = q.get()
                if what == "end":
                    return
                if what == "error":
                    raise v
                yield self.predict(v, **kw)
        finally:
            stop.set()
            t.join(timeout=1.0)


def load_model(
    checkpoint: str | os.PathLike = "demo", device: str = "cpu", backend: str = "auto"
) -> DepthModel:
    """Load a checkpoint (a path, or ``"demo"`` for the shipped spike-only model) once; ``backend``:
    ``auto``, ``torch`` or ``onnxruntime`` (:mod:`r2sdepth.backends`)."""
    return DepthModel(checkpoint, device, backend)


def predict(checkpoint: str | os.PathLike | DepthModel, spikes: np.ndarray, **kw: Any) -> np.ndarray:
    """Depth ``[H, W]`` (or ``[B, H, W]``) from spike window(s) ``[T, H, W]`` (or ``[B, T, H, W]``);
    see :meth:`DepthModel.predict`. ``checkpoint``: a path, ``"demo"``, or a loaded model."""
    model = checkpoint if isinstance(checkpoint, DepthModel) else DepthModel(checkpoint)
    return model.predict(spikes, **kw)
