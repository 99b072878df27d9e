"""What ``r2sdepth infer`` gives on full-size KITTI frames with its default network size (the size
the checkpoint was trained at: the input is resized to it and the depth resized back) versus
``--fit pad`` (the input padded to multiples of 32 at its own scale), against LiDAR.

    python benchmarks/infer_fit.py --drive 2011_09_26_drive_0009_sync --frames 0:51 [--checkpoint demo]

Each mode runs the real CLI on a folder of the drive's ``image_02`` frames (spikes simulated from
them with the checkpoint's camera settings, as a user's ``infer --input frames/`` does); the
depth maps it writes are scored with ``r2sdepth.evaluate`` (Garg crop, 1e-3 to 80 m, per-image
median scaling) beside the constant + median baseline on the same frames. Prints one JSON line per
mode and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from r2sdepth.data import kitti
from r2sdepth.evaluate import constant_median_baseline, evaluate_depths

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kitti_raw"
MODES = {"default (trained size)": [], "--fit pad": ["--fit", "pad"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(SHARED), help="KITTI raw root (date folders inside)")
    ap.add_argument("--date", default="2011_09_26")
    ap.add_argument("--drive", default="2011_09_26_drive_0009_sync")
    ap.add_argument("--frames", default="0:51", help="start:stop (python range)")
    ap.add_argument("--checkpoint", default="demo")
    a = ap.parse_args()
    start, stop = (int(v) for v in a.frames.split(":"))
    rel = f"{a.date}/{a.drive}"
    src = Path(a.root) / rel / "image_02" / "data"
    with tempfile.TemporaryDirectory() as tmp:
        frames = Path(tmp) / "frames"
        frames.mkdir()
        for i in range(start, stop):
            shutil.copy(src / f"{i:010d}.png", frames / f"{i:010d}.png")
        rows = {}
        for mode, extra in MODES.items():
            out = Path(tmp) / mode.replace(" ", "_").replace("-", "")
            t0 = time.perf_counter()
            r = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "r2sdepth.cli",
                    "infer",
                    "--checkpoint",
                    a.checkpoint,
                    "--input",
                    str(frames),
                    "--out",
                    str(out),
                    *extra,
                ],
                capture_output=True,
                text=True,
            )
            if r.returncode:
                sys.exit(f"infer ({mode}) failed: {r.stderr.strip().splitlines()[-1]}")
            summ = json.loads((out / "summary.json").read_text())
            names = summ["names"]
            preds = [np.load(out / "depth" / f"{n}.npy") for n in names]
            gts = [kitti.gt_depth(a.root, rel, int(n)) for n in names]
            res = evaluate_depths(preds, gts)
            rows[mode] = {
                "abs_rel": res["abs_rel"],
                "rmse": res["rmse"],
                "a1": res["a1"],
                "n": res["n"],
                "network_size": summ["network_size"],
                "seconds": round(time.perf_counter() - t0, 1),
            }
            print(json.dumps({"mode": mode, **rows[mode]}))
        base = constant_median_baseline(gts)
        rows["constant + median"] = {
            "abs_rel": base["abs_rel"],
            "rmse": base["rmse"],
            "a1": base["a1"],
            "n": base["n"],
            "network_size": "-",
            "seconds": "-",
        }
    print(f"\n{a.drive} frames {a.frames}, checkpoint {a.checkpoint}\n")
    print(
        "| mode | network size | abs_rel | rmse | a1 | frames | seconds |\n|---|---|---:|---:|---:|---:|---:|"
    )
    for mode, r in rows.items():
        ns = "x".join(map(str, r["network_size"])) if isinstance(r["network_size"], list) else "-"
        print(
            f"| {mode} | {ns} | {r['abs_rel']:.3f} | {r['rmse']:.2f} | {r['a1']:.3f} | {r['n']} | {r['seconds']} |"
        )


if __name__ == "__main__":
    main()
