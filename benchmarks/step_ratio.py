"""A training step of r2sdepth's rgb mode against Monodepth2's own step, interleaved in one process,
with r2sdepth's speed options (issue 27).

    git clone https://github.com/nianticlabs/monodepth2 /tmp/monodepth2
    python benchmarks/step_ratio.py --monodepth2 /tmp/monodepth2 --size 192x640 --batch 4 --steps 7 \\
        --out runs/step_ratio_192x640.json

Both sides train a paper-size ResNet-18 depth net and a separate ResNet-18 pose net from scratch on
the same random batch (3 frames, 4 output scales, auto-masking, Monodepth2's defaults otherwise):
one step is forward + loss + ``zero_grad`` + backward + Adam step, data loading excluded. Monodepth2
is Monodepth2's ``Trainer.process_batch`` with the optimiser step of its ``run_epoch``, from a copy of
the checkout with only ``monodepth2_side_by_side.COMPAT``'s edits (its ``Trainer`` is built on a
split of made-up file names; nothing is read). The r2sdepth variants:

- ``r2sdepth (before)``: the target's SSIM statistics recomputed for every source and scale, as
  before 2026-12-07 (``losses.target_stats`` patched to hand back nothing);
- ``r2sdepth``: the default (statistics once per step);
- ``+ channels_last``: networks and images in channels-last memory format;
- ``+ fused Adam``: ``torch.optim.Adam(fused=True)``;
- ``+ compiled SSIM``: ``torch.compile`` of the SSIM module;
- ``+ compiled loss``: ``torch.compile`` of the whole multi-scale loss (warp, SSIM, auto-mask,
  smoothness; the warp's float32 island included); compile times are reported apart.

Every variant starts from the same weights (seed 0) and sees the same batch; the order of the variants
rotates each round, one step of each per round after ``--warmup`` untimed rounds; the table gives the
median seconds per step and its ratio to Monodepth2's. Run on an otherwise idle machine and state the
threads (``torch.get_num_threads()`` is printed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from monodepth2_side_by_side import monodepth2_options, prepare_monodepth2, stand_in_modules  # benchmarks/

import r2sdepth.losses as losses
import r2sdepth.train.module as module
from r2sdepth.train.module import DepthModule

Step = Callable[[], float]


def make_batch(b: int, h: int, w: int) -> dict[str, torch.Tensor]:
    """Three smooth random frames ``[B, 3, 3, H, W]`` in r2sdepth's order (target, frame -1, frame +1)
    and KITTI-like intrinsics ``[B, 3, 3]`` in pixels of the network size."""
    g = torch.Generator().manual_seed(0)
    small = torch.rand(b, 3, 3, h // 8, w // 8, generator=g)
    color = torch.nn.functional.interpolate(small.flatten(0, 1), size=(h, w), mode="bilinear").view(
        b, 3, 3, h, w
    )
    K = torch.tensor([[0.58 * w, 0, 0.5 * w], [0, 1.92 * h, 0.5 * h], [0, 0, 1.0]]).expand(b, 3, 3).clone()
    return {"color": color, "color_aug": color.clone(), "K": K}


FIRST_LOSS: dict[int, float] = {}  # id(step) -> the loss of its first call (same weights and batch for all)


def r2sdepth_step(batch: dict[str, torch.Tensor], *, channels_last: bool, fused: bool) -> Step:
    torch.manual_seed(0)
    m = DepthModule(
        {"modality": "rgb", "width": 64}, {"width": 64, "scale": 0.1}, None, None, {"context": [-1, 1]}
    )
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        batch = {
            k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
            for k, v in batch.items()
        }
    opt = torch.optim.Adam(m.parameters(), 1e-4, fused=fused or None)

    def step() -> float:
        t = time.perf_counter()
        loss = m.compute_loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t
        FIRST_LOSS.setdefault(id(step), float(loss))
        return dt

    return step


def monodepth2_step(
    md2_src: Path, work: Path, b: int, h: int, w: int, color: torch.Tensor, K: torch.Tensor
) -> Step:
    """Monodepth2's ``Trainer`` (its defaults, scratch weights, CPU) on the same frames."""
    splits = work / "splits_src"
    splits.mkdir(parents=True)
    for name in ("train", "val", "test"):
        (splits / f"{name}_files.txt").write_text("".join(f"seq {i + 1} l\n" for i in range(4 * b)))
    md2, _ = prepare_monodepth2(md2_src, work / "monodepth2", splits)
    stand_in_modules()
    sys.path.insert(0, str(md2))
    try:
        import options  # noqa: PLC0415  Monodepth2's modules, importable only from its checkout
        import trainer  # noqa: PLC0415
    finally:
        sys.path.remove(str(md2))
    opt = monodepth2_options(options, work / "none", work / "logs", h, w, b, 0)
    torch.manual_seed(0)
    t = trainer.Trainer(opt)
    t.set_train()
    inputs: dict[Any, torch.Tensor] = {}
    for j, fid in enumerate((0, -1, 1)):  # r2sdepth's frame order
        for s in range(4):
            c = (
                color[:, j]
                if s == 0
                else torch.nn.functional.interpolate(color[:, j], scale_factor=0.5**s, mode="area")
            )
            inputs[("color", fid, s)] = c
            inputs[("color_aug", fid, s)] = c.clone()
    for s in range(4):
        Ks = torch.eye(4).expand(b, 4, 4).clone()
        Ks[:, :3, :3] = K
        Ks[:, :2] /= 2**s
        inputs[("K", s)] = Ks
        inputs[("inv_K", s)] = torch.linalg.inv(Ks)

    def step() -> float:
        t0 = time.perf_counter()
        _, ls = t.process_batch(inputs)
        t.model_optimizer.zero_grad()
        ls["loss"].backward()
        t.model_optimizer.step()
        return time.perf_counter() - t0

    return step


def patched(owner: Any, name: str, value: Any, step: Step) -> Step:
    """``step`` with ``owner.name`` set to ``value`` for its duration (restored after, also on error)."""

    def run() -> float:
        saved = getattr(owner, name)
        setattr(owner, name, value)
        try:
            return step()
        finally:
            setattr(owner, name, saved)

    run.inner = step  # type: ignore[attr-defined]  # its first loss is recorded under the inner step
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--monodepth2", type=Path, required=True, help="Monodepth2 checkout (left untouched)")
    ap.add_argument("--size", default="192x640")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=7, help="timed rounds (one step of every variant each)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-compile", action="store_true", help="leave out the compiled-SSIM variant")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    a = ap.parse_args()
    h, w = map(int, a.size.split("x"))
    batch = make_batch(a.batch, h, w)
    with tempfile.TemporaryDirectory() as d:
        variants: dict[str, Step] = {
            "Monodepth2": monodepth2_step(
                a.monodepth2.resolve(), Path(d), a.batch, h, w, batch["color"], batch["K"]
            )
        }
    # every call recomputes the target's statistics, as before 2026-12-07
    variants["r2sdepth (before)"] = patched(
        losses, "target_stats", lambda target: None, r2sdepth_step(batch, channels_last=False, fused=False)
    )
    variants["r2sdepth"] = r2sdepth_step(batch, channels_last=False, fused=False)
    variants["+ channels_last"] = r2sdepth_step(batch, channels_last=True, fused=False)
    variants["+ fused Adam"] = r2sdepth_step(batch, channels_last=False, fused=True)
    compile_s = compile_loss_s = None
    if not a.no_compile:
        variants["+ compiled SSIM"] = patched(
            losses,
            "_SSIM",
            torch.compile(losses.SSIM()),
            r2sdepth_step(batch, channels_last=False, fused=False),
        )
        compile_s = variants["+ compiled SSIM"]()  # the first call compiles (forward and backward)
        variants["+ compiled loss"] = patched(
            module,
            "self_supervised_loss",
            torch.compile(losses.self_supervised_loss),
            r2sdepth_step(batch, channels_last=False, fused=False),
        )
        compile_loss_s = variants["+ compiled loss"]()
    times: dict[str, list[float]] = {k: [] for k in variants}
    names = list(variants)
    for r in range(a.warmup + a.steps):
        order = names[r % len(names) :] + names[: r % len(names)]
        for k in order:
            dt = variants[k]()
            if r >= a.warmup:
                times[k].append(dt)
    md2 = statistics.median(times["Monodepth2"])
    first = {k: FIRST_LOSS[id(getattr(v, "inner", v))] for k, v in variants.items() if k != "Monodepth2"}
    res = {
        "size": a.size,
        "batch": a.batch,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rounds": a.steps,
        "compile_s": {"SSIM": compile_s, "loss": compile_loss_s},
        "median_s": {k: statistics.median(v) for k, v in times.items()},
        "first_loss": first,
        "ratio_to_monodepth2": {k: statistics.median(v) / md2 for k, v in times.items()},
        "steps_s": times,
    }
    print(f"{a.size}, batch {a.batch}, {res['threads']} threads, torch {torch.__version__}, {a.steps} rounds")
    print("| step | median s | / Monodepth2 |")
    print("|---|---:|---:|")
    for k in variants:
        print(f"| {k} | {res['median_s'][k]:.3f} | {res['ratio_to_monodepth2'][k]:.2f} |")
    print("first-step loss (same weights and batch):", ", ".join(f"{k} {v:.9f}" for k, v in first.items()))
    if compile_s is not None:
        print(
            f"(first step, compile included: compiled SSIM {compile_s:.1f} s, compiled loss {compile_loss_s:.1f} s)"
        )
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
