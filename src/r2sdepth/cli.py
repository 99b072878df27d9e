"""The ``r2sdepth`` command. Subcommands only parse arguments and call library code.

Errors a user can cause (:class:`~r2sdepth.errors.R2SDepthError`, missing files) are printed on
one line, ``r2sdepth: error: ...``, with exit status 2 and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import functools
import json
import os
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml

from r2sdepth import __version__
from r2sdepth import evaluate as ev
from r2sdepth.atomic import write_json_atomic
from r2sdepth.config import config_help
from r2sdepth.data.drives import cache_frames
from r2sdepth.data.synthetic import VIEWS, SceneSpec, synthesize
from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.evaluate import SCALINGS, EvalJob, export_gt, report, split_intrinsics
from r2sdepth.frames import iter_frames
from r2sdepth.metric import KITTI_CAMERA_HEIGHT, parse_intrinsics
from r2sdepth.spike import SpikeStream
from r2sdepth.spike.fit import fit_sim
from r2sdepth.spike.io import probe_layouts, warn_layout
from r2sdepth.spike.simulate import SimParams, load_sim_params, luminance, simulate_to_file
from r2sdepth.viz import save_reconstructions


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand: ``parser(sub)`` adds its parser and arguments, ``run(args)`` handles it."""

    parser: Callable[[argparse._SubParsersAction], None]
    run: Callable[[argparse.Namespace], int | None]


#: subcommands in the order of ``--help``; each parser builder sits beside its handler
_COMMANDS: dict[str, Command] = {}


def _command(name: str, parser: Callable[[argparse._SubParsersAction], None]):
    def deco(fn):
        _COMMANDS[name] = Command(parser, fn)
        return fn

    return deco


def checkpoint_path(name: str) -> Path:
    """A checkpoint file or a shipped name (``demo``); torch is imported only when needed."""
    from r2sdepth.checkpoint import checkpoint_path as resolve  # noqa: PLC0415  torch-level: loaded on use

    return resolve(name)


def _hw(text: str) -> tuple[int, int]:
    """``"250x400"`` -> ``(250, 400)``: rows x columns, the one size format of every command."""
    try:
        h, w = (int(v) for v in text.lower().replace("×", "x").split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ROWSxCOLUMNS, e.g. 250x400") from None
    if h <= 0 or w <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: rows and columns must be positive")
    return h, w


def _rc(text: str) -> tuple[int, int]:
    """``"12x0"`` -> ``(12, 0)``: a row x column offset (integers >= 0)."""
    try:
        r, c = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ROWxCOLUMN, e.g. 12x0") from None
    if r < 0 or c < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: row and column must be >= 0")
    return r, c


def _intrinsics(text: str) -> tuple[float, float, float, float]:
    try:
        return parse_intrinsics(text)
    except R2SDepthError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


# One vocabulary for sizes, rows x columns everywhere:
#   --sensor HxW    geometry of a raw .dat being read (info, reconstruct, infer)
#   --size HxW      size of what the command writes (simulate, synth, build-spike-kitti)
#   --net-size HxW  network input size (infer, export)
def _geometry_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("stream geometry (raw .dat without a sidecar JSON)")
    g.add_argument(
        "--sensor", type=_hw, metavar="HxW", help="sensor rows x columns, e.g. 250x400 (the PKU gen-1 camera)"
    )
    g.add_argument("--bitorder", choices=["little", "big"], help="bit order (default: little, the camera's)")
    g.add_argument(
        "--no-flip", action="store_true", help="rows are stored top to bottom (default: bottom to top)"
    )
    g.add_argument(
        "--head-cols",
        type=int,
        help="extra columns at the head of each stored row to drop (16 on some raw files)",
    )
    g.add_argument("--rate-hz", type=float, help="planes per second (default: sidecar, else 20000)")
    g.add_argument(
        "--header-bytes", type=int, help="bytes before every plane to skip (16 on some camera files)"
    )
    g.add_argument(
        "--stored-size",
        type=_hw,
        metavar="HxW",
        help="stored plane rows x columns when larger than --sensor (e.g. 1024x1024 for a 1000x1000 image)",
    )
    g.add_argument(
        "--offset",
        type=_rc,
        metavar="RxC",
        help="row x column of the image in the stored plane (default 0x0)",
    )
    g.add_argument(
        "--allow-partial",
        action="store_true",
        help="read the whole planes of a file whose last plane is incomplete (reports the bytes ignored)",
    )


_SIM_FLAGS = {"video_fps": "--fps"}  # flag names kept from earlier releases


def _sim_args(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """One flag per field of :class:`r2sdepth.spike.simulate.SimParams` (its help and default), plus
    ``--sim-params FILE`` (``r2sdepth fit-sim``'s output): the file's values, then the flags given."""

    g = p.add_argument_group("spike-camera model (flags override --sim-params)")
    g.add_argument("--sim-params", metavar="FILE", help="camera model from `r2sdepth fit-sim` (JSON/YAML)")
    for f in dataclasses.fields(SimParams):
        if f.name in skip:
            continue
        flag = _SIM_FLAGS.get(f.name, "--" + f.name.replace("_", "-"))
        kw: dict = {
            "dest": "sim_" + f.name,
            "default": None,
            "help": f"{f.metadata['help']} (default {f.default})",
        }
        if isinstance(f.default, bool):
            kw["action"] = argparse.BooleanOptionalAction
        else:
            kw["type"] = type(f.default)
            if "choices" in f.metadata:
                kw["choices"] = f.metadata["choices"]
        g.add_argument(flag, **kw)


def _sim_params(a: argparse.Namespace, **defaults: object):
    """The ``SimParams`` of a command: ``defaults``, then ``--sim-params FILE``, then the flags given."""

    vals: dict = dict(defaults)
    if a.sim_params:
        vals.update(load_sim_params(a.sim_params))
    for f in dataclasses.fields(SimParams):
        v = getattr(a, "sim_" + f.name, None)
        if v is not None:
            vals[f.name] = v
    return SimParams(**vals)


def _stream_kw(a: argparse.Namespace) -> dict:
    """The stream layout options given on the command line (``SpikeStream`` keyword arguments)."""
    kw: dict = {"height": a.sensor[0], "width": a.sensor[1]} if a.sensor else {}
    kw.update(
        {
            k: v
            for k, v in (
                ("bitorder", a.bitorder),
                ("head_cols", a.head_cols),
                ("rate_hz", a.rate_hz),
                ("header_bytes", a.header_bytes),
            )
            if v is not None
        }
    )
    if a.stored_size:
        kw["stored_height"], kw["stored_width"] = a.stored_size
    if a.offset:
        kw["row0"], kw["col0"] = a.offset
    if a.no_flip:
        kw["flipud"] = False
    if a.allow_partial:
        kw["allow_partial"] = True
    return kw


def _open_stream(a: argparse.Namespace):

    st = SpikeStream(a.input, **_stream_kw(a))
    warn_layout(st)
    if st.ignored_bytes:
        print(
            f"r2sdepth: warning: {a.input}: the last {st.ignored_bytes} bytes (an incomplete plane) were "
            "ignored",
            file=sys.stderr,
        )
    return st


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for docs and tests)."""
    p = argparse.ArgumentParser(
        prog="r2sdepth",
        description="Depth from spike cameras: spike I/O, simulation, training, evaluation.",
    )
    p.add_argument("--version", action="version", version=f"r2sdepth {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    for command in _COMMANDS.values():
        command.parser(sub)
    for c in [p, *sub.choices.values()]:
        c.allow_abbrev = False  # --stride must not silently mean --stride-planes
    return p


def _parser_info(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth info`'s arguments."""
    s = sub.add_parser("info", help="summarise a spike .dat stream (and its sidecar parameters)")
    s.add_argument("input", metavar="STREAM.dat")
    s.add_argument(
        "--probe",
        action="store_true",
        help="list the likely geometries / variants of an unknown file, best first",
    )
    _geometry_args(s)
    s.add_argument("--json", action="store_true", help="print one JSON object")


@_command("info", _parser_info)
def _cmd_info(a: argparse.Namespace) -> int:
    if a.probe:
        if not Path(a.input).is_file():
            raise R2SDepthError(f"{a.input}: no such file")
        rows = probe_layouts(a.input, [a.sensor] if a.sensor else None)
        if a.json:
            print(json.dumps(rows))
            return 0
        if not rows:
            print(
                f"{a.input}: no known layout divides its {Path(a.input).stat().st_size} bytes; give --sensor "
                "HxW "
                "(and --header-bytes / --stored-size) or --allow-partial for a truncated file"
            )
            return 1
        print(f"{a.input}: likely layouts, best first (plausibility: ~1 picture-like, <= 0.3 implausible)")
        for r in rows[:8]:
            stored = (
                f" --stored-size {r['stored_height']}x{r['stored_width']}"
                if (r["stored_height"], r["stored_width"]) != (r["height"], r["width"])
                else ""
            )
            print(
                f"  {r['plausibility']:6.3f}  --sensor {r['height']}x{r['width']}{stored} --header-bytes "
                f"{r['header_bytes']} --bitorder {r['bitorder']}  ({r['planes']} planes)"
            )
        print(
            "  (whether rows are stored bottom to top cannot be told from the bytes: check the picture with "
            "r2sdepth reconstruct, --no-flip if it is upside down)"
        )
        return 0
    with _open_stream(a) as st:
        info = st.stats()
        meta = {k: v for k, v in st.meta.items() if k != "frame_plane_index"}
    if meta:
        info["sidecar"] = meta
    if a.json:
        print(json.dumps(info))
        return 0
    print(f"{info['path']}")
    print(f"  frames      {info['frames']}  ({info['height']} x {info['width']})")
    print(f"  duration    {info['duration_s']:.6g} s at {info['rate_hz']:g} Hz")
    print(f"  mean rate   {info['mean_rate']:.4f} spikes/pixel/plane")
    print(f"  plane rate  min {info['frame_rate_min']:.4f}  max {info['frame_rate_max']:.4f}")
    print(f"  encoding    bitorder={info['bitorder']} flipud={info['flipud']} head_cols={info['head_cols']}")
    for k, v in meta.items():
        if k not in ("height", "width", "frames", "rate_hz", "bitorder", "flipud", "head_cols"):
            print(f"  {k:<11} {json.dumps(v) if isinstance(v, (dict, list)) else v}")
    return 0


def _parser_reconstruct(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth reconstruct`'s arguments."""
    s = sub.add_parser("reconstruct", help="TFP/TFI images (PNG, GIF) of a spike stream")
    s.add_argument("input", metavar="STREAM.dat")
    s.add_argument("--method", choices=["tfp", "tfi"], default="tfp")
    s.add_argument("--window", type=int, default=32, help="planes per reconstruction (default 32)")
    grp = s.add_mutually_exclusive_group()
    grp.add_argument("--index", type=int, help="one image centred on this plane")
    grp.add_argument("--every", type=int, help="an image every K planes (default: one per window)")
    s.add_argument("--out", required=True, help="output folder for {I:06d}.png")
    s.add_argument("--gif", help="also write an animated GIF here")
    _geometry_args(s)


@_command("reconstruct", _parser_reconstruct)
def _cmd_reconstruct(a: argparse.Namespace) -> int:

    with _open_stream(a) as st:
        paths = save_reconstructions(
            st,
            a.out,
            method=a.method,
            window=a.window,
            index=a.index,
            every=a.every,
            gif=a.gif,
            progress=sys.stderr.isatty(),
        )
    print(f"wrote {len(paths)} {a.method.upper()} images to {a.out}" + (f" and {a.gif}" if a.gif else ""))
    return 0


def _parser_fit_sim(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth fit-sim`'s arguments."""
    s = sub.add_parser(
        "fit-sim",
        help="fit the spike-camera model to a real recording (rates, threshold "
        "mismatch, gain, dark current): a --sim-params file",
    )
    s.add_argument("input", metavar="REAL.dat")
    s.add_argument("--out", required=True, metavar="PARAMS.json", help="camera-model file for --sim-params")
    s.add_argument(
        "--reference",
        metavar="FRAMES",
        help="folder of images or video whose brightness the recording's "
        "scene is assumed to share: fits gain and dark current",
    )
    s.add_argument("--planes", type=int, default=2000, help="planes of the recording to use (default 2000)")
    s.add_argument(
        "--threshold", type=float, help="firing threshold theta kept fixed (default: the simulator's)"
    )
    _geometry_args(s)


@_command("fit-sim", _parser_fit_sim)
def _cmd_fit_sim(a: argparse.Namespace) -> int:

    if a.planes <= 0:
        raise R2SDepthError(f"--planes {a.planes}: must be positive")
    ref = None
    if a.reference:
        ref = [luminance(f) for f in iter_frames(a.reference)]
    with _open_stream(a) as st:
        res = fit_sim(st, reference=ref, planes=a.planes, threshold=a.threshold)
    res["reference"] = a.reference
    write_json_atomic(a.out, res)
    st_ = res["stats"]
    print(
        f"{a.input}: {st_['planes']} planes at {res['sim']['camera_rate_hz']:g} Hz, mean rate "
        f"{st_['mean_rate']:.3f} "
        f"spikes/plane (median {st_['rate_quantiles']['p50']:.3f}, 95% {st_['rate_quantiles']['p95']:.3f}), "
        f"{100 * st_['saturated_share']:.1f}% saturated"
    )
    print("  fitted: " + ", ".join(f"{k}={v:g}" for k, v in res["sim"].items()))
    if ref is None:
        print("  gain and dark current not fitted (give --reference FRAMES of a similar scene)")
    print(f"wrote {a.out} (use: r2sdepth simulate|build-spike-kitti|train ... --sim-params {a.out})")
    return 0


def _parser_simulate(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth simulate`'s arguments."""
    s = sub.add_parser("simulate", help="simulate a spike stream from a video or a folder of images")
    s.add_argument("input", metavar="INPUT", help="video file or folder of images (name order)")
    s.add_argument("--out", required=True, metavar="STREAM.dat")
    s.add_argument(
        "--size", type=_hw, metavar="HxW", help="stream size: frames are resized to it (default: theirs)"
    )
    s.add_argument("--seed", type=int, default=0)
    _sim_args(s)
    s.add_argument("--backend", choices=["numpy", "torch"], default="numpy")
    s.add_argument("--device", default="cpu", help="torch device for --backend torch")


@_command("simulate", _parser_simulate)
def _cmd_simulate(a: argparse.Namespace) -> int:

    params = _sim_params(a)
    meta = simulate_to_file(
        iter_frames(a.input, height=a.size[0] if a.size else None, width=a.size[1] if a.size else None),
        a.out,
        params,
        seed=a.seed,
        source=str(a.input),
        backend=a.backend,
        device=a.device,
        progress=sys.stderr.isatty(),
    )
    what = (
        f"one {params.planes_per_frame}-plane window at {params.rate_hz:g} Hz per frame"
        if params.camera_rate_hz
        else f"{params.pre_roll_frames} pre-roll + {meta['rgb_frames'] - 1} inter-frame chunks x "
        f"{params.planes_per_frame}"
    )
    print(
        f"wrote {a.out}: {meta['frames']} planes ({what}), {meta['height']}x{meta['width']}, {meta['bytes']} "
        "bytes"
    )
    return 0


def _parser_build_spike_kitti(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth build-spike-kitti`'s arguments."""
    s = sub.add_parser("build-spike-kitti", help="simulate spike streams for KITTI raw drives (resumable)")
    s.add_argument("--kitti-root", required=True, help="KITTI raw root (<date>/<drive>_sync/image_02/data)")
    s.add_argument("--out", required=True, help="output root (same layout, spike_02/stream.dat)")
    s.add_argument(
        "--cameras", nargs="+", default=["02", "03"], help="cameras (default 02 03; missing ones are skipped)"
    )
    s.add_argument(
        "--size", type=_hw, metavar="HxW", default=(192, 640), help="stream size (default 192x640)"
    )
    _sim_args(s)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=1, help="parallel processes (one sequence each)")
    s.add_argument(
        "--shard", help="i/n: build only every n-th job starting at i (0-based; cluster array jobs)"
    )
    s.add_argument("--sequences", help="file listing <date>/<drive>_sync per line (split files work)")
    s.add_argument("--verify", action="store_true", help="re-hash finished streams before skipping them")


@_command("build-spike-kitti", _parser_build_spike_kitti)
def _cmd_build_spike_kitti(a: argparse.Namespace) -> int:
    from r2sdepth.data.spike_kitti import (  # noqa: PLC0415  torch-level: loaded on use
        StreamSpec,
        build_spike_kitti,
    )

    res = build_spike_kitti(
        a.kitti_root,
        a.out,
        StreamSpec(a.size[0], a.size[1], _sim_params(a), a.seed),
        cameras=a.cameras,
        workers=a.workers,
        shard=a.shard,
        sequences=a.sequences,
        verify=a.verify,
        progress=sys.stderr.isatty(),
    )
    m = res["manifest"]
    print(
        f"built {res['built']} stream(s), {res['skipped_finished']} already finished (shard {res['shard']}); "
        f"manifest: {m['streams']} streams, {m['rgb_frames']} frames, {m['bytes'] / 1e6:.1f} MB"
    )
    if res["missing_cameras"]:
        print(
            f"skipped {len(res['missing_cameras'])} camera folder(s) not present, e.g. "
            f"{res['missing_cameras'][0]}"
        )
    return 0


def _parser_cache_frames(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth cache-frames`' arguments."""
    s = sub.add_parser(
        "cache-frames",
        help="store a KITTI-layout root's RGB frames at the training size (data.frame_cache: no PNG "
        "decode or resize per sample)",
    )
    s.add_argument("--data", required=True, help="KITTI raw layout root (<date>/<drive>_sync/image_02/data)")
    s.add_argument("--out", required=True, help="cache folder (give it to training as --data.frame_cache)")
    s.add_argument(
        "--size", type=_hw, metavar="HxW", default=(192, 640), help="training size (default 192x640)"
    )
    s.add_argument("--cameras", nargs="+", default=["02", "03"], help="cameras (missing ones are skipped)")
    s.add_argument("--workers", type=int, default=1, help="parallel processes (one drive and camera each)")


@_command("cache-frames", _parser_cache_frames)
def _cmd_cache_frames(a: argparse.Namespace) -> int:
    def show(path: str, written: bool) -> None:
        if sys.stderr.isatty():
            print(f"{'wrote' if written else 'up to date'}: {path}", file=sys.stderr)

    done = cache_frames(a.data, a.out, a.size, tuple(a.cameras), a.workers, progress=show)
    kept = sum(not w for _, w in done)
    print(
        f"cached {len(done)} drive camera(s) at {a.size[0]}x{a.size[1]} under {a.out} "
        f"({len(done) - kept} written, {kept} already up to date)"
    )
    return 0


def _parser_synth(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth synth`'s arguments."""
    s = sub.add_parser(
        "synth", help="render synthetic driving or roadside scenes with exact depth (KITTI raw layout)"
    )
    s.add_argument("--out", required=True)
    s.add_argument("--sequences", type=int, default=4)
    s.add_argument("--frames", type=int, default=20)
    s.add_argument("--size", type=_hw, metavar="HxW", default=(192, 640), help="image size (default 192x640)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--workers", type=int, default=1)
    s.add_argument("--moving-cars", type=int, default=2, help="moving cars per sequence (0: static world)")
    s.add_argument(
        "--traffic",
        type=float,
        default=0.0,
        help="dense city traffic, density 0-1 (vehicles moving with the camera: train such "
        "scenes with their exact depth, loss.depth_weight)",
    )
    s.add_argument(
        "--stereo",
        action="store_true",
        help="also render the right camera (image_03, 0.54 m baseline as KITTI) for stereo training",
    )
    s.add_argument(
        "--view",
        choices=VIEWS,
        default="street",
        help="street: a camera driving along the road (KITTI-like); roadside: a static camera at the curb "
        "watching traffic pass 0.7-12 m away (train with the exact depth: no parallax)",
    )
    s.add_argument(
        "--shared-looks",
        action="store_true",
        help="roadside: walls and vehicles draw texture and colour from one distribution "
        "(appearance says nothing about depth)",
    )
    s.add_argument(
        "--randomise",
        action="store_true",
        help="street: every drive draws its own camera height (1.3-2.0 m), pitch, road width, facade "
        "setback, exposure, white balance and tone curve (domain randomisation)",
    )


@_command("synth", _parser_synth)
def _cmd_synth(a: argparse.Namespace) -> int:

    spec = SceneSpec(
        frames=a.frames,
        height=a.size[0],
        width=a.size[1],
        seed=a.seed,
        moving_cars=a.moving_cars,
        traffic=a.traffic,
        stereo=a.stereo,
        view=a.view,
        shared_looks=a.shared_looks,
        randomise=a.randomise,
    )
    res = synthesize(a.out, spec, sequences=a.sequences, workers=a.workers, progress=sys.stderr.isatty())
    print(
        f"wrote {len(res['drives'])} sequence(s) x {a.frames} frames ({a.size[0]}x{a.size[1]}) to {a.out} "
        f"({res['rendered']} rendered now); splits: {res['splits']}"
    )
    return 0


def _parser_export_gt(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth export-gt`'s arguments."""
    s = sub.add_parser("export-gt", help="ground-truth depth of a split as gt_depths.npz (Monodepth2 format)")
    s.add_argument("--kitti-root", required=True)
    s.add_argument("--split", required=True, help="split file: <drive> <frame> <l|r> per line")
    s.add_argument("--out", required=True, help="output .npz (key 'data', object array)")
    s.add_argument(
        "--gt-source",
        choices=["auto", "velodyne", "annotated", "exact"],
        default="auto",
        help="velodyne (Eigen protocol), annotated (KITTI's improved maps), exact (synthetic); "
        "auto: exact for synthetic roots, else velodyne",
    )


@_command("export-gt", _parser_export_gt)
def _cmd_export_gt(a: argparse.Namespace) -> int:

    n = export_gt(a.kitti_root, a.split, a.out, progress=sys.stderr.isatty(), source=a.gt_source)
    print(f"wrote {n} ground-truth depth maps to {a.out}")
    return 0


def _parser_eval(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth eval`'s arguments."""
    s = sub.add_parser("eval", help="evaluate predictions or a checkpoint (KITTI Eigen protocol)")
    s.add_argument("--checkpoint", help="a trained checkpoint to run")
    s.add_argument(
        "--modality",
        choices=["spike", "fusion", "rgb", "rgb-tfp", "rgb-tfi"],
        help="override the checkpoint's modality (rgb-tfp / rgb-tfi: an rgb model on the spike "
        "window's TFP / TFI reconstruction, the baseline a user with an RGB network has)",
    )
    s.add_argument("--data", help="data root (KITTI raw layout; synthetic scenes)")
    s.add_argument("--spike-root", help="built Spike-KITTI root (default: simulate spikes on the fly)")
    s.add_argument("--split", help="split file of the images to evaluate")
    s.add_argument("--pred", help="saved predictions .npz (key 'data'), in split order")
    s.add_argument(
        "--pred-kind",
        choices=["depth", "disp"],
        help="what --pred holds: depth (metres or model units) or disp (disparity, 1/depth up to "
        "scale: what Monodepth2's evaluate_depth.py saves as .npy). Default: depth for .npz; "
        "required for .npy",
    )
    s.add_argument("--gt", help="ground truth .npz (default: from --data and --split)")
    s.add_argument(
        "--gt-source",
        choices=["auto", "velodyne", "annotated", "exact"],
        default="auto",
        help="ground truth from --data: velodyne (Eigen protocol), annotated (KITTI's improved "
        "maps), exact (synthetic); auto: exact for synthetic roots, else velodyne",
    )
    s.add_argument("--crop", choices=["garg", "eigen", "none"], default="garg")
    s.add_argument("--min-depth", type=float, default=1e-3)
    s.add_argument("--max-depth", type=float, default=80.0)
    s.add_argument(
        "--scaling",
        choices=SCALINGS,
        help="how predictions are scaled: median (per image, the ground truth's median ratio; the "
        "default), camera-height (per image, the fitted ground plane puts the camera at "
        "--camera-height: no ground truth used), camera-height-run (the median of those factors "
        "for every image: one camera per run), none (as predicted: metric models), fixed (x --scale)",
    )
    s.add_argument(
        "--camera-height",
        type=float,
        default=KITTI_CAMERA_HEIGHT,
        help="metres above the ground, for --scaling camera-height (default %(default)s: KITTI)",
    )
    s.add_argument(
        "--no-median-scaling", action="store_true", help="same as --scaling fixed (x --scale, default 1)"
    )
    s.add_argument(
        "--scale", type=float, default=1.0, help="fixed scale applied to predictions (--scaling fixed)"
    )
    s.add_argument("--baseline-split", help="also report the mean-training-depth baseline (train split file)")
    s.add_argument(
        "--baselines",
        action="store_true",
        help="also report what learns nothing, with the same scaling: a constant map, and (with --data "
        "and --split) the flat-road prior (a level road seen from --camera-height, horizon at the "
        "calibration's principal row, capped at 25 m)",
    )
    s.add_argument(
        "--post-process",
        action="store_true",
        help="--checkpoint (spike-only): also run each window mirrored and blend the two disparities "
        "(Monodepth2's --post_process; twice the compute)",
    )
    s.add_argument("--batch-size", type=int, default=4)
    s.add_argument("--device", default="cpu")
    s.add_argument("--out", help="results JSON (a Markdown table is printed and written beside it)")


@_command("eval", _parser_eval)
def _cmd_eval(a: argparse.Namespace) -> int:
    if a.post_process and not a.checkpoint:
        raise R2SDepthError("--post-process runs a --checkpoint; saved --pred maps are scored as they are")
    if a.post_process and a.modality not in (None, "spike"):
        raise R2SDepthError(f"--post-process is for spike-only prediction, not --modality {a.modality}")
    job = EvalJob(
        **{f.name: getattr(a, f.name) for f in dataclasses.fields(EvalJob)}  # the flags of the same names
    )
    gts, gt_source = job.ground_truth()
    if a.pred:
        named = {Path(a.pred).stem: job.predictions()}
    elif a.checkpoint:
        from r2sdepth.infer import predict_split  # noqa: PLC0415  torch-level: loaded on use

        if not (job.data and job.split):
            raise R2SDepthError("--checkpoint needs --data and --split")
        preds, name = predict_split(
            checkpoint_path(a.checkpoint),
            job.data,
            job.split,
            modality=a.modality,
            spike_root=a.spike_root,
            batch_size=a.batch_size,
            device=a.device,
            progress=sys.stderr.isatty(),
            post_process=a.post_process,
        )
        Ks = None
        if job.scaling.startswith("camera-height"):
            Ks = split_intrinsics(job.data, job.split, [p.shape[-2:] for p in preds])
        named = {name: (preds, Ks)}
    else:
        raise R2SDepthError("nothing to evaluate: give --pred FILE.npz or --checkpoint CKPT")
    print(report(job.score(named, gts, gt_source), a.out))
    return 0


def _run(a: argparse.Namespace, teacher: str | None) -> dict:

    from r2sdepth.train.run import (  # noqa: PLC0415  torch-level: loaded on use
        apply_overrides,
        load_config,
        resolved_config,
        run_training,
    )

    cfg = load_config(a.config)
    if a.sim_params:
        cfg.setdefault("data", {}).setdefault("sim", {}).update(load_sim_params(a.sim_params))
    apply_overrides(cfg, a.overrides)
    if a.print_config:
        print(yaml.safe_dump(resolved_config(cfg, teacher)[0], sort_keys=False), end="")
        return {}
    if not a.out:
        raise R2SDepthError("--out RUN_DIR is required (unless --print-config)")
    return run_training(
        cfg, a.out, resume=not a.no_resume, teacher=teacher, allow_config_change=a.allow_config_change
    )


def _parser_stage(sub: argparse._SubParsersAction, name: str, stage2: bool) -> None:
    """The arguments of `r2sdepth train` (stage 1) and `r2sdepth distill` (stage 2); the config keys
    are listed in the epilog from the schema."""

    s = sub.add_parser(
        name,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="stage 1: train an rgb / spike / fusion depth network (Lightning)"
        if not stage2
        else "stage 2: distil a stage-1 fusion (or rgb, or spike) teacher into a spike-only student",
        epilog="config keys (set in the YAML file or as --section.key VALUE; defaults shown):\n"
        + config_help(stage2=stage2)
        + (
            "\n  (stage 2 takes model.* and pose.* from the teacher; data.* defaults to the teacher's)"
            if stage2
            else ""
        ),
    )
    s.add_argument(
        "--config",
        required=True,
        help="YAML file, or the name of a shipped config: train_rgb, train_spike, train_fusion, "
        "distill, and *_synth versions sized for a CPU (e.g. train_rgb_synth)",
    )
    if stage2:
        s.add_argument(
            "--teacher",
            required=True,
            help="stage-1 checkpoint (fusion, rgb or spike), or an external depth network: .onnx, "
            "TorchScript, hub:OWNER/REPO:ENTRY (with --config distill_external)",
        )
    s.add_argument("--out", help="run folder (checkpoints, logs, resolved config.yaml)")
    s.add_argument(
        "--no-resume", action="store_true", help="start afresh even if the run folder has last.ckpt"
    )
    s.add_argument(
        "--allow-config-change",
        action="store_true",
        help="resume even though the config differs from the run's config.yaml",
    )
    s.add_argument("--print-config", action="store_true", help="print the resolved, checked config and exit")
    s.add_argument(
        "--sim-params",
        metavar="FILE",
        help="camera model from `r2sdepth fit-sim` for data.sim "
        "(on-the-fly windows; --data.sim.* overrides win)",
    )


_parser_train = functools.partial(_parser_stage, name="train", stage2=False)
_parser_distill = functools.partial(_parser_stage, name="distill", stage2=True)


@_command("train", _parser_train)
def _cmd_train(a: argparse.Namespace) -> int:
    res = _run(a, None)
    if res:
        print(
            f"trained to step {res['global_step']}; last checkpoint {res['last']}"
            + (f", best {res['best']}" if res["best"] else "")
        )
    return 0


@_command("distill", _parser_distill)
def _cmd_distill(a: argparse.Namespace) -> int:
    res = _run(a, a.teacher)
    if res:
        print(
            f"distilled to step {res['global_step']}; student checkpoint {res['last']}"
            + (f", best {res['best']}" if res["best"] else "")
        )
    return 0


def _parser_adapt(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth adapt`'s arguments."""
    s = sub.add_parser(
        "adapt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        help="adapt a spike-only model to your own unlabelled footage (self-distillation, no depth labels)",
        epilog="The run's config is the shipped `adapt` config (see --print-config); any key can be set "
        "as --section.key VALUE (e.g. --trainer.max_steps 300 --distill.depth_weight 0.5).\n"
        "The result, RUN/adapted_spike.ckpt, is a slim spike-only checkpoint for infer, eval, export "
        "and r2sdepth.load_model. Rerunning the same command continues the run.",
    )
    s.add_argument(
        "--checkpoint",
        required=True,
        help="the spike-only model to adapt: 'demo', 'real', or a checkpoint of any stage (slim too)",
    )
    s.add_argument(
        "--teacher",
        metavar="FILE",
        help="an external depth network teaches instead of the model itself: .onnx, TorchScript or "
        "hub:OWNER/REPO:ENTRY (RGB in; set --distill.teacher_input/teacher_output/teacher_size)",
    )
    s.add_argument(
        "--input",
        required=True,
        help="footage: a KITTI raw drive folder (DATE/DATE_drive_N_sync, its calibration beside it), "
        "a folder of images or a video",
    )
    s.add_argument("--out", help="run folder (footage/, checkpoints, logs, adapted_spike.ckpt)")
    s.add_argument(
        "--intrinsics",
        type=_intrinsics,
        metavar="FX,FY,CX,CY",
        help="images / video: pinhole intrinsics in pixels at the frames' size",
    )
    s.add_argument("--fov", type=float, metavar="DEG", help="... or the horizontal field of view")
    s.add_argument("--frames", metavar="A-B", help="frames to adapt on (default: all, minus --eval-frames)")
    s.add_argument(
        "--eval-frames",
        metavar="A-B",
        help="KITTI drive with LiDAR: report abs_rel before/after on these frames (never trained on)",
    )
    s.add_argument(
        "--spike-root",
        help="real spike streams of the footage (build-spike-kitti layout); default: simulated from the "
        "frames with the model's camera model",
    )
    s.add_argument(
        "--no-resume", action="store_true", help="start afresh even if the run folder has last.ckpt"
    )
    s.add_argument("--allow-config-change", action="store_true", help="resume although the config changed")
    s.add_argument("--print-config", action="store_true", help="print the resolved, checked config and exit")


@_command("adapt", _parser_adapt)
def _cmd_adapt(a: argparse.Namespace) -> int:
    from r2sdepth.train.adapt import AdaptJob, run_adapt  # noqa: PLC0415  torch-level: loaded on use

    if a.print_config:  # (the footage is not read: the root and split are where the run will put them)
        from r2sdepth.checkpoint import checkpoint_path  # noqa: PLC0415  torch-level: loaded on use
        from r2sdepth.train.adapt import self_distill_config  # noqa: PLC0415  torch-level: loaded on use
        from r2sdepth.train.run import resolved_config  # noqa: PLC0415  torch-level: loaded on use

        teacher = checkpoint_path(a.checkpoint)
        split = Path(a.out or "RUN") / "train_files.txt"
        cfg = self_distill_config(a.input, split, spike_root=a.spike_root, overrides=a.overrides)
        if a.teacher:
            cfg["init_from"], teacher = str(teacher), a.teacher
        print(yaml.safe_dump(resolved_config(cfg, teacher)[0], sort_keys=False), end="")
        return 0
    if not a.out:
        raise R2SDepthError("--out RUN_DIR is required (unless --print-config)")
    job = AdaptJob(
        a.checkpoint,
        a.input,
        a.out,
        intrinsics=a.intrinsics,
        fov=a.fov,
        frames=a.frames,
        eval_frames=a.eval_frames,
        spike_root=a.spike_root,
        overrides=a.overrides,
        resume=not a.no_resume,
        allow_config_change=a.allow_config_change,
        teacher=a.teacher,
    )
    res = run_adapt(job)
    print(
        f"adapted on {res['frames']} frames to step "
        + (
            " / ".join(str(r["global_step"]) for r in res["run"])  # an ensemble: one run per member
            if isinstance(res["run"], list)
            else str(res["run"]["global_step"])
        )
        + "; "
        f"spike-only model {res['checkpoint']} (r2sdepth infer --checkpoint {res['checkpoint']} ...)"
    )
    if res["eval"]:
        print(ev.markdown_table(res["eval"]))
    return 0


def _parser_infer(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth infer`'s arguments."""
    s = sub.add_parser(
        "infer", help="depth maps (npy, 16-bit PNG, colour, GIF/MP4) from a spike stream, folder or video"
    )
    s.add_argument(
        "--checkpoint",
        required=True,
        help="a stage-1/stage-2 (or slim) checkpoint, or 'demo' (the shipped model)",
    )
    s.add_argument(
        "--input",
        required=True,
        help="spike stream .dat, folder of images, video file, or a rig sequence "
        "folder (calib.yaml: recorded spikes, windows by RGB timestamps; r2sdepth.data.rig)",
    )
    s.add_argument("--out", required=True, help="output folder (depth/, depth_png/, color/, summary.json)")
    s.add_argument("--window", type=int, help="planes per window (default: the checkpoint's)")
    s.add_argument(
        "--stride-planes",
        type=int,
        metavar="N",
        help="spike streams: planes between windows (default: the window)",
    )
    s.add_argument(
        "--stride-frames", type=int, metavar="N", help="folders/videos: frames between outputs (default 1)"
    )
    s.add_argument(
        "--net-size",
        type=_hw,
        metavar="HxW",
        help="network input size, multiples of 32 (default: the size the checkpoint was trained at; "
        "outputs are always at the input's size)",
    )
    s.add_argument(
        "--fit",
        choices=["resize", "pad"],
        default="resize",
        help="without --net-size: resize the input to the trained size (default), or pad it to "
        "multiples of 32 at its own scale",
    )
    s.add_argument(
        "--follow",
        action="store_true",
        help="the .dat is still being written (a camera recording to disk): depth for each window as "
        "its planes arrive, until --idle-timeout or Ctrl-C; prints latency and windows/s",
    )
    s.add_argument(
        "--idle-timeout",
        type=float,
        default=10.0,
        metavar="S",
        help="--follow: stop after S seconds without a new plane (default 10)",
    )
    s.add_argument(
        "--backend",
        default="auto",
        help="where the spike-only network runs: auto (ONNX Runtime on a CPU when installed, same depths "
        "within float32 rounding and 1.4-2x faster; else PyTorch), torch, onnxruntime",
    )
    s.add_argument(
        "--modality",
        choices=["rgb", "spike", "fusion", "rgb-tfp", "rgb-tfi"],
        help="which path of the checkpoint to run (rgb-tfp / rgb-tfi: an rgb model on each spike "
        "window's TFP / TFI reconstruction)",
    )
    s.add_argument("--device", default="cpu", help="cpu or cuda")
    s.add_argument("--batch-size", type=int, default=8)
    s.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply depths by this (e.g. a median ratio); "
        "makes the depths metric: KITTI 16-bit PNGs (depth x 256) instead of float32 TIFFs",
    )
    s.add_argument(
        "--metric", action="store_true", help="the model's depths are metres already (KITTI 16-bit PNGs)"
    )
    cam = s.add_argument_group("camera (inputs without a calibration; a rig sequence has its own)")
    cam.add_argument(
        "--intrinsics",
        type=_intrinsics,
        metavar="FX,FY,CX,CY",
        help="pinhole intrinsics in pixels at the input's size",
    )
    cam.add_argument(
        "--fov",
        type=float,
        metavar="DEG",
        help="... or the horizontal field of view (centred, square pixels)",
    )
    cam.add_argument(
        "--camera-height",
        type=float,
        metavar="M",
        help="metric depth: scale each map so that the camera sits M metres above the fitted ground "
        "plane (KITTI: 1.65; needs the intrinsics and the road in the lower image)",
    )
    cam.add_argument(
        "--pointcloud",
        action="store_true",
        help="also pointcloud/NAME.ply per output (x, y, z in the depth's units, camera frame; coloured)",
    )
    s.add_argument("--gif", help="side-by-side animation TFP | depth (| RGB) as GIF")
    s.add_argument("--mp4", help="... and/or MP4 (needs imageio-ffmpeg: pip install 'r2sdepth[video]')")
    _geometry_args(s)


@_command("infer", _parser_infer)
def _cmd_infer(a: argparse.Namespace) -> int:
    from r2sdepth.infer import run_infer  # noqa: PLC0415  torch-level: loaded on use

    kw = _stream_kw(a)
    src = Path(a.input)
    dats = sorted(src.glob("*.dat")) if src.is_dir() and not (src / "calib.yaml").is_file() else []
    if dats:  # a folder of recordings: each to its own output folder
        if a.gif or a.mp4:
            raise R2SDepthError(
                f"{src}: a folder of {len(dats)} recordings writes one output folder each; "
                "--gif / --mp4 take one recording at a time"
            )
        for d in dats:
            a.input, out = str(d), a.out
            a.out = str(Path(out) / d.stem)
            try:
                _cmd_infer(a)
            finally:
                a.input, a.out = str(src), out
        return 0
    res = run_infer(
        checkpoint_path(a.checkpoint),
        a.input,
        a.out,
        window=a.window,
        stride_planes=a.stride_planes,
        stride_frames=a.stride_frames,
        net_size=a.net_size,
        device=a.device,
        batch_size=a.batch_size,
        scale=a.scale,
        modality=a.modality,
        gif=a.gif,
        mp4=a.mp4,
        stream_kw=kw,
        progress=sys.stderr.isatty(),
        metric=True if a.metric else None,
        intrinsics=a.intrinsics,
        fov=a.fov,
        pointcloud=a.pointcloud,
        camera_height=a.camera_height,
        fit=a.fit,
        follow=a.follow,
        idle_timeout=a.idle_timeout,
        backend=a.backend,
    )
    print(
        f"{res['outputs']} depth maps ({res['modality']}, {res['input_size'][0]}x{res['input_size'][1]}, "
        f"network {res['network_size'][0]}x{res['network_size'][1]} by {res['fit']}) in {a.out}"
        + (f"; GIF {a.gif}" if a.gif else "")
        + (f"; MP4 {a.mp4}" if a.mp4 else "")
    )
    if a.follow:
        lat = res["latency_s"]
        print(
            f"followed {a.input}: {res['outputs']} windows, {res['windows_per_second'] or 0:.2f} windows/s"
            + (
                f", latency median {lat['median'] * 1e3:.0f} ms, max {lat['max'] * 1e3:.0f} ms"
                if lat["median"] is not None
                else ""
            )
        )
    return 0


def _parser_export(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth export`'s arguments."""
    s = sub.add_parser(
        "export", help="export the spike-only network (ONNX / TorchScript), or a slim checkpoint"
    )
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--format", required=True, choices=["onnx", "torchscript", "slim"])
    s.add_argument("--out", required=True, help="output file")
    s.add_argument(
        "--net-size", type=_hw, metavar="HxW", help="network input size (default: the checkpoint's)"
    )
    s.add_argument("--window", type=int, help="planes per window (default: the checkpoint's)")
    s.add_argument(
        "--graph",
        choices=["spike", "rgb"],
        default="spike",
        help="spike: the spike-only network (spike window -> depth); rgb: an rgb model's network "
        "(RGB [B,3,H,W] in [0,1] -> disparity), e.g. as `distill --teacher FILE`",
    )


@_command("export", _parser_export)
def _cmd_export(a: argparse.Namespace) -> int:
    from r2sdepth.export import export_model, slim_checkpoint  # noqa: PLC0415  torch-level: loaded on use

    if a.format == "slim":
        p = slim_checkpoint(a.checkpoint, a.out)
        print(f"slim checkpoint {p} ({p.stat().st_size / 1e6:.1f} MB)")
        return 0
    h, w = a.net_size or (None, None)
    r = export_model(
        checkpoint_path(a.checkpoint), a.format, a.out, height=h, width=w, window=a.window, graph=a.graph
    )
    print(
        f"{r['format']} model {r['path']}: input {r['input']}; max |exported - PyTorch| = "
        f"{r['max_abs_diff']:.3g} ({r['checked_with']})"
    )
    return 0


def _parser_ensemble(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth ensemble`'s arguments."""
    s = sub.add_parser(
        "ensemble",
        help="several spike-only models of one architecture as one checkpoint (geometric mean of depths)",
    )
    s.add_argument("checkpoints", nargs="+", help="two or more checkpoints (files or shipped names)")
    s.add_argument("--out", required=True, help="output checkpoint file")


@_command("ensemble", _parser_ensemble)
def _cmd_ensemble(a: argparse.Namespace) -> int:
    from r2sdepth.export import ensemble_checkpoint  # noqa: PLC0415  torch-level: loaded on use

    p = ensemble_checkpoint([checkpoint_path(c) for c in a.checkpoints], a.out)
    print(f"ensemble of {len(a.checkpoints)} spike-only networks {p} ({p.stat().st_size / 1e6:.1f} MB)")
    return 0


def _parser_speed_scale(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth speed-scale`'s arguments."""
    s = sub.add_parser(
        "speed-scale",
        help="make a model metric from known speed: the scale at which frames t-1, t+1 moved by the "
        "known distance explain frame t (no depth labels)",
    )
    s.add_argument("--checkpoint", required=True, help="the model (file or shipped name)")
    s.add_argument("--data", required=True, help="drives with poses.txt or oxts (KITTI raw layout, synth)")
    s.add_argument("--split", required=True, help="frames to measure on (frames t-1 and t+1 must exist)")
    s.add_argument("--out", required=True, help="the metric copy of the model (a slim checkpoint)")
    s.add_argument("--max-frames", type=int, default=200, help="frames evenly spread over the split")
    s.add_argument("--modality", choices=["rgb", "spike", "fusion"], help="default: the checkpoint's")
    s.add_argument("--spike-root", help="real spike streams (default: simulated with the model's camera)")


@_command("speed-scale", _parser_speed_scale)
def _cmd_speed_scale(a: argparse.Namespace) -> int:
    from r2sdepth.export import slim_checkpoint  # noqa: PLC0415  torch-level: loaded on use
    from r2sdepth.infer import speed_scale_split  # noqa: PLC0415

    if a.max_frames < 1:
        raise R2SDepthError(f"--max-frames must be at least 1, got {a.max_frames}")
    ck = checkpoint_path(a.checkpoint)
    r = speed_scale_split(
        ck, a.data, a.split, modality=a.modality, spike_root=a.spike_root, max_frames=a.max_frames
    )
    how = {"from": "known speed", "data": str(a.data), "split": str(a.split), "frames": r["frames"]}
    p = slim_checkpoint(ck, a.out, modality=a.modality, extra=how, depth_scale=r["factor"])
    q1, q3 = r["quartiles"]
    print(
        f"depth x {r['factor']:.3f} (quartiles over {r['frames']} frames {q1:.3f}-{q3:.3f}; "
        f"{r['skipped']} without a scale) -> {p}"
    )
    return 0


def _parser_models(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth models`'s arguments."""
    s = sub.add_parser(
        "models", help="the shipped models: modality, window and rate, trained size, units, scale"
    )
    s.add_argument("--json", action="store_true", help="print one JSON list")


@_command("models", _parser_models)
def _cmd_models(a: argparse.Namespace) -> int:
    from r2sdepth.checkpoint import shipped_models  # noqa: PLC0415  torch-level: loaded on use

    rows = shipped_models()
    if a.json:
        print(json.dumps(rows))
        return 0
    for m in rows:
        h, w = m["trained_size"]
        print(f"{m['name']}  ({m['path']})")
        print(
            f"  input         {m['modality']} window of {m['window_planes']} planes at "
            f"{m['planes_per_second']:g} "
            f"planes/s ({m['window_s'] * 1e3:.3g} ms, {m['window_mode']} windows), trained at {h}x{w}"
        )
        for k in ("units", "typical_scale", "trained_on"):
            if k in m:
                print(f"  {k.replace('_', ' '):<13} {m[k]}")
    return 0


def _parser_demo(sub: argparse._SubParsersAction) -> None:
    """`r2sdepth demo`'s arguments."""
    s = sub.add_parser("demo", help="run the main job on embedded default data")
    s.add_argument("--out", help="output folder (default r2sdepth-demo, with --real r2sdepth-demo-real)")
    s.add_argument(
        "--seed", type=int, default=2026, help="scene seed (the shipped model was trained on seed 0)"
    )
    s.add_argument("--frames", type=int, default=24, help="frames of the synthetic sequence")
    s.add_argument("--checkpoint", help="a spike-capable checkpoint instead of the shipped one")
    s.add_argument(
        "--real",
        action="store_true",
        help="the shipped real-footage model on real KITTI frames (../shared/data/kitti_raw or --kitti-root)",
    )
    s.add_argument("--kitti-root", help="KITTI raw root holding 2011_09_26_drive_0005 (--real)")


@_command("demo", _parser_demo)
def _cmd_demo(a: argparse.Namespace) -> int:
    from r2sdepth.demo import run_demo, run_real_demo  # noqa: PLC0415  torch-level: loaded on use

    if a.real:
        run_real_demo(
            Path(a.out or "r2sdepth-demo-real"), a.kitti_root, a.checkpoint, progress=sys.stderr.isatty()
        )
        return 0
    if a.kitti_root:
        raise R2SDepthError("--kitti-root applies to demo --real")
    run_demo(
        Path(a.out or "r2sdepth-demo"),
        seed=a.seed,
        frames=a.frames,
        checkpoint=a.checkpoint,
        progress=sys.stderr.isatty(),
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``r2sdepth`` console script."""

    plain = warnings.formatwarning

    def one_line(message, category, *rest_):  # type: ignore[no-untyped-def]
        if issubclass(category, R2SDepthWarning):
            return f"r2sdepth: warning: {message}\n"
        return plain(message, category, *rest_)

    warnings.formatwarning = one_line  # type: ignore[assignment]

    background: list[BaseException] = []

    def thread_hook(
        args: threading.ExceptHookArgs,
    ) -> None:  # e.g. TensorBoard's writer thread on a full disk
        if args.exc_type is not SystemExit and args.exc_value is not None:
            background.append(args.exc_value)

    threading.excepthook = thread_hook
    parser = build_parser()
    a, rest = parser.parse_known_args(argv)
    if rest and a.command not in ("train", "distill", "adapt"):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    a.overrides = rest
    if not a.command:
        parser.print_help()
        return 0
    try:
        rc = int(_COMMANDS[a.command].run(a) or 0)
        if rc == 0 and background:  # the command finished, but a background writer failed: not silent
            e = background[0]
            why = getattr(e, "strerror", None) or f"{type(e).__name__}: {e}"
            print(f"r2sdepth: error: a background writer failed: {why}", file=sys.stderr)
            return 2
        return rc
    except R2SDepthError as e:
        print(f"r2sdepth: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, read-only folder, missing file, broken pipe, ...
        if e.errno == errno.EPIPE:  # e.g. `r2sdepth info ... | head`: end quietly
            with contextlib.suppress(OSError):
                sys.stdout = open(os.devnull, "w")
            return 0
        where = f"{e.filename}: " if e.filename else ""
        why = (
            e.strerror or f"write failed ({e}): disk full or I/O error"
        )  # numpy's short writes carry no errno
        print(f"r2sdepth: error: {where}{why}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("r2sdepth: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
