"""Synthetic scene render speed (frames/s, one core) at 192 x 640 and other sizes.

python benchmarks/bench_synth.py [--frames 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from r2sdepth.data.synthetic import camera_pose, intrinsics, make_world, render


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=30)
    a = ap.parse_args()
    print("| size | frames/s (1 core, numpy) |")
    print("|---|---:|")
    for h, w in [(96, 320), (192, 640), (375, 1242)]:
        rng = np.random.default_rng(0)
        world = make_world(rng, length=a.frames * 1.2 + 30)
        K = intrinsics(h, w)
        phase = rng.uniform(0, 2 * np.pi, 3)
        render(world, camera_pose(world, 0, phase), K, h, w, 0)
        t = time.perf_counter()
        for i in range(a.frames):
            render(world, camera_pose(world, i / 10, phase), K, h, w, i / 10)
        print(f"| {h}x{w} | {a.frames / (time.perf_counter() - t):.1f} |")


if __name__ == "__main__":
    main()
