"""The baseline a user with an RGB depth network has, on real KITTI frames: reconstruct, then RGB.

An RGB network is trained exactly as the shipped real-footage model's synthetic pretraining
(``train_spike_traffic_synth``: dense city-traffic scenes, their exact depth, 1000 steps) with
only ``--model.modality rgb`` changed, seeds 0, 1, 2 (every seed's last step; nothing chosen on
depth). Each is scored by ``r2sdepth eval --baselines`` on the two shared real drives (spikes
simulated from the frames with the model's camera settings, Garg crop, 80 m, median scaling):
on the RGB frames themselves (what an RGB camera would give) and on the TFP and TFI
reconstructions of the same spike windows the spike models see (``--modality rgb-tfp`` /
``rgb-tfi``). No design decision was made with these figures: the recipe is fixed above.

    python benchmarks/reconstruct_baseline_real.py --out runs/reconstruct_real    # ~35 min, 2 cores

Writes ``OUT/results.json`` and ``OUT/results.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from r2sdepth.data.kitti import Sample, write_split
from r2sdepth.train.run import apply_overrides, load_config, run_training

ROOT = Path(__file__).resolve().parents[1]
KITTI = ROOT.parent / "shared" / "data" / "kitti_raw"
DRIVES = {
    "0005 (0-29)": ("2011_09_26/2011_09_26_drive_0005_sync", range(0, 30)),
    "0009 (0-50)": ("2011_09_26/2011_09_26_drive_0009_sync", range(0, 51)),
}
INPUTS = ("rgb", "rgb-tfp", "rgb-tfi")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/reconstruct_real")
    ap.add_argument("--kitti", default=str(KITTI))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sequences", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1000)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cli = [sys.executable, "-m", "r2sdepth.cli"]
    data = out / "traffic"
    if not (data / "splits").is_dir():  # the pretraining's scenes (scripts/make_real_model.py)
        subprocess.run(
            cli + ["synth", "--out", data, "--sequences", str(a.sequences), "--frames", "50"]
            + ["--size", "64x224", "--traffic", "0.8", "--seed", "1", "--workers", "2"],
            check=True,
        )  # fmt: skip
    splits = {}
    for name, (drive, frames) in DRIVES.items():
        splits[name] = out / f"split_{name.split()[0]}.txt"
        write_split(splits[name], [Sample(drive, f, "l") for f in frames])
    res_file = out / "results.json"
    results = json.loads(res_file.read_text()) if res_file.is_file() else {}
    for seed in a.seeds:
        cfg = load_config("train_spike_traffic_synth")
        sp = data / "splits"
        apply_overrides(
            cfg,
            ["--model.modality", "rgb", "--seed", str(seed), "--data.root", str(data)]
            + [
                "--data.train_split",
                str(sp / "train_files.txt"),
                "--data.val_split",
                str(sp / "val_files.txt"),
            ]
            + ["--trainer.max_steps", str(a.steps), "--trainer.enable_progress_bar", "false"],
        )
        ckpt = run_training(cfg, out / f"rgb_s{seed}", resume=True)["last"]
        for name, split in splits.items():
            for inp in INPUTS:
                key = f"{name}|{inp}|{seed}"
                if key in results:
                    continue
                js = out / f"eval_{name.split()[0]}_{inp}_s{seed}.json"
                cmd = cli + ["eval", "--checkpoint", ckpt, "--modality", inp, "--data", a.kitti]
                subprocess.run(cmd + ["--split", split, "--baselines", "--out", js], check=True)
                results[key] = json.loads(js.read_text())
                res_file.write_text(json.dumps(results, indent=2))
    lines = [
        "| drive (frames) | RGB net on RGB frames | on TFP (rgb-tfp) | on TFI (rgb-tfi) | constant | flat-road prior |",
        "|---|---|---|---|---:|---:|",
    ]
    for name in DRIVES:
        cells = []
        base = None
        for inp in INPUTS:
            rs = [results[f"{name}|{inp}|{s}"] for s in a.seeds]
            v = [_abs_rel(r, model=True) for r in rs]
            sd = statistics.stdev(v) if len(v) > 1 else 0.0
            cells.append(f"{statistics.mean(v):.3f} ± {sd:.3f} ({', '.join(f'{x:.3f}' for x in v)})")
            base = rs[0]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {_abs_rel(base, 'constant'):.3f} | {_abs_rel(base, 'flat'):.3f} |"
        )
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _abs_rel(r: dict, baseline: str | None = None, model: bool = False) -> float:
    """abs_rel of the model's row (``model``) or of the baseline row whose name starts with
    ``baseline`` in an ``r2sdepth eval --out`` JSON."""
    for k, v in r.items():
        lk = k.lower()
        is_base = lk.startswith(("constant", "flat"))
        if (model and not is_base) or (baseline and lk.startswith(baseline)):
            return float(v["abs_rel"])
    raise KeyError(f"no {'model' if model else baseline} row in {list(r)}")


if __name__ == "__main__":
    main()
