"""Metric depth without LiDAR, measured on synthetic scenes with exact depth.

Trains the rgb stage-1 model of the learning check (``train_rgb_synth``) on synthetic stereo
scenes with one of three recipes, the same steps from the same start:

* ``mono``: view synthesis on frames t-1, t+1 only (control: the scale is arbitrary);
* ``stereo``: + the right camera at time t with its calibrated pose (``data.stereo``, Monodepth2's MS);
* ``velocity``: + the velocity term on the pose net (``loss.velocity_weight``, PackNet-SfM), the
  distances from the scenes' ``poses.txt``;

from scratch, or (``--relative-start STEPS``) all from one relative-depth network trained on the
training scenes' exact depth with a scale-invariant loss (``loss.depth_lambda 1``: the global scale
is left free, so a metric scale can only come from the recipe); then evaluates each last checkpoint
on the held-out test sequences (Garg crop, 80 m) with ``median``, ``none`` and ``camera-height``
scaling (the scenes' camera is 1.65 m above the road). No metric depth label is used for training
or for choosing a checkpoint.

    python benchmarks/metric_scale.py --out runs/metric_scale --steps 400 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from r2sdepth import evaluate as ev
from r2sdepth.export import slim_checkpoint
from r2sdepth.infer import predict_split, speed_scale_split
from r2sdepth.train.run import apply_overrides, load_config, run_training

# every recipe starts from the same metric prior (first predictions 10 m deep): from the learning
# check's start (depth about 0.2 m) 500 steps did not move the scale to metres with either term;
# with pose outputs x1 as well the pose net collapsed to a constant motion (velocity, mono)
COMMON = ["--model.init_depth", "10"]
RECIPES = {
    "mono": [],
    "stereo": ["--data.stereo", "true"],
    "stereo-only": ["--data.stereo", "true", "--data.context", "[]"],  # Monodepth2's S: no pose net
    "velocity": ["--loss.velocity_weight", "0.05"],
    # the term from step 250 on: from the start it fixed the magnitude of the pose net's first, random
    # direction (sideways and up as much as forward) before the photometric loss could set it
    "velocity-warmup": ["--loss.velocity_weight", "0.05", "--loss.velocity_warmup", "250"],
    # pose outputs x1: at x0.1 the translations grew from 0.025 to 0.058 m in the 250 steps of the term
    # (1 m needed); its control is mono-p1, the same without the term
    "velocity-warmup-p1": [
        "--loss.velocity_weight",
        "0.05",
        "--loss.velocity_warmup",
        "250",
        "--pose.scale",
        "1.0",
    ],
    "mono-p1": ["--pose.scale", "1.0"],
    # the forward component only (oxts' forward speed), from step 0: it pushes the first motion forward
    # instead of fixing the length of a random (often sideways) one, the failure of every recipe above
    "velocity-forward": ["--loss.velocity_weight", "0.05", "--loss.velocity_axis", "forward"],
    # the signed forward term alone let one seed of three move sideways (|t_x| 0.35-0.49 m) at the
    # right forward speed; the length term as well holds the sideways motion to the poses'
    "velocity-both": ["--loss.velocity_weight", "0.05", "--loss.velocity_axis", "both"],
    "known-speed": ["--loss.known_speed", "true"],  # control: mono
    # from the start, the forced 1 m translations locked the pose net onto a sideways motion; after
    # 250 photometric steps its direction is forward and only the scale is changed
    "known-speed-warmup": ["--loss.known_speed", "true", "--loss.velocity_warmup", "250"],
    # the warm-up's pose net collapsed in 2 of 3 seeds (as the mono control's): start it from no motion
    "mono-zero": ["--pose.zero_init", "true"],
    "known-speed-warmup-zero": [
        "--loss.known_speed",
        "true",
        "--loss.velocity_warmup",
        "250",
        "--pose.zero_init",
        "true",
    ],
}
SCALINGS = ("median", "none", "camera-height")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--recipes", nargs="*", default=list(RECIPES), choices=list(RECIPES))
    ap.add_argument(
        "--relative-start",
        type=int,
        default=0,
        metavar="STEPS",
        help="start every recipe from one relative-depth network instead of from scratch: STEPS of the "
        "scale-invariant log loss (loss.depth_lambda 1: no global scale) on the training scenes' exact "
        "depth, no photometric loss, first depth --start-depth; the scale comes from each recipe alone",
    )
    ap.add_argument("--start-depth", type=float, default=2.0, help="model.init_depth of the relative start")
    ap.add_argument("--start-seed", type=int, default=0, help="seed of the relative start's training")
    ap.add_argument(
        "--speed-scale",
        action="store_true",
        help="also the relative start made metric from known speed (r2sdepth speed-scale on the training "
        "split: no depth labels), evaluated as the row 'relative start + speed scale'",
    )
    ap.add_argument(
        "--start-from",
        type=Path,
        help="the relative start's depth_net.ckpt of another --out (processes side by side share one start)",
    )
    ap.add_argument("--sequences", type=int, default=10)
    ap.add_argument("--frames", type=int, default=50)
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="DIR",
        help="only print the table of these runs' results.json together (runs made by separate processes)",
    )
    a = ap.parse_args()
    out = Path(a.out)
    if a.merge:
        rows: dict = {}
        for d in a.merge:
            rows.update(json.loads((Path(d) / "results.json").read_text()))
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(rows, indent=2))
        print(write_table(rows, out))
        return
    data = out / "synth"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "r2sdepth.cli",
            "synth",
            "--out",
            str(data),
            "--sequences",
            str(a.sequences),
            "--frames",
            str(a.frames),
            "--size",
            "64x224",
            "--stereo",
        ],
        check=True,
    )
    splits = data / "splits"
    gts = ev.split_gt(data, splits / "test_files.txt")
    res_file = out / "results.json"
    rows = json.loads(res_file.read_text()) if res_file.is_file() else {}
    rows["constant + median scaling"] = ev.constant_median_baseline(gts)
    start: list[str] = []
    if a.relative_start:
        cfg = load_config("train_rgb_synth")
        apply_overrides(
            cfg,
            [
                *_common_overrides(data, a.batch_size, a.start_seed),
                "--trainer.max_steps",
                str(a.relative_start),
                "--data.gt_source",
                "exact",
                "--loss.photo_weight",
                "0",
                "--loss.depth_weight",
                "1",
                "--loss.depth_lambda",
                "1",
                "--model.init_depth",
                str(a.start_depth),
            ],
        )
        res = run_training(cfg, out / "relative_start", resume=True)
        rows["relative start"] = {"steps": res["global_step"], **_evaluate(res["last"], data, gts)}
        res_file.write_text(json.dumps(rows, indent=2))
        print("relative start", {sc: round(rows["relative start"][sc]["abs_rel"], 3) for sc in SCALINGS})
        # the depth network alone (a slim file): each recipe's seed draws its own pose net
        slim = slim_checkpoint(res["last"], out / "relative_start" / "depth_net.ckpt")
        start = ["--init_from", str(slim)]
    if a.start_from:
        start = ["--init_from", str(a.start_from)]
    if a.speed_scale and start and "relative start + speed scale" not in rows:
        t = time.time()
        r = speed_scale_split(start[1], data, splits / "train_files.txt")
        metric = slim_checkpoint(
            start[1],
            out / "relative_start" / "speed_scaled.ckpt",
            extra={"from": "known speed"},
            depth_scale=r["factor"],
        )
        rows["relative start + speed scale"] = {
            "factor": r["factor"],
            "quartiles": r["quartiles"],
            "frames": r["frames"],
            "minutes": round((time.time() - t) / 60, 1),
            **_evaluate(metric, data, gts),
        }
        res_file.write_text(json.dumps(rows, indent=2))
        row = rows["relative start + speed scale"]
        print(
            "relative start + speed scale",
            f"x{r['factor']:.3f}",
            {sc: round(row[sc]["abs_rel"], 3) for sc in SCALINGS},
        )
    for recipe in a.recipes:
        for seed in a.seeds:
            name = f"{recipe} seed {seed}"
            if name in rows:
                continue
            cfg = load_config("train_rgb_synth")
            apply_overrides(
                cfg,
                [
                    *_common_overrides(data, a.batch_size, seed),
                    "--trainer.max_steps",
                    str(a.steps),
                    *COMMON,
                    *RECIPES[recipe],
                    *start,
                ],
            )
            t = time.time()
            res = run_training(cfg, out / f"{recipe}_s{seed}", resume=True)
            minutes = (time.time() - t) / 60
            row = {
                "recipe": recipe,
                "seed": seed,
                "steps": res["global_step"],
                "train_min": round(minutes, 1),
                "start": "relative" if start else "scratch",
                **_evaluate(res["last"], data, gts),
            }
            rows[name] = row
            res_file.write_text(json.dumps(rows, indent=2))
            print(name, {sc: round(row[sc]["abs_rel"], 3) for sc in SCALINGS}, flush=True)
    print(write_table(rows, out))


def _common_overrides(data: Path, batch_size: int, seed: int) -> list[str]:
    """The data, batch and seed overrides every run of this benchmark shares."""
    splits = data / "splits"
    return [
        "--data.root",
        str(data),
        "--data.train_split",
        str(splits / "train_files.txt"),
        "--data.val_split",
        "null",
        "--data.batch_size",
        str(batch_size),
        "--seed",
        str(seed),
        "--trainer.enable_progress_bar",
        "false",
    ]


def _evaluate(ckpt: Path, data: Path, gts: list) -> dict:
    """abs_rel and the other metrics of ``ckpt`` on the held-out test sequences under each scaling
    (Garg crop, 80 m; the scenes' camera 1.65 m above the road), with the scale ratios."""
    split = data / "splits" / "test_files.txt"
    preds, _ = predict_split(ckpt, data, split)
    Ks = ev.split_intrinsics(data, split, [p.shape[-2:] for p in preds])
    row: dict = {}
    for sc in SCALINGS:
        r = ev.evaluate_depths(preds, gts, ev.EvalProtocol(scaling=sc, camera_height=1.65), intrinsics=Ks)
        row[sc] = {k: r[k] for k in (*ev.METRICS, "n", "scaling") if k in r}
        row[sc].update(
            {k: r[k] for k in ("ratio_median", "ratio_std", "gt_ratio_median", "scale_failures") if k in r}
        )
    return row


def write_table(rows: dict, out: Path) -> str:
    """The Markdown table of every run and each recipe's mean ± std (also ``out/results.md``)."""
    lines = [
        "| recipe | seed | abs_rel median | abs_rel none | none / median | abs_rel camera-height | "
        "camera-height / median | GT / prediction (none) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, r in rows.items():
        if "median" not in r:
            continue
        m, n, c = (r[s]["abs_rel"] for s in SCALINGS)
        lines.append(
            f"| {r.get('recipe', key)} | {r.get('seed', '')} | {m:.3f} | {n:.3f} | {n / m:.2f} | {c:.3f} | "
            f"{c / m:.2f} | "
            f"{r['none'].get('gt_ratio_median', float('nan')):.2f} |"
        )
    base = rows.get("constant + median scaling")
    if base:
        lines.append(f"| constant + median scaling | | {base['abs_rel']:.3f} | | | | | |")
    for recipe in RECIPES:
        rs = [r for r in rows.values() if r.get("recipe") == recipe]
        if len(rs) > 1:
            agg = {s: np.array([r[s]["abs_rel"] for r in rs]) for s in SCALINGS}
            lines.append(
                f"| **{recipe}, mean ± std** | {len(rs)} seeds | "
                + " | ".join(
                    f"{agg[s].mean():.3f} ± {agg[s].std():.3f}"
                    + (f" | {(agg[s] / agg['median']).mean():.2f}" if s != "median" else "")
                    for s in SCALINGS
                )
                + " | |"
            )
    table = "\n".join(lines)
    (out / "results.md").write_text(table + "\n")
    return table


if __name__ == "__main__":
    main()
