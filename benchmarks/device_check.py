"""One command that measures r2sdepth on an accelerator the first time one is available.

    python benchmarks/device_check.py --out runs/device_check            # a GPU: about 5 minutes
    python benchmarks/device_check.py --device cpu --size 64x96 --batch 2 --window 32 --width 8 \\
        --steps 2 --out runs/device_check_cpu                             # seconds: what the tests run

Prints Markdown tables and writes ``OUT/device_check.json``:

1. **Training steps** of the stage-1 modes (rgb, spike, fusion) at SIZE and BATCH in ``32`` and
   ``bf16-mixed`` precision (Lightning's ``bf16-mixed`` is ``torch.autocast(bfloat16)``; the
   geometry stays float32): seconds per step (median of STEPS after 2 warm-up steps; a step is
   the host-to-device copy of a packed batch, :func:`r2sdepth.data.transport.finish_batch`,
   forward, backward, Adam), samples/s, peak memory; and ``bf16-mixed`` with the speed options
   (``speed.compile_ssim``: SSIM through ``torch.compile``; ``optim.fused``: Adam's fused kernel;
   compiled during the warm-up steps; ``--no-speed-options`` leaves these rows out).
2. **Parity** (float32): the loss and gradients of one fixed batch (batch 2) on the CPU and on the
   device, TF32 off, auto-mask off (its tie-breaking noise is drawn from each device's own RNG):
   relative loss difference (tolerance 1e-4) and the relative norm of the gradient difference
   (tolerance 1e-3); then 5 Adam steps from the same start in ``32`` and ``bf16-mixed``: every
   loss finite, largest relative loss difference (tolerance 0.05).
3. **Inference** of the spike-only network (``spike_depth``, the path ``infer`` runs) at batch 1
   and 8: latency and windows/s in float32, bfloat16 and float16 (autocast), and ONNX Runtime's
   CUDA provider when it is installed.
4. **Data loading**: samples/s of a ``DataLoader`` over a built Spike-KITTI stream at SIZE with N
   workers (device transport, pinned memory on a GPU), beside what the fusion step consumes.

Networks are the paper's sizes by default (ResNet-18 width 64, Monodepth2's decoder), random
weights (nothing is downloaded). Every section catches its own failure and reports it as a row,
so one broken path does not hide the others.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from r2sdepth.data.dataset import SampleOptions, SplitDataset, collate
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.spike_kitti import StreamSpec, build_spike_kitti
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.data.transport import draw_jitter, finish_batch, pack_spikes
from r2sdepth.export import SpikeDepth, onnx_bytes
from r2sdepth.losses import compiled_ssim
from r2sdepth.models.r2sdepth import R2SDepthNet
from r2sdepth.spike.simulate import SimParams
from r2sdepth.train.module import DepthModule

MODES = ("rgb", "spike", "fusion")
PARITY_LOSS_TOL, PARITY_GRAD_TOL, BF16_LOSS_TOL = 1e-4, 1e-3, 0.05


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def packed_batch(bs: int, h: int, w: int, t: int, seed: int) -> dict[str, torch.Tensor]:
    """A training batch as the loader delivers it with ``data.transport: device`` (random
    content, three frames, intrinsics of KITTI's proportions)."""
    rng = np.random.default_rng(seed)
    spikes = (rng.random((bs, t, h, w)) < 0.2).astype(np.uint8)
    K = torch.tensor([[0.58 * w, 0, w / 2], [0, 1.92 * h, h / 2], [0, 0, 1]], dtype=torch.float32)
    return {
        "color": torch.from_numpy(rng.random((bs, 3, 3, h, w), dtype=np.float32)),
        "K": K.expand(bs, 3, 3).contiguous(),
        "spikes_packed": torch.from_numpy(pack_spikes(spikes)),
        "jitter": torch.from_numpy(np.stack([draw_jitter(rng) for _ in range(bs)])),
        "jitter_on": torch.from_numpy(rng.random(bs) < 0.5),
    }


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def make_module(
    mode: str, width: int, decoder_width: int, seed: int = 0, automask: bool = True
) -> DepthModule:
    torch.manual_seed(seed)
    return DepthModule(
        {"modality": mode, "width": width, "decoder_width": decoder_width},
        {"width": width, "scale": 0.1},
        {"automask": automask},
        None,
        {"context": [-1, 1]},
    )


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


def timed_steps(
    m: DepthModule, opt: torch.optim.Optimizer, host: dict[str, torch.Tensor], device: torch.device,
    precision: str, steps: int,
) -> tuple[list[float], float]:  # fmt: skip
    """Seconds of each of ``steps`` training steps after two untimed ones (copy of the packed batch,
    ``finish_batch``, forward, backward, Adam); and the last loss."""
    times = []
    for i in range(steps + 2):
        sync(device)
        t0 = time.perf_counter()
        batch = finish_batch(to_device(host, device))
        with autocast(device, precision):
            loss = m.compute_loss(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync(device)
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return times, float(loss.detach())


def train_steps(a: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    rows = []
    h, w = a.hw
    host = packed_batch(a.batch, h, w, a.window, 0)
    if device.type == "cuda":
        host = {k: v.pin_memory() for k, v in host.items()}
    # fast: the speed options (speed.compile_ssim, optim.fused); the untimed first steps compile
    variants = [("32", False), ("bf16-mixed", False)] + ([("bf16-mixed", True)] if a.speed_options else [])
    for mode in MODES:
        for precision, fast in variants:
            row: dict[str, Any] = {
                "mode": mode,
                "precision": precision + (" + speed options" if fast else ""),
            }
            try:
                m = make_module(mode, a.width, a.decoder_width).to(device).train()
                opt = torch.optim.Adam(m.parameters(), 1e-4, fused=fast or None)
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                with compiled_ssim(fast, device):
                    times, loss = timed_steps(m, opt, host, device, precision, a.steps)
                s = statistics.median(times)
                row.update(s_per_step=s, samples_per_s=a.batch / s, peak_gib=peak_gib(device), loss=loss)
                del m, opt
            except Exception as e:  # a broken path is a row, not the end of the check
                row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            rows.append(row)
            print_row(row)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def print_row(row: dict[str, Any]) -> None:
    if "error" in row:
        print(f"| {row['mode']} | {row['precision']} | failed: {row['error']} | | |", flush=True)
        return
    mem = f"{row['peak_gib']:.2f}" if row["peak_gib"] is not None else "n/a (CPU)"
    print(
        f"| {row['mode']} | {row['precision']} | {row['s_per_step']:.3f} | {row['samples_per_s']:.1f} | {mem} |",
        flush=True,
    )


def loss_and_grads(m: DepthModule, batch: dict[str, torch.Tensor]) -> tuple[float, torch.Tensor]:
    m.zero_grad(set_to_none=True)
    loss = m.compute_loss(batch)["loss"]
    loss.backward()
    loss = loss.detach()
    g = torch.cat([p.grad.detach().flatten().double().cpu() for p in m.parameters() if p.grad is not None])
    return float(loss), g


def parity(a: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    h, w = a.hw
    rows = []
    tf32 = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        for mode in MODES:
            row: dict[str, Any] = {"mode": mode}
            try:
                host = finish_batch(packed_batch(2, h, w, a.window, 1))
                # no auto-mask: its 1e-5 tie-breaking noise comes from each device's own RNG
                ref = make_module(mode, a.width, a.decoder_width, automask=False).train()
                dev = copy.deepcopy(ref).to(device)
                l_cpu, g_cpu = loss_and_grads(ref, host)
                l_dev, g_dev = loss_and_grads(dev, to_device(host, device))
                row["loss_rel_diff"] = abs(l_dev - l_cpu) / max(abs(l_cpu), 1e-12)
                row["grad_rel_diff"] = float((g_dev - g_cpu).norm() / g_cpu.norm().clamp_min(1e-30))
                losses = {}
                for precision in ("32", "bf16-mixed"):
                    m = copy.deepcopy(ref).to(device)
                    opt = torch.optim.Adam(m.parameters(), 1e-4)
                    batch = to_device(host, device)
                    seq = []
                    for _ in range(5):
                        with autocast(device, precision):
                            loss = m.compute_loss(batch)["loss"]
                        opt.zero_grad(set_to_none=True)
                        loss.backward()
                        opt.step()
                        seq.append(float(loss))
                    losses[precision] = seq
                row["bf16_finite"] = all(math.isfinite(x) for x in losses["bf16-mixed"])
                row["bf16_loss_rel_diff"] = max(
                    abs(b - f) / max(abs(f), 1e-12) for f, b in zip(losses["32"], losses["bf16-mixed"])
                )
                row["pass"] = bool(
                    row["loss_rel_diff"] <= PARITY_LOSS_TOL
                    and row["grad_rel_diff"] <= PARITY_GRAD_TOL
                    and row["bf16_finite"]
                    and row["bf16_loss_rel_diff"] <= BF16_LOSS_TOL
                )
                print(
                    f"| {mode} | {row['loss_rel_diff']:.1e} | {row['grad_rel_diff']:.1e} | "
                    f"{'yes' if row['bf16_finite'] else 'NO'} | {row['bf16_loss_rel_diff']:.1e} | "
                    f"{'pass' if row['pass'] else 'FAIL'} |",
                    flush=True,
                )
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
                print(f"| {mode} | failed: {row['error']} | | | | |", flush=True)
            rows.append(row)
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = tf32
    return rows


def timed(fn, x: torch.Tensor, device: torch.device, reps: int) -> float:
    for _ in range(3):
        fn(x)
    sync(device)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def inference(a: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    h, w = a.hw
    torch.manual_seed(0)
    net = R2SDepthNet({"modality": "spike", "width": a.width, "decoder_width": a.decoder_width})
    model = SpikeDepth(net).eval().to(device)
    rows = []
    dtypes = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
    for bs in (1, 8):
        x = (torch.rand(bs, a.window, h, w, device=device) < 0.2).to(torch.uint8)
        for name, dt in dtypes.items():
            row: dict[str, Any] = {"batch": bs, "path": f"eager {name}"}
            try:

                def fn(x, dt=dt):
                    with (
                        torch.inference_mode(),
                        torch.autocast(device.type, dtype=dt or torch.float32, enabled=dt is not None),
                    ):
                        return model(x)

                s = timed(fn, x, device, a.reps)
                row.update(latency_ms=s * 1e3, windows_per_s=bs / s)
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            rows.append(row)
            print_infer(row)
        row = {"batch": bs, "path": "ONNX Runtime CUDA"}
        try:
            import onnxruntime as ort  # noqa: PLC0415  optional dependency (the export extra)

            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise RuntimeError("onnxruntime has no CUDAExecutionProvider here")
            with tempfile.TemporaryDirectory() as d:
                p = Path(d) / "m.onnx"
                p.write_bytes(onnx_bytes(model.cpu().float(), x.cpu().float()))
                model.to(device)
                sess = ort.InferenceSession(str(p), providers=["CUDAExecutionProvider"])
                xn = x.cpu().float().numpy()
                s = timed(
                    lambda _, sess=sess, xn=xn: sess.run(None, {"spikes": xn}), x, torch.device("cpu"), a.reps
                )
            row.update(latency_ms=s * 1e3, windows_per_s=bs / s)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
        rows.append(row)
        print_infer(row)
    return rows


def print_infer(row: dict[str, Any]) -> None:
    if "error" in row:
        print(f"| {row['batch']} | {row['path']} | n/a: {row['error']} | |", flush=True)
    else:
        print(
            f"| {row['batch']} | {row['path']} | {row['latency_ms']:.2f} | {row['windows_per_s']:.1f} |",
            flush=True,
        )


def loading(a: argparse.Namespace, device: torch.device, demand: float | None) -> list[dict[str, Any]]:
    h, w = a.hw
    rows = []
    with tempfile.TemporaryDirectory() as d:
        root, spk = Path(d) / "scenes", Path(d) / "spikes"
        n = max(2 * a.batch, 8)
        synthesize(root, SceneSpec(frames=n + 2, height=h, width=w), sequences=1)
        build_spike_kitti(root, spk, StreamSpec(h, w, SimParams(planes_per_frame=a.window)), cameras=["02"])
        ds = SplitDataset(
            DriveOptions(
                root,
                height=h,
                width=w,
                window=a.window,
                sim=SimParams(planes_per_frame=a.window),
                spike_root=spk,
            ),
            root / "splits" / "train_files.txt",
            SampleOptions(augment=True, transport="device"),
        )
        for nw in a.workers:
            row: dict[str, Any] = {"workers": nw}
            try:
                dl = DataLoader(
                    ds,
                    batch_size=a.batch,
                    num_workers=nw,
                    collate_fn=collate,
                    pin_memory=device.type == "cuda",
                    persistent_workers=nw > 0,
                )
                for _ in dl:  # workers started, files opened
                    break
                t0 = time.perf_counter()
                got = 0
                for _ in range(2):
                    for b in dl:
                        finish_batch(to_device(b, device))
                        got += len(b["index"])
                sync(device)
                row["samples_per_s"] = got / (time.perf_counter() - t0)
            except Exception as e:
                row["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:200]
            rows.append(row)
            need = f"{demand:.1f}" if demand else "n/a"
            got_s = f"{row['samples_per_s']:.1f}" if "samples_per_s" in row else f"failed: {row['error']}"
            print(f"| {nw} | {got_s} | {need} |", flush=True)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--size", default="192x640", help="HxW of training and inference")
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--window", type=int, default=128)
    ap.add_argument("--width", type=int, default=64, help="ResNet-18 base width (64: the paper's)")
    ap.add_argument("--decoder-width", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per row")
    ap.add_argument(
        "--no-speed-options",
        dest="speed_options",
        action="store_false",
        help="leave out the bf16-mixed rows with compiled SSIM and fused Adam (compiling takes a while)",
    )
    ap.add_argument("--reps", type=int, default=20, help="timed inference calls per row")
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 4, 8])
    ap.add_argument("--out", type=Path, default=Path("runs/device_check"))
    a = ap.parse_args(argv)
    a.hw = tuple(map(int, a.size.split("x")))
    device = torch.device(a.device)
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "size": a.size,
        "batch": a.batch,
        "window": a.window,
        "width": a.width,
    }
    print(" ".join(f"{k}={v}" for k, v in info.items()))
    t_start = time.perf_counter()
    res: dict[str, Any] = {"info": info}
    print("\n| mode | precision | s/step | samples/s | peak memory (GiB) |\n|---|---|---:|---:|---:|")
    res["train"] = train_steps(a, device)
    print(
        "\n| mode | loss rel. diff CPU/device | grad rel. diff | bf16 finite | bf16 loss rel. diff | "
        f"tolerances {PARITY_LOSS_TOL:g} / {PARITY_GRAD_TOL:g} / {BF16_LOSS_TOL:g} |\n|---|---:|---:|---|---:|---|"
    )
    res["parity"] = parity(a, device)
    print("\n| batch | path | latency (ms) | windows/s |\n|---:|---|---:|---:|")
    res["inference"] = inference(a, device)
    fusion = [
        r
        for r in res["train"]
        if r["mode"] == "fusion" and r["precision"] == "bf16-mixed" and "samples_per_s" in r
    ]
    demand = fusion[0]["samples_per_s"] if fusion else None
    print("\n| loader workers | samples/s delivered | fusion bf16 step consumes |\n|---:|---:|---:|")
    res["loading"] = loading(a, device, demand)
    res["seconds"] = time.perf_counter() - t_start
    print(f"\ntotal {res['seconds']:.0f} s")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "device_check.json").write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
