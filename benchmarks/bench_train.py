"""Stage-1 training step time and peak memory per mode, and data loading speed.

    python benchmarks/bench_train.py [--sizes 96x320 192x640] [--batch 4] [--width 64]

CPU: peak resident memory of the process (ru_maxrss) after each configuration (monotone, so the
rows are upper bounds of each configuration); GPU (when available): torch.cuda.max_memory_allocated.
Data loading: samples/s of SplitDataset with spikes simulated on the fly and from a built
stream, on synthetic scenes, one process.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import torch

from r2sdepth.data.dataset import SampleOptions, SplitDataset
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.spike_kitti import StreamSpec, build_spike_kitti
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.spike.simulate import SimParams
from r2sdepth.train.module import DepthModule


def step_time(
    modality: str, h: int, w: int, bs: int, width: int, device: str, reps: int = 3
) -> tuple[float, float]:
    torch.manual_seed(0)
    m = DepthModule(
        {"modality": modality, "width": width},
        {"width": width, "scale": 0.1},
        None,
        None,
        {"context": [-1, 1]},
    ).to(device)
    opt = torch.optim.Adam(m.parameters(), 1e-4)
    K = torch.tensor([[0.58 * w, 0, w / 2], [0, 1.92 * h, h / 2], [0, 0, 1]]).expand(bs, 3, 3)
    batch = {
        "color": torch.rand(bs, 3, 3, h, w),
        "color_aug": torch.rand(bs, 3, 3, h, w),
        "K": K,
        "spikes": (torch.rand(bs, 128, h, w) < 0.2).to(torch.uint8),
    }
    batch = {k: v.to(device) for k, v in batch.items()}
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(reps + 1):
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        loss = m.compute_loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t)
    mem = (
        torch.cuda.max_memory_allocated() / 2**30
        if device == "cuda"
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return min(times), mem


def loading_speed(n: int = 40) -> dict[str, float]:

    out = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d) / "s"
        synthesize(root, SceneSpec(frames=n + 2, height=192, width=640), sequences=1)
        build_spike_kitti(
            root,
            Path(d) / "spk",
            StreamSpec(192, 640, SimParams(planes_per_frame=128)),
            cameras=["02"],
        )
        split = root / "splits" / "train_files.txt"
        for name, spike_root in [("on-the-fly simulation", None), ("built stream (memmap)", Path(d) / "spk")]:
            drive = DriveOptions(root, height=192, width=640, window=128, spike_root=spike_root)
            ds = SplitDataset(drive, split, SampleOptions(augment=True))
            ds[0]
            t = time.perf_counter()
            for i in range(len(ds)):
                ds[i]
            out[name] = len(ds) / (time.perf_counter() - t)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", nargs="+", default=["96x320", "192x640"])
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--width", type=int, default=64)
    a = ap.parse_args()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {a.batch}, "
        f"ResNet-18 width {a.width}, T=128"
    )
    print("| device | size | mode | s/step | peak memory (GiB) |")
    print("|---|---|---|---:|---:|")
    for dev in devices:
        for size in a.sizes:
            h, w = map(int, size.split("x"))
            for mod in ("rgb", "spike", "fusion"):
                t, mem = step_time(mod, h, w, a.batch, a.width, dev)
                print(f"| {dev} | {size} | {mod} | {t:.2f} | {mem:.2f} |", flush=True)
    print("\ndata loading at 192x640, T=128, 3 RGB frames, 1 process:")
    for k, v in loading_speed().items():
        print(f"  {k}: {v:.1f} samples/s")


if __name__ == "__main__":
    main()
