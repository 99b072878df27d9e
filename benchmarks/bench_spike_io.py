"""Spike .dat decode throughput: r2sdepth's table decoder vs the usual decoders.

Prints MB/s of packed data and planes/s for (a) 128-plane window reads through SpikeStream
(memory map), (b) whole-file reads, against (c) np.unpackbits + flip and (d) a per-pixel-index
decoder of the kind other spike toolkits use (byte index k // 8, shift k % 8, for every pixel of
every plane). Also the peak extra memory of a window read (tracemalloc), which must scale with
the window, not the file. Single thread (numpy has no threads here); run on an idle machine.

    python benchmarks/bench_spike_io.py [--planes 4000] [--height 250 --width 400]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from r2sdepth.spike import SpikeStream, SpikeWriter
from r2sdepth.spike.io import frame_nbytes


def naive_decode(packed: np.ndarray, h: int, w: int) -> np.ndarray:
    """Per-pixel index decoding, plane by plane (what SpikeCV-style loaders do)."""
    k = np.arange(h * w)
    byte_idx, shift = k // 8, k % 8
    out = np.empty((packed.shape[0], h, w), np.uint8)
    for t in range(packed.shape[0]):
        out[t] = ((packed[t][byte_idx] >> shift) & 1).reshape(h, w)[::-1]
    return out


def unpackbits_decode(packed: np.ndarray, h: int, w: int) -> np.ndarray:
    bits = np.unpackbits(packed, axis=1, bitorder="little")[:, : h * w]
    return np.ascontiguousarray(bits.reshape(-1, h, w)[:, ::-1])


def best_of(fn, reps: int) -> float:
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--planes", type=int, default=4000)
    ap.add_argument("--height", type=int, default=250)
    ap.add_argument("--width", type=int, default=400)
    ap.add_argument("--window", type=int, default=128)
    a = ap.parse_args()
    h, w, n, win = a.height, a.width, a.planes, a.window
    nb = frame_nbytes(h, w)
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "bench.dat"
        rng = np.random.default_rng(0)
        chunk = 500

        with SpikeWriter(p, h, w) as wr:
            for i in range(0, n, chunk):
                wr.append((rng.random((min(chunk, n - i), h, w)) < 0.2).astype(np.uint8))
        st = SpikeStream(p)
        mb_file = n * nb / 1e6
        mb_win = win * nb / 1e6
        starts = rng.integers(0, n - win, 64)
        st.read(0, win)

        def windows():
            for s0 in starts:
                st.read(int(s0), int(s0) + win)

        t_win = best_of(windows, 3) / len(starts)
        t_file = best_of(lambda: st.read(0, n), 3)
        packed = np.asarray(st.read_packed(0, n))
        t_unpack = best_of(lambda: unpackbits_decode(packed, h, w), 3)
        n_naive = min(n, 500)
        t_naive = best_of(lambda: naive_decode(packed[:n_naive], h, w), 1) * n / n_naive
        np.testing.assert_array_equal(naive_decode(packed[:3], h, w), st.read(0, 3))

        tracemalloc.start()
        st.read(1000 % (n - win), 1000 % (n - win) + win)
        peak_win = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

        print(
            f"stream {n} planes x {h}x{w} = {mb_file:.1f} MB packed; window {win} planes = {mb_win:.2f} MB; 1 thread"
        )
        print("| decoder | MB/s packed | planes/s |")
        print("|---|---:|---:|")
        print(f"| r2sdepth window read (memmap, {win} planes) | {mb_win / t_win:,.0f} | {win / t_win:,.0f} |")
        print(f"| r2sdepth whole-file read | {mb_file / t_file:,.0f} | {n / t_file:,.0f} |")
        print(f"| np.unpackbits + flip | {mb_file / t_unpack:,.0f} | {n / t_unpack:,.0f} |")
        print(f"| per-pixel index (toolkit style) | {mb_file / t_naive:,.0f} | {n / t_naive:,.0f} |")
        print(
            f"peak extra memory of one window read: {peak_win / 1e6:.2f} MB "
            f"(window decoded {win * h * w / 1e6:.2f} MB; file {mb_file:.1f} MB packed)"
        )
        st.close()


if __name__ == "__main__":
    main()
