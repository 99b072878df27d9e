"""Spike-only inference: latency, throughput and peak memory; exported models beside eager.

    python benchmarks/bench_infer.py [--threads 2] [--window 128] [--width 64] [--device cpu|cuda]

The network is the paper-size spike-only model (``configs/train_spike.yaml``: ResNet-18 width
64, decoder 16, 4 chunks x 8 bins) with random weights (speed does not depend on them), and
the shipped demo model. Sizes: 192x640 (Spike-KITTI) and 250x400 (the PKU camera; padded to
256x416 as ``r2sdepth infer`` does); batch 1 and 8. Each configuration runs in a fresh
process so that the peak resident memory (CPU, ru_maxrss) belongs to it alone; on a GPU the
peak is torch.cuda.max_memory_allocated. Exported TorchScript and ONNX (onnxruntime, CPU)
latencies at batch 1 follow.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch

from r2sdepth.checkpoint import load_file
from r2sdepth.demo import DEMO_CHECKPOINT
from r2sdepth.export import SpikeDepth, time_model
from r2sdepth.models.r2sdepth import R2SDepthNet

CHILD = r"""
import json, resource, sys, time, torch
from r2sdepth.export import SpikeDepth, time_model
from r2sdepth.models.r2sdepth import R2SDepthNet
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
torch.manual_seed(0)
if a.get("checkpoint"):
    from r2sdepth.infer import load_checkpoint
    net = load_checkpoint(a["checkpoint"])[0].net
else:
    net = R2SDepthNet({"modality": "spike", "width": a["width"], "decoder_width": 16})
model = SpikeDepth(net).eval().to(a["device"])
x = torch.empty(a["batch"], a["window"], a["h"], a["w"], dtype=torch.uint8).random_(0, 5) == 0  # ~20% spikes
x = x.to(torch.uint8).to(a["device"])  # no float copy
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
def run(x):
    with torch.no_grad():
        y = model(x)
    if a["device"] == "cuda":
        torch.cuda.synchronize()
    return y
if a["device"] == "cuda":
    torch.cuda.reset_peak_memory_stats()
t = time_model(run, x, a["repeats"])
peak = torch.cuda.max_memory_allocated() / 2**20 if a["device"] == "cuda" else \
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"latency_ms": 1000 * t, "windows_per_s": a["batch"] / t, "peak_mb": peak,
                  "before_mb": base, "params_m": sum(p.numel() for p in net.parameters()) / 1e6}))
"""


def child(args: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, json.dumps(args)], capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(
        f"device {a.device}, {a.threads} threads, window {a.window} planes, spike-only ResNet-18 width {a.width}"
    )
    print(
        "| model | input (padded) | batch | latency ms | windows/s | peak RSS MB (+ over the loaded model) |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for (h, w), label in (((192, 640), "192x640"), ((256, 416), "250x400 (256x416)")):
        for b in (1, 8):
            r = child(
                {
                    "threads": a.threads,
                    "window": a.window,
                    "width": a.width,
                    "device": a.device,
                    "batch": b,
                    "h": h,
                    "w": w,
                    "repeats": a.repeats,
                }
            )
            print(
                f"| paper-size ({r['params_m']:.1f} M params) | {label} | {b} | {r['latency_ms']:.1f} | "
                f"{r['windows_per_s']:.2f} | {r['peak_mb']:.0f} (+{r['peak_mb'] - r['before_mb']:.0f}) |",
                flush=True,
            )

    if DEMO_CHECKPOINT.is_file():
        meta = load_file(DEMO_CHECKPOINT)["r2sdepth"]
        for b in (1, 8):
            r = child(
                {
                    "threads": a.threads,
                    "window": meta["window"],
                    "device": a.device,
                    "batch": b,
                    "h": meta["height"],
                    "w": meta["width"],
                    "repeats": a.repeats,
                    "checkpoint": str(DEMO_CHECKPOINT),
                }
            )
            print(
                f"| shipped demo ({r['params_m']:.2f} M params, T={meta['window']}) | "
                f"{meta['height']}x{meta['width']} | {b} | {r['latency_ms']:.1f} | {r['windows_per_s']:.2f} | "
                f"{r['peak_mb']:.0f} (+{r['peak_mb'] - r['before_mb']:.0f}) |",
                flush=True,
            )

    # exported models beside eager PyTorch, batch 1, 192x640

    warnings.filterwarnings("ignore")  # tracing/exporter deprecation chatter

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = SpikeDepth(R2SDepthNet({"modality": "spike", "width": a.width, "decoder_width": 16})).eval()
    x = (torch.rand(1, a.window, 192, 640) < 0.2).float()
    rows = []
    with torch.no_grad():
        rows.append(("eager PyTorch", time_model(model, x, a.repeats), 0.0))
        with tempfile.TemporaryDirectory() as d:
            ts = torch.jit.trace(model, x, check_trace=False)
            ts.save(f"{d}/m.pt")
            ts = torch.jit.load(f"{d}/m.pt")
            ref = model(x)
            rows.append(("TorchScript", time_model(ts, x, a.repeats), float((ts(x) - ref).abs().max())))
            try:
                import onnxruntime as ort  # noqa: PLC0415  optional dependency (the export extra)
            except ImportError:
                ort = None
            if ort is not None:
                torch.onnx.export(
                    model,
                    (x,),
                    f"{d}/m.onnx",
                    input_names=["spikes"],
                    output_names=["depth"],
                    opset_version=17,
                    dynamo=False,
                )
                so = ort.SessionOptions()
                so.intra_op_num_threads = a.threads
                sess = ort.InferenceSession(f"{d}/m.onnx", so, providers=["CPUExecutionProvider"])
                xn = x.numpy()
                t = time_model(lambda v: sess.run(None, {"spikes": v}), xn, a.repeats)
                rows.append(
                    (
                        f"ONNX Runtime {ort.__version__}",
                        t,
                        float(np.abs(sess.run(None, {"spikes": xn})[0] - ref.numpy()).max()),
                    )
                )
    print(f"\nexported, batch 1, 192x640, T={a.window}, {a.threads} threads (CPU)")
    print("| runtime | latency ms | max abs diff vs eager (m) |")
    print("|---|---:|---:|")
    for name, t, diff in rows:
        print(f"| {name} | {1000 * t:.1f} | {diff:.2e} |")


if __name__ == "__main__":
    main()
