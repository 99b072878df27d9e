"""Does the alignment of a two-camera rig matter? Train with aligned vs misaligned rig data.

A simulated rig (:func:`r2sdepth.data.rig_synth.synthesize_rig`) that can be checked exactly: synthetic
streets seen by an RGB camera (world x 0.75, its own intrinsics) and a 64x224 spike camera
(other intrinsics, rotated ``--yaw`` degrees, 64 planes per RGB frame = 640 Hz, clock 3.7 ms
ahead). Training sequences and held-out test sequences with exact depth in the spike camera.

Variants, each the same adaptation (``r2sdepth.train.run.adapt_config``: the learning check's
stage-1 fusion teacher fine-tuned by view synthesis, same steps, same seeds, same start):

* ``aligned``: the clock offset estimated from the data, the true homography;
* ``wrong offset``: the clock off by ``--offset-error`` seconds (default one RGB frame: a
  frame-index mix-up between the two recordings), true homography;
* ``wrong homography``: the rotation between the cameras ignored (``spike_K rgb_K^-1``).

The spike-only head of each is evaluated on the test sequences against the exact depth in the
spike camera (Garg crop, 80 m, median scaling), with correct windows for every variant (the
defect is in the training data). Then the effect of misaligned inputs at inference: the teacher
(RGB + spike, and its spike head) run on the test sequences with each variant's calibration.
Prints and writes ``results.md`` / ``results.json``.

    python benchmarks/rig_alignment.py --lc runs/learning_check --out runs/rig_alignment \
        --steps 300 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml

from r2sdepth import evaluate as ev
from r2sdepth.data.rig import RigSequence
from r2sdepth.data.rig_synth import RigSpec, copy_with_calibration, synthesize_rig
from r2sdepth.infer import predict_split
from r2sdepth.train.run import adapt_config, run_training


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lc", default="runs/learning_check", help="learning-check folder (its fusion teacher)")
    ap.add_argument("--out", default="runs/rig_alignment")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--yaw", type=float, default=3.0, help="rotation between the cameras (degrees)")
    ap.add_argument(
        "--offset-error", type=float, default=0.1, help="clock error of the 'wrong offset' variant (s)"
    )
    a = ap.parse_args()
    out = Path(a.out)
    teacher = Path(a.lc) / "fusion" / "checkpoints" / "last.ckpt"
    base = out / "rig"
    true_offset = 0.0037
    if not (base / "splits" / "test_files.txt").is_file():
        rig = RigSpec(
            world_size=(96, 336),
            rgb_scale=0.75,
            spike_size=(64, 224),
            yaw_deg=a.yaw,
            clock_offset_s=true_offset,
            fps=10.0,
            planes_per_frame=64,
            pre_roll_frames=1,
        )
        synthesize_rig(base, rig, sequences=a.sequences, frames=a.frames, seed=11, test_sequences=2)
    test_split = base / "splits" / "test_files.txt"
    estimates = {}
    for c in sorted(base.glob("seq*/calib.yaml")):
        seq = RigSequence(c.parent)
        estimates[c.parent.name] = seq.clock_offset_s
    est = float(np.median(list(estimates.values())))
    cal = yaml.safe_load((base / "seq00" / "calib.yaml").read_text())
    H0 = (np.asarray(cal["spike_K"]) @ np.linalg.inv(np.asarray(cal["rgb_K"]))).tolist()
    variants = {
        "aligned (estimated offset, true homography)": {"clock_offset_s": None},
        f"wrong offset (+{a.offset_error * 1e3:.0f} ms)": {"clock_offset_s": true_offset + a.offset_error},
        f"wrong homography ({a.yaw:g} deg rotation ignored)": {"clock_offset_s": None, "H_rgb_to_spike": H0},
    }
    roots = {
        name: copy_with_calibration(base, out / f"data_{i}", change, overwrite=True)
        for i, (name, change) in enumerate(variants.items())
    }
    gts = ev.split_gt(base, test_split, "rig")
    res_file = out / "results.json"
    res = json.loads(res_file.read_text()) if res_file.is_file() else {}
    res["offset_estimates_ms"] = {k: round(v * 1e3, 3) for k, v in estimates.items()}
    res["true_offset_ms"] = true_offset * 1e3
    rows = res.setdefault("rows", {})
    rows["constant + median scaling"] = ev.constant_median_baseline(gts)
    preds, _ = predict_split(teacher, base, test_split, modality="spike")
    rows["before: synthetic teacher's spike head"] = ev.evaluate_depths(preds, gts)
    for name, root in roots.items():
        for seed in a.seeds:
            key = f"{name} | seed {seed}"
            if key in rows:
                continue
            cfg = adapt_config(teacher, root, root / "splits" / "train_files.txt", steps=a.steps, seed=seed)
            t = time.time()
            r = run_training(cfg, out / "runs" / f"v{list(roots).index(name)}_s{seed}", resume=True)
            preds, _ = predict_split(r["last"], base, test_split, modality="spike")
            rows[key] = {**ev.evaluate_depths(preds, gts), "train_min": round((time.time() - t) / 60, 1)}
            res_file.write_text(json.dumps(res, indent=2))
    # misaligned inputs at inference: the teacher (RGB + spike, and its spike head) run with each
    # variant's calibration, against the same exact depth
    inf = res.setdefault("inference", {})
    for name, root in roots.items():
        for modality in ("fusion", "spike"):
            preds, _ = predict_split(teacher, root, test_split, modality=modality)
            inf[f"{name} | teacher {modality}"] = ev.evaluate_depths(preds, gts)
    res_file.write_text(json.dumps(res, indent=2))
    summary = {}
    for name in roots:
        vals = [rows[f"{name} | seed {s}"] for s in a.seeds if f"{name} | seed {s}" in rows]
        summary[name] = {
            m: float(np.mean([v[m] for v in vals]))
            for m in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")
        }
        summary[name]["abs_rel_std"] = float(np.std([v["abs_rel"] for v in vals]))
        summary[name]["a1_std"] = float(np.std([v["a1"] for v in vals]))
    res["summary"] = summary
    res_file.write_text(json.dumps(res, indent=2))
    lines = [
        f"Simulated rig, {a.sequences - 2} training / 2 test sequences x {a.frames} frames, spike camera 64x224 "
        f"at 640 Hz, yaw {a.yaw:g} deg, true clock offset {true_offset * 1e3:.1f} ms (estimated: median "
        f"{est * 1e3:.2f} ms over sequences); {a.steps} steps from the learning-check fusion teacher, "
        f"seeds {a.seeds}; spike-only head vs exact depth in the spike camera",
        "",
        "| variant | abs_rel (mean ± std) | a1 (mean ± std) | rmse |",
        "|---|---:|---:|---:|",
    ]
    for name in ("constant + median scaling", "before: synthetic teacher's spike head"):
        lines.append(
            f"| {name} | {rows[name]['abs_rel']:.3f} | {rows[name]['a1']:.3f} | {rows[name]['rmse']:.2f} |"
        )
    for name, s in summary.items():
        lines.append(
            f"| {name} | {s['abs_rel']:.3f} ± {s['abs_rel_std']:.3f} | {s['a1']:.3f} ± {s['a1_std']:.3f} "
            f"| {s['rmse']:.2f} |"
        )
    lines += [
        "",
        "Inference with each calibration (the synthetic fusion teacher, no training; same exact depth):",
        "",
        "| calibration | teacher RGB + spike: abs_rel | a1 | teacher spike head: abs_rel | a1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in roots:
        f, sp = inf[f"{name} | teacher fusion"], inf[f"{name} | teacher spike"]
        lines.append(
            f"| {name} | {f['abs_rel']:.3f} | {f['a1']:.3f} | {sp['abs_rel']:.3f} | {sp['a1']:.3f} |"
        )
    md = "\n".join(lines)
    (out / "results.md").write_text(md + "\n\n" + ev.markdown_table(rows, extra=("train_min",)) + "\n")
    print(md)


if __name__ == "__main__":
    main()
