"""Adapt a model to one real drive without depth (``r2sdepth adapt``), evaluate it on two others.

    python benchmarks/adapt_cross_drive.py --checkpoint demo --seeds 0 1 2 --out runs/adapt_cross_drive

For each seed: ``r2sdepth adapt --checkpoint CKPT --input <kitti_unlabelled drive 0095> --out OUT/seedS
--seed S`` (the shipped ``adapt`` config), then ``r2sdepth eval --baselines`` of the adapted model and of
the model it started from on KITTI drive 0005 frames 0-29 and drive 0009 frames 0-50 (LiDAR, Garg crop,
80 m, median scaling). Writes ``OUT/results.json`` and prints a table (mean +- std over seeds, every
seed shown). The rule this answers to: ``docs/results/adapt/RULE.md``. About 10 min per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
FOOTAGE = SHARED / "kitti_unlabelled" / "2011_09_26" / "2011_09_26_drive_0095_sync"
KITTI = SHARED / "kitti_raw"
DRIVES = {
    "0005 (0-29)": ("2011_09_26/2011_09_26_drive_0005_sync", range(30)),
    "0009 (0-50)": ("2011_09_26/2011_09_26_drive_0009_sync", range(51)),
}


def r2(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "r2sdepth.cli", *map(str, args)], check=True)


def evaluate(ckpt: str, split: Path, out: Path) -> dict:
    """``r2sdepth eval --baselines`` rows of one checkpoint on one split."""
    r2("eval", "--checkpoint", ckpt, "--data", KITTI, "--split", split, "--baselines", "--out", out)
    return json.loads(out.read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/adapt_cross_drive")
    ap.add_argument("--set", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    splits = {}
    for name, (drive, frames) in DRIVES.items():
        splits[name] = out / f"split_{name[:4]}.txt"
        splits[name].write_text("".join(f"{drive} {f} l\n" for f in frames))
    res: dict = {"before": {}, "seeds": {}}
    for name, split in splits.items():
        res["before"][name] = evaluate(a.checkpoint, split, out / f"before_{name[:4]}.json")
    for s in a.seeds:
        run = out / f"seed{s}"
        r2(
            "adapt",
            "--checkpoint",
            a.checkpoint,
            "--input",
            FOOTAGE,
            "--out",
            run,
            "--seed",
            s,
            *(x for kv in a.set for x in ("--" + kv[0], kv[1])),
        )
        ck = str(run / "adapted_spike.ckpt")
        res["seeds"][s] = {
            name: evaluate(ck, split, run / f"eval_{name[:4]}.json") for name, split in splits.items()
        }
    rows = []
    for name in splits:
        before = res["before"][name]
        model_key = next(iter(before))  # eval writes the model's row first, then the baselines
        after = [next(iter(res["seeds"][s][name].values()))["abs_rel"] for s in a.seeds]
        rows.append(
            {
                "drive": name,
                "before": before[model_key]["abs_rel"],
                "after_seeds": after,
                "after_mean": float(np.mean(after)),
                "after_std": float(np.std(after)),
                "baselines": {k: v["abs_rel"] for k, v in before.items() if k != model_key},
            }
        )
    res["summary"] = rows
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print("| drive | before | after (seeds) | after mean +- std | baselines |")
    print("|---|---:|---|---:|---|")
    for r in rows:
        seeds = " / ".join(f"{v:.3f}" for v in r["after_seeds"])
        base = ", ".join(f"{k} {v:.3f}" for k, v in r["baselines"].items())
        print(
            f"| {r['drive']} | {r['before']:.3f} | {seeds} | {r['after_mean']:.3f} +- {r['after_std']:.3f} | {base} |"
        )


if __name__ == "__main__":
    main()
