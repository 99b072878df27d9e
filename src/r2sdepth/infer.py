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
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r2sdepth.errors import R2SDepthError


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """Load a stage-1/stage-2 checkpoint: returns ``(module, meta)`` in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: checkpoint not found")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 (torch raises many kinds)
        raise R2SDepthError(f"{path}: unreadable checkpoint ({e.__class__.__name__}: {e})") from e
    meta = ck.get("r2sdepth") if isinstance(ck, dict) else None
    if not meta:
        raise R2SDepthError(f"{path}: not an r2sdepth checkpoint (no 'r2sdepth' metadata)")
    stage = meta.get("stage", 1)
    if stage == 2:
        from r2sdepth.train.distill import DistillModule as Module
    else:
        from r2sdepth.train.module import DepthModule as Module
    module = Module(**ck["hyper_parameters"])
    module.load_state_dict(ck["state_dict"])
    module.eval().to(device)
    return module, meta


def resolve_modality(meta: dict[str, Any], modality: str | None) -> str:
    own = meta["modality"]
    modality = modality or own
    allowed = {"rgb": {"rgb"}, "spike": {"spike"}, "fusion": {"fusion", "spike"}}[own]
    if modality not in allowed:
        raise R2SDepthError(f"a {own} checkpoint cannot run as {modality} (choose {sorted(allowed)})")
    return modality


@torch.no_grad()
def predict_batch(module, batch: dict[str, Any], modality: str) -> torch.Tensor:
    """Depth ``[B, 1, H, W]`` (metres) for a collated batch."""
    from r2sdepth.geometry import disp_to_depth
    from r2sdepth.models.r2sdepth import student_forward

    net = module.net
    cfg = net.cfg
    if modality == "spike":
        disp = student_forward(net, batch["spikes"])[0]
    elif modality == "rgb":
        disp = net(rgb=batch["color_aug"][:, 0])["disp"][0]
    else:
        disp = net(rgb=batch["color_aug"][:, 0], spikes=batch["spikes"])["disp"][0]
    return disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])[1]


def predict_split(checkpoint: str | os.PathLike, data_root: str | os.PathLike, split: str | os.PathLike, *,
                  modality: str | None = None, spike_root: str | os.PathLike | None = None,
                  batch_size: int = 4, device: str = "cpu") -> tuple[list[np.ndarray], str]:
    """Depth maps (metres, network size) for every line of ``split``; and a display name."""
    from torch.utils.data import DataLoader

    from r2sdepth.data.spike_kitti import SpikeKittiDataset, collate

    module, meta = load_checkpoint(checkpoint, device)
    modality = resolve_modality(meta, modality)
    d = meta.get("data", {})
    ds = SpikeKittiDataset(
        data_root, split, height=meta["height"], width=meta["width"], context=(),
        window=d.get("window", 128), align=d.get("align", "end"), spike_root=spike_root,
        sim=d.get("sim"), seed=d.get("seed", 0), augment=False, with_gt=False,
        need_spikes=modality in ("spike", "fusion"),
    )
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    preds: list[np.ndarray] = []
    for batch in loader:
        batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
        depth = predict_batch(module, batch, modality)
        preds.extend(depth[:, 0].float().cpu().numpy())
    name = f"{Path(checkpoint).parent.parent.name or Path(checkpoint).stem} ({modality})"
    return preds, name
