"""Fuzz the spike reader and the CLI; count clean errors, tracebacks, hangs and silent wrong results.

    python benchmarks/fuzz.py                               # 10,000 reader cases + 300 CLI cases
    python benchmarks/fuzz.py --reader 2000 --cli 50 --seed 3

Reader cases (in-process, each under a 1 s alarm; a valid read takes microseconds): a valid
stream with its sidecar is mutated one way at a time: the ``.dat`` truncated, extended or
overwritten with random bytes; sidecar values
replaced by NaN/inf/strings/null/lists/negative/zero/huge numbers or wrong types; the sidecar
replaced by random bytes, invalid UTF-8, deep nesting, a FIFO or an empty file; explicit geometry
arguments that disagree. Then ``SpikeStream`` + ``read_dat`` + ``window_for_frame`` are called.

* ``ok``: read without error and the result agrees with the unmutated stream where the mutation
  should not change it (e.g. an extra unknown key);
* ``clean error``: :class:`~r2sdepth.errors.R2SDepthError`;
* ``traceback``: any other exception (a bug);
* ``hang``: the alarm fired (a bug);
* ``silent wrong``: no error, but the planes differ from what the sidecar describes (a bug, where the
  sidecar makes it detectable: a ``frames`` count that the file no longer matches, a geometry the
  file cannot hold, ``flipud``/``bitorder`` that are not what was written).

CLI cases (subprocesses, 60 s timeout each): ``info``, ``reconstruct``, ``simulate``, ``eval``,
``infer``, ``export`` and ``train`` with mutated files and flag values; a case is a traceback when
stderr holds one or the exit status is neither 0 nor 2, a hang on timeout.

Prints the counts per class and exits 1 if any traceback, hang or silent wrong result was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.io import SpikeStream, read_dat, sidecar_path, write_dat

BAD_VALUES = [
    float("nan"),
    float("inf"),
    -float("inf"),
    "7",
    "false",
    None,
    [],
    [3],
    {},
    -1,
    0,
    10**12,
    2**63,
    1.5,
    True,
    False,
    "",
    "little",
    "big",
    1e308,
    -0.0,
]
KEYS = [
    "height",
    "width",
    "rate_hz",
    "head_cols",
    "bitorder",
    "flipud",
    "frames",
    "frame_plane_index",
    "bytes",
    "planes_per_frame",
    "pre_roll_planes",
    "unknown_key",
]


class Hang(Exception):
    pass


def _alarm(signum, frame):
    raise Hang()


def reader_case(rng: random.Random, d: Path, base: np.ndarray) -> tuple[str, str]:
    """One mutated stream; returns (class, mutation)."""
    p = d / "s.dat"
    for f in (p, sidecar_path(p)):
        with contextlib.suppress(FileNotFoundError):
            f.unlink()
    bitorder, flipud = rng.choice(["little", "big"]), rng.choice([True, False])
    write_dat(
        p,
        base,
        bitorder=bitorder,
        flipud=flipud,
        meta={"frames": int(base.shape[0]), "frame_plane_index": [8, 16, 24]},
    )
    sc = sidecar_path(p)
    meta = json.loads(sc.read_text())
    kind = rng.choice(
        [
            "truncate",
            "extend",
            "garbage_dat",
            "value",
            "value",
            "value",
            "drop_key",
            "sidecar_bytes",
            "sidecar_utf8",
            "sidecar_deep",
            "sidecar_fifo",
            "sidecar_empty",
            "args",
            "unknown_key",
        ]
    )
    args: dict = {}
    detectable = True  # whether a silent difference would be a bug
    if kind == "truncate":
        raw = p.read_bytes()
        p.write_bytes(raw[: rng.randrange(0, len(raw))])
    elif kind == "extend":
        with open(p, "ab") as f:
            f.write(os.urandom(rng.randrange(1, 5000)))
    elif kind == "garbage_dat":
        raw = bytearray(p.read_bytes())
        for _ in range(rng.randrange(1, 50)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        p.write_bytes(bytes(raw))
        detectable = False  # flipped spike bits are valid spikes; no checksum in a plain stream
    elif kind in ("value", "drop_key"):
        key = rng.choice(KEYS)
        if kind == "value":
            meta[key] = v = rng.choice(BAD_VALUES)
            # a sidecar that lies with a *valid* bit order or flip cannot be detected
            detectable = not (
                (key == "bitorder" and v in ("little", "big")) or (key == "flipud" and isinstance(v, bool))
            )
        else:
            meta.pop(key, None)
            detectable = key not in ("bitorder", "flipud")  # dropping them means the PKU default
        sc.write_text(json.dumps(meta))
    elif kind == "unknown_key":
        meta["zz_" + str(rng.randrange(1000))] = rng.choice(BAD_VALUES)
        sc.write_text(json.dumps(meta))
    elif kind == "sidecar_bytes":
        sc.write_bytes(os.urandom(rng.randrange(0, 200)))
    elif kind == "sidecar_utf8":
        sc.write_bytes(b'{"height": 6, "x": "\xff\xfe\xfa"}')
    elif kind == "sidecar_deep":
        depth = rng.choice([100, 10000, 200000])
        sc.write_text("[" * depth + "]" * depth)
    elif kind == "sidecar_fifo":
        sc.unlink()
        os.mkfifo(sc)
    elif kind == "sidecar_empty":
        sc.write_bytes(b"")
    elif kind == "args":
        args = {
            "height": rng.choice([None, 6, 7, 0, -3, 10**6]),
            "width": rng.choice([None, 10, 11, 0, 10**6]),
            "head_cols": rng.choice([None, 0, 16, -1]),
            "bitorder": rng.choice([None, bitorder]),
            "flipud": rng.choice([None, flipud]),
        }
    signal.alarm(1)
    try:
        st = SpikeStream(
            p,
            **{k: v for k, v in args.items() if k in ("height", "width") and v is not None},
            **{k: v for k, v in args.items() if k in ("head_cols", "bitorder", "flipud") and v is not None},
        )
        planes = st[0 : len(st)]
        whole = read_dat(p, **{k: v for k, v in args.items() if v is not None})
        with contextlib.suppress(R2SDepthError):
            st.window_for_frame(1, 8)
        signal.alarm(0)
    except R2SDepthError:
        signal.alarm(0)
        return "clean error", kind
    except Hang:
        return "hang", kind
    except Exception as e:  # noqa: BLE001
        signal.alarm(0)
        return f"traceback ({e.__class__.__name__})", kind
    finally:
        signal.alarm(0)
        with contextlib.suppress(FileNotFoundError):
            if sc.exists() and not sc.is_file():
                sc.unlink()
    same = planes.shape == base.shape and np.array_equal(planes, base) and np.array_equal(whole, base)
    if not same and detectable and kind not in ("args",):
        return "silent wrong", kind
    if kind == "args" and not same:
        # geometry/bit order given explicitly: the caller asked for it; wrong only if the file was
        # read as a different size without error
        if planes.shape[1:] == base.shape[1:] and planes.shape[0] != base.shape[0]:
            return "silent wrong", kind
    return "ok", kind


def cli_case(rng: random.Random, d: Path, stream: Path, frames: Path) -> tuple[str, str]:
    bad = d / "bad.dat"
    bad.write_bytes(os.urandom(rng.randrange(0, 40000)))
    vals = ["0", "-1", "nan", "inf", "1e9", "abc", "", "3", "99999999"]
    cmd = rng.choice(
        [
            [
                "info",
                rng.choice([str(stream), str(bad), str(d)]),
                "--sensor",
                f"{rng.choice(vals + ['6'])}x{rng.choice(vals + ['10'])}",
            ],
            ["info", str(stream), "--json"],
            [
                "reconstruct",
                rng.choice([str(stream), str(bad)]),
                "--method",
                rng.choice(["tfp", "tfi", "x"]),
                "--window",
                rng.choice(vals + ["4"]),
                "--out",
                str(d / "rec"),
                *rng.choice([[], ["--gif", str(d / rng.choice(["a.gif", "a.txt"]))]]),
            ],
            [
                "simulate",
                str(frames),
                "--out",
                str(d / rng.choice(["o.dat", "o.txt"])),
                "--threshold",
                rng.choice(vals + ["2"]),
                "--dark-current",
                rng.choice(vals + ["0"]),
                "--planes-per-frame",
                rng.choice(["8", "0", "-2", "x"]),
            ],
            ["simulate", str(frames), "--out", str(d / "o.dat"), "--size", f"{rng.choice(vals)}x8"],
            ["eval", "--pred", str(rng.choice([bad, stream])), "--gt", str(rng.choice([bad, stream]))],
            [
                "infer",
                "--checkpoint",
                str(rng.choice([bad, stream])),
                "--input",
                str(stream),
                "--out",
                str(d / "inf"),
            ],
            [
                "export",
                "--checkpoint",
                str(bad),
                "--format",
                rng.choice(["onnx", "torchscript", "zip"]),
                "--out",
                str(d / "x.pt"),
            ],
            ["train", "--config", str(rng.choice([bad, stream, d / "none.yaml"])), "--out", str(d / "run")],
        ]
    )
    try:
        r = subprocess.run(
            [sys.executable, "-m", "r2sdepth.cli", *cmd], capture_output=True, text=True, timeout=60
        )
    except subprocess.TimeoutExpired:
        return "hang", cmd[0]
    if "Traceback" in r.stderr or r.returncode not in (0, 2):
        return f"traceback (rc {r.returncode})", " ".join(cmd[:1])
    return ("ok" if r.returncode == 0 else "clean error"), cmd[0]


def run(reader: int, cli: int, seed: int, verbose: bool = False) -> dict[str, Counter]:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    base = (nrng.random((24, 6, 10)) < 0.3).astype(np.uint8)
    old = signal.signal(signal.SIGALRM, _alarm)
    out: dict[str, Counter] = {"reader": Counter(), "cli": Counter()}
    bad_examples: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as td:
            d = Path(td)
            for _ in range(reader):
                cls, kind = reader_case(rng, d, base)
                out["reader"][cls] += 1
                if cls not in ("ok", "clean error") and len(bad_examples) < 10:
                    bad_examples.append(f"reader {cls}: {kind}")
            if cli:
                frames = d / "frames"
                frames.mkdir()
                for i in range(3):
                    Image.fromarray((nrng.random((12, 16, 3)) * 255).astype(np.uint8)).save(
                        frames / f"{i}.png"
                    )
                stream = d / "good.dat"
                write_dat(stream, base)
                for _ in range(cli):
                    cls, kind = cli_case(rng, d, stream, frames)
                    out["cli"][cls] += 1
                    if cls not in ("ok", "clean error") and len(bad_examples) < 20:
                        bad_examples.append(f"cli {cls}: {kind}")
    finally:
        signal.signal(signal.SIGALRM, old)
    if verbose:
        for b in bad_examples:
            print("  ", b)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description="fuzz the spike reader and the CLI")
    ap.add_argument("--reader", type=int, default=10000)
    ap.add_argument("--cli", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.time()
    res = run(a.reader, a.cli, a.seed, verbose=True)
    for part, c in res.items():
        print(f"{part}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
    print(f"{a.reader} reader + {a.cli} CLI cases in {time.time() - t0:.0f} s (seed {a.seed})")
    bad = sum(v for c in res.values() for k, v in c.items() if k not in ("ok", "clean error"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
