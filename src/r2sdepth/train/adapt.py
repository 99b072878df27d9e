"""``r2sdepth adapt``: adapt a spike-only model to a user's own unlabelled footage (no depth labels).

Steps (:func:`run_adapt`):

1. :func:`prepare_footage`: the input is a KITTI raw drive folder (``DATE/DATE_drive_N_sync`` with
   ``image_02/data`` and ``DATE/calib_cam_to_cam.txt``), a folder of images or a video. Images and
   videos are written once into the KITTI raw layout under ``RUN/footage/`` (frames as PNG, the
   calibration from ``--intrinsics`` or ``--fov``), so one data set reads every kind.
2. Spikes: real ones when ``spike_root`` holds built streams of the drive (``build-spike-kitti``
   layout), otherwise simulated on the fly from the frames with the model's own camera model
   (``data.sim``), at the model's window and size.
3. Self-distillation (``configs/adapt.yaml``): the model is the frozen teacher and the student's
   starting point; the student learns the footage's photometric loss with its own pose net while
   the teacher's depth anchors it. Resumable like ``train`` (same run folder: continues).
4. The last step is the result (no checkpoint is chosen on any depth): ``RUN/adapted_spike.ckpt``,
   a slim spike-only checkpoint that ``infer``, ``eval``, ``export`` and :func:`r2sdepth.load_model`
   take.

``eval_frames`` (optional, KITTI raw input with ``velodyne_points``): the LiDAR of those frames
reports abs_rel before and after beside the constant + median-scaling baseline; it is never used
for training or for choosing anything.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r2sdepth import evaluate as ev
from r2sdepth.atomic import save_png, write_bytes_atomic, write_json_atomic
from r2sdepth.checkpoint import checkpoint_path, load_file
from r2sdepth.config import apply_overrides, load_config
from r2sdepth.data.kitti import Sample, list_frame_ids, write_split
from r2sdepth.data.synthetic import calib_text
from r2sdepth.errors import R2SDepthError
from r2sdepth.export import ensemble_checkpoint, ensemble_members, slim_checkpoint
from r2sdepth.frames import VIDEO_SUFFIXES, iter_frames
from r2sdepth.infer import predict_split
from r2sdepth.metric import intrinsics_matrix
from r2sdepth.train.run import run_training

FOOTAGE_DATE = "footage"
FOOTAGE_DRIVE = f"{FOOTAGE_DATE}/{FOOTAGE_DATE}_drive_0000_sync"
MIN_FRAMES = 3  # a target frame needs a frame before and after it


@dataclass
class Footage:
    """Frames in the KITTI raw layout: ``root`` (holds ``DATE/``), ``drive`` (``DATE/NAME``) and
    the frame ids of camera 02 in order."""

    root: Path
    drive: str
    frames: list[int]


def frame_spec(spec: str | None, available: list[int]) -> list[int]:
    """``"A-B"`` (inclusive) or ``"A"`` -> the available frame ids in that range; None: all."""
    if spec is None:
        return list(available)
    a, _, b = str(spec).partition("-")
    try:
        lo, hi = int(a), int(b or a)
    except ValueError:
        raise R2SDepthError(f"frames {spec!r}: expected FIRST-LAST, e.g. 0-99") from None
    if lo > hi or lo < 0:
        raise R2SDepthError(f"frames {spec!r}: FIRST must be >= 0 and <= LAST")
    return [f for f in available if lo <= f <= hi]


def _kitti_drive(path: Path) -> Footage | None:
    """``path`` as a KITTI raw drive folder, or None when it is not one."""
    if not (path / "image_02" / "data").is_dir():
        return None
    date_dir = path.parent
    if not (date_dir / "calib_cam_to_cam.txt").is_file():
        raise R2SDepthError(
            f"{path}: a KITTI raw drive needs {date_dir / 'calib_cam_to_cam.txt'} (the calibration of its "
            "date)"
        )
    drive = f"{date_dir.name}/{path.name}"
    return Footage(date_dir.parent, drive, list_frame_ids(date_dir.parent, drive, "02"))


def prepare_footage(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    intrinsics: tuple[float, float, float, float] | None = None,
    fov: float | None = None,
) -> Footage:
    """The footage in the KITTI raw layout (see the module docstring). A KITTI drive is used in
    place (its own calibration; ``intrinsics``/``fov`` are refused); images or a video are written
    to ``out/footage/`` once (a rerun reuses them). All frames must share one size."""
    src = Path(source)
    if not src.exists():
        raise R2SDepthError(f"{src}: no such file or folder")
    kitti = _kitti_drive(src) if src.is_dir() else None
    if kitti is not None:
        if intrinsics is not None or fov is not None:
            raise R2SDepthError(f"{src}: a KITTI raw drive has its own calibration; drop --intrinsics/--fov")
        return kitti
    if src.is_file() and src.suffix.lower() not in VIDEO_SUFFIXES:
        raise R2SDepthError(
            f"{src}: adapt takes a KITTI raw drive folder, a folder of images or a video "
            f"({', '.join(VIDEO_SUFFIXES)})"
        )
    root = Path(out) / "footage"
    if not root.is_dir():  # imported into a temporary folder, renamed when complete: never half-written
        if intrinsics is None and fov is None:
            raise R2SDepthError(
                f"{src}: images and videos carry no calibration: give --intrinsics fx,fy,cx,cy "
                "(pixels at the frames' size) or --fov DEGREES (horizontal)"
            )
        tmp = Path(out) / ".footage.partial"
        shutil.rmtree(tmp, ignore_errors=True)  # left by a killed import
        try:
            data = tmp / FOOTAGE_DRIVE / "image_02" / "data"
            hw, n = None, 0
            for i, rgb in enumerate(iter_frames(src)):  # (one size for all: checked there)
                hw = hw or rgb.shape[:2]
                save_png(data / f"{i:010d}.png", rgb)
                n = i + 1
            if n < MIN_FRAMES or hw is None:
                raise R2SDepthError(
                    f"{src}: {n} frame(s); adaptation needs at least {MIN_FRAMES} consecutive frames"
                )
            K = intrinsics_matrix(hw, intrinsics=intrinsics, fov_deg=fov)
            write_bytes_atomic(
                tmp / FOOTAGE_DATE / "calib_cam_to_cam.txt", calib_text(K, hw[0], hw[1]).encode()
            )
            os.replace(tmp, root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return Footage(root, FOOTAGE_DRIVE, list_frame_ids(root, FOOTAGE_DRIVE, "02"))


def training_split(footage: Footage, frames: list[int], path: Path) -> int:
    """Write the training split (frames whose neighbours -1 and +1 are also chosen); returns its
    length. Errors when fewer than :data:`MIN_FRAMES` consecutive frames are given."""
    chosen = set(frames)
    targets = [f for f in frames if f - 1 in chosen and f + 1 in chosen]
    if len(frames) < MIN_FRAMES or not targets:
        raise R2SDepthError(
            f"{footage.drive}: {len(frames)} frame(s) chosen; adaptation needs at least {MIN_FRAMES} "
            "consecutive frames (a frame with its neighbours before and after)"
        )
    write_split(path, [Sample(footage.drive, f, "l") for f in targets])
    return len(targets)


def self_distill_config(
    root: str | os.PathLike,
    split: str | os.PathLike,
    *,
    spike_root: str | os.PathLike | None = None,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """The run's config: ``configs/adapt.yaml``, the footage's data ``root`` (KITTI layout) and
    training ``split``, real or simulated spikes, then the user's ``--key value`` overrides. The
    model, pose net and data settings (size, window, camera model) come from the teacher (stage 2
    defaults them)."""
    cfg = load_config("adapt")
    cfg.setdefault("data", {}).update(
        {
            "root": str(root),
            "train_split": str(split),
            "val_split": None,
            "spike_root": str(spike_root) if spike_root else None,
        }
    )
    return apply_overrides(cfg, overrides or [])


def _evaluate(ckpts: dict[str, Any], footage: Footage, split: Path, spike_root: Any) -> dict[str, Any]:
    """abs_rel etc. of each checkpoint on ``split`` with the drive's LiDAR (Eigen protocol,
    median scaling), and the constant + median-scaling baseline."""

    gts = ev.split_gt(footage.root, split, "velodyne")
    res: dict[str, Any] = {"constant + median scaling": ev.constant_median_baseline(gts)}
    for name, ck in ckpts.items():
        preds, _ = predict_split(ck, footage.root, split, spike_root=spike_root, modality="spike")
        res[name] = ev.evaluate_depths(preds, gts)
    return res


@dataclass(frozen=True)
class AdaptJob:
    """One ``r2sdepth adapt`` run (the subcommand's options): adapt ``checkpoint`` (a file or a
    shipped name) to the footage ``source`` into the run folder ``out``.

    * ``intrinsics`` ``(fx, fy, cx, cy)`` (pixels) or ``fov`` (degrees): the camera of footage
      without a calibration file;
    * ``frames`` / ``eval_frames``: frame specs (:func:`frame_spec`) to train on / to hold out and
      evaluate before and after (when the footage has depth);
    * ``spike_root``: real spike streams (``build-spike-kitti`` layout) instead of simulated ones;
    * ``overrides``: ``key=value`` config overrides; ``resume`` / ``allow_config_change``: as
      ``r2sdepth train``;
    * ``teacher``: an external depth network (ONNX, TorchScript, ``hub:OWNER/REPO:ENTRY``; see
      :mod:`r2sdepth.models.external`) teaches instead of ``checkpoint`` itself, which is then the
      student's starting point (``init_from``).
    """

    checkpoint: str | os.PathLike
    source: str | os.PathLike
    out: str | os.PathLike
    intrinsics: tuple[float, float, float, float] | None = None
    fov: float | None = None
    frames: str | None = None
    eval_frames: str | None = None
    spike_root: str | os.PathLike | None = None
    overrides: list[str] | None = None
    resume: bool = True
    allow_config_change: bool = False
    teacher: str | os.PathLike | None = None


def run_adapt(job: AdaptJob) -> dict[str, Any]:
    """Run ``job`` (module docstring). Returns ``{"checkpoint": slim spike-only file, "run":
    training result, "frames": n, "eval": ...}``. An ensemble checkpoint (``r2sdepth ensemble``,
    e.g. the shipped ``real``) is adapted member by member, each in ``out/member_{i}`` with the same
    settings, and the adapted members are put together again (``run`` is then the list of runs)."""

    model = checkpoint_path(job.checkpoint)
    if (load_file(model).get("r2sdepth") or {}).get("ensemble"):
        return _adapt_ensemble(job, model)
    out, teacher, spike_root = Path(job.out), job.teacher, job.spike_root
    footage = prepare_footage(job.source, out, intrinsics=job.intrinsics, fov=job.fov)
    chosen = frame_spec(job.frames, footage.frames)
    held = frame_spec(job.eval_frames, footage.frames) if job.eval_frames else []
    if set(held) & set(chosen) and job.frames is not None:
        raise R2SDepthError("--eval-frames overlap --frames: evaluate on frames the adaptation did not see")
    if held and job.frames is None:
        chosen = [f for f in chosen if f not in set(held)]  # train on the rest
    n = training_split(footage, chosen, out / "train_files.txt")
    cfg = self_distill_config(
        footage.root, out / "train_files.txt", spike_root=spike_root, overrides=job.overrides
    )
    if teacher is not None:
        cfg["init_from"] = str(model)
    res = run_training(
        cfg, out, resume=job.resume, teacher=teacher or model, allow_config_change=job.allow_config_change
    )
    dest = out / "adapted_spike.ckpt"
    adapted_on = {
        "footage": str(job.source),
        "drive": footage.drive,
        "training_targets": n,
        "from": str(job.checkpoint),
        "teacher": str(teacher) if teacher is not None else "itself (self-distillation)",
        "steps": res["global_step"],
        "recipe": "r2sdepth adapt ("
        + ("distillation from an external teacher" if teacher is not None else "self-distillation")
        + "; no depth labels)",
    }
    slim_checkpoint(res["last"], dest, modality="spike", extra={"adapted_on": adapted_on})
    result: dict[str, Any] = {"checkpoint": str(dest), "run": res, "frames": n, "eval": None}
    if held:
        split = out / "eval_files.txt"
        write_split(split, [Sample(footage.drive, f, "l") for f in held])
        result["eval"] = _evaluate(
            {"before (the model adapted)": model, "after (adapted)": dest}, footage, split, spike_root
        )
        write_json_atomic(out / "eval.json", {"frames": held, **result["eval"]})
    return result


def _adapt_ensemble(job: AdaptJob, model: Path) -> dict[str, Any]:
    """:func:`run_adapt` of every member of the ensemble ``model``, then their ensemble."""
    out = Path(job.out)
    members = ensemble_members(model, out / "members")
    runs = [
        run_adapt(dataclasses.replace(job, checkpoint=m, out=out / f"member_{i}"))  # held-out frames kept out
        for i, m in enumerate(members)
    ]
    dest = out / "adapted_spike.ckpt"
    first = load_file(runs[0]["checkpoint"])["r2sdepth"]["adapted_on"]
    adapted_on = {**first, "from": str(job.checkpoint), "members": [r["checkpoint"] for r in runs]}
    ensemble_checkpoint([r["checkpoint"] for r in runs], dest, extra={"adapted_on": adapted_on})
    result: dict[str, Any] = {
        "checkpoint": str(dest),
        "run": [r["run"] for r in runs],
        "frames": runs[0]["frames"],
    }
    result["eval"] = None
    if job.eval_frames:
        footage = prepare_footage(job.source, out, intrinsics=job.intrinsics, fov=job.fov)
        held = frame_spec(job.eval_frames, footage.frames)
        split = out / "eval_files.txt"
        write_split(split, [Sample(footage.drive, f, "l") for f in held])
        result["eval"] = _evaluate(
            {"before (the model adapted)": model, "after (adapted)": dest}, footage, split, job.spike_root
        )
        write_json_atomic(out / "eval.json", {"frames": held, **result["eval"]})
    return result


__all__ = [
    "AdaptJob",
    "Footage",
    "self_distill_config",
    "frame_spec",
    "prepare_footage",
    "run_adapt",
    "training_split",
]
