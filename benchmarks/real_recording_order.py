"""Does a model order a real spike recording's scene correctly? (no depth ground truth exists)

The real PKU recording ``../shared/data/spike_real/car_250x400.dat`` (250 x 400, 200 planes at
the gen-1 camera's 20 kHz, 10 ms) shows a car passing close to the camera (left half, moving
right), a grey wall behind it (right) and trees behind the wall (top). The boxes below were fixed
on the TFP images of planes 0-63 and 128-191 *before any prediction was looked at*, and chosen so
that the moving car stays inside (car boxes) or outside (wall box) them for every window of the
file. They cover the car's bright body and two dark parts (the wheel arch, the windscreen), so
that brightness alone cannot pass (a model that makes bright things near gets the dark parts wrong).

Rule (fixed with the boxes): a model passes a window when the median depth of *every* car box is
at least ``MARGIN`` times nearer than the median depth of the wall box and of the trees box. It
passes the recording when it passes every window (``--window`` planes, stride ``--stride``).

    python benchmarks/real_recording_order.py --checkpoint demo real --out docs/results/real_order

Writes ``OUT/results.json`` (per model, per window: box medians and ratios) and ``OUT/order.png``
(TFP with the boxes | each model's depth of the first window).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image

import r2sdepth
from r2sdepth.spike import SpikeStream, tfp
from r2sdepth.viz import depth_picture, labelled, to_uint8

ROOT = Path(__file__).resolve().parents[1]
RECORDING = (
    Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
    / "spike_real"
    / "car_250x400.dat"
)
#: name -> (row0, row1, col0, col1) at the sensor's 250 x 400 (upright image)
BOXES = {
    "car body (bright)": (100, 150, 10, 110),
    "wheel arch (dark)": (185, 245, 5, 55),
    "windscreen (dark)": (122, 160, 195, 220),
    "wall": (100, 150, 340, 395),
    "trees": (5, 60, 20, 380),
}
CAR = ("car body (bright)", "wheel arch (dark)", "windscreen (dark)")
BACKGROUND = ("wall", "trees")
MARGIN = 1.2


def box_medians(depth: np.ndarray) -> dict[str, float]:
    """Median depth in each box of a ``[250, 400]`` map."""
    return {k: float(np.median(depth[r0:r1, c0:c1])) for k, (r0, r1, c0, c1) in BOXES.items()}


def judge(med: dict[str, float]) -> dict[str, object]:
    """Ratios background / car for every pair, and whether all clear ``MARGIN``."""
    ratios = {f"{b} / {c}": med[b] / med[c] for c in CAR for b in BACKGROUND}
    return {"ratios": ratios, "min_ratio": min(ratios.values()), "passed": min(ratios.values()) >= MARGIN}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", nargs="+", default=["demo", "real"])
    ap.add_argument("--recording", default=str(RECORDING))
    ap.add_argument(
        "--window", type=int, default=None, help="planes per window (default: each model's trained one)"
    )
    ap.add_argument("--stride", type=int, default=32)
    ap.add_argument("--net-size", default=None, help="HxW network input (default: the trained size)")
    ap.add_argument("--out", default="runs/real_order")
    a = ap.parse_args()

    st = SpikeStream(a.recording, 250, 400)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    results, panels = {}, []
    first = to_uint8(tfp(st.read(0, 64)))
    boxed = np.repeat(first[..., None], 3, axis=2) if first.ndim == 2 else first.copy()
    for k, (r0, r1, c0, c1) in BOXES.items():
        col = (255, 60, 60) if k in CAR else (60, 160, 255)
        boxed[r0, c0:c1] = boxed[r1 - 1, c0:c1] = col
        boxed[r0:r1, c0] = boxed[r0:r1, c1 - 1] = col
    panels.append(labelled(boxed, "TFP, planes 0-63 (red: car, blue: background)", 250))
    # what passes without learning anything: the check must fail both
    baselines = {
        "brightness prior (bright = near)": lambda w: 1.0 / (0.05 + tfp(w)),
        "row prior (lower = nearer)": lambda w: np.repeat(
            1.0 / (1.0 + np.arange(w.shape[1], dtype=float))[:, None], w.shape[2], axis=1
        ),
    }
    for name, fn in baselines.items():
        rows = []
        for t0 in range(0, len(st) - 64 + 1, a.stride):
            med = box_medians(fn(st.read(t0, t0 + 64)))
            rows.append({"planes": [t0, t0 + 64], "medians": med, **judge(med)})
        results[name] = {
            "window": 64,
            "windows": rows,
            "passed_all": all(r["passed"] for r in rows),
            "min_ratio": min(r["min_ratio"] for r in rows),
        }
        print(
            f"{name:>34}: {'PASS' if results[name]['passed_all'] else 'FAIL'} (smallest ratio "
            f"{results[name]['min_ratio']:.2f})"
        )
    for ck in a.checkpoint:
        model = r2sdepth.load_model(ck)
        window = a.window or int(model.meta.get("data", {}).get("window") or 64)
        size = (
            tuple(int(v) for v in a.net_size.split("x"))
            if a.net_size
            else (int(model.meta["height"]), int(model.meta["width"]))
        )
        rows = []
        for t0 in range(0, len(st) - window + 1, a.stride):
            d = model.predict(st.read(t0, t0 + window)[None], net_size=size)[0]
            med = box_medians(d)
            rows.append({"planes": [t0, t0 + window], "medians": med, **judge(med)})
            if t0 == 0:
                lo, hi = np.percentile(d, [2, 98])
                panels.append(
                    labelled(
                        depth_picture(d, float(lo), float(hi), "model units", colorbar=False),
                        f"{ck}: depth, planes 0-{window - 1}",
                        250,
                    )
                )
        results[ck] = {
            "window": window,
            "net_size": list(size),
            "windows": rows,
            "passed_all": all(r["passed"] for r in rows),
            "min_ratio": min(r["min_ratio"] for r in rows),
        }
        print(
            f"{ck:>34}: {'PASS' if results[ck]['passed_all'] else 'FAIL'} (smallest background/car ratio "
            f"{results[ck]['min_ratio']:.2f} over {len(rows)} windows; needs >= {MARGIN})"
        )
    (out / "results.json").write_text(
        json.dumps(
            {"recording": str(a.recording), "boxes": BOXES, "margin": MARGIN, "models": results}, indent=1
        )
    )

    Image.fromarray(np.concatenate(panels, 1)).save(out / "order.png")
    print(f"wrote {out / 'results.json'} and {out / 'order.png'}")


if __name__ == "__main__":
    main()
