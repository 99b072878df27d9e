"""Stage-2 ablation: does cross-modality distillation improve the spike-only network?

Uses the learning check's data and stage-1 models (``benchmarks/learning_check.py``): the fusion
teacher, and the rgb / spike / fusion rows. Every stage-2 variant starts from the same student
(the teacher's spike branch and spike decoder) and trains the same number of steps, so the
"photo only" row is the control: same start, same steps, no distillation terms.

Evaluated on (1) the held-out synthetic test sequences (exact depth) and (2) the real KITTI
sample in ``../shared/data/kitti_raw`` (30 frames, LiDAR ground truth; zero-shot: the models were
trained on synthetic scenes only, spikes are simulated from the real frames). Eigen protocol:
Garg crop, 80 m cap, per-image median scaling.

    python benchmarks/ablation.py --lc runs/learning_check --out runs/ablation_s0 --seed 0    # all rows
    python benchmarks/ablation.py --lc runs/learning_check --out runs/ablation_s1 --seed 1 --variants ...
    python benchmarks/ablation_summary.py runs/ablation_s0 runs/ablation_s1 runs/ablation_s2

Seed 0 also evaluates the stage-1 rows and the real KITTI sample; later seeds only the students
on the synthetic test sequences.

Writes ``OUT/results.json`` and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from r2sdepth import evaluate as ev
from r2sdepth.data.kitti import Sample, write_split
from r2sdepth.infer import predict_split
from r2sdepth.train.run import apply_overrides, load_config, run_training

ROOT = Path(__file__).resolve().parents[1]
KITTI = ROOT.parent / "shared" / "data" / "kitti_raw"
KITTI_DRIVE = "2011_09_26/2011_09_26_drive_0005_sync"

OFF = {"feat_weight": 0, "at_weight": 0, "depth_weight": 0}
VARIANTS: dict[str, dict] = {
    "student: photo only (no distillation)": {**OFF, "adaptive": False},
    "student: feat + at + depth, adaptive": {},
    "student: feat + at + depth, no adaptive weighting": {"adaptive": False},
    "student: feat + at + depth, adaptive (soft pixel weights)": {"pixel": "soft"},
    "student: depth only, adaptive": {"feat_weight": 0, "at_weight": 0},
    "student: feat only, adaptive": {"at_weight": 0, "depth_weight": 0},
    "student: at only, adaptive": {"feat_weight": 0, "depth_weight": 0},
}


def kitti_split(out: Path) -> Path | None:
    if not (KITTI / KITTI_DRIVE).is_dir():
        return None
    n = len(list((KITTI / KITTI_DRIVE / "image_02" / "data").glob("*.png")))
    path = out / "kitti_sample_files.txt"
    write_split(path, [Sample(KITTI_DRIVE, f, "l") for f in range(n)])  # every frame has a window (pre-roll)
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lc", default="runs/learning_check", help="learning-check folder")
    ap.add_argument("--teacher", help="fusion checkpoint (default: the learning check's)")
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--steps", type=int, default=300, help="stage-2 steps per variant")
    ap.add_argument("--variants", nargs="*", help="subset of variant names (default: all)")
    ap.add_argument("--seed", type=int, default=0, help="stage-2 seed (data order, connector init)")
    a = ap.parse_args()
    lc, out = Path(a.lc), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    lc_rows = json.loads((lc / "results.json").read_text())
    teacher = a.teacher or lc_rows["fusion"]["checkpoint"]
    data, spikes, splits = lc / "synth", lc / "spike", lc / "synth" / "splits"
    gts = ev.split_gt(data, splits / "test_files.txt")
    ksplit = kitti_split(out) if a.seed == 0 else None  # later seeds: synthetic rows only (time)
    kgts = ev.split_gt(KITTI, ksplit) if ksplit else None

    res_file = out / "results.json"
    res = json.loads(res_file.read_text()) if res_file.is_file() else {"synthetic": {}, "kitti_sample": {}}
    res["synthetic"]["mean training depth (no scaling)"] = lc_rows["mean training depth (no scaling)"]
    res["synthetic"]["constant + median scaling"] = lc_rows["constant + median scaling"]
    if kgts is not None:
        res["kitti_sample"]["constant + median scaling"] = ev.constant_median_baseline(kgts)

    def evaluate(name: str, ckpt: str, modality: str, minutes: float | None) -> None:
        preds, _ = predict_split(ckpt, data, splits / "test_files.txt", spike_root=spikes, modality=modality)
        r = ev.evaluate_depths(preds, gts)
        r.update({"train_min": minutes, "checkpoint": ckpt})
        res["synthetic"][name] = r
        if kgts is not None:
            kp, _ = predict_split(ckpt, KITTI, ksplit, modality=modality)
            res["kitti_sample"][name] = ev.evaluate_depths(kp, kgts)
        res_file.write_text(json.dumps(res, indent=2) + "\n")

    for m, modality in (("rgb", "rgb"), ("spike", "spike"), ("fusion", "fusion"), ("fusion", "spike")):
        if m in lc_rows and a.seed == 0:  # stage-1 rows do not depend on the stage-2 seed
            name = f"stage 1 {m}" + (" (teacher)" if m == "fusion" and modality == "fusion" else "")
            name += " -> its spike head (student start)" if m == "fusion" and modality == "spike" else ""
            evaluate(name, lc_rows[m]["checkpoint"], modality, lc_rows[m].get("train_min"))
    for name, over in VARIANTS.items():
        if a.variants and name not in a.variants:
            continue
        cfg = load_config("distill_synth")
        ov = [
            "--data.root",
            str(data),
            "--data.spike_root",
            str(spikes),
            "--data.train_split",
            str(splits / "train_files.txt"),
            "--data.val_split",
            str(splits / "val_files.txt"),
            "--trainer.max_steps",
            str(a.steps),
            "--trainer.enable_progress_bar",
            "false",
            "--seed",
            str(a.seed),
        ]
        for k, v in over.items():
            ov += [f"--distill.{k}", str(v)]
        apply_overrides(cfg, ov)
        run = out / re.sub(r"[^a-z0-9]+", "_", name.split(": ")[1]).strip("_")
        t = time.time()
        r = run_training(cfg, run, resume=False, teacher=teacher)
        evaluate(name, r["last"], "spike", round((time.time() - t) / 60, 1))
        print(name, res["synthetic"][name]["abs_rel"], flush=True)

    cols = ("train_min",)
    md = [
        "## Synthetic held-out sequences (exact depth)",
        "",
        ev.markdown_table(res["synthetic"], extra=cols),
    ]
    if res.get("kitti_sample"):
        md += [
            "",
            "## Real KITTI sample (LiDAR, zero-shot from synthetic training)",
            "",
            ev.markdown_table(res["kitti_sample"]),
        ]
    (out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
