"""Make the spike-only checkpoint that ships with the package (``r2sdepth demo`` runs it).

Recipe (the shipped file was made exactly so; ~15 min on 2 CPU cores without --checkpoint):

    python benchmarks/learning_check.py --out runs/learning_check      # data + stage-1 models
    python benchmarks/ablation.py --out runs/ablation --lc runs/learning_check   # stage-2 students
    python scripts/make_demo_model.py --lc runs/learning_check \
        --checkpoint runs/ablation/feat_at_depth_adaptive/checkpoints/last.ckpt

Camera-rate recipe (windows of 64 planes at a real camera's 20 kHz, simulated on the fly; no
``--checkpoint``: a stage-1 spike-only model trained here, ~50 min on 2 cores):

    python scripts/make_demo_model.py --lc runs/learning_check --camera-rate 20000 --run rate20k

``--checkpoint``: any spike-capable checkpoint (stage-1 spike, fusion -> its spike path, or a
stage-2 student); without it a stage-1 spike-only model is trained here with
the shipped ``train_spike_synth`` config. The script evaluates the model on the held-out test
sequences against the mean-depth baseline, refuses to write a model that does not beat it, and
writes a slim checkpoint (network weights + metadata, incl. the mean training depth that the
demo's baseline uses) to ``src/r2sdepth/assets/demo_spike_64x224.ckpt``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from r2sdepth import evaluate as ev
from r2sdepth.checkpoint import load_file, save_atomic
from r2sdepth.export import slim_checkpoint
from r2sdepth.infer import predict_split
from r2sdepth.train.run import apply_overrides, load_config, run_training

ROOT = Path(__file__).resolve().parents[1]
DEST = ROOT / "src" / "r2sdepth" / "assets" / "demo_spike_64x224.ckpt"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lc", default="runs/learning_check", help="learning-check folder (synth/ and spike/)")
    ap.add_argument("--checkpoint", help="spike-capable checkpoint to ship (default: train one)")
    ap.add_argument("--steps", type=int, default=1000, help="training steps when no --checkpoint")
    ap.add_argument("--out", default=str(DEST))
    ap.add_argument(
        "--camera-rate",
        type=float,
        default=0.0,
        metavar="HZ",
        help="train and evaluate on windows at a real camera's rate (data.sim.camera_rate_hz, simulated "
        "on the fly); 0: the built per-frame streams (Spike-KITTI as published)",
    )
    ap.add_argument("--run", default="demo_spike", help="training folder under --lc")
    ap.add_argument(
        "--set",
        nargs=2,
        action="append",
        default=[],
        metavar=("KEY", "VALUE"),
        help="more config overrides, e.g. --set data.sim.gain 2",
    )
    a = ap.parse_args()
    lc = Path(a.lc)
    data, spikes, splits = lc / "synth", lc / "spike", lc / "synth" / "splits"
    if not (splits / "test_files.txt").is_file():
        cli = [sys.executable, "-m", "r2sdepth.cli"]
        subprocess.run(
            cli
            + [
                "synth",
                "--out",
                str(data),
                "--sequences",
                "10",
                "--frames",
                "50",
                "--size",
                "64x224",
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
            ],
            check=True,
        )
    ckpt = a.checkpoint
    if ckpt is None:
        cfg = load_config("train_spike_synth")
        rate = (
            ["--data.spike_root", "null", "--data.sim.camera_rate_hz", str(a.camera_rate)]
            if a.camera_rate
            else ["--data.spike_root", str(spikes)]
        )
        apply_overrides(
            cfg,
            [
                "--data.root",
                str(data),
                *rate,
                "--data.train_split",
                str(splits / "train_files.txt"),
                "--data.val_split",
                str(splits / "val_files.txt"),
                "--trainer.max_steps",
                str(a.steps),
                *(x for kv in a.set for x in ("--" + kv[0], kv[1])),
            ],
        )
        res = run_training(cfg, lc / a.run, resume=True)
        ckpt = res["last"]  # never selected with ground-truth depth (no-depth-label claim)
    gts = ev.split_gt(data, splits / "test_files.txt")
    train_gts = ev.split_gt(data, splits / "train_files.txt")
    preds, _ = predict_split(
        ckpt, data, splits / "test_files.txt", spike_root=None if a.camera_rate else spikes, modality="spike"
    )
    model = ev.evaluate_depths(preds, gts)
    base = ev.mean_depth_baseline(train_gts, gts)
    const = ev.constant_median_baseline(gts)
    print(
        ev.markdown_table(
            {"model (spike only)": model, "mean training depth": base, "constant + median": const}
        )
    )
    if not model["abs_rel"] < base["abs_rel"]:
        sys.exit("the model does not beat the mean-depth baseline: not shipping it")
    out = slim_checkpoint(ckpt, a.out, modality="spike")

    ck = load_file(out)
    ck["r2sdepth"].update(
        {
            "train_mean_depth": base["mean_depth"],
            "source_checkpoint": str(ckpt),
            "heldout": {
                "model": model,
                "baseline": base,
                "constant_median": const,
                "split": "learning-check synthetic test sequences (seed 0)",
            },
        }
    )
    save_atomic(ck, out)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB)")
    print(json.dumps({"abs_rel": model["abs_rel"], "baseline_abs_rel": base["abs_rel"]}))


if __name__ == "__main__":
    main()
