"""Where a stage-1 training step's time goes, per mode: forward parts, the loss's warp and SSIM,
backward and the optimiser.

    python benchmarks/profile_step.py [--size 192x640] [--batch 4] [--steps 3] [--modes rgb spike fusion]

Paper-size networks (ResNet-18 width 64, Monodepth2's decoder), random weights and inputs,
T = 128. Forward parts are timed by forward pre/post hooks on the modules (the RGB encoder, the
spike representation, the spike encoder, the decoders, the pose network); the warp
(:func:`r2sdepth.geometry.warp`) and SSIM (:class:`r2sdepth.losses.SSIM`) by wrapping them for the
run; "other forward" is the rest of forward + loss (fusion, smoothness, minimum, auto-mask); then
``backward`` and ``optimiser``. Median over ``--steps`` steps after one warm-up step; on a GPU
each timer synchronises. Prints a Markdown table (milliseconds and shares of the step).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict

import torch

import r2sdepth.losses as losses
from r2sdepth.data.transport import finish_batch
from r2sdepth.train.module import DepthModule

PARTS = ("rgb encoder", "spike representation", "spike encoder", "decoder(s)", "pose", "warp", "SSIM")


class Timers:
    def __init__(self, device: torch.device) -> None:
        self.device, self.acc = device, defaultdict(float)
        self._t0: dict[int, float] = {}

    def now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def hook(self, module: torch.nn.Module, name: str) -> None:
        def pre(mod, args):
            self._t0[id(mod)] = self.now()

        def post(mod, args, out):
            self.acc[name] += self.now() - self._t0.pop(id(mod))

        module.register_forward_pre_hook(pre)
        module.register_forward_hook(post)

    def wrap(self, fn, name: str):
        def timed(*a, **k):
            t = self.now()
            out = fn(*a, **k)
            self.acc[name] += self.now() - t
            return out

        return timed


def profile(mode: str, h: int, w: int, bs: int, steps: int, device: torch.device) -> dict[str, float]:
    torch.manual_seed(0)
    m = DepthModule({"modality": mode}, {"scale": 0.1}, None, None, {"context": [-1, 1]}).to(device)
    tm = Timers(device)
    net = m.net
    if hasattr(net, "rgb_encoder"):
        tm.hook(net.rgb_encoder, "rgb encoder")
    if hasattr(net, "spike"):
        tm.hook(net.spike.repr, "spike representation")
        tm.hook(net.spike.encoder, "spike encoder")
    for name in ("decoder", "student_decoder"):
        if hasattr(net, name):
            tm.hook(getattr(net, name), "decoder(s)")
    tm.hook(m.pose_net, "pose")
    opt = torch.optim.Adam(m.parameters(), 1e-4)
    K = torch.tensor([[0.58 * w, 0, w / 2], [0, 1.92 * h, h / 2], [0, 0, 1]]).expand(bs, 3, 3)
    g = torch.Generator().manual_seed(0)
    batch = {
        "color": torch.rand(bs, 3, 3, h, w, generator=g),
        "K": K.contiguous(),
        "spikes": (torch.rand(bs, 128, h, w, generator=g) < 0.2).to(torch.uint8),
    }
    batch["color_aug"] = batch["color"].clone()
    batch = finish_batch({k: v.to(device) for k, v in batch.items()})
    rows: dict[str, list[float]] = defaultdict(list)
    warp0, ssim0 = losses.warp, losses.SSIM.forward
    losses.warp = tm.wrap(warp0, "warp")
    losses.SSIM.forward = tm.wrap(ssim0, "SSIM")
    try:
        for i in range(steps + 1):
            tm.acc.clear()
            t0 = tm.now()
            loss = m.compute_loss(batch)["loss"]
            t1 = tm.now()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            t2 = tm.now()
            opt.step()
            t3 = tm.now()
            if i == 0:
                continue
            parts = {p: tm.acc.get(p, 0.0) for p in PARTS}
            parts["other forward"] = (t1 - t0) - sum(parts.values())
            parts["backward"], parts["optimiser"], parts["step"] = t2 - t1, t3 - t2, t3 - t0
            for k, v in parts.items():
                rows[k].append(v)
    finally:
        losses.warp, losses.SSIM.forward = warp0, ssim0
    return {k: statistics.median(v) for k, v in rows.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="192x640")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--modes", nargs="+", default=["rgb", "spike", "fusion"])
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()
    h, w = map(int, a.size.split("x"))
    device = torch.device(a.device)
    res = {mode: profile(mode, h, w, a.batch, a.steps, device) for mode in a.modes}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {a.size}, batch {a.batch}, T=128, {device}"
    )
    print("\n| part | " + " | ".join(f"{m} ms (share)" for m in a.modes) + " |")
    print("|---|" + "---:|" * len(a.modes))
    for part in (*PARTS, "other forward", "backward", "optimiser", "step"):
        cells = []
        for mode in a.modes:
            v, step = res[mode][part], res[mode]["step"]
            cells.append("-" if v == 0 else f"{v * 1e3:.0f} ({100 * v / step:.0f}%)")
        print(f"| {part} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
