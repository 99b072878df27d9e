"""r2sdepth's rgb mode side by side with Monodepth2 itself, same data, size, batch and steps.

Both train a paper-size ResNet-18 depth net (ImageNet weights off: nothing is downloaded) and a
separate ResNet-18 pose net by view synthesis on the learning check's synthetic sequences
(``benchmarks/learning_check.py`` makes them), then are evaluated on the held-out test sequences
with exact depth by one evaluation function (``r2sdepth.evaluate.evaluate_depths``: Garg crop,
80 m cap, per-image median scaling). Each system keeps its own recipe otherwise (Monodepth2: its
defaults, ``--weights_init scratch``; r2sdepth: the shipped ``train_rgb`` config). Runs alternate
(Monodepth2 seed s, r2sdepth seed s, ...) in one process, so seconds per step compare under the
same machine load; per-step time is forward + backward + optimiser step (data loading, logging
and validation excluded), wall time includes everything.

Monodepth2 is run from a copy of the checkout you pass (yours is left untouched). The copy gets
only the changes today's numpy / torch / torchvision / Pillow require (``COMPAT`` below, printed
and written to the results) and the split files; three of its imports that training never uses
(``tensorboardX``, ``IPython``, ``six``) are provided by stand-ins when absent.

    git clone https://github.com/nianticlabs/monodepth2 /tmp/monodepth2
    python benchmarks/monodepth2_side_by_side.py --monodepth2 /tmp/monodepth2 --lc runs/learning_check \\
        --out runs/md2_side_by_side --steps 1000 --seeds 0 1

Writes ``OUT/results.json`` and ``OUT/results.md``. On a 2-core machine two processes with one
thread each (one seed each) use the cores better than one with two threads (about 2.2 s per step
each against 2.45 s for one alone); combine them with ``--merge``::

    for s in 0 1; do OMP_NUM_THREADS=1 python benchmarks/monodepth2_side_by_side.py --monodepth2 /tmp/monodepth2 \\
        --out runs/md2_s$s --steps 1000 --seeds $s & done; wait
    python benchmarks/monodepth2_side_by_side.py --merge runs/md2_s0 runs/md2_s1 --out runs/md2_side_by_side
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

import numpy as np
import torch

from r2sdepth import evaluate as ev
from r2sdepth.infer import predict_split
from r2sdepth.train.run import apply_overrides, load_config, run_training

ROOT = Path(__file__).resolve().parents[1]

# (file, old text, new text, why): the only edits made to the Monodepth2 copy.
COMPAT: list[tuple[str, str, str, str]] = [
    (
        "trainer.py",
        "inputs = self.val_iter.next()",
        "inputs = next(self.val_iter)",
        "DataLoader iterators have no .next() method in Python 3 / today's torch",
    ),
    (
        "networks/resnet_encoder.py",
        "self.encoder = resnets[num_layers](pretrained)",
        "self.encoder = resnets[num_layers](weights='IMAGENET1K_V1' if pretrained else None)",
        "torchvision >= 0.15 takes the weights keyword-only (the positional 'pretrained' is gone)",
    ),
    (
        "datasets/mono_dataset.py",
        "self.interp = Image.ANTIALIAS",
        "self.interp = Image.LANCZOS",
        "Pillow >= 10 removed the ANTIALIAS alias of LANCZOS (same filter)",
    ),
    (
        "datasets/mono_dataset.py",
        "            color_aug = transforms.ColorJitter.get_params(\n"
        "                self.brightness, self.contrast, self.saturation, self.hue)\n",
        "            _order, _b, _c, _s, _h = transforms.ColorJitter.get_params(\n"
        "                self.brightness, self.contrast, self.saturation, self.hue)\n"
        "            from torchvision.transforms import functional as _TF\n"
        "            _ops = [lambda x: _TF.adjust_brightness(x, _b), lambda x: _TF.adjust_contrast(x, _c),\n"
        "                    lambda x: _TF.adjust_saturation(x, _s), lambda x: _TF.adjust_hue(x, _h)]\n"
        "            def color_aug(x):\n"
        "                for _i in _order.tolist():\n"
        "                    x = _ops[_i](x)\n"
        "                return x\n",
        "torchvision >= 0.8's ColorJitter.get_params returns the sampled factors, not a transform; "
        "applied here in the sampled order, one draw per sample (all frames alike), as before",
    ),
]


def prepare_monodepth2(src: Path, work: Path, splits: Path) -> tuple[Path, list[dict[str, str]]]:
    """Copy the checkout to ``work``, apply ``COMPAT``, add the split as ``splits/r2s_synth``."""
    if not (src / "trainer.py").is_file() or not (src / "networks").is_dir():
        raise SystemExit(f"{src} is not a Monodepth2 checkout (no trainer.py / networks/)")
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(src, work, ignore=shutil.ignore_patterns(".git", "assets", "*.ipynb"))
    applied = []
    for rel, old, new, why in COMPAT:
        p = work / rel
        text = p.read_text()
        if old not in text:
            raise SystemExit(f"Monodepth2 changed upstream: {rel!r} no longer contains {old!r}")
        p.write_text(text.replace(old, new))
        applied.append({"file": rel, "old": old.strip(), "new": new.strip(), "why": why})
    (work / "splits" / "r2s_synth").mkdir(parents=True, exist_ok=True)
    for name in ("train", "val", "test"):
        shutil.copy(splits / f"{name}_files.txt", work / "splits" / "r2s_synth" / f"{name}_files.txt")
    return work, applied


def stand_in_modules() -> list[str]:
    """Stand-ins for imports Monodepth2's training never calls, only where they are missing."""
    made = []

    def missing(name: str) -> bool:
        try:
            importlib.import_module(name)
            return False
        except ImportError:
            return True

    if missing("tensorboardX"):
        from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415  a stand-in made only when Monodepth2's dependency is missing

        sys.modules["tensorboardX"] = types.SimpleNamespace(SummaryWriter=SummaryWriter)  # type: ignore[assignment]
        made.append("tensorboardX.SummaryWriter -> torch.utils.tensorboard.SummaryWriter")
    if missing("IPython"):
        sys.modules["IPython"] = types.SimpleNamespace(embed=None)  # type: ignore[assignment]
        made.append("IPython.embed (imported, never called)")
    if missing("six"):
        import urllib  # noqa: PLC0415  a stand-in made only when Monodepth2's dependency is missing

        moves = types.SimpleNamespace(urllib=urllib)
        sys.modules["six"] = types.SimpleNamespace(moves=moves)  # type: ignore[assignment]
        sys.modules["six.moves"] = moves  # type: ignore[assignment]
        made.append("six.moves.urllib -> urllib (download helper, never called)")
    return made


class _Done(Exception):
    pass


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def monodepth2_options(
    options: Any, data: Path, log_dir: Path, h: int, w: int, batch: int, workers: int, *extra: object
) -> Any:
    """Monodepth2's parsed options (its ``options`` module) for our runs: its defaults, a from-scratch
    ResNet-18, CPU, PNG frames, the split ``r2s_synth`` in the copy; ``extra``: more flags."""
    parser = options.MonodepthOptions().parser
    parser._option_string_actions["--split"].choices.append("r2s_synth")  # our split folder in the copy
    args = ["--data_path", data, "--log_dir", log_dir, "--split", "r2s_synth", "--height", h, "--width", w,
            "--batch_size", batch, "--num_layers", 18, "--weights_init", "scratch", "--no_cuda", "--png",
            "--num_workers", workers, *extra]  # fmt: skip
    return parser.parse_args([str(x) for x in args])


def run_monodepth2(
    md2: Path, data: Path, out: Path, *, steps: int, batch: int, h: int, w: int, seed: int, workers: int
) -> dict[str, Any]:
    """Train Monodepth2 ``steps`` optimiser steps; returns per-step times, wall time, test depths."""
    sys.path.insert(0, str(md2))
    try:
        for m in [
            m
            for m in sys.modules
            if m.split(".")[0]
            in ("trainer", "options", "layers", "utils", "kitti_utils", "datasets", "networks")
        ]:
            del sys.modules[m]
        options = importlib.import_module("options")
        trainer_mod = importlib.import_module("trainer")
        layers = importlib.import_module("layers")
        datasets = importlib.import_module("datasets")
    finally:
        sys.path.remove(str(md2))
    n_train = len((md2 / "splits" / "r2s_synth" / "train_files.txt").read_text().splitlines())
    epochs = -(-steps // max(1, n_train // batch))  # enough epochs; training stops at exactly ``steps``
    opt = monodepth2_options(options, data, out, h, w, batch, workers, "--model_name", f"seed{seed}",
                             "--num_epochs", epochs)  # fmt: skip
    seed_all(seed)
    t = trainer_mod.Trainer(opt)
    times: list[float] = []
    t0 = [0.0]
    process_batch, optim_step = t.process_batch, t.model_optimizer.step

    def timed_process_batch(inputs: Any) -> Any:
        t0[0] = time.perf_counter()
        return process_batch(inputs)

    def counted_step(*a: Any, **k: Any) -> Any:
        r = optim_step(*a, **k)
        times.append(time.perf_counter() - t0[0])
        if len(times) >= steps:
            raise _Done
        return r

    t.process_batch, t.model_optimizer.step = timed_process_batch, counted_step
    wall = time.perf_counter()
    try:
        t.train()
    except _Done:
        pass
    wall = time.perf_counter() - wall
    t.set_eval()
    test = (md2 / "splits" / "r2s_synth" / "test_files.txt").read_text().splitlines()
    ds = datasets.KITTIRAWDataset(str(data), test, h, w, [0], 4, is_train=False, img_ext=".png")
    preds: list[np.ndarray] = []
    with torch.no_grad():
        for inputs in torch.utils.data.DataLoader(ds, batch_size=8, shuffle=False):
            disp = t.models["depth"](t.models["encoder"](inputs[("color", 0, 0)]))[("disp", 0)]
            _, depth = layers.disp_to_depth(disp, opt.min_depth, opt.max_depth)
            preds += [d[0].numpy() for d in depth]
    return {"step_s": times, "wall_s": wall, "steps": len(times), "preds": preds}


def run_r2sdepth(
    data: Path, out: Path, *, steps: int, batch: int, h: int, w: int, seed: int, workers: int
) -> dict[str, Any]:
    """Train r2sdepth's rgb mode (the shipped train_rgb config) ``steps`` steps; same outputs as above."""
    import lightning as L  # noqa: PLC0415  heavy: only the r2sdepth side needs it

    times: list[float] = []

    class StepTimer(L.Callback):
        def on_train_batch_start(self, *a: Any) -> None:
            self.t = time.perf_counter()

        def on_train_batch_end(self, *a: Any) -> None:
            times.append(time.perf_counter() - self.t)

    cfg = load_config("train_rgb")
    splits = data / "splits"
    apply_overrides(
        cfg,
        [
            "--seed",
            str(seed),
            "--data.root",
            str(data),
            "--data.train_split",
            str(splits / "train_files.txt"),
            "--data.val_split",
            str(splits / "val_files.txt"),
            "--data.height",
            str(h),
            "--data.width",
            str(w),
            "--data.batch_size",
            str(batch),
            "--data.val_batch_size",
            str(batch),
            "--data.num_workers",
            str(workers),
            "--trainer.max_steps",
            str(steps),
            "--trainer.max_epochs",
            "100000",
            "--trainer.accelerator",
            "cpu",
            "--trainer.enable_progress_bar",
            "false",
        ],
    )
    wall = time.perf_counter()
    res = run_training(cfg, out, resume=False, callbacks=[StepTimer()])
    wall = time.perf_counter() - wall
    preds, _ = predict_split(res["last"], data, splits / "test_files.txt")
    return {"step_s": times, "wall_s": wall, "steps": res["global_step"], "preds": preds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--monodepth2", type=Path, help="Monodepth2 checkout (left untouched); required unless --merge"
    )
    ap.add_argument(
        "--lc", default="runs/learning_check", type=Path, help="learning-check folder (its synth/)"
    )
    ap.add_argument("--out", default="runs/md2_side_by_side", type=Path)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workers", type=int, default=1, help="data loader workers for both")
    ap.add_argument(
        "--merge",
        type=Path,
        nargs="+",
        metavar="DIR",
        help="only combine the results.json of these earlier runs into OUT (no training)",
    )
    ap.add_argument(
        "--note", help="with --merge: how the runs were made (load, threads), printed in the table"
    )
    a = ap.parse_args()
    if a.merge:
        merge(a.merge, a.out, a.note)
        return
    if a.monodepth2 is None:
        ap.error("--monodepth2 is required (a Monodepth2 checkout)")
    data = a.lc / "synth"
    meta = json.loads((data / "synth.json").read_text())
    h, w = int(meta["height"]), int(meta["width"])
    a.out.mkdir(parents=True, exist_ok=True)
    md2, applied = prepare_monodepth2(a.monodepth2.resolve(), a.out / "monodepth2_src", data / "splits")
    stand_ins = stand_in_modules()
    for c in applied:
        print(f"compat change in {c['file']}: {c['why']}")
    for s in stand_ins:
        print(f"stand-in import: {s}")
    gts = ev.split_gt(data, data / "splits" / "test_files.txt")
    train_gts = ev.split_gt(data, data / "splits" / "train_files.txt")
    res: dict[str, Any] = {
        "compat_changes": applied,
        "stand_ins": stand_ins,
        "steps": a.steps,
        "batch": a.batch,
        "size": [h, w],
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "runs": {},
    }
    res["baselines"] = {
        "mean training depth (no scaling)": ev.mean_depth_baseline(train_gts, gts),
        "constant + median scaling": ev.constant_median_baseline(gts),
    }
    res_file = a.out / "results.json"
    for seed in a.seeds:
        for name, fn in (("monodepth2", run_monodepth2), ("r2sdepth rgb", run_r2sdepth)):
            kw = dict(steps=a.steps, batch=a.batch, h=h, w=w, seed=seed, workers=a.workers)
            r = (
                fn(md2, data, a.out / "md2_runs", **kw)
                if name == "monodepth2"
                else fn(data, a.out / f"r2s_seed{seed}", **kw)
            )
            m = ev.evaluate_depths(r.pop("preds"), gts)
            st = r.pop("step_s")
            m.update(
                {
                    "steps": r["steps"],
                    "s_per_step_median": statistics.median(st[10:] or st),
                    "s_per_step_mean": statistics.fmean(st[10:] or st),
                    "wall_min": r["wall_s"] / 60,
                }
            )
            res["runs"][f"{name} seed {seed}"] = m
            print(
                f"{name} seed {seed}: abs_rel {m['abs_rel']:.3f} a1 {m['a1']:.3f} "
                f"{m['s_per_step_median']:.3f} s/step",
                flush=True,
            )
            res_file.write_text(json.dumps(res, indent=2) + "\n")

    summarize(res, a.out)


def summarize(res: dict[str, Any], out: Path) -> None:
    """Write ``OUT/results.md`` (and the ratios into ``OUT/results.json``): every run, the
    baselines, mean ± sample std over seeds, and the per-seed s/step ratio r2sdepth / Monodepth2."""
    seeds = sorted({int(k.rsplit(" ", 1)[1]) for k in res["runs"]})

    def agg(name: str, key: str) -> tuple[float, float]:
        v = [r[key] for k, r in res["runs"].items() if k.startswith(name + " seed")]
        return statistics.fmean(v), (statistics.stdev(v) if len(v) > 1 else 0.0)

    md = [
        f"{res['steps']} steps, batch {res['batch']}, {res['size'][0]}x{res['size'][1]}, {res['threads']} "
        f"thread(s) per run, seeds {seeds}" + (f"; {res['note']}" if res.get("note") else ""),
        "",
        "| model | abs_rel | a1 | s/step (median) | wall min |",
        "|---|---:|---:|---:|---:|",
    ]
    for k, b in res["baselines"].items():
        md.append(f"| {k} | {b['abs_rel']:.3f} | {b['a1']:.3f} |  |  |")
    for k, r in sorted(res["runs"].items(), key=lambda kv: (kv[0].rsplit(" ", 1)[1], kv[0])):
        md.append(
            f"| {k} | {r['abs_rel']:.3f} | {r['a1']:.3f} | {r['s_per_step_median']:.3f} | {r['wall_min']:.1f} |"
        )
    for name in ("monodepth2", "r2sdepth rgb"):
        (ar, ars), (a1, a1s), (sp, _) = agg(name, "abs_rel"), agg(name, "a1"), agg(name, "s_per_step_median")
        md.append(f"| **{name}, mean ± std** | {ar:.3f} ± {ars:.3f} | {a1:.3f} ± {a1s:.3f} | {sp:.3f} |  |")
    ratios = [
        res["runs"][f"r2sdepth rgb seed {s}"]["s_per_step_median"]
        / res["runs"][f"monodepth2 seed {s}"]["s_per_step_median"]
        for s in seeds
        if f"r2sdepth rgb seed {s}" in res["runs"] and f"monodepth2 seed {s}" in res["runs"]
    ]
    res["s_per_step_ratio_r2sdepth_over_monodepth2"] = ratios
    md += [
        "",
        "s/step ratio r2sdepth / Monodepth2 (same seed, adjacent runs in one process): "
        + ", ".join(f"{x:.2f}" for x in ratios),
    ]
    (out / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    (out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


def merge(parts: list[Path], out: Path, note: str | None) -> None:
    """One table from runs made by separate processes (e.g. one per seed, run side by side with
    one thread each): the same steps, batch, size and threads are required."""
    res: dict[str, Any] | None = None
    for p in parts:
        if not (p / "results.json").is_file():
            raise SystemExit(f"{p}: no results.json (not a finished run of this benchmark)")
        r = json.loads((p / "results.json").read_text())
        if res is None:
            res = {**r, "runs": {}, "merged_from": []}
        for key in ("steps", "batch", "size", "threads"):
            if r[key] != res[key]:
                raise SystemExit(f"{p}: {key} {r[key]} differs from {res[key]}: not one comparison")
        res["runs"].update(r["runs"])
        res["merged_from"].append(str(p))
    if res is None:
        raise SystemExit("--merge needs result folders")
    if note:
        res["note"] = note
    out.mkdir(parents=True, exist_ok=True)
    summarize(res, out)


if __name__ == "__main__":
    main()
