"""Training data loading: samples/s per worker process and bytes per sample, by transport.

    python benchmarks/bench_loader.py [--size 192x640] [--frame-size 375x1242] [--window 128] [--samples 40]
        [--workers 0 2] [--out runs/bench_loader]

Synthetic scenes at SIZE (``r2sdepth synth``), a Spike-KITTI stream built from them (T planes per
frame), training samples with augmentation on (flips and colour jitter on half the samples,
three RGB frames). For each spike source (a built stream read by memory map, on-the-fly
simulation) and transport (``plain``: finished tensors from the loader; ``device``: packed
spikes and the jitter's draws, finished by :func:`r2sdepth.data.transport.finish_batch` on the
device; with the device transport also with the RGB frames read from a frame cache at the training
size, ``r2sdepth cache-frames`` / ``data.frame_cache``, instead of decoding and resizing PNGs) it prints:

* samples/s of one process calling the data set (what one worker delivers), median of 3 passes
  over the same samples, interleaved across configurations so they share the machine's load;
* bytes per sample that cross from a worker to the trainer (shared memory, pinned memory,
  host-to-device copy);
* with ``--workers``: samples/s of a ``DataLoader`` (batch 4, collate, N workers) the way the
  trainer reads it (pin_memory off on CPU);
* the time of ``finish_batch`` for a batch of 4 on this machine's CPU (on a GPU it is a few
  element-wise kernels).

Workers a GPU needs: ``ceil(step rate x batch / samples per second per worker)``; the table at the
end prints it for 2, 5 and 10 steps/s at batch 12. ``--frame-size`` renders the scenes' PNGs at
another size than the training size (KITTI's 375x1242: the loader then resizes every frame, as on
KITTI); by default they are rendered at the training size (the figures before 2026-12-07).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from r2sdepth.data.dataset import SampleOptions, SplitDataset, collate
from r2sdepth.data.drives import DriveOptions, cache_frames
from r2sdepth.data.spike_kitti import StreamSpec, build_spike_kitti
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.data.transport import finish_batch
from r2sdepth.spike.simulate import SimParams


def sample_bytes(s: dict) -> int:
    return sum(v.numel() * v.element_size() for v in s.values() if isinstance(v, torch.Tensor))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="192x640")
    ap.add_argument("--frame-size", default=None, help="HxW of the rendered PNGs (default: --size)")
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--samples", type=int, default=40)
    ap.add_argument("--workers", type=int, nargs="*", default=[])
    ap.add_argument("--out", type=Path, default=Path("runs/bench_loader"))
    a = ap.parse_args()
    h, w = map(int, a.size.split("x"))
    fh, fw = map(int, (a.frame_size or a.size).split("x"))
    root, spk, cache = a.out / f"scenes_{fh}x{fw}", a.out / f"spikes_{fh}x{fw}", a.out / f"frames_{fh}x{fw}"
    if not (root / "splits" / "train_files.txt").is_file():
        synthesize(root, SceneSpec(frames=a.samples + 2, height=fh, width=fw), sequences=1)
    build_spike_kitti(root, spk, StreamSpec(h, w, SimParams(planes_per_frame=a.window)), cameras=["02"])
    cache_frames(root, cache, (h, w), cameras=("02",))
    split = root / "splits" / "train_files.txt"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {h}x{w} from {fh}x{fw} PNGs, "
        f"T={a.window}, augment on"
    )

    configs = {
        (src, tr, frames): SplitDataset(
            DriveOptions(
                root,
                height=h,
                width=w,
                window=a.window,
                sim=SimParams(planes_per_frame=a.window),
                spike_root=spk if src == "built stream" else None,
                frame_cache=cache if frames == "frame cache" else None,
            ),
            split,
            SampleOptions(augment=True, transport=tr),
        )
        for src in ("built stream", "on-the-fly simulation")
        for tr, frames in (("plain", "PNG"), ("device", "PNG"), ("device", "frame cache"))
    }
    for ds in configs.values():
        ds[(0, 0)]  # first-use costs (JIT, file opens) out of the timing
    rates: dict = {k: [] for k in configs}
    for rep in range(3):
        for k, ds in configs.items():
            t = time.perf_counter()
            for i in range(len(ds)):
                ds[(rep, i)]
            rates[k].append(len(ds) / (time.perf_counter() - t))
    res = {}
    print("\n| spikes | transport | RGB frames | samples/s per process (3 passes) | median | MB per sample |")
    print("|---|---|---|---|---:|---:|")
    for (src, tr, frames), r in rates.items():
        mb = sample_bytes(configs[(src, tr, frames)][(0, 1)]) / 1e6
        med = statistics.median(r)
        res[f"{src}/{tr}/{frames}"] = {"samples_per_s": r, "median": med, "mb_per_sample": mb}
        print(f"| {src} | {tr} | {frames} | {' / '.join(f'{x:.1f}' for x in r)} | {med:.1f} | {mb:.2f} |")
    for src in ("built stream", "on-the-fly simulation"):
        plain = res[f"{src}/plain/PNG"]["median"]
        for frames in ("PNG", "frame cache"):
            ratio = res[f"{src}/device/{frames}"]["median"] / plain
            print(f"{src}: device transport, {frames} / plain transport, PNG = {ratio:.2f}x samples/s")

    ds = configs[("built stream", "device", "PNG")]
    batch = collate([ds[(0, i)] for i in range(4)])
    t = time.perf_counter()
    for _ in range(5):
        finish_batch(dict(batch))
    fin = (time.perf_counter() - t) / 5
    print(f"finish_batch, batch 4, CPU: {fin * 1e3:.1f} ms")
    res["finish_batch_cpu_s"] = fin

    for nw in a.workers:
        for (src, tr, frames), ds in configs.items():
            dl = DataLoader(ds, batch_size=4, num_workers=nw, collate_fn=collate)
            t = time.perf_counter()
            n = sum(len(b["index"]) for b in dl)
            r = n / (time.perf_counter() - t)
            res[f"{src}/{tr}/{frames}/workers={nw}"] = r
            print(f"DataLoader {src}, {tr}, {frames}, {nw} workers: {r:.1f} samples/s (start-up included)")

    print("\nworkers per GPU at batch 12 (built stream, device transport, frame cache):")
    per = res["built stream/device/frame cache"]["median"]
    for rate in (2, 5, 10):
        print(f"  {rate} steps/s -> {math.ceil(rate * 12 / per)} workers")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "results.json").write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
