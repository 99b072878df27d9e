"""``r2sdepth infer --follow`` on a recording being written at the camera's own rate: how long after
a window's last plane reaches the disk its depth map is written (latency), and windows per second.

    python benchmarks/follow_latency.py [--input ../shared/data/spike_real/car_250x400.dat --sensor 250x400]
        [--rate-hz 20000] [--window 64] [--stride-planes 64] [--threads 2] [--checkpoint demo]

A writer thread replays the planes of a real recording (``--repeat`` times back to back) into a
new file in real time (blocks of ``--block`` planes, each appended when the clock says the camera
would have delivered it, as a camera SDK that flushes to disk does); the CLI follows that file
in a child process and stops after ``--idle-timeout`` + ``--startup`` seconds without a new
plane. Prints the CLI's own summary figures (median and maximum latency in seconds, windows/s
over the busy span), the same latency measured independently
(each depth file's modification time minus the time the writer put the window's last plane on
disk), and whether every recorded window was written.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from r2sdepth.spike.io import SpikeStream

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spike_real"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default=str(SHARED / "car_250x400.dat"))
    ap.add_argument("--sensor", default="250x400")
    ap.add_argument("--rate-hz", type=float, default=20000.0, help="replay rate, planes per second")
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--stride-planes", type=int, default=64)
    ap.add_argument("--block", type=int, default=16, help="planes appended per write")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--checkpoint", default="demo")
    ap.add_argument("--idle-timeout", type=float, default=2.0)
    ap.add_argument(
        "--startup", type=float, default=10.0, help="seconds between starting the CLI and the first plane"
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=50,
        help="replay the recording this many times back to back "
        "(car_250x400.dat holds 200 planes, 10 ms at 20 kHz)",
    )
    a = ap.parse_args()
    h, w = (int(v) for v in a.sensor.lower().split("x"))
    src = SpikeStream(a.input, h, w)
    plane_bytes = src.plane_stride
    raw = Path(a.input).read_bytes()[: len(src) * plane_bytes] * a.repeat
    n = len(raw) // plane_bytes
    with tempfile.TemporaryDirectory() as tmp:
        live = Path(tmp) / "live.dat"
        env = {**os.environ, "OMP_NUM_THREADS": str(a.threads)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "r2sdepth.cli",
                "infer",
                "--checkpoint",
                a.checkpoint,
                "--input",
                str(live),
                "--sensor",
                a.sensor,
                "--rate-hz",
                str(a.rate_hz),
                "--window",
                str(a.window),
                "--stride-planes",
                str(a.stride_planes),
                "--out",
                str(Path(tmp) / "out"),
                "--follow",
                "--idle-timeout",
                str(a.idle_timeout + a.startup),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

        written: list[tuple[int, float]] = []  # (planes on disk, wall-clock time of the write)

        def write() -> None:
            with open(live, "wb") as f:
                t0 = time.monotonic()
                for i in range(0, n, a.block):
                    delay = t0 + (i + a.block) / a.rate_hz - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    f.write(raw[i * plane_bytes : (i + a.block) * plane_bytes])
                    f.flush()
                    written.append((min(i + a.block, n), time.time()))

        writer = threading.Thread(target=write)
        time.sleep(a.startup)  # the CLI is up (imports, model) and watching before the camera starts
        writer.start()
        writer.join()
        out, err = proc.communicate(timeout=600)
        if proc.returncode:
            sys.exit(f"infer --follow failed: {err.strip().splitlines()[-1]}")
        summ = json.loads((Path(tmp) / "out" / "summary.json").read_text())
        # independent of the CLI's own clock: the depth file's modification time minus the time
        # the writer put the window's last plane on disk
        ends = [int(name) for name in summ["names"]]
        own = [
            (Path(tmp) / "out" / "depth" / f"{e:06d}.npy").stat().st_mtime
            - next(t for k, t in written if k >= e)
            for e in ends
        ]
    recorded = (n - a.window) // a.stride_planes + 1
    res = {
        "input": a.input,
        "planes": n,
        "rate_hz": a.rate_hz,
        "recording_s": n / a.rate_hz,
        "window": a.window,
        "stride_planes": a.stride_planes,
        "threads": a.threads,
        "windows_recorded": recorded,
        "windows_written": summ["outputs"],
        "latency_median_s": summ["latency_s"]["median"],
        "latency_max_s": summ["latency_s"]["max"],
        "latency_from_writer_median_s": float(np.median(own)),
        "latency_from_writer_max_s": float(np.max(own)),
        "windows_per_second": summ["windows_per_second"],
        "network_size": summ["network_size"],
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
    }
    print(json.dumps(res))
    print(out.strip().splitlines()[-1] if out.strip() else "")


if __name__ == "__main__":
    main()
