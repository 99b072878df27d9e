"""Where the spike-only network runs at inference: eager PyTorch or ONNX Runtime.

``r2sdepth infer`` and the Python API (:class:`r2sdepth.api.DepthModel`) predict spike-only depth
through a :class:`SpikeRuntime`. ``backend="auto"`` (the default) picks ONNX Runtime on a CPU when
it is installed (``pip install 'r2sdepth[export]'``): the same graph as ``r2sdepth export``
(:func:`r2sdepth.export.onnx_bytes` of :class:`r2sdepth.export.SpikeDepth`), float32, equal to
eager PyTorch within float32 rounding (relative 1e-5 on the shipped models) and 1.4-2.0x faster on
2 CPU threads (``benchmarks/bench_infer.py --fast-paths``; README, "Speed"). Otherwise, and for
``backend="torch"``, eager PyTorch. A session is built on first use for each window shape
``[B, T, H, W]`` (the export traces the network at that shape: about a second for the shipped
models, a few for paper-size ones).
"""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import torch

from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.export import SpikeDepth, onnx_bytes
from r2sdepth.models.r2sdepth import R2SDepthNet, spike_depth

BACKENDS = ("auto", "torch", "onnxruntime")


def resolve_backend(backend: str, device: str) -> str:
    """``torch`` or ``onnxruntime`` for the spike-only path on ``device``; one-line errors for an
    unknown name, or ONNX Runtime asked for where it cannot run."""
    if backend not in BACKENDS:
        raise R2SDepthError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    have_ort = importlib.util.find_spec("onnxruntime") is not None
    on_cpu = torch.device(device).type == "cpu"
    if backend == "onnxruntime":
        if not have_ort:
            raise R2SDepthError("backend onnxruntime needs onnxruntime: pip install 'r2sdepth[export]'")
        if not on_cpu:
            raise R2SDepthError(
                f"backend onnxruntime runs on the CPU here, not on {device}; use backend torch"
            )
        return "onnxruntime"
    return "onnxruntime" if backend == "auto" and have_ort and on_cpu else "torch"


class SpikeRuntime:
    """Spike window ``[B, T, H, W]`` (uint8 0/1) -> depth ``[B, 1, H, W]`` (model units) through
    :func:`r2sdepth.models.r2sdepth.spike_depth`, eagerly or in ONNX Runtime (module docstring).
    Flip post-processing always runs eagerly. ``backend``: what :func:`resolve_backend` chose;
    ``auto_fallback``: when an ONNX export fails (a network the exporter cannot trace), warn once
    and run eagerly instead of raising."""

    def __init__(self, net: R2SDepthNet, backend: str = "torch", auto_fallback: bool = True) -> None:
        self.net, self.backend, self.auto_fallback = net, backend, auto_fallback
        self._sessions: dict[tuple[int, ...], object] = {}

    def __call__(self, spikes: torch.Tensor, post_process: bool = False) -> torch.Tensor:
        if self.backend == "onnxruntime" and not post_process:
            sess = self._session(spikes)
            if sess is not None:
                x = spikes.to(torch.uint8).cpu().numpy()
                return torch.from_numpy(np.asarray(sess.run(None, {"spikes": x})[0]))
        return spike_depth(self.net, spikes, post_process=post_process)

    def _session(self, spikes: torch.Tensor) -> object | None:
        shape = tuple(spikes.shape)
        if shape not in self._sessions:
            import onnxruntime as ort  # noqa: PLC0415  optional dependency (the export extra)

            so = ort.SessionOptions()
            so.intra_op_num_threads = torch.get_num_threads()
            so.add_session_config_entry(
                "session.intra_op.allow_spinning", "0"
            )  # no busy cores between windows
            try:
                graph = onnx_bytes(SpikeDepth(self.net).eval(), spikes.to(torch.uint8).cpu())
                self._sessions[shape] = ort.InferenceSession(graph, so, providers=["CPUExecutionProvider"])
            except Exception as e:  # the exporter and ONNX Runtime raise their own exception classes
                if not self.auto_fallback:
                    raise R2SDepthError(
                        f"ONNX Runtime cannot run this network: {type(e).__name__}: {e}"
                    ) from e
                warnings.warn(
                    f"ONNX Runtime cannot run this network ({type(e).__name__}); running it in PyTorch",
                    R2SDepthWarning,
                    stacklevel=3,
                )
                self.backend = "torch"
                return None
        return self._sessions[shape]
