"""A depth network of the user's choice as the frozen stage-2 teacher (ONNX, TorchScript, torch.hub).

The field's recipe for event and spike depth distils a large RGB depth network (e.g. Depth
Anything V2) into the event/spike student. :class:`ExternalTeacher` wraps such a network so that
``r2sdepth distill --teacher FILE`` and ``r2sdepth adapt --teacher FILE`` can use it:

* **ONNX** (``*.onnx``, needs ``onnxruntime``: ``pip install 'r2sdepth[export]'``): one image
  input ``[B, 3, h, w]`` float32; a graph exported for batch 1 is run image by image.
* **TorchScript** (a ``torch.jit.save`` archive, any suffix): called as ``model(rgb)``.
* **torch.hub** (``hub:OWNER/REPO:ENTRY``, e.g. ``hub:intel-isl/MiDaS:DPT_Hybrid``): needs a
  network the first time (torch's hub cache after that); never used by the tests.

The network receives RGB ``[B, 3, h, w]`` in ``[0, 1]`` (``distill.teacher_input: unit``),
normalised with the ImageNet mean and std (``imagenet``) or with mean 0.5 and std 0.5 (``half``,
``[-1, 1]``: MiDaS v3 DPT models), resized to ``distill.teacher_size``
(``[h, w]``; null: the training size). It must return one map per image, ``[B, 1, h', w']``,
``[B, h', w']`` (or a tuple/list whose first element is that, or a dict with ``disp``/``depth``):
``distill.teacher_output: disparity`` for relative (affine-invariant) disparity such as MiDaS,
Depth Anything or an r2sdepth RGB model exported with ``r2sdepth export --graph rgb``;
``depth`` for metric depth in metres. The map is resized (bilinear) to the input's size.

The teacher's weights are not part of a stage-2 checkpoint; its file's SHA-256 is, and resuming
with a changed file is refused. A TorchScript or ONNX file runs code of its author's choosing
(inside the TorchScript interpreter / onnxruntime): load only files you trust.
"""

from __future__ import annotations

import hashlib
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from r2sdepth.errors import R2SDepthError

FORMATS = ("onnx", "torchscript", "hub")
INPUTS = ("unit", "imagenet", "half")
OUTPUTS = ("disparity", "depth")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def external_format(teacher: str | Path) -> str | None:
    """``onnx``, ``torchscript`` or ``hub`` when ``teacher`` names an external network; None for an
    r2sdepth checkpoint (or a path that does not exist: the checkpoint loader reports it)."""
    s = str(teacher)
    if s.startswith("hub:"):
        return "hub"
    p = Path(s)
    if p.suffix.lower() == ".onnx":
        return "onnx"
    if p.is_file() and zipfile.is_zipfile(p):
        try:
            with zipfile.ZipFile(p) as z:  # a TorchScript archive holds its code; torch.save files do not
                if any("/code/" in n for n in z.namelist()):
                    return "torchscript"
        except (OSError, zipfile.BadZipFile):
            return None
    return None


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def teacher_spec(
    teacher: str | Path, input: str = "unit", output: str = "disparity", size: list[int] | None = None
) -> dict[str, Any]:
    """The checked description of an external teacher, as stored in a stage-2 checkpoint's
    hyper-parameters: ``{"path", "format", "sha256", "input", "output", "size"}``."""
    fmt = external_format(teacher)
    if fmt is None:
        raise R2SDepthError(f"{teacher}: not an ONNX file, a TorchScript archive or hub:OWNER/REPO:ENTRY")
    if input not in INPUTS:
        raise R2SDepthError(f"distill.teacher_input must be one of {', '.join(INPUTS)}, got {input!r}")
    if output not in OUTPUTS:
        raise R2SDepthError(f"distill.teacher_output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    if size is not None and (len(size) != 2 or any(int(v) <= 0 for v in size)):
        raise R2SDepthError(f"distill.teacher_size must be [height, width] > 0 or null, got {size!r}")
    path = str(teacher)
    sha = None
    if fmt == "hub":
        if ":" not in path[4:] or "/" not in path[4:].split(":")[0]:
            raise R2SDepthError(f"{path}: a hub teacher is hub:OWNER/REPO:ENTRY")
    else:
        if not Path(path).is_file():
            raise R2SDepthError(f"{path}: teacher file not found")
        path = str(Path(path).resolve())
        sha = file_sha256(path)
    return {
        "path": path,
        "format": fmt,
        "sha256": sha,
        "input": input,
        "output": output,
        "size": None if size is None else [int(v) for v in size],
    }


class ExternalTeacher(nn.Module):
    """RGB ``[B, 3, H, W]`` in ``[0, 1]`` -> the external network's map ``[B, 1, H, W]`` (float32,
    on the input's device): relative disparity or metric depth, as ``spec["output"]`` says.

    Frozen, always in eval mode, no parameters of its own (the network is loaded on first use, so
    a stage-2 checkpoint rebuilt for inference never needs the teacher's file)."""

    def __init__(self, spec: dict[str, Any]) -> None:
        super().__init__()
        self.spec = dict(spec)
        self.modality = "external"
        self._impl: Any = None  # see __setattr__
        self._device: torch.device | None = None
        self.training = False

    def train(self, mode: bool = True):
        return super().train(False)

    def _load(self, device: torch.device) -> None:
        spec = self.spec
        fmt, path = spec["format"], spec["path"]
        if spec.get("sha256") and (not Path(path).is_file() or file_sha256(path) != spec["sha256"]):
            raise R2SDepthError(
                f"{path}: the teacher file is missing or differs from the one this run started with"
            )
        if fmt == "onnx":
            try:
                import onnxruntime as ort  # noqa: PLC0415  optional dependency (the export extra)
            except ImportError as e:
                raise R2SDepthError(
                    "an ONNX teacher needs onnxruntime: pip install 'r2sdepth[export]'"
                ) from e
            providers = ["CPUExecutionProvider"]
            if device.type == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers():
                providers.insert(0, "CUDAExecutionProvider")
            try:
                self._impl = ort.InferenceSession(path, providers=providers)
            except Exception as e:  # onnxruntime raises its own exception classes
                raise R2SDepthError(f"{path}: not a loadable ONNX model ({_first_line(e)})") from e
            ins = self._impl.get_inputs()
            if len(ins) != 1:
                raise R2SDepthError(
                    f"{path}: the ONNX teacher must take one image input, it takes {len(ins)}"
                )
        elif fmt == "torchscript":
            try:
                with warnings.catch_warnings():  # TorchScript's deprecation notice: still the format given
                    warnings.simplefilter("ignore", FutureWarning)
                    self._impl = torch.jit.load(path, map_location=device).eval()
            except (RuntimeError, ValueError) as e:
                raise R2SDepthError(f"{path}: not a loadable TorchScript file ({_first_line(e)})") from e
        else:
            repo, entry = path[4:].split(":", 1)
            try:
                self._impl = torch.hub.load(repo, entry, trust_repo=True).to(device).eval()
            except Exception as e:  # network, missing repo or entry point: all the user's to fix
                raise R2SDepthError(f"{path}: torch.hub could not load it ({_first_line(e)})") from e
        if isinstance(self._impl, nn.Module):
            for p in self._impl.parameters():
                p.requires_grad_(False)
        self._device = device

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_impl":  # kept out of nn.Module's registry: not a submodule, not in the state dict
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _run(self, x: torch.Tensor) -> Any:
        if self.spec["format"] != "onnx":
            return self._impl(x)
        inp = self._impl.get_inputs()[0]
        batch1 = inp.shape and inp.shape[0] == 1
        arr = x.detach().float().cpu().numpy()
        parts = [arr[i : i + 1] for i in range(len(arr))] if batch1 else [arr]
        outs = [self._impl.run(None, {inp.name: p})[0] for p in parts]
        return torch.from_numpy(np.concatenate(outs, 0)).to(x.device)

    @torch.no_grad()
    def forward(self, rgb: torch.Tensor) -> torch.Tensor:
        if rgb.ndim != 4 or rgb.shape[1] != 3:
            raise R2SDepthError(f"the teacher takes RGB [B, 3, H, W], got {list(rgb.shape)}")
        if self._impl is None or self._device != rgb.device:
            self._load(rgb.device)
        b, _, h, w = rgb.shape
        x = rgb.float()
        if self.spec.get("size"):
            x = F.interpolate(x, size=tuple(self.spec["size"]), mode="bilinear", align_corners=False)
        if self.spec["input"] == "imagenet":
            mean = x.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
            x = (x - mean) / std
        elif self.spec["input"] == "half":
            x = x * 2.0 - 1.0
        y = _one_map(self._run(x), b, self.spec["path"])
        if y.shape[-2:] != (h, w):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False)
        if not torch.isfinite(y).all():
            raise R2SDepthError(f"{self.spec['path']}: the teacher returned NaN or infinite values")
        if self.spec["output"] == "depth" and (y <= 0).any():
            raise R2SDepthError(
                f"{self.spec['path']}: teacher_output depth, but the teacher returned depth <= 0"
            )
        return y


def _one_map(y: Any, b: int, path: str) -> torch.Tensor:
    """The network's output as ``[B, 1, h, w]`` float32."""
    if isinstance(y, dict):
        y = next((y[k] for k in ("disp", "depth", "predicted_depth") if k in y), None)
    elif isinstance(y, (tuple, list)):
        y = y[0] if y else None
    if isinstance(y, np.ndarray):
        y = torch.from_numpy(y)
    if not isinstance(y, torch.Tensor):
        raise R2SDepthError(f"{path}: the teacher must return a tensor (or a tuple/dict holding one)")
    if y.ndim == 3:
        y = y[:, None]
    if y.ndim != 4 or y.shape[0] != b or y.shape[1] != 1:
        raise R2SDepthError(
            f"{path}: the teacher must return one map per image, [B, 1, h, w] or [B, h, w]; "
            f"got {list(y.shape)} for B={b}"
        )
    return y.float()


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return (s.splitlines()[0] if s else e.__class__.__name__)[:300]
