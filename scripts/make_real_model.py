"""Adapt a synthetic-trained model to unlabelled real driving footage (the recipe of the previous
shipped ``real`` model, kept to reproduce its figures).

The shipped ``real`` model now comes from ``benchmarks/camera_rate_transfer.py --ship`` (windows with a
real camera's timing, adapted on a third drive; rule in ``docs/results/camera_rate/RULE.md``); this
script adapts on frames of the drive it then scores, which is how its figures were made.

The recipe (no real depth labels: the LiDAR is never used for training or for choosing a
checkpoint; the last checkpoint of every run is taken):

1. synthetic pretraining (skipped with ``--teacher``): dense city-traffic scenes
   (``r2sdepth synth --traffic 0.8``: queues moving with the camera, trucks passed at 1.5-2.5 m,
   white vehicles, trees, overpasses, varied pitch and sky), their spike streams, and a
   spike-only network trained on the scenes' exact depth (``train_spike_traffic_synth``:
   simulator labels; view synthesis cannot learn vehicles that move with the camera);
2. spikes are simulated from the real RGB frames (``build-spike-kitti``, the model's camera
   settings: 64 planes per frame, pre-roll before frame 0), or a user's real spikes are used;
3. ``--recipe distill`` (default): stage 2 on the real frames with the synthetic model as the
   frozen teacher. With a spike teacher this is self-distillation: the student starts as the
   teacher and learns from the real frames' photometric loss (its own pose net, trained) while
   the teacher's depth anchors it (``--depth-weight``, scale-invariant log loss); with a fusion
   teacher it is R2SDepth's stage 2. ``--recipe finetune`` fine-tunes a fusion teacher by view
   synthesis (``adapt_config``) and ships its spike head.

Held-out check: frames ``--train-frames`` (default 0-19) are used for training (targets 1-18: a
target's neighbours must be training frames too), ``--eval-frames`` (default: the drive's other
frames, 20-29) are evaluated with the LiDAR (Eigen protocol: Garg crop, 80 m, per-image median
scaling) before and after, beside the constant + median-scaling baseline.

    python scripts/make_real_model.py --out runs/real_adapt                 # pretrain, 0-19 -> 20-29

The adapted model is the run's last checkpoint (its path is in the printed results); the script
no longer replaces the shipped model.

For your own footage: lay it out as a KITTI raw drive (``DATE/DATE_drive_NNNN_sync/image_02/data/``
+ ``DATE/calib_cam_to_cam.txt``), or as rig sequences (``r2sdepth.data.rig``) with real spikes,
and pass ``--kitti ROOT --drive DRIVE`` (``--spike-root`` for real spikes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from r2sdepth import evaluate as ev
from r2sdepth.atomic import save_png
from r2sdepth.checkpoint import load_file
from r2sdepth.data.kitti import Sample, image_path, list_frame_ids, write_split
from r2sdepth.infer import predict_split
from r2sdepth.train.adapt import frame_spec
from r2sdepth.train.run import adapt_config, apply_overrides, load_config, run_training
from r2sdepth.viz import colorize

ROOT = Path(__file__).resolve().parents[1]
KITTI = ROOT.parent / "shared" / "data" / "kitti_raw"
DRIVE = "2011_09_26/2011_09_26_drive_0005_sync"


def before_after_figure(
    kitti: Path, drive: str, frames: list[int], before: list, after: list, path: Path
) -> None:
    """Three held-out frames (first, middle, last), one row each: RGB at the network size |
    inverse depth before | after adaptation (magma, bright = near, each map's own range)."""

    rows = []
    for i in sorted({0, len(frames) // 2, len(frames) - 1}):
        h, w = before[i].shape
        rgb = np.asarray(
            Image.open(image_path(kitti, drive, frames[i], "02"))
            .convert("RGB")
            .resize((w, h), Image.BILINEAR)
        )
        rows.append(
            np.concatenate([rgb] + [colorize(1.0 / np.maximum(p[i], 1e-3)) for p in (before, after)], 1)
        )
    big = np.concatenate(rows, 0).repeat(2, 0).repeat(2, 1)
    save_png(path, big)


def pretrain(out: Path, sequences: int, steps: int, seed: int) -> Path:
    """The synthetic pretraining: dense city-traffic scenes (``synth --traffic 0.8``), their spike
    streams, and a spike-only network trained on their exact depth (``train_spike_traffic_synth``:
    simulator labels, no real depth labels). Returns its last checkpoint."""
    cli = [sys.executable, "-m", "r2sdepth.cli"]
    data, spikes = out / "synth", out / "spike"
    subprocess.run(
        cli
        + [
            "synth",
            "--out",
            str(data),
            "--sequences",
            str(sequences),
            "--frames",
            "50",
            "--size",
            "64x224",
            "--traffic",
            "0.8",
            "--seed",
            "1",
            "--workers",
            "2",
        ],
        check=True,
    )
    subprocess.run(
        cli
        + [
            "build-spike-kitti",
            "--kitti-root",
            str(data),
            "--out",
            str(spikes),
            "--cameras",
            "02",
            "--size",
            "64x224",
            "--planes-per-frame",
            "64",
            "--workers",
            "2",
        ],
        check=True,
    )
    cfg = load_config("train_spike_traffic_synth")
    sp = data / "splits"
    apply_overrides(
        cfg,
        [
            "--seed",
            str(seed),
            "--data.root",
            str(data),
            "--data.spike_root",
            str(spikes),
            "--data.train_split",
            str(sp / "train_files.txt"),
            "--data.val_split",
            str(sp / "val_files.txt"),
            "--trainer.max_steps",
            str(steps),
            "--trainer.enable_progress_bar",
            "false",
        ],
    )
    return Path(run_training(cfg, out / "run", resume=True)["last"])  # the last step, never chosen by depth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kitti", default=str(KITTI), help="KITTI-layout root of the real footage")
    ap.add_argument("--drive", default=DRIVE)
    ap.add_argument(
        "--teacher",
        help="stage-1 checkpoint trained on synthetic data: spike (default: made here "
        "by --pretrain-* on traffic scenes) or fusion (benchmarks/learning_check.py)",
    )
    ap.add_argument(
        "--pretrain-sequences", type=int, default=20, help="synthetic traffic sequences (x 50 frames)"
    )
    ap.add_argument("--pretrain-steps", type=int, default=1000)
    ap.add_argument(
        "--spike-root", help="real spikes (Spike-KITTI layout); default: simulated from the frames"
    )
    ap.add_argument("--train-frames", default="0-19", help="frames used for training, e.g. 0-19")
    ap.add_argument(
        "--eval-frames", help="held-out frames evaluated with the LiDAR (default: all the others)"
    )
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument(
        "--recipe",
        choices=["finetune", "distill"],
        default="distill",
        help="finetune: a fusion teacher by view synthesis (its spike head ships); distill: stage 2 "
        "on the real frames from the frozen synthetic teacher (photometric + pseudo-labels; a "
        "spike teacher: self-distillation, the student starts as the teacher, its pose net trained)",
    )
    ap.add_argument(
        "--depth-weight", type=float, default=1.0, help="distill: weight of the teacher's pseudo-labels"
    )
    ap.add_argument("--out", default="runs/real_adapt")
    a = ap.parse_args()
    out, kitti = Path(a.out), Path(a.kitti)
    out.mkdir(parents=True, exist_ok=True)
    frames = list_frame_ids(kitti, a.drive, "02")
    train = frame_spec(a.train_frames, frames)
    held = [f for f in frame_spec(a.eval_frames, frames) if f not in train]
    tr = set(train)
    targets = [f for f in train if f - 1 in tr and f + 1 in tr]
    write_split(out / "train_files.txt", [Sample(a.drive, f, "l") for f in targets])
    if held:
        write_split(out / "heldout_files.txt", [Sample(a.drive, f, "l") for f in held])
    if a.teacher is None:
        a.teacher = str(pretrain(out / "pretrain", a.pretrain_sequences, a.pretrain_steps, a.seed))
    meta = load_file(a.teacher)["r2sdepth"]
    h, w = int(meta["height"]), int(meta["width"])
    sim = meta["data"].get("sim") or {}
    spikes = Path(a.spike_root) if a.spike_root else out / "spike"
    if not a.spike_root:
        (out / "drives.txt").write_text(a.drive + "\n")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "r2sdepth.cli",
                "build-spike-kitti",
                "--kitti-root",
                str(kitti),
                "--out",
                str(spikes),
                "--cameras",
                "02",
                "--size",
                f"{h}x{w}",
                "--sequences",
                str(out / "drives.txt"),
                "--planes-per-frame",
                str(sim.get("planes_per_frame", 64)),
                "--workers",
                "1",
            ],
            check=True,
        )
    t = time.time()
    if a.recipe == "finetune":
        cfg = adapt_config(
            a.teacher, kitti, out / "train_files.txt", spike_root=spikes, steps=a.steps, lr=a.lr, seed=a.seed
        )
        res = run_training(cfg, out / "fusion", resume=True)
    else:  # stage 2 on the real frames: the synthetic teacher frozen, its spike head adapted
        cfg = load_config("distill_synth")
        apply_overrides(
            cfg,
            [
                "--seed",
                str(a.seed),
                "--data.root",
                str(kitti),
                "--data.spike_root",
                str(spikes),
                "--data.train_split",
                str(out / "train_files.txt"),
                "--data.val_split",
                "null",
                "--data.batch_size",
                "4",
                "--distill.adaptive",
                "false",
                "--distill.depth_weight",
                str(a.depth_weight),
                "--optim.lr",
                str(a.lr),
                "--trainer.max_steps",
                str(a.steps),
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.log_every_n_steps",
                "5",
            ],
        )
        if meta["modality"] == "spike":  # self-distillation: no features to imitate; the pose net learns
            apply_overrides(
                cfg,
                [
                    "--distill.feat_weight",
                    "0",
                    "--distill.at_weight",
                    "0",
                    "--distill.pose_trainable",
                    "true",
                ],
            )
        res = run_training(cfg, out / "distill", resume=True, teacher=a.teacher)
    minutes = (time.time() - t) / 60
    ckpt = res["last"]  # the last step: no checkpoint is chosen with depth labels
    results: dict[str, dict] = {}
    if held:
        split = out / "heldout_files.txt"
        gts = ev.split_gt(kitti, split, "velodyne")
        results["constant + median scaling"] = ev.constant_median_baseline(gts)
        both = []
        for name, c in (
            ("before: synthetic teacher's spike path", a.teacher),
            (f"after: adapted spike-only ({a.recipe}, {a.steps} steps)", ckpt),
        ):
            preds, _ = predict_split(c, kitti, split, spike_root=spikes, modality="spike")
            results[name] = ev.evaluate_depths(preds, gts)
            both.append(preds)
        before_after_figure(kitti, a.drive, held, *both, out / "before_after.png")
        if a.recipe == "finetune":
            preds, _ = predict_split(ckpt, kitti, split, spike_root=spikes, modality="fusion")
            results["after: adapted fusion teacher (RGB + spike)"] = ev.evaluate_depths(preds, gts)
        table = ev.markdown_table(results)
        print(table)
        (out / "results.md").write_text(
            f"Held-out frames {held[0]}-{held[-1]} of {a.drive} (LiDAR, Garg crop, 80 m, median scaling); "
            f"trained on frames {train[0]}-{train[-1]}, {a.steps} steps, seed {a.seed}, {minutes:.1f} min\n\n"
            + table
            + "\n"
        )
    (out / "results.json").write_text(
        json.dumps(
            {
                "results": results,
                "train_frames": train,
                "heldout": held,
                "steps": a.steps,
                "seed": a.seed,
                "train_min": round(minutes, 1),
                "checkpoint": str(ckpt),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
