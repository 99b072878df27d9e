"""Deployment: the spike-only network as TorchScript or ONNX, and slim checkpoints.

The exported graph (``graph="spike"``) takes one spike window ``[1, T, H, W]`` (float32 0/1,
oldest plane first) and returns depth ``[1, 1, H, W]`` (the model's units; self-supervised depth
is known up to scale). ``T``, ``H`` and ``W`` are fixed at export (the ConvGRU over the window's
chunks is unrolled); ``H`` and ``W`` must be multiples of 32.

``graph="rgb"`` exports an ``rgb`` model's network instead: RGB ``[B, 3, H, W]`` in ``[0, 1]`` ->
sigmoid disparity ``[B, 1, H, W]`` (relative disparity, the batch size free in ONNX), the form
``r2sdepth distill --teacher FILE.onnx`` takes as an external teacher (``distill.teacher_output:
disparity``).
"""

from __future__ import annotations

import io
import math
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from r2sdepth.atomic import write_bytes_atomic
from r2sdepth.checkpoint import (
    checkpoint_path,
    load_file,
    save_atomic,
    state_dict_of,
    trained_window,
    trained_windows,
)
from r2sdepth.errors import R2SDepthError
from r2sdepth.models.r2sdepth import spike_depth
from r2sdepth.train.load import load_checkpoint


class SpikeDepth(nn.Module):
    """Spike window ``[B, T, H, W]`` -> depth ``[B, 1, H, W]``: a module around
    :func:`r2sdepth.models.r2sdepth.spike_depth`, the same spike-only path ``infer`` runs."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if net.modality == "rgb":
            raise R2SDepthError(
                "an rgb checkpoint has no spike-only network to export (--graph rgb exports its RGB network)"
            )
        if net.modality == "fusion" and not hasattr(net, "student_decoder"):
            raise R2SDepthError("this fusion checkpoint has no spike (student) decoder to export")
        self.net = net

    def forward(self, spikes: torch.Tensor) -> torch.Tensor:
        return spike_depth(self.net, spikes)


class RgbDisparity(nn.Module):
    """RGB ``[B, 3, H, W]`` in ``[0, 1]`` -> the sigmoid disparity ``[B, 1, H, W]`` of an ``rgb``
    network (its finest output scale)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        if net.modality != "rgb":
            raise R2SDepthError(
                f"--graph rgb exports an rgb checkpoint's network; this one is {net.modality}"
            )
        self.net = net

    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        return self.net(rgb=rgb)["disp"][0]


def spike_network(net: nn.Module, src: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """``(model config, state dict)`` of the spike-only network of a spike model, or of a fusion
    model's spike path (its spike branch and student decoder, renamed as a spike model's)."""
    if net.modality == "spike":
        return dict(net.cfg), net.state_dict()
    if net.modality != "fusion" or not hasattr(net, "student_decoder"):
        raise R2SDepthError(f"{src}: this {net.modality} model has no spike-only network")
    state = {
        k.replace("student_decoder.", "decoder.", 1): v
        for k, v in net.state_dict().items()
        if k.startswith(("spike.", "student_decoder.")) or k == "w_rgb"
    }
    return {**net.cfg, "modality": "spike"}, state


def slim_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    modality: str | None = None,
    extra: dict[str, Any] | None = None,
    depth_scale: float | None = None,
) -> Path:
    """Network weights + metadata only (no optimiser, teacher or pose net): what ``infer``,
    ``eval`` and ``export`` need. A fusion checkpoint can be slimmed to its spike path
    (``modality="spike"``). ``extra``: more metadata entries (e.g. how the model was made),
    written in the same save. ``depth_scale``: the copy's depth is that many times ``src``'s (e.g.
    metres from :func:`r2sdepth.infer.speed_scale_split`'s factor): the network's depth range is
    multiplied by it, which scales every depth exactly (``depth = 1 / (1/max + (1/min - 1/max)
    disp)``); recorded, with ``extra``, as ``depth_scale`` (an ensemble's members alike)."""
    if depth_scale is not None and not (math.isfinite(depth_scale) and depth_scale > 0):
        raise R2SDepthError(f"a depth scale must be a positive number, got {depth_scale}")
    module, meta = load_checkpoint(src)
    net = module.net
    cfg, state = dict(net.cfg), net.state_dict()
    if modality == "spike" and net.modality == "fusion":
        cfg, state = spike_network(net, src)
    if depth_scale is not None:
        cfg = _scaled_range(cfg, depth_scale)
        if meta.get("ensemble"):  # each member's own metadata too (`adapt` takes an ensemble apart)
            members = meta["ensemble"]
            meta["ensemble"] = [m | {"model": _scaled_range(m["model"], depth_scale)} for m in members]
        before = float((meta.get("depth_scale") or {}).get("factor", 1.0))
        meta["depth_scale"] = {"factor": before * depth_scale, **(extra or {})}
        extra = None
    meta = {k: v for k, v in meta.items() if k not in ("distill",)}
    meta.update({"slim": True, "modality": cfg["modality"], "model": cfg, "source": Path(src).name})
    meta.update(extra or {})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"r2sdepth": meta, "state_dict": state}, dst)
    return dst


def _scaled_range(cfg: dict[str, Any], factor: float) -> dict[str, Any]:
    """A model config whose depth range (``min_depth``, ``max_depth``, metres) is ``factor`` times
    ``cfg``'s: the network's depth is then ``factor`` times as large at every pixel."""
    return {**cfg, "min_depth": cfg["min_depth"] * factor, "max_depth": cfg["max_depth"] * factor}


#: model settings that may differ between the members of an ensemble (they only set the start of training)
ENSEMBLE_FREE_KEYS = ("pretrained", "init_depth")


def ensemble_checkpoint(
    members: list[str | os.PathLike], dst: str | os.PathLike, extra: dict[str, Any] | None = None
) -> Path:
    """One slim checkpoint holding several spike-only networks as one
    (:class:`~r2sdepth.models.r2sdepth.SpikeEnsemble`: the geometric mean of their depths per pixel)
    that ``eval``, ``infer``, ``export`` and the API load like any model. Every member must be a
    spike-only network (or a fusion model's spike path) of the same architecture, input size, window
    and simulated camera; the first member's metadata describes the ensemble, each member's own is
    kept under ``ensemble``."""
    if len(members) < 2:
        raise R2SDepthError(f"an ensemble needs at least 2 checkpoints, got {len(members)}")
    nets, metas = [], []
    for m in members:
        module, meta = load_checkpoint(m)
        if meta.get("ensemble"):
            raise R2SDepthError(f"{m}: already an ensemble; give its members")
        nets.append(spike_network(module.net, m))
        metas.append({k: v for k, v in meta.items() if k not in ("distill",)} | {"source": str(m)})
    first_cfg, first = nets[0][0], metas[0]
    same = {k: v for k, v in first_cfg.items() if k not in ENSEMBLE_FREE_KEYS}
    for m, (cfg, _), meta in zip(members, nets, metas):
        diff = sorted(
            k for k in set(same) | set(cfg) if k not in ENSEMBLE_FREE_KEYS and cfg.get(k) != same.get(k)
        )
        if diff:
            raise R2SDepthError(f"{m}: its network differs from {members[0]}'s in {', '.join(diff)}")
        for key in ("height", "width"):
            if meta.get(key) != first.get(key):
                raise R2SDepthError(
                    f"{m}: trained at {key} {meta.get(key)}, {members[0]} at {first.get(key)}"
                )
        if trained_windows(meta) != trained_windows(first):
            raise R2SDepthError(f"{m}: trained on other windows than {members[0]} ({trained_windows(meta)})")
        if (meta.get("data") or {}).get("sim") != (first.get("data") or {}).get("sim"):
            raise R2SDepthError(f"{m}: its simulated camera (data.sim) differs from {members[0]}'s")
    state = {f"members.{i}.{k}": v for i, (_, st) in enumerate(nets) for k, v in st.items()}
    meta = {k: v for k, v in first.items() if k != "source"}
    meta.update(
        {"slim": True, "modality": "spike", "model": same | {"pretrained": False, "init_depth": None}}
    )
    meta.update({"ensemble": metas, **(extra or {})})
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"r2sdepth": meta, "state_dict": state}, dst)
    return dst


def ensemble_members(src: str | os.PathLike, folder: str | os.PathLike) -> list[Path]:
    """The members of an ensemble checkpoint (:func:`ensemble_checkpoint`) as slim checkpoints
    ``folder/member_{i}.ckpt``, each with its own metadata: what ``adapt`` trains one by one."""
    ck = load_file(checkpoint_path(src))
    metas = (ck.get("r2sdepth") or {}).get("ensemble")
    if not metas:
        raise R2SDepthError(f"{src}: not an ensemble checkpoint")
    state = state_dict_of(ck, src)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, meta in enumerate(metas):
        prefix = f"members.{i}."
        member = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        out.append(save_atomic({"r2sdepth": dict(meta), "state_dict": member}, folder / f"member_{i}.ckpt"))
    return out


def onnx_bytes(model: nn.Module, x: torch.Tensor, graph: str = "spike") -> bytes:
    """The ONNX graph (opset 17) of ``model`` traced on ``x`` (the size fixed), serialised in
    memory: input ``spikes`` ``[1, T, H, W]``, output ``depth``; or, ``graph="rgb"``, input ``rgb``
    ``[B, 3, H, W]``, output ``disp``, the batch size free."""
    names = (["spikes"], ["depth"]) if graph == "spike" else (["rgb"], ["disp"])
    axes = None if graph == "spike" else {"rgb": {0: "batch"}, "disp": {0: "batch"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the size is fixed at export
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's notes: not actionable
        warnings.filterwarnings("ignore", message="Constant folding")  # the exporter's note on Slice steps
        torch.onnx.export(
            model,
            (x,),
            buf,
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    return buf.getvalue()


def export_model(
    checkpoint: str | os.PathLike,
    fmt: str,
    out: str | os.PathLike,
    *,
    height: int | None = None,
    width: int | None = None,
    window: int | None = None,
    check: bool = True,
    graph: str = "spike",
) -> dict[str, Any]:
    """Export the spike-only network (``graph="spike"``; or an rgb model's network, ``"rgb"``) to
    ``fmt`` (``torchscript`` or ``onnx``) at a fixed size; compares the exported model with eager
    PyTorch on a random input and returns ``{"path", "max_abs_diff", "checked_with"}``."""
    if graph not in ("spike", "rgb"):
        raise R2SDepthError(f"unknown --graph {graph!r} (spike or rgb)")
    module, meta = load_checkpoint(checkpoint)
    h, w = int(height or meta["height"]), int(width or meta["width"])
    if h % 32 or w % 32:
        raise R2SDepthError(f"--net-size {h}x{w}: the network needs multiples of 32")
    g = torch.Generator().manual_seed(0)
    if graph == "spike":
        t = int(window or trained_window(meta))
        model: nn.Module = SpikeDepth(module.net).eval()
        x = (torch.rand(1, t, h, w, generator=g) < 0.2).float()
    else:
        model = RgbDisparity(module.net).eval()
        x = torch.rand(1, 3, h, w, generator=g)
    with torch.no_grad():
        ref = model(x)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt not in ("torchscript", "onnx"):
        raise R2SDepthError(f"unknown export format {fmt!r} (onnx or torchscript)")

    buf = io.BytesIO()  # serialised in memory, written by Python: a full disk is an OSError, not an abort
    if fmt == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", FutureWarning
            )  # TorchScript's deprecation notice; still the format asked for
            warnings.simplefilter(
                "ignore", torch.jit.TracerWarning
            )  # shape checks fixed at export: the size is fixed
            traced = torch.jit.trace(model, x, check_trace=False)
            torch.jit.save(traced, buf)
        write_bytes_atomic(out, buf.getvalue())
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            got = torch.jit.load(str(out))(x)
        diff, how = float((got - ref).abs().max()), "torch.jit.load"
    elif fmt == "onnx":
        write_bytes_atomic(out, onnx_bytes(model, x, graph))
        diff, how = float("nan"), "not checked (install onnxruntime)"
        if check:
            try:
                import onnxruntime as ort  # noqa: PLC0415  optional dependency (the export extra)
            except ImportError:
                ort = None
            if ort is not None:
                sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
                got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
                diff, how = float(np.abs(got - ref.numpy()).max()), f"onnxruntime {ort.__version__}"
    else:
        raise R2SDepthError(f"unknown export format {fmt!r} (onnx or torchscript)")
    return {
        "path": str(out),
        "format": fmt,
        "input": list(x.shape),
        "graph": graph,
        "max_abs_diff": diff,
        "checked_with": how,
        "max_depth": float(ref.max()),
    }


def time_model(fn, x: torch.Tensor, repeats: int = 10) -> float:
    """Median wall time (seconds) of ``fn(x)`` over ``repeats`` runs after one warm-up."""
    fn(x)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))
