"""Mean ± std over seeds of stage-2 ablation runs (``benchmarks/ablation.py --seed N``).

    python benchmarks/ablation_summary.py runs/ablation_s0 runs/ablation_s1 runs/ablation_s2 \
        --out runs/ablation_summary.md

Each row is aggregated over the runs that have it (sample standard deviation, n - 1; stage-1
rows and baselines do not depend on the stage-2 seed, so one run carries them); the paired
difference of each variant to the control ("photo only", same seed: same start, data order and
steps) is reported as mean ± std too, which is the comparison the seeds are for.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

CONTROL = "student: photo only (no distillation)"
KEYS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3")


def ms(v: list[float]) -> str:
    return f"{statistics.fmean(v):.3f} ± {statistics.stdev(v):.3f}" if len(v) > 1 else f"{v[0]:.3f}"


def table(runs: list[dict], section: str) -> list[str]:
    rows: list[str] = []
    for x in runs:
        rows += [r for r in x.get(section, {}) if r not in rows]
    out = [
        "| model | seeds | " + " | ".join(KEYS) + " | abs_rel - control (paired) |",
        "|---|---:|" + "---:|" * (len(KEYS) + 1),
    ]
    for name in rows:
        have = [x for x in runs if name in x.get(section, {})]
        vals = {k: [x[section][name][k] for x in have] for k in KEYS}
        diff = ""
        paired = [x for x in have if CONTROL in x[section]]
        if name.startswith("student:") and name != CONTROL and paired:
            d = [x[section][name]["abs_rel"] - x[section][CONTROL]["abs_rel"] for x in paired]
            diff = f"{statistics.fmean(d):+.3f} ± {statistics.stdev(d):.3f}" if len(d) > 1 else f"{d[0]:+.3f}"
        seeds = str(len(have)) if name.startswith("student:") else "-"
        out.append(f"| {name} | {seeds} | " + " | ".join(ms(vals[k]) for k in KEYS) + f" | {diff} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="ablation output folders (one per seed)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args()
    runs = [json.loads((r / "results.json").read_text()) for r in a.runs]
    md = ["## Held-out synthetic test sequences (exact depth)", ""] + table(runs, "synthetic")
    if any(x.get("kitti_sample") for x in runs):
        md += ["", "## Real KITTI sample (LiDAR; zero-shot from synthetic training)", ""] + table(
            runs, "kitti_sample"
        )
    text = "\n".join(md) + "\n"
    if a.out:
        a.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
