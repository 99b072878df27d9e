"""Figure: a real spike window next to a simulated one (fitted camera model vs the default), with
their per-pixel rate histograms.

    python scripts/fit_sim_figure.py --params cam.json --out docs/fit_sim_car.png

The real window is planes 0-63 of ``car_250x400.dat``; the simulated ones are 64-plane camera-rate
windows (20 kHz) of KITTI drive 0009 frame 10 resized to 250 x 400, once with the default simulator
and once with the ``fit-sim`` parameters. The histograms use the same 64 planes of each.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from r2sdepth.frames import _resize, read_image
from r2sdepth.spike import SpikeStream, tfp
from r2sdepth.spike.simulate import SimParams, luminance, simulate_chunk

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", required=True, help="fit-sim output")
    ap.add_argument("--out", default="docs/fit_sim_car.png")
    a = ap.parse_args()
    import matplotlib  # noqa: PLC0415  the Agg backend is chosen before pyplot is imported

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415  the Agg backend is chosen before pyplot is imported

    real = SpikeStream(SHARED / "spike_real" / "car_250x400.dat", 250, 400).read(0, 64)
    d = SHARED / "kitti_raw" / "2011_09_26" / "2011_09_26_drive_0009_sync" / "image_02" / "data"
    l0, l1 = (luminance(_resize(read_image(d / f"{i:010d}.png"), 250, 400)) for i in (9, 10))
    fitted = json.loads(Path(a.params).read_text())["sim"]
    sims = {
        "simulated, default model": SimParams(planes_per_frame=64, camera_rate_hz=20000.0),
        "simulated, fit-sim model": SimParams(**{**fitted, "planes_per_frame": 64}),
    }
    wins = {"real (car_250x400.dat)": real}
    wins.update({k: simulate_chunk(l0, l1, p, seed=0, sequence="fig", frame=10) for k, p in sims.items()})
    fig, ax = plt.subplots(2, 3, figsize=(13, 6), gridspec_kw={"height_ratios": [1.4, 1]})
    for j, (name, w) in enumerate(wins.items()):
        ax[0, j].imshow(tfp(w), cmap="gray", vmin=0, vmax=1)
        ax[0, j].set_title(f"{name}\nTFP of 64 planes (3.2 ms at 20 kHz)", fontsize=9)
        ax[0, j].axis("off")
        r = w.mean(axis=0).ravel()
        ax[1, j].hist(r, bins=33, range=(0, 1.0001), color="0.3")
        ax[1, j].set_xlabel("per-pixel firing rate (spikes / plane)", fontsize=9)
        ax[1, j].set_title(
            f"mean {r.mean():.3f}, median {np.median(r):.3f}, saturated {100 * (r >= 0.99).mean():.1f}%",
            fontsize=9,
        )
    fig.tight_layout()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, dpi=80)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
