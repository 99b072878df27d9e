"""Spike simulation speed: RGB frames/s at 192 x 640 with 128 planes per frame, one core.

Compares r2sdepth's simulator (the numpy backend with its fused numba kernel, and the torch-CPU
backend; packing, sha256 and file writing included) with (a) just writing the packed output (the
memory/IO-bound floor) and (b) a straightforward per-plane reference loop of the kind public
simulators use (boolean-mask reset, fresh arrays each plane).
Estimates the time of the full Spike-KITTI on a 16-core machine.

    python benchmarks/bench_simulate.py [--frames 20] [--height 192 --width 640 --planes 128]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from r2sdepth.spike.simulate import SimParams, simulate_to_file


def reference_loop(frames: list[np.ndarray], planes: int, theta: float = 2.0) -> list[np.ndarray]:
    """Per-plane integrate-and-fire as public simulators write it (masks, new arrays)."""
    v = np.random.default_rng(0).random(frames[0].shape) * theta
    out = []
    for l0, l1 in zip(frames[:-1], frames[1:]):
        for k in range(planes):
            a = (k + 1) / planes
            v = v + (1 - a) * l0 + a * l1
            spk = v >= theta
            v[spk] -= theta
            out.append(np.packbits(spk[::-1].ravel(), bitorder="little"))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=21)
    ap.add_argument("--height", type=int, default=192)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--planes", type=int, default=128)
    a = ap.parse_args()

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    base = rng.random((a.height, a.width + 4 * a.frames), dtype=np.float32)
    frames = [np.ascontiguousarray(base[:, 4 * i : 4 * i + a.width]) for i in range(a.frames)]
    n = a.frames - 1
    p = SimParams(planes_per_frame=a.planes)
    packed_bytes = n * a.planes * a.height * a.width // 8
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for backend in ("numpy", "torch"):
            simulate_to_file(frames[:3], Path(d) / "warm.dat", p, backend=backend)
            dt = float("inf")
            for _ in range(3 if backend == "numpy" else 1):  # best of 3: page cache/fsync noise
                t = time.perf_counter()
                simulate_to_file(frames, Path(d) / f"{backend}.dat", p, backend=backend)
                dt = min(dt, time.perf_counter() - t)
            label = "numpy + numba kernel" if backend == "numpy" else "torch CPU"
            rows.append((f"r2sdepth simulate ({label}, 1 thread, packed + hashed + written)", n / dt))
        blob = np.random.default_rng(1).integers(0, 255, packed_bytes, dtype=np.uint8).tobytes()
        dt_write = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            with open(Path(d) / "raw.bin", "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            dt_write = min(dt_write, time.perf_counter() - t)
        rows.append(("writing the packed output only (memory/IO floor)", n / dt_write))
        nref = min(n, 5)
        t = time.perf_counter()
        reference_loop(frames[: nref + 1], a.planes)
        rows.append(("reference per-plane loop (public-simulator style)", nref / (time.perf_counter() - t)))
    print(f"{a.height}x{a.width}, {a.planes} planes per RGB frame, {n} frames, 1 core")
    print("| what | RGB frames/s |")
    print("|---|---:|")
    for name, fps in rows:
        print(f"| {name} | {fps:,.1f} |")
    best = rows[0][1]
    print(
        f"simulator: {rows[0][1] * a.planes:,.0f} planes/s; "
        f"{rows[2][1] / best:,.1f}x the time of writing the output alone"
    )
    total = 47_000 * 2
    print(
        f"full Spike-KITTI (~{total:,} frames, 2 cameras) on 16 cores: "
        f"{total / (best * 16) / 60:,.1f} min of simulation (+ PNG decoding of the KITTI frames)"
    )


if __name__ == "__main__":
    main()
