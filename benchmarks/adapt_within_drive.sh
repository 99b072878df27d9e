#!/usr/bin/env bash
# Within-drive adaptation (docs/results/adapt/RULE.md): adapt the demo model on the first frames of a
# KITTI drive without depth, report abs_rel before/after on the drive's later frames (LiDAR).
#   bash benchmarks/adapt_within_drive.sh OUT        (about 5 min per run on 2 idle cores; 6 runs)
set -euo pipefail
OUT=${1:-runs/adapt_within}
K=${R2SDEPTH_SHARED_DATA:-../shared/data}/kitti_raw/2011_09_26
for S in 0 1 2; do
  r2sdepth adapt --checkpoint demo --input "$K/2011_09_26_drive_0009_sync" --frames 0-30 --eval-frames 31-50 \
    --out "$OUT/0009_s$S" --seed "$S"
  r2sdepth adapt --checkpoint demo --input "$K/2011_09_26_drive_0005_sync" --frames 0-19 --eval-frames 20-29 \
    --out "$OUT/0005_s$S" --seed "$S"
done
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for drive in ("0009", "0005"):
    rows = [json.loads((out / f"{drive}_s{s}" / "eval.json").read_text()) for s in range(3)]
    b = [r["before (the model adapted)"]["abs_rel"] for r in rows]
    a = [r["after (adapted)"]["abs_rel"] for r in rows]
    c = rows[0]["constant + median scaling"]["abs_rel"]
    print(f"{drive}: before {b[0]:.3f}, after " + " / ".join(f"{x:.3f}" for x in a) + f", constant {c:.3f}")
PY
