"""Real-footage recipe with a real camera's window timing against the same recipe with per-frame windows.

    python benchmarks/camera_rate_transfer.py --out runs/camera_rate --seeds 0 1 2

For each seed and window mode (``camera-rate``: 64 planes at 20 kHz, 3.2 ms; ``per-frame``: 64 planes over
the 100 ms frame interval, the control): synthetic traffic pretraining on exact depth
(``train_spike_traffic_synth``, windows simulated on the fly), then ``r2sdepth adapt`` on the 268
unlabelled frames of KITTI drive 0095 (shipped ``adapt`` config), each scored with ``r2sdepth eval
--baselines`` on drive 0005 frames 0-29 and drive 0009 frames 0-50 (LiDAR, Garg crop, 80 m, median
scaling). Seeds run interleaved by mode so that an interrupted run still has paired figures; a rerun
skips what is done. Writes ``OUT/results.json`` and prints the table. The rule this answers to:
``docs/results/camera_rate/RULE.md``. About 12 min per seed and mode on 2 idle cores.

``--post-process`` adds the rule's addendum rows (``eval --post-process`` of every model above and of the
shipped ``demo`` and ``real``); ``--ship`` applies the rule's shipping decision to the figures and, when it
holds, writes seed 0's adapted camera-rate model to ``src/r2sdepth/assets/real_spike_64x224.ckpt``.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import torch
from adapt_cross_drive import FOOTAGE, KITTI, r2  # the shared drives and the CLI runner (benchmarks/)

from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, load_file, save_atomic

DRIVES = {  # the same frames as adapt_cross_drive.DRIVES, keyed by drive number alone
    "0005": ("2011_09_26/2011_09_26_drive_0005_sync", range(30)),
    "0009": ("2011_09_26/2011_09_26_drive_0009_sync", range(51)),
}
MODES = {"camera-rate": 20000.0, "per-frame": 0.0}


def evaluate(ckpt: Path | str, split: Path, out: Path, *extra: str) -> dict:
    """``r2sdepth eval --baselines`` of one checkpoint on one split: {row name: metrics}; cached in ``out``."""
    if not out.exists():
        r2(
            "eval",
            "--checkpoint",
            ckpt,
            "--data",
            KITTI,
            "--split",
            split,
            "--baselines",
            "--out",
            out,
            *extra,
        )
    return json.loads(out.read_text())


#: the shipped ``real`` model's abs_rel on drive 0009 frames 0-50 before this recipe (the rule's bar)
OLD_REAL_0009 = 0.307


def ship_decision(summary: list[dict]) -> tuple[bool, str]:
    """The rule's shipping decision (``docs/results/camera_rate/RULE.md``) from the adapted rows on 0009."""
    row = {(r["mode"], r["stage"], r["drive"]): r for r in summary}
    cr, pf = row[("camera-rate", "adapted", "0009")], row[("per-frame", "adapted", "0009")]
    base = cr["baselines"]
    checks = {
        f"camera-rate mean {cr['mean']:.3f} < shipped real {OLD_REAL_0009}": cr["mean"] < OLD_REAL_0009,
        f"< constant {base['constant']:.3f}": cr["mean"] < base["constant"],
        f"< flat-road prior {base['flat-road prior']:.3f}": cr["mean"] < base["flat-road prior"],
        f"no worse than per-frame ({pf['mean']:.3f} + {max(cr['std'], pf['std']):.3f})": cr["mean"]
        <= pf["mean"] + max(cr["std"], pf["std"]),
        "3 seeds of each mode": len(cr["abs_rel"]) >= 3 and len(pf["abs_rel"]) >= 3,
    }
    text = "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
    return all(checks.values()), text


#: the camera-rate recipe's 3-seed mean on drive 0009 after 600 adaptation steps (first run; addendum 3's bar)
CAMERA_RATE_600_0009 = 0.286


def length_decision(summary: list[dict], lengths: list[int], incumbent: int = 600) -> tuple[int, bool, str]:
    """Addenda 3 and 4 of the rule: the adaptation length chosen on drive 0005 (a longer one must beat a
    shorter by more than 0.002), then whether seed 0 of it ships (judged on drive 0009). ``incumbent`` is the
    length of the shipped model: 600 (addendum 3, bar the first run's 600-step mean) or 1200 (addendum 4,
    bar this run's own 1200-step mean)."""
    row = {(r["stage"], r["drive"]): r for r in summary if r["mode"] == "camera-rate"}
    stage = {n: "adapted" if n == 600 else f"adapted {n}" for n in lengths}
    best = min(lengths)
    for n in sorted(lengths)[1:]:
        if row[(stage[n], "0005")]["mean"] < row[(stage[best], "0005")]["mean"] - 0.002:
            best = n
    judge = row[(stage[best], "0009")]
    base = judge["baselines"]
    bar = CAMERA_RATE_600_0009 if incumbent == 600 else row[(stage[incumbent], "0009")]["mean"]
    checks = {
        f"length chosen on 0005: {best} ("
        + ", ".join(f"{n}: {row[(stage[n], '0005')]['mean']:.3f}" for n in sorted(lengths))
        + f") is not the shipped {incumbent}": best != incumbent,
        f"0009 mean {judge['mean']:.3f} < {incumbent}-step mean {bar:.3f}": judge["mean"] < bar,
        f"< constant {base['constant']:.3f}": judge["mean"] < base["constant"],
        f"< flat-road prior {base['flat-road prior']:.3f}": judge["mean"] < base["flat-road prior"],
    }
    text = "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
    return best, all(checks.values()), text


def soup(paths: list[Path], dest: Path) -> Path:
    """Addendum 5: the uniform average of one seed's adapted spike-only checkpoints ``paths`` (the same
    network along its adaptation): every floating-point tensor of the state dict averaged (batch-norm
    running statistics included), integer counters from the last file, its metadata with the list of
    averaged files. Written to ``dest`` (atomic); made once."""
    if dest.exists():
        return dest
    cks = [load_file(p) for p in paths]
    last = cks[-1]
    state = {}
    for k, v in last["state_dict"].items():
        if torch.is_floating_point(v):
            state[k] = (sum(c["state_dict"][k].double() for c in cks) / len(cks)).to(v.dtype)
        else:
            state[k] = v
    meta = dict(last["r2sdepth"])
    meta["adapted_on"] = {
        **meta["adapted_on"],
        "averaged": [p.name for p in paths],
        "recipe": "uniform weight average of the adapted checkpoints (RULE.md addendum 5); no depth labels",
    }
    save_atomic({"r2sdepth": meta, "state_dict": state}, dest)
    return dest


def soup_decision(summary: list[dict]) -> tuple[bool, bool, str]:
    """Addendum 5: whether the averaged models are adopted (3-seed mean on 0005 below the 1200-step
    models' by more than 0.002) and whether seed 0's ships (judged on 0009)."""
    row = {(r["stage"], r["drive"]): r for r in summary if r["mode"] == "camera-rate"}
    s5, b5 = row[("soup", "0005")]["mean"], row[("adapted 1200", "0005")]["mean"]
    judge, bar = row[("soup", "0009")], row[("adapted 1200", "0009")]["mean"]
    base = judge["baselines"]
    adopted = s5 < b5 - 0.002
    checks = {
        f"adopted on 0005: averaged {s5:.3f} < 1200 steps {b5:.3f} - 0.002": adopted,
        f"0009 mean {judge['mean']:.3f} < 1200-step mean {bar:.3f}": judge["mean"] < bar,
        f"< constant {base['constant']:.3f}": judge["mean"] < base["constant"],
        f"< flat-road prior {base['flat-road prior']:.3f}": judge["mean"] < base["flat-road prior"],
    }
    text = "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
    return adopted, all(checks.values()), text


#: addendum 4's camera-rate 3-seed means after 1200 adaptation steps (1000-step pretraining): addendum 6's bars
ADDENDUM4_1200 = {"0005": 0.283, "0009": 0.283}


def pretrain_decision(summary: list[dict]) -> tuple[bool, bool, str]:
    """Addenda 6-8: whether the changed recipe (6: 2000-step pretraining; 7: randomised scenes; 8: flips
    in the pretraining) is adopted (3-seed mean on 0005 after 1200 adaptation steps below addendum 4's by
    more than 0.002) and whether seed 0 ships (judged on 0009)."""
    row = {(r["stage"], r["drive"]): r for r in summary if r["mode"] == "camera-rate"}
    choice, judge = row[("adapted 1200", "0005")], row[("adapted 1200", "0009")]
    base = judge["baselines"]
    adopted = choice["mean"] < ADDENDUM4_1200["0005"] - 0.002
    checks = {
        f"adopted on 0005: {choice['mean']:.3f} < addendum 4's {ADDENDUM4_1200['0005']} - 0.002": adopted,
        f"0009 mean {judge['mean']:.3f} < addendum 4's {ADDENDUM4_1200['0009']}": judge["mean"]
        < ADDENDUM4_1200["0009"],
        f"< constant {base['constant']:.3f}": judge["mean"] < base["constant"],
        f"< flat-road prior {base['flat-road prior']:.3f}": judge["mean"] < base["flat-road prior"],
    }
    text = "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
    return adopted, all(checks.values()), text


#: the shipped ``real`` model's abs_rel on drive 0009 frames 0-50 before addendum 9 (addendum 3, seed 0)
SHIPPED_REAL_0009 = 0.287


def ensembles(out: Path, seeds: list[int], splits: dict[str, Path]) -> dict:
    """Addendum 9: ``r2sdepth ensemble`` of the seeds' 1200-step adapted camera-rate models (all of them,
    then every pair), each scored on both drives like any model: {name: {"members", "file", drive: rows}}."""
    folder = out / "ensembles"
    folder.mkdir(exist_ok=True)
    groups = [tuple(seeds)] + ([tuple(p) for p in itertools.combinations(seeds, 2)] if len(seeds) > 2 else [])
    res = {}
    for g in groups:
        name = "ensemble s" + "+".join(map(str, g))
        dest = folder / ("ensemble_" + "_".join(map(str, g)) + ".ckpt")
        if not dest.exists():
            r2(
                "ensemble",
                *[out / f"camera-rate_s{s}" / "adapt" / "adapted_spike_1200.ckpt" for s in g],
                "--out",
                dest,
            )
        res[name] = {"members": list(g), "file": str(dest)}
        res[name].update(
            {d: evaluate(dest, sp, dest.with_suffix(f".eval_{d}.json")) for d, sp in splits.items()}
        )
    return res


def ensemble_decision(summary: list[dict], ens: dict, seeds: list[int]) -> tuple[bool, bool, str]:
    """Addendum 9: adopted when the all-seed ensemble's abs_rel on 0005 is below its members' mean there
    (this run, paired) by more than 0.002; ships when on 0009 it is also below the members' mean, the
    shipped ``real`` (0.287), the constant and the flat-road prior."""
    row = {(r["stage"], r["drive"]): r for r in summary if r["mode"] == "camera-rate"}
    full = ens["ensemble s" + "+".join(map(str, seeds))]
    e5, e9 = model_abs_rel(full["0005"]), model_abs_rel(full["0009"])
    m5, m9 = row[("adapted 1200", "0005")]["mean"], row[("adapted 1200", "0009")]["mean"]
    base = {k: v["abs_rel"] for k, v in list(full["0009"].items())[1:]}
    adopted = e5 < m5 - 0.002
    checks = {
        f"adopted on 0005: ensemble {e5:.3f} < members' mean {m5:.3f} - 0.002": adopted,
        f"0009: ensemble {e9:.3f} < members' mean {m9:.3f}": e9 < m9,
        f"< shipped real {SHIPPED_REAL_0009}": e9 < SHIPPED_REAL_0009,
        f"< constant {base['constant']:.3f}": e9 < base["constant"],
        f"< flat-road prior {base['flat-road prior']:.3f}": e9 < base["flat-road prior"],
    }
    text = "; ".join(f"{k}: {'yes' if v else 'NO'}" for k, v in checks.items())
    return adopted, all(checks.values()), text


def ship_ensemble(file: Path, decision: str, seeds: list[int]) -> Path:
    """Addendum 9: the all-seed ensemble as the shipped ``real`` checkpoint, its provenance recorded."""
    ck = load_file(file)
    meta = ck["r2sdepth"]
    meta["adapted_on"] = {
        **meta["adapted_on"],
        "from": "train_spike_traffic_synth, data.sim.camera_rate_hz 20000, seeds "
        + ", ".join(map(str, seeds))
        + " (synthetic exact depth), each adapted 1200 steps on drive 0095",
        "seed": list(seeds),
        "recipe": "benchmarks/camera_rate_transfer.py --ensemble: r2sdepth ensemble of the seeds' adapted "
        "models, the geometric mean of their depths (self-supervised adaptation; LiDAR not used for "
        "training or choice)",
        "rule": "docs/results/camera_rate/RULE.md, addendum 9: " + decision,
    }
    dest = SHIPPED_CHECKPOINTS["real"]
    save_atomic(ck, dest)
    return dest


def ship(
    run: Path, decision: str, steps: int = 600, name: str | None = None, addendum: str | None = None
) -> Path:
    """Seed 0's adapted camera-rate model (``steps`` adaptation steps) as the shipped ``real``
    checkpoint, its provenance recorded (``addendum``: the rule's addendum that shipped it, when not
    the one implied by ``steps`` / ``name``; "7": pretrained on randomised scenes)."""
    ck = load_file(run / "adapt" / (name or f"adapted_spike_{steps}.ckpt"))
    meta = ck["r2sdepth"]
    meta["adapted_on"] = {
        **meta["adapted_on"],
        "footage": "kitti_unlabelled/2011_09_26/2011_09_26_drive_0095_sync (no depth exists)",
        "from": "train_spike_traffic_synth, data.sim.camera_rate_hz 20000, seed 0 (synthetic exact depth"
        + (
            ", domain-randomised scenes: synth --randomise)"
            if addendum == "7"
            else ", horizontal flips: data.augment true)"
            if addendum == "8"
            else ")"
        ),
        "seed": 0,
        "recipe": f"benchmarks/camera_rate_transfer.py, camera-rate seed 0, {steps} adaptation steps"
        + (
            " (weights averaged: " + ", ".join(ck["r2sdepth"]["adapted_on"].get("averaged", [])) + ")"
            if name
            else ""
        )
        + " (self-supervised adaptation; LiDAR not used for training or choice)",
        "rule": "docs/results/camera_rate/RULE.md"
        + (
            f", addendum {addendum}: "
            if addendum
            else ", addendum 5: "
            if name
            else ", addendum 3: "
            if steps != 600
            else ": "
        )
        + decision,
    }
    dest = SHIPPED_CHECKPOINTS["real"]
    save_atomic(ck, dest)
    return dest


def model_abs_rel(rows: dict) -> float:
    return next(iter(rows.values()))["abs_rel"]  # eval writes the model's row first, then the baselines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    ap.add_argument("--out", default="runs/camera_rate")
    ap.add_argument(
        "--post-process", action="store_true", help="also the rule addendum's post-processed rows"
    )
    ap.add_argument("--ship", action="store_true", help="apply the rule's shipping decision")
    ap.add_argument(
        "--pretrain-steps",
        type=int,
        default=None,
        help="addendum 6: synthetic pretraining steps (default: the config's 1000); a longer one resumes",
    )
    ap.add_argument(
        "--ship-pretrain",
        action="store_true",
        help="apply addendum 6's (or, with --randomise, 7's) adoption and shipping decision",
    )
    ap.add_argument(
        "--randomise",
        action="store_true",
        help="addendum 7: pretrain on domain-randomised scenes (synth --randomise)",
    )
    ap.add_argument(
        "--pretrain-augment",
        action="store_true",
        help="addendum 8: horizontal flips in the exact-depth pretraining (data.augment true)",
    )
    ap.add_argument(
        "--ensemble",
        action="store_true",
        help="addendum 9: ensembles of the seeds' 1200-step models scored, the rule's decision applied",
    )
    ap.add_argument(
        "--soup", action="store_true", help="addendum 5: each seed's adapted checkpoints averaged"
    )
    ap.add_argument(
        "--ship-soup", action="store_true", help="apply addendum 5's adoption and shipping decision"
    )
    ap.add_argument(
        "--ship-length", action="store_true", help="apply addendum 3's length choice and shipping decision"
    )
    ap.add_argument(
        "--incumbent-length",
        type=int,
        default=600,
        choices=[600, 1200],
        help="adaptation length of the shipped model (600: addendum 3; 1200: addendum 4)",
    )
    ap.add_argument(
        "--adapt-steps",
        type=int,
        nargs="+",
        default=[600],
        help="adaptation lengths (RULE.md addendum 3): each longer one resumes the previous run",
    )
    a = ap.parse_args()
    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / ("traffic_randomised" if a.randomise else "traffic")
    if not (data / "splits" / "train_files.txt").exists():
        r2("synth", "--out", data, "--sequences", 20, "--frames", 50, "--size", "64x224", "--traffic", 0.8,
           "--seed", 1, "--workers", 2, *(["--randomise"] if a.randomise else []))  # fmt: skip
    splits = {}
    for name, (drive, frames) in DRIVES.items():
        splits[name] = out / f"split_{name}.txt"
        splits[name].write_text("".join(f"{drive} {f} l\n" for f in frames))
    res: dict = {"seeds": {}}
    for s in a.seeds:
        for mode in a.modes:
            run = out / f"{mode}_s{s}"
            longer = (
                ["--trainer.max_steps", a.pretrain_steps, "--allow-config-change"] if a.pretrain_steps else []
            )
            aug = ["--data.augment", "true"] if a.pretrain_augment else []
            r2("train", "--config", "train_spike_traffic_synth", "--out", run / "pretrain", "--seed", s,
               "--data.root", data, "--data.sim.camera_rate_hz", MODES[mode],
               "--trainer.enable_progress_bar", "false", *longer, *aug)  # fmt: skip
            pre = run / "pretrain" / "checkpoints" / "last.ckpt"
            ada: dict[int, Path] = {}
            for n in sorted(set(a.adapt_steps) | {600}):  # a longer one resumes the shorter: one n-step run
                ada[n] = run / "adapt" / f"adapted_spike_{n}.ckpt"
                if not ada[n].exists():
                    r2("adapt", "--checkpoint", pre, "--input", FOOTAGE, "--out", run / "adapt", "--seed", s,
                       "--trainer.enable_progress_bar", "false", "--trainer.max_steps", n,
                       *(["--allow-config-change"] if n != 600 else []))  # fmt: skip
                    ada[n].write_bytes((run / "adapt" / "adapted_spike.ckpt").read_bytes())
            stages = {"zero-shot": pre, "adapted": ada[600]}
            stages.update({f"adapted {n}": ada[n] for n in ada if n != 600})
            if a.soup:
                stages["soup"] = soup(
                    [ada[n] for n in sorted(ada)], run / "adapt" / "adapted_spike_soup.ckpt"
                )
            res["seeds"].setdefault(mode, {})[s] = {
                stage: {
                    d: evaluate(ck, sp, run / f"eval_{stage.replace(' ', '')}_{d}.json")
                    for d, sp in splits.items()
                }
                for stage, ck in stages.items()
            }
            (out / "results.json").write_text(json.dumps(res, indent=1))
    summary = []
    for mode, per_seed in res["seeds"].items():
        for stage in next(iter(per_seed.values())):
            for d in DRIVES:
                vals = [model_abs_rel(per_seed[s][stage][d]) for s in sorted(per_seed)]
                base = {k: v["abs_rel"] for k, v in list(next(iter(per_seed.values()))[stage][d].items())[1:]}
                summary.append(
                    {
                        "mode": mode,
                        "stage": stage,
                        "drive": d,
                        "seeds": sorted(per_seed),
                        "abs_rel": vals,
                        "mean": float(np.mean(vals)),
                        "std": float(np.std(vals)),
                        "baselines": base,
                    }
                )
    res["summary"] = summary
    if a.post_process:
        pp: dict = {}
        # name -> (checkpoint, the plain row's cache: a recipe model's own eval file)
        models = {f"shipped {n}": (n, None) for n in ("demo", "real")}
        for mode in res["seeds"]:
            for s in res["seeds"][mode]:
                run = out / f"{mode}_s{s}"
                models[f"{mode} s{s} zero-shot"] = (
                    run / "pretrain/checkpoints/last.ckpt",
                    run / "eval_zero-shot_{}.json",
                )
                models[f"{mode} s{s} adapted"] = (
                    run / "adapt/adapted_spike.ckpt",
                    run / "eval_adapted_{}.json",
                )
        for name, (ck, plain) in models.items():
            tag = name.replace(" ", "_")
            pp[name] = {
                d: {
                    "plain": model_abs_rel(
                        evaluate(
                            ck,
                            sp,
                            Path(str(plain).format(d)) if plain else out / "pp" / f"{tag}_{d}_plain.json",
                        )
                    ),
                    "post-processed": model_abs_rel(
                        evaluate(ck, sp, out / "pp" / f"{tag}_{d}_pp.json", "--post-process")
                    ),
                }
                for d, sp in splits.items()
            }
        res["post_process"] = pp
    if a.ship_length:
        best, ok, text = length_decision(summary, sorted(set(a.adapt_steps) | {600}), a.incumbent_length)
        res["ship_length"] = {"length": best, "ships": ok, "checks": text}
        print(("SHIPS: " if ok else "does not ship: ") + text)
        if ok:
            print("wrote", ship(out / "camera-rate_s0", text, best))
    if a.ship_pretrain:
        adopted, ok, text = pretrain_decision(summary)
        res["ship_pretrain"] = {"adopted": adopted, "ships": ok, "checks": text}
        print(("SHIPS: " if ok else "does not ship: ") + text)
        if ok:
            label = "8" if a.pretrain_augment else "7" if a.randomise else "6"
            print("wrote", ship(out / "camera-rate_s0", text, 1200, addendum=label))
    if a.ship_soup:
        adopted, ok, text = soup_decision(summary)
        res["ship_soup"] = {"adopted": adopted, "ships": ok, "checks": text}
        print(("SHIPS: " if ok else "does not ship: ") + text)
        if ok:
            print("wrote", ship(out / "camera-rate_s0", text, max(a.adapt_steps), "adapted_spike_soup.ckpt"))
    if a.ensemble:
        ens = ensembles(out, sorted(a.seeds), splits)
        adopted, ok, text = ensemble_decision(summary, ens, sorted(a.seeds))
        res["ensemble"] = {"models": ens, "adopted": adopted, "ships": ok, "checks": text}
        for name, e in ens.items():
            print(name, {d: round(model_abs_rel(e[d]), 3) for d in DRIVES})
        print(("SHIPS: " if ok else "does not ship: ") + text)
        if ok:
            full = ens["ensemble s" + "+".join(map(str, sorted(a.seeds)))]
            print("wrote", ship_ensemble(Path(full["file"]), text, sorted(a.seeds)))
    if a.ship:
        ok, text = ship_decision(summary)
        res["ship"] = {"ships": ok, "checks": text}
        print(("SHIPS: " if ok else "does not ship: ") + text)
        if ok:
            print("wrote", ship(out / "camera-rate_s0", text))
    (out / "results.json").write_text(json.dumps(res, indent=1))
    print(
        "| window mode | stage | 0005 (0-29), seeds "
        + " / ".join(map(str, a.seeds))
        + " | mean ± std | 0009 (0-50) | mean ± std |"
    )
    print("|---|---|---|---:|---|---:|")
    by = {(r["mode"], r["stage"], r["drive"]): r for r in summary}
    for mode, per_seed in res["seeds"].items():
        for stage in next(iter(per_seed.values())):
            cells = []
            for d in DRIVES:
                r = by[(mode, stage, d)]
                cells += [" / ".join(f"{v:.3f}" for v in r["abs_rel"]), f"{r['mean']:.3f} ± {r['std']:.3f}"]
            print(f"| {mode} | {stage} | " + " | ".join(cells) + " |")
    print()
    print("| window mode | stage | drive | seeds | mean +- std | baselines |")
    print("|---|---|---|---|---:|---|")
    for r in summary:
        seeds = " / ".join(f"{v:.3f}" for v in r["abs_rel"])
        base = ", ".join(f"{k} {v:.3f}" for k, v in r["baselines"].items())
        print(
            f"| {r['mode']} | {r['stage']} | {r['drive']} | {seeds} | {r['mean']:.3f} +- {r['std']:.3f} | {base} |"
        )
    for name, per in res.get("post_process", {}).items():
        print(
            f"| {name} | "
            + " | ".join(f"{d}: {v['plain']:.3f} -> pp {v['post-processed']:.3f}" for d, v in per.items())
            + " |"
        )


if __name__ == "__main__":
    main()
