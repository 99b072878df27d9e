"""Spike-only inference: latency, throughput and peak memory; exported models beside eager.

    python benchmarks/bench_infer.py [--threads 2] [--window 128] [--width 64] [--device cpu|cuda]

The network is the paper-size spike-only model (``configs/train_spike.yaml``: ResNet-18 width
64, decoder 16, 4 chunks x 8 bins) with random weights (speed does not depend on them), and
the shipped demo model. Sizes: 192x640 (Spike-KITTI) and 250x400 (the PKU camera; padded to
256x416 as ``r2sdepth infer`` does); batch 1 and 8. Each configuration runs in a fresh
process so that the peak resident memory (CPU, ru_maxrss) belongs to it alone; on a GPU the
peak is torch.cuda.max_memory_allocated. Exported TorchScript and ONNX (onnxruntime, CPU)
latencies at batch 1 follow.

``--fast-paths`` (CPU, issue 27): the paper-size network at 250x400 (padded to 256x416), batch 1, in
every faster form on offer beside eager PyTorch, interleaved in one process: ``torch.compile``
(inductor, frozen weights; compile time apart), ONNX Runtime float32, and ONNX Runtime with dynamic
int8 quantisation (``onnxruntime.quantization.quantize_dynamic``, unsigned 8-bit weights); then the
accuracy cost of each on held-out synthetic images with exact depth: the shipped demo model on the test
split of ``r2sdepth synth --sequences 10 --frames 50 --size 64x224`` (the learning check's data),
abs_rel with median scaling as ``r2sdepth eval``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r2sdepth import evaluate as ev
from r2sdepth.checkpoint import load_file
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.demo import DEMO_CHECKPOINT
from r2sdepth.export import SpikeDepth, onnx_bytes, time_model
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


def ort_sessions(model: torch.nn.Module, x: torch.Tensor, threads: int, d: str) -> dict[str, Any]:
    """ONNX Runtime sessions (CPU) of ``model`` traced on ``x``: float32 and dynamic int8."""
    import onnxruntime as ort  # noqa: PLC0415  optional dependency (the export extra)
    from onnxruntime.quantization import QuantType, quantize_dynamic  # noqa: PLC0415

    Path(d, "m.onnx").write_bytes(onnx_bytes(model, x))
    quantize_dynamic(f"{d}/m.onnx", f"{d}/m8.onnx", weight_type=QuantType.QUInt8)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    # no busy-waiting between runs: spinning threads would steal the cores from the interleaved eager runs
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return {
        name: ort.InferenceSession(f"{d}/{f}", so, providers=["CPUExecutionProvider"])
        for name, f in (("ONNX Runtime float32", "m.onnx"), ("ONNX Runtime int8 (dynamic)", "m8.onnx"))
    }


def fast_paths(a: argparse.Namespace) -> None:
    """Latency of each faster form of the paper-size network, and the accuracy cost of each on the demo model."""
    import torch._inductor.config as inductor_config  # noqa: PLC0415  only this benchmark freezes weights

    warnings.filterwarnings("ignore")
    torch.set_num_threads(a.threads)
    inductor_config.freezing = True  # weights are constants at inference: folded and pre-packed
    torch.manual_seed(0)
    model = SpikeDepth(R2SDepthNet({"modality": "spike", "width": a.width, "decoder_width": 16})).eval()
    x = (torch.rand(1, a.window, 256, 416) < 0.2).to(torch.uint8)
    with torch.no_grad(), tempfile.TemporaryDirectory() as d:
        ref = model(x).numpy()
        t0 = time.perf_counter()
        compiled = torch.compile(model)
        compiled(x)
        compile_s = time.perf_counter() - t0
        sess = ort_sessions(model, x, a.threads, d)
        xn = x.numpy()
        paths: dict[str, Any] = {
            "eager PyTorch": lambda: model(x).numpy(),
            "torch.compile (inductor, frozen)": lambda: compiled(x).numpy(),
            **{k: (lambda s=s: s.run(None, {"spikes": xn})[0]) for k, s in sess.items()},
        }
        diff = {k: float(np.abs(f() - ref).max()) for k, f in paths.items()}
        times: dict[str, list[float]] = {k: [] for k in paths}
        for r in range(a.repeats + 1):
            for k in list(paths)[r % len(paths) :] + list(paths)[: r % len(paths)]:
                t = time.perf_counter()
                paths[k]()
                if r:
                    times[k].append(time.perf_counter() - t)
    eager = statistics.median(times["eager PyTorch"])
    print(f"\nfaster forms, paper-size spike-only network, 250x400 (256x416), batch 1, T={a.window}, "
          f"{a.threads} threads, {a.repeats} interleaved rounds; compile {compile_s:.0f} s")  # fmt: skip
    print("| form | latency ms (median) | windows/s | x eager | max abs diff vs eager (model units) |")
    print("|---|---:|---:|---:|---:|")
    for k, v in times.items():
        m = statistics.median(v)
        print(f"| {k} | {1000 * m:.1f} | {1 / m:.2f} | {eager / m:.2f} | {diff[k]:.2e} |")
    accuracy(a)


def accuracy(a: argparse.Namespace) -> None:
    """abs_rel of the shipped demo model on the learning check's held-out synthetic images, per form."""
    import r2sdepth.infer as infer  # noqa: PLC0415  its batch predictor is swapped per form below

    data = Path(a.accuracy_data)
    if not (data / "splits" / "test_files.txt").exists():
        synthesize(data, SceneSpec(frames=50, height=64, width=224), sequences=10, workers=a.threads)
    split = data / "splits" / "test_files.txt"
    gts = ev.split_gt(data, split)
    eager_batch = infer.predict_batch
    res = {}
    with tempfile.TemporaryDirectory() as d:
        forms: dict[str, Any] = {"eager PyTorch": None}
        for name in ("ONNX Runtime float32", "ONNX Runtime int8 (dynamic)"):
            forms[name] = name
        sess: dict[str, Any] = {}
        for name, form in forms.items():
            if form is not None:

                def ort_batch(module, batch, modality, post_process=False, form=form):
                    x = batch["spikes"]
                    if form not in sess:
                        sess.update(ort_sessions(SpikeDepth(module.net).eval(), x, a.threads, d))
                    return torch.from_numpy(sess[form].run(None, {"spikes": x.numpy()})[0])

                infer.predict_batch = ort_batch
            try:
                preds, _ = infer.predict_split("demo", data, split, batch_size=1)
            finally:
                infer.predict_batch = eager_batch
            res[name] = ev.evaluate_depths(preds, gts)
    print(
        f"\nshipped demo model on {len(gts)} held-out synthetic images (exact depth, Garg crop, 80 m, median scaling)"
    )
    print("| form | abs_rel | rmse | a1 |")
    print("|---|---:|---:|---:|")
    for k, m in res.items():
        print(f"| {k} | {m['abs_rel']:.4f} | {m['rmse']:.3f} | {m['a1']:.4f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--fast-paths", action="store_true", help="only the faster forms and their accuracy")
    ap.add_argument(
        "--accuracy-data", default="runs/learning_check/synth", help="held-out images (made when absent)"
    )
    a = ap.parse_args()
    if a.fast_paths:
        fast_paths(a)
        return
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
