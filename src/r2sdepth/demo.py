"""``r2sdepth demo``: depth from a simulated spike stream with the shipped model; no network needed.

1. renders a short synthetic driving sequence the shipped model never saw (its own seed), with
   exact depth;
2. simulates the spike camera's stream from the frames (the model's camera settings);
3. runs the shipped spike-only network on the spike window of every frame (no RGB);
4. evaluates against the exact depth (Eigen protocol: Garg crop, 80 m cap, per-image median
   scaling) beside the trivial baseline (the mean training depth everywhere), and writes depth
   maps, colour pictures, a ``TFP | depth | RGB | ground truth`` GIF and ``metrics.json``.

The shipped checkpoint ``assets/demo_spike_64x224.ckpt`` is made by
``python scripts/make_demo_model.py`` (see that script for the exact recipe).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from r2sdepth import evaluate as ev
from r2sdepth.atomic import write_json_atomic
from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, checkpoint_path
from r2sdepth.data.kitti import Sample, gt_depth, list_frame_ids, write_split
from r2sdepth.data.synthetic import DATE, SceneSpec, synthesize
from r2sdepth.errors import R2SDepthError
from r2sdepth.infer import (
    _clear_stale_outputs,
    _save_outputs,
    display_range,
    load_checkpoint,
    predict_split,
    run_infer,
)

DEMO_CHECKPOINT = SHIPPED_CHECKPOINTS["demo"]
REAL_CHECKPOINT = SHIPPED_CHECKPOINTS["real"]
REAL_DRIVE = "2011_09_26/2011_09_26_drive_0005_sync"


def default_kitti_root() -> Path | None:
    """``../shared/data/kitti_raw`` next to the current folder or to the source checkout, if present."""
    here = Path(__file__).resolve()
    for base in (Path.cwd(), *here.parents):
        p = base.parent / "shared" / "data" / "kitti_raw"
        if (p / REAL_DRIVE).is_dir():
            return p
    return None


def run_demo(
    out: Path,
    seed: int = 2026,
    frames: int = 24,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run the demo into ``out``; returns the metrics (``model``, ``baseline``, ...)."""
    t_start = time.time()
    ckpt = checkpoint_path(checkpoint) if checkpoint else DEMO_CHECKPOINT
    if not ckpt.is_file():
        raise R2SDepthError(
            f"{ckpt}: demo checkpoint missing (make it with python scripts/make_demo_model.py)"
        )
    _, meta = load_checkpoint(ckpt)
    h, w = int(meta["height"]), int(meta["width"])
    out = Path(out)
    scene = out / "scene"
    synthesize(scene, SceneSpec(frames=frames, height=h, width=w, seed=seed), sequences=1, progress=progress)
    drive = f"{DATE}/{DATE}_drive_0000_sync"
    gts = [gt_depth(scene, drive, i, "l") for i in range(frames)]
    res = run_infer(
        ckpt,
        scene / drive / "image_02" / "data",
        out,
        modality="spike",
        gif=out / "demo.gif",
        gt=gts,
        progress=progress,
    )
    idx = [int(n) for n in res["names"]]
    preds = [np.load(out / "depth" / f"{n}.npy") for n in res["names"]]
    gt_sel = [gts[i] for i in idx]
    metrics: dict[str, Any] = {"model": ev.evaluate_depths(preds, gt_sel)}
    train_mean = meta.get("train_mean_depth")
    if train_mean:
        metrics["baseline"] = ev.mean_depth_baseline(None, gt_sel, mean=train_mean)
    metrics["baseline_median_scaled"] = ev.constant_median_baseline(gt_sel)
    metrics["info"] = {
        "checkpoint": str(ckpt),
        "frames": len(idx),
        "size": [h, w],
        "seed": seed,
        "window": res["window"],
        "seconds": round(time.time() - t_start, 1),
        "protocol": "Garg crop, depth 1e-3..80 m, per-image median scaling (model); "
        "baseline: mean training depth, no scaling",
    }
    write_json_atomic(out / "metrics.json", metrics)
    names = {
        "model": "shipped spike-only model",
        "baseline": "mean training depth (baseline)",
        "baseline_median_scaled": "constant + median scaling",
    }
    print(ev.markdown_table({names[k]: v for k, v in metrics.items() if k in names}))
    print(f"\nscene (RGB, exact depth)  {scene}")
    print(f"spike stream              {out / 'stream.dat'}")
    print(
        f"depth maps                {out / 'depth'} (.npy), {out / 'depth_tiff'} (float32 TIFF; model "
        "units), "
        f"{out / 'color'} (with colour bar)"
    )
    print(f"animation                 {out / 'demo.gif'}  (TFP | depth | RGB | ground truth)")
    print(f"metrics                   {out / 'metrics.json'}")
    return metrics


def run_real_demo(
    out: Path,
    kitti_root: str | Path | None = None,
    checkpoint: str | Path | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """``r2sdepth demo --real``: the shipped real-footage spike-only model on the real KITTI frames
    of drive 0005 that it was not adapted on (spikes simulated from the frames with the model's
    camera settings; LiDAR ground truth, Eigen protocol), beside the constant + median-scaling
    baseline and the flat-road prior (:func:`r2sdepth.evaluate.flat_road_prior`). Writes the depth
    files of ``r2sdepth infer`` (``depth/`` .npy, ``depth_tiff/``, ``color/``; model units, network
    size) and ``metrics.json``; returns the metrics."""
    t_start = time.time()
    ckpt = checkpoint_path(checkpoint) if checkpoint else REAL_CHECKPOINT
    if not ckpt.is_file():
        raise R2SDepthError(
            f"{ckpt}: real-footage checkpoint missing (make it with python scripts/make_real_model.py --ship)"
        )
    root = Path(kitti_root) if kitti_root else default_kitti_root()
    if root is None or not (root / REAL_DRIVE).is_dir():
        raise R2SDepthError(
            f"{root or '../shared/data/kitti_raw'}: KITTI drive {REAL_DRIVE} not found (give --kitti-root)"
        )
    _, meta = load_checkpoint(ckpt)
    seen = set((meta.get("adapted_on") or {}).get("frames", []))
    frames = [f for f in list_frame_ids(root, REAL_DRIVE, "02") if f not in seen]
    if not frames:
        raise R2SDepthError(f"{root / REAL_DRIVE}: every frame was used to adapt the model; nothing held out")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    split = out / "frames.txt"
    write_split(split, [Sample(REAL_DRIVE, f, "l") for f in frames])
    gts = ev.split_gt(root, split, "velodyne")
    preds, _ = predict_split(ckpt, root, split, modality="spike", progress=progress)
    metrics: dict[str, Any] = {
        "model": ev.evaluate_depths(preds, gts),
        "baseline_median_scaled": ev.constant_median_baseline(gts),
        "flat_road_prior": ev.flat_road_baseline(
            gts, ev.split_intrinsics(root, split, [g.shape for g in gts])
        ),
    }
    _clear_stale_outputs(out)
    d_range = display_range(preds[0])  # the same files and colour range as r2sdepth infer
    for f, p in zip(frames, preds):
        _save_outputs(out, f"{f:06d}", p, d_range, metric=False)
    metrics["info"] = {
        "checkpoint": str(ckpt),
        "kitti_root": str(root),
        "drive": REAL_DRIVE,
        "frames": frames,
        "adapted_on_frames": sorted(seen),
        "size": [int(meta["height"]), int(meta["width"])],
        "gt": "velodyne",
        "seconds": round(time.time() - t_start, 1),
        "protocol": "Garg crop, depth 1e-3..80 m, per-image median scaling (model and baseline)",
    }
    write_json_atomic(out / "metrics.json", metrics)
    print(
        ev.markdown_table(
            {
                "shipped real-footage spike-only model": metrics["model"],
                "constant + median scaling": metrics["baseline_median_scaled"],
                "flat-road prior + median scaling": metrics["flat_road_prior"],
            }
        )
    )
    print(
        f"\nframes {frames[0]}-{frames[-1]} of {REAL_DRIVE} (not used to adapt the model); "
        f"spikes simulated from the frames"
    )
    print(
        f"depth maps {out / 'depth'} (.npy), {out / 'depth_tiff'} (float32 TIFF; model units), "
        f"{out / 'color'} "
        f"(with colour bar); metrics {out / 'metrics.json'}"
    )
    return metrics
