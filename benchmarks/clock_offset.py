"""How precisely is a rig's clock offset recovered, and how large a clock error measurably hurts?

A simulated rig (:func:`r2sdepth.data.rig_synth.synthesize_rig`, the configuration of
``benchmarks/rig_alignment.py``: an RGB camera and a 64x224 spike camera at 640 Hz, rotated
``--yaw`` degrees, exposure changes) is made once per true clock offset (``--offsets``, ms; pick
some that are not whole planes: 1 plane = 1.5625 ms). For each sequence the offset is estimated
from the data (:meth:`r2sdepth.data.rig.RigSequence.estimate_offset`) and compared with the truth.

Then a spike-only checkpoint (default: the shipped synthetic demo model, window 64 planes = one
RGB frame) is run on the frames of the first rig with the clock off by ``--errors`` RGB frames
(the window of frame t taken ``e`` frame intervals later or earlier) and evaluated against the
exact depth at frame t (Garg crop, 80 m, per-image median scaling). Every variant is evaluated
on the same frames (those whose windows stay in the stream for the largest error); the paired
difference to the correct clock is given as mean ± std over sequences.

    python benchmarks/clock_offset.py --out runs/clock_offset

Writes ``OUT/results.json`` and ``OUT/results.md``; 2 cores: about 3 minutes.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np

from r2sdepth import evaluate as ev
from r2sdepth.data import kitti
from r2sdepth.data.rig import RigSequence
from r2sdepth.data.rig_synth import RigSpec, copy_with_calibration, synthesize_rig
from r2sdepth.infer import predict_split

DEMO = Path(__file__).resolve().parents[1] / "src" / "r2sdepth" / "assets" / "demo_spike_64x224.ckpt"
FPS, P = 10.0, 64


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/clock_offset")
    ap.add_argument(
        "--checkpoint", default=str(DEMO), help="a spike-only checkpoint (64x224, 64-plane window)"
    )
    ap.add_argument(
        "--offsets", type=float, nargs="+", default=[3.7, 0.0, 7.8, 10.1, -2.3], help="true offsets (ms)"
    )
    ap.add_argument(
        "--errors",
        type=float,
        nargs="+",
        default=[-8, -4, -2, -1, 1, 2, 4, 8],
        help="clock errors at inference, in RGB frame intervals",
    )
    ap.add_argument("--sequences", type=int, default=4)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--yaw", type=float, default=3.0)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res: dict = {"rate_hz": FPS * P, "frame_interval_ms": 1e3 / FPS, "estimates_ms": {}}
    bases = {}
    for off_ms in a.offsets:
        base = out / f"rig_{off_ms:+.2f}ms"
        if not (base / "splits" / "test_files.txt").is_file():
            rig = RigSpec(
                world_size=(96, 336),
                rgb_scale=0.75,
                spike_size=(64, 224),
                yaw_deg=a.yaw,
                clock_offset_s=off_ms * 1e-3,
                fps=FPS,
                planes_per_frame=P,
                pre_roll_frames=1,
            )
            synthesize_rig(base, rig, sequences=a.sequences, frames=a.frames, seed=11)
        bases[off_ms] = base
        res["estimates_ms"][f"{off_ms:+.2f}"] = {
            c.parent.name: RigSequence(c.parent).clock_offset_s * 1e3
            for c in sorted(base.glob("seq*/calib.yaml"))
        }
    errs = [e - float(k) for k, v in res["estimates_ms"].items() for e in v.values()]
    res["estimate_error_ms"] = {
        "mean": statistics.fmean(errs),
        "std": statistics.stdev(errs),
        "max_abs": max(abs(e) for e in errs),
        "n": len(errs),
    }

    true_ms = a.offsets[0]
    base = bases[true_ms]
    k = int(np.ceil(max(abs(e) for e in a.errors)))
    seqs = sorted(c.parent.name for c in base.glob("seq*/calib.yaml"))
    lo, hi = max(1, k + 1), a.frames - 2 - k  # every variant's window inside the stream (1 pre-roll frame)
    if hi < lo:
        raise SystemExit(f"--frames {a.frames} is too few for clock errors of {k} frames")
    samples = [kitti.Sample(s, i, "l") for s in seqs for i in range(lo, hi + 1)]
    split = out / "eval_files.txt"
    kitti.write_split(split, samples)
    gts = ev.split_gt(base, split, "rig")
    per_seq = len(range(lo, hi + 1))
    variants = {"correct clock (true offset)": true_ms * 1e-3, "estimated offset": None}
    variants.update(
        {f"clock off by {e:+g} frames ({e * 1e3 / FPS:+.0f} ms)": true_ms * 1e-3 + e / FPS for e in a.errors}
    )
    rows: dict = {"constant + median scaling": ev.constant_median_baseline(gts)}
    seq_abs: dict = {}
    for i, (name, off) in enumerate(variants.items()):
        root = (
            base
            if off is None
            else copy_with_calibration(
                base, out / "variants" / f"v{i}", {"clock_offset_s": off}, overwrite=True
            )
        )
        preds, _ = predict_split(a.checkpoint, root, split, modality="spike")
        rows[name] = ev.evaluate_depths(preds, gts)
        seq_abs[name] = [
            ev.evaluate_depths(preds[j * per_seq : (j + 1) * per_seq], gts[j * per_seq : (j + 1) * per_seq])[
                "abs_rel"
            ]
            for j in range(len(seqs))
        ]
        print(f"{name}: abs_rel {rows[name]['abs_rel']:.4f} a1 {rows[name]['a1']:.4f}", flush=True)
    ref = seq_abs["correct clock (true offset)"]
    for name, v in seq_abs.items():
        d = [x - y for x, y in zip(v, ref)]
        rows[name]["d_abs_rel_mean"] = statistics.fmean(d)
        rows[name]["d_abs_rel_std"] = statistics.stdev(d) if len(d) > 1 else 0.0
    res.update(
        {
            "checkpoint": a.checkpoint,
            "true_offset_ms": true_ms,
            "eval_frames": [lo, hi],
            "sequences": seqs,
            "rows": rows,
            "per_sequence_abs_rel": seq_abs,
        }
    )
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    e = res["estimate_error_ms"]
    lines = [
        f"Clock-offset estimate on {e['n']} simulated rig sequences (true offsets {a.offsets} ms, 640 Hz "
        f"spike camera, 10 Hz RGB): error {e['mean']:+.2f} ± {e['std']:.2f} ms (mean ± std), worst "
        f"{e['max_abs']:.2f} ms = {e['max_abs'] * FPS * P / 1e3:.2f} planes = "
        f"{100 * e['max_abs'] / (1e3 / FPS):.2f}% of the frame interval.",
        "",
        f"Spike-only model `{Path(a.checkpoint).name}` on frames {lo}-{hi} of {len(seqs)} sequences "
        f"({len(samples)} images), exact depth at the RGB frame's time:",
        "",
        "| clock | abs_rel | a1 | abs_rel - correct (per sequence, mean ± std) |",
        "|---|---:|---:|---:|",
    ]
    for name, r in rows.items():
        d = f"{r['d_abs_rel_mean']:+.4f} ± {r['d_abs_rel_std']:.4f}" if "d_abs_rel_mean" in r else ""
        lines.append(f"| {name} | {r['abs_rel']:.4f} | {r['a1']:.4f} | {d} |")
    md = "\n".join(lines)
    (out / "results.md").write_text(md + "\n")
    print(md)


if __name__ == "__main__":
    main()
