"""Learning check of stage 2 with an external teacher (ONNX), on synthetic scenes with exact depth.

A stand-in for "distil Depth Anything into a spike student", run offline: an RGB network is
trained on the training sequences with their exact depth (the external teacher's own training,
which r2sdepth never sees), exported with ``r2sdepth export --graph rgb --format onnx``, and used
as ``distill --config distill_external --teacher teacher.onnx``. Per seed, two spike-only students
start from the same initialisation (the seed) and train the same steps on the same frames, with no
depth labels:

* ``external``: the student's photometric loss + the teacher's scale-and-shift-invariant
  disparity loss (``distill.depth_weight 1``), adaptive pixel weights;
* ``control``: the same run with ``distill.depth_weight 0`` (photometric loss only).

Each is scored on the held-out test sequences (Eigen protocol: Garg crop, 80 m cap, per-image
median scaling), with the student's start (after one pose warm-up step: its depth network still
the initialisation), the teacher itself (RGB input) and the constant + median baseline.

    python benchmarks/external_teacher_check.py --out runs/external_teacher    # ~30 min, 2 cores
    python benchmarks/external_teacher_check.py --out /tmp/etc --steps 20 --teacher-steps 20 --seeds 0

Writes ``OUT/results.json`` and ``OUT/results.md`` (mean ± std over seeds, every seed shown).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from r2sdepth import evaluate as ev
from r2sdepth.infer import predict_split
from r2sdepth.train.run import apply_overrides, load_config, run_training

H, W, PLANES = 64, 96, 32


def _score(ckpt: Path, data: Path, split: Path, spikes: Path, gts: list, **kw) -> dict:
    preds, _ = predict_split(ckpt, data, split, spike_root=spikes, **kw)
    return ev.evaluate_depths(preds, gts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/external_teacher")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=400, help="student steps (both arms)")
    ap.add_argument("--teacher-steps", type=int, default=800)
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument(
        "--split", default="test", choices=["val", "test"], help="scored split (design decisions: val)"
    )
    ap.add_argument("--tag", default="students", help="sub-folder of OUT for the student runs")
    ap.add_argument("--arms", nargs="+", default=["start", "control", "external"])
    ap.add_argument("overrides", nargs="*", help="--section.key VALUE for both student arms (after --)")
    a = ap.parse_args()
    out = Path(a.out)
    data, spikes = out / "synth", out / "spike"
    cli = [sys.executable, "-m", "r2sdepth.cli"]
    size = f"{H}x{W}"
    if not (data / "splits").is_dir():
        subprocess.run(
            cli + ["synth", "--out", data, "--sequences", str(a.sequences), "--frames", str(a.frames)]
            + ["--size", size, "--workers", "2"],
            check=True,
        )  # fmt: skip
    if not spikes.is_dir():
        subprocess.run(
            cli + ["build-spike-kitti", "--kitti-root", data, "--out", spikes, "--cameras", "02"]
            + ["--size", size, "--planes-per-frame", str(PLANES), "--workers", "2"],
            check=True,
        )  # fmt: skip
    splits = data / "splits"
    test = splits / f"{a.split}_files.txt"
    gts = ev.split_gt(data, test)
    common = [
        "--data.root", str(data), "--data.spike_root", str(spikes),
        "--data.train_split", str(splits / "train_files.txt"), "--data.val_split", "null",
        "--data.height", str(H), "--data.width", str(W), "--data.window", str(PLANES),
        "--data.sim.planes_per_frame", str(PLANES), "--data.num_workers", "1",
        "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
    ]  # fmt: skip
    rows: dict[str, dict] = {"constant + median scaling": ev.constant_median_baseline(gts)}

    # the external teacher: an RGB network trained on exact depth (never by r2sdepth's stage 2)
    t0 = time.time()
    tcfg = load_config("train_rgb_synth")
    apply_overrides(
        tcfg,
        [*common, "--data.gt_source", "exact", "--loss.photo_weight", "0", "--loss.depth_weight", "1"]
        + ["--optim.lr", "0.001", "--trainer.max_steps", str(a.teacher_steps), "--seed", "100"],
    )
    tres = run_training(tcfg, out / "teacher", resume=True)
    onnx = out / "teacher.onnx"
    subprocess.run(
        cli + ["export", "--checkpoint", tres["last"], "--format", "onnx", "--graph", "rgb", "--out", onnx],
        check=True,
    )
    rows["teacher (RGB input, exported ONNX's network)"] = {
        **_score(tres["last"], data, test, spikes, gts),
        "minutes": round((time.time() - t0) / 60, 1),
    }

    for method in ("tfp", "tfi"):  # what a user with only the RGB network would do with spikes
        rows[f"teacher on the spike window's {method.upper()} (rgb-{method})"] = _score(
            tres["last"], data, test, spikes, gts, modality=f"rgb-{method}"
        )

    per_seed: dict[str, list[dict]] = {"start": [], "control": [], "external": []}
    for seed in a.seeds:
        for arm, depth_w, steps in (("start", 1.0, 1), ("control", 0.0, a.steps), ("external", 1.0, a.steps)):
            if arm not in a.arms:
                continue
            t0 = time.time()
            cfg = load_config("distill_external")
            apply_overrides(
                cfg,
                [*common, "--seed", str(seed), "--trainer.max_steps", str(steps)]
                + ["--model.width", "16", "--model.decoder_width", "8", "--pose.width", "16"]
                + ["--optim.lr", "0.0002", "--distill.teacher_input", "unit"]
                + ["--distill.depth_weight", str(depth_w), "--distill.pose_warmup", "100"]
                + ["--checkpoint.every_n_steps", "100", *a.overrides],
            )
            res = run_training(cfg, out / a.tag / f"{arm}_s{seed}", resume=True, teacher=str(onnx))
            r = _score(res["last"], data, test, spikes, gts)  # the last step: never chosen on depth
            r.update(
                {"seed": seed, "steps": res["global_step"], "minutes": round((time.time() - t0) / 60, 1)}
            )
            per_seed[arm].append(r)
            print(arm, seed, {k: r[k] for k in ("abs_rel", "rmse", "a1")}, flush=True)
            (out / f"results_{a.tag}_{a.split}.json").write_text(
                json.dumps({"rows": rows, "per_seed": per_seed}, indent=2)
            )
    names = {
        "start": "student start (1 pose warm-up step)",
        "control": f"student, photometric only ({a.steps} steps)",
        "external": f"student, + external teacher SSI loss ({a.steps} steps)",
    }
    for arm, rs in [(k, v) for k, v in per_seed.items() if v]:
        agg = {k: statistics.mean(r[k] for r in rs) for k in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1")}
        sd = statistics.stdev(r["abs_rel"] for r in rs) if len(rs) > 1 else 0.0
        agg["abs_rel ± std"] = f"{agg['abs_rel']:.3f} ± {sd:.3f}"
        agg["seeds"] = ", ".join(f"{r['abs_rel']:.3f}" for r in rs)
        rows[names[arm]] = agg
    (out / f"results_{a.tag}_{a.split}.json").write_text(
        json.dumps({"rows": rows, "per_seed": per_seed}, indent=2)
    )
    lines = ["| row | abs_rel | abs_rel ± std (seeds) | rmse | a1 |", "|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['abs_rel']:.3f} | {r.get('abs_rel ± std', '')} {r.get('seeds', '')} "
            f"| {r['rmse']:.3f} | {r['a1']:.3f} |"
        )
    (out / f"results_{a.tag}_{a.split}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
