"""Checkpoint files: safe loading, tensor checksums, atomic saving, shipped checkpoints by name.

The one place that reads and writes checkpoint files (training, resume, ``--init_from``,
``--teacher``, ``eval``, ``infer``, ``export``); it sits below the models and Lightning
modules. Rebuilding a model from a file is :func:`r2sdepth.train.load.load_checkpoint`.

* **Loading never executes pickled code**: ``torch.load(weights_only=True)``, PyTorch's
  restricted unpickler (tensors, dicts, lists, numbers, strings), plus the allow-list
  :data:`SAFE_GLOBALS`. A checkpoint carrying any other object is refused with one line.
* **Checksums**: every checkpoint r2sdepth writes records ``r2sdepth_checksum``, a SHA-256 over
  the names, dtypes, shapes and bytes of every tensor of its ``state_dict``; loading verifies
  it, so flipped bits are an error instead of silently different weights.
* **Atomic saving**: the file is written to a temporary name in the destination folder (same
  filesystem), flushed and fsynced, then renamed; a full disk or a kill leaves the previous file
  intact and no partial file under the final name.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pathlib
import re
import warnings
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.data import AttributeDict
from lightning.pytorch.plugins.io import TorchCheckpointIO

from r2sdepth.atomic import tmp_path_for
from r2sdepth.config import DataConfig
from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.spike.simulate import SimParams

CHECKSUM_KEY = "r2sdepth_checksum"


def _safe_globals() -> list[Any]:
    """Objects (besides plain containers and tensors) that Lightning checkpoints hold."""
    out: list[Any] = [AttributeDict]
    with contextlib.suppress(ImportError):
        out += [pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath]
    return out


SAFE_GLOBALS = _safe_globals()


def state_checksum(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 (hex) over ``name, dtype, shape, bytes`` of every tensor of ``state``, in name order."""
    h = hashlib.sha256()
    for k in sorted(state):
        v = state[k]
        if not torch.is_tensor(v):
            continue
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def with_checksum(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """``checkpoint`` with ``r2sdepth_checksum`` of its ``state_dict`` set (in place)."""
    if isinstance(checkpoint.get("state_dict"), dict):
        checkpoint[CHECKSUM_KEY] = state_checksum(checkpoint["state_dict"])
    return checkpoint


def save_atomic(checkpoint: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``checkpoint`` (with its checksum) to ``path`` atomically (see module docstring)."""

    path = Path(path)
    with_checksum(checkpoint)
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    tmp = None
    try:
        tmp = tmp_path_for(path)  # makes the folder and the temporary file: a full disk can fail here too
        with open(tmp, "wb") as f:
            f.write(buf.getbuffer())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if isinstance(e, OSError):
            raise R2SDepthError(f"{path}: cannot write checkpoint ({e.strerror or e})") from e
        raise
    return path


def load_file(path: str | os.PathLike, *, verify: bool = True) -> dict[str, Any]:
    """Read a checkpoint file safely (no pickled code runs) and verify its checksum."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 (torch raises many kinds)
        text = str(e)

        # torch's wording varies: "Unsupported global: GLOBAL x.y" / "unsupported GLOBAL x.y whose module ..."
        glob = re.search(r"GLOBAL ([\w.]+)", text)
        if glob:
            raise R2SDepthError(
                f"{path}: refused: the checkpoint holds a pickled {glob.group(1)}, which "
                "would run code on load (only tensors and plain data are accepted)"
            ) from e
        why = re.search(r"WeightsUnpickler error: \s*(.+)", text)
        msg = why.group(1).strip() if why else (text.strip().splitlines() or [e.__class__.__name__])[0]
        raise R2SDepthError(f"{path}: unreadable checkpoint ({e.__class__.__name__}: {msg[:200]})") from e
    if not isinstance(ck, dict):
        raise R2SDepthError(f"{path}: not a checkpoint (a {type(ck).__name__}, expected a dict)")
    if verify and CHECKSUM_KEY in ck:
        state = ck.get("state_dict")
        if not isinstance(state, dict) or state_checksum(state) != ck[CHECKSUM_KEY]:
            raise R2SDepthError(f"{path}: checksum mismatch: the weights are corrupted")
    return ck


def state_dict_of(ck: dict[str, Any], path: str | os.PathLike) -> dict[str, torch.Tensor]:
    state = ck.get("state_dict")
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise R2SDepthError(f"{path}: no state_dict of tensors in this checkpoint")
    return state


SHIPPED_CHECKPOINTS: dict[str, Path] = {
    "demo": Path(__file__).resolve().parent / "assets" / "demo_spike_64x224.ckpt",  # spike-only, 64x224, T=64
    # spike-only, 64x224, T=64, adapted to real KITTI footage (scripts/make_real_model.py)
    "real": Path(__file__).resolve().parent / "assets" / "real_spike_64x224.ckpt",
}


# What the metadata cannot say: output units and the measured ratio ground truth / prediction
# (per-image median ratios, Garg crop, 80 m; `r2sdepth eval --checkpoint NAME --scaling none`).
SHIPPED_NOTES: dict[str, dict[str, str]] = {
    "demo": {
        "units": "relative depth (model units, about 0.1-0.4; metres up to one scale)",
        "typical_scale": "metres = x64 on the synthetic learning-check scenes, x58 on KITTI drive 0005 "
        "(frames 0-29), x84 on drive 0009 (frames 0-50): use --camera-height, --scale or "
        "`r2sdepth speed-scale`",
        "trained_on": "synthetic streets, stage-2 distillation (scripts/make_demo_model.py)",
    },
    "real": {
        "units": "near metres (trained with synthetic exact depth, then self-distilled on real footage)",
        "typical_scale": "metres = x0.74 on KITTI drive 0005 (frames 0-29), x1.03 on drive 0009 "
        "(frames 0-50); --camera-height 1.65 (KITTI) brings it within 1.2x of median scaling on both "
        "(1.01x, 1.19x)",
        "trained_on": "an ensemble of 3 networks (seeds 0-2, the geometric mean of their depths; 3x the "
        "compute of one): synthetic traffic (exact depth) with 20 kHz camera-rate windows, each + 1200 steps "
        "of self-distillation on the unlabelled KITTI drive 0095 (no LiDAR; "
        "benchmarks/camera_rate_transfer.py --ensemble, RULE.md addendum 9)",
    },
}


def trained_window(meta: dict[str, Any]) -> int:
    """Planes per window a checkpoint was trained with (its metadata; else the schema's default)."""

    return int(meta.get("window") or (meta.get("data") or {}).get("window") or DataConfig.window)


def trained_windows(meta: dict[str, Any]) -> dict[str, Any]:
    """How a checkpoint's spike windows were made (from its metadata): ``planes`` per window,
    ``rate_hz`` (planes per second), ``duration_s`` of a window and the ``mode`` (``camera-rate``
    or ``per-frame``, :class:`r2sdepth.spike.simulate.SimParams`)."""

    d = meta.get("data") or {}
    sim = SimParams(**{k: v for k, v in (d.get("sim") or {}).items() if k in SimParams.__dataclass_fields__})
    planes = int(meta.get("window") or d.get("window") or 0) or None
    return {
        "planes": planes,
        "rate_hz": sim.rate_hz,
        "duration_s": planes / sim.rate_hz if planes else None,
        "mode": sim.window_mode,
    }


def check_window(meta: dict[str, Any], window: int) -> None:
    """Refuse (one line) a window length the network cannot take: its spike representation
    splits the window into ``chunks x bins`` equal sub-windows, so ``T`` must be a positive
    multiple of that product; warn when it differs from the trained length."""
    rep = (meta.get("model") or {}).get("spike_repr") or {}
    per = int(rep.get("chunks", 4)) * int(rep.get("bins", 8))
    trained = trained_windows(meta)["planes"]
    if isinstance(window, bool) or int(window) != window or window <= 0 or window % per:
        near = sorted({max(per, window // per * per), (window // per + 1) * per}) if window > 0 else [per]
        raise R2SDepthError(
            f"window {window}: this model splits a window into {rep.get('chunks', 4)} chunks x "
            f"{rep.get('bins', 8)} "
            f"bins, so it takes multiples of {per} planes (e.g. {' or '.join(map(str, near))}; trained on "
            f"{trained})"
        )
    if trained and int(window) != trained:
        warnings.warn(
            f"window {window} differs from the {trained} planes the model was trained on (depth may "
            f"suffer): --window {trained}",
            R2SDepthWarning,
            stacklevel=3,
        )


#: a stream whose planes per second differ from the trained ones by more than this factor is warned about
RATE_TOLERANCE = 1.5


def rate_mismatch(meta: dict[str, Any], rate_hz: float, window: int) -> str | None:
    """A one-line warning when windows of ``window`` planes at ``rate_hz`` (planes per second) are
    not the kind the checkpoint was trained on (rates differing by more than
    :data:`RATE_TOLERANCE`x), with the reason; ``None`` when they match."""
    tw = trained_windows(meta)
    ratio = rate_hz / tw["rate_hz"]
    if 1 / RATE_TOLERANCE <= ratio <= RATE_TOLERANCE:
        return None
    dur = window / rate_hz
    how = (
        "P planes spread over each 100 ms RGB frame interval, the scene moving through the window"
        if tw["mode"] == "per-frame"
        else "a real camera's rate"
    )
    return (
        f"the model was trained on {tw['planes']}-plane windows at {tw['rate_hz']:g} planes/s "
        f"({1e3 * (tw['duration_s'] or 0):.3g} ms, {how}); this input's {window} planes at {rate_hz:g} "
        "planes/s "
        f"last {1e3 * dur:.3g} ms: depth may be implausible (use a model trained at this rate, see "
        f"`r2sdepth models`, or train one with data.sim.camera_rate_hz {rate_hz:g})"
    )


def shipped_models() -> list[dict[str, Any]]:
    """One row per shipped checkpoint: name, file, modality, window (planes) and its planes per
    second, trained size, output units and the typical scale to metres."""
    rows = []
    for name, path in SHIPPED_CHECKPOINTS.items():
        meta = load_file(path).get("r2sdepth", {})
        tw = trained_windows(meta)
        rows.append(
            {
                "name": name,
                "path": str(path),
                "modality": meta.get("modality"),
                "window_planes": tw["planes"],
                "planes_per_second": tw["rate_hz"],
                "window_s": tw["duration_s"],
                "window_mode": tw["mode"],
                "trained_size": [meta.get("height"), meta.get("width")],
                **SHIPPED_NOTES.get(name, {}),
            }
        )
    return rows


def checkpoint_path(name_or_path: str | os.PathLike) -> Path:
    """A checkpoint file, or the name of a shipped one (``demo``: the shipped spike-only model)."""
    p = Path(name_or_path)
    if not p.exists() and str(name_or_path) in SHIPPED_CHECKPOINTS:
        return SHIPPED_CHECKPOINTS[str(name_or_path)]
    return p


class AtomicSafeCheckpointIO(TorchCheckpointIO):
    """A Lightning ``CheckpointIO`` that saves with :func:`save_atomic` and loads with
    :func:`load_file` (so a Trainer resume is checked and safe too)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_atomic(checkpoint, path)

    def load_checkpoint(
        self, path, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return load_file(path)


def lightning_checkpoint_io() -> AtomicSafeCheckpointIO:
    """The ``CheckpointIO`` every r2sdepth Trainer uses (:class:`AtomicSafeCheckpointIO`)."""
    return AtomicSafeCheckpointIO()
