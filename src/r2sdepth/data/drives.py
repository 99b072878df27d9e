"""Recording kinds of a data root: where one drive's frames, intrinsics, spike windows and ground
truth come from.

One small class per kind, chosen once per drive by :func:`drive_kind` (the first of
:data:`DRIVE_KINDS` whose ``accepts`` is true) and used alike by the training data set
(:class:`r2sdepth.data.dataset.SplitDataset`) and the evaluation
(:func:`r2sdepth.evaluate.split_gt`, :func:`r2sdepth.evaluate.split_intrinsics`). Every kind answers
the same questions:

* ``frame_ids(cam)``: the frame ids of a camera, sorted;
* ``image(cam, frame)``: the RGB frame, float32 ``[H, W, 3]`` in [0, 1] at the options' size, and
  the native ``(H, W)``;
* ``native_intrinsics(cam, frame)``: ``K`` ``[3, 3]`` (pixels) and the native ``(H, W)`` it
  belongs to; ``intrinsics(cam, native)``: ``K`` scaled to the options' size;
* ``spikes(cam, frame, image)``: the spike window ``[T, H, W]`` (uint8) of frame ``t``;
* ``gt(cam, frame)``: ground-truth depth ``[Hg, Wg]`` (metres, 0 = invalid).

``stereo``: the kind has a calibrated second camera (``data.stereo``). Adding a kind (a new camera,
a new data set) is one subclass in its own file and one line in :data:`DRIVE_KINDS`. This module
does not import torch (the evaluation uses it).
"""

from __future__ import annotations

import bisect
import builtins
import contextlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from r2sdepth.atomic import remove_stale_temporaries
from r2sdepth.config import DataConfig, TrainConfig
from r2sdepth.data import kitti
from r2sdepth.data.frame_cache import FrameCache, cache_paths, write_cache
from r2sdepth.data.rig import RigSequence
from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.io import SpikeStream, fit_spatial
from r2sdepth.spike.simulate import SimParams, frame_window, luminance


def sequence_key(drive: str, cam: str) -> str:
    """The key of a (drive, camera) stream in chunk seeds: ``<date>/<drive>_sync/image_<cam>``."""
    return f"{drive}/image_{kitti.cam_index(cam)}"


@dataclass(frozen=True)
class DriveOptions:
    """What a kind needs to know of the data set that reads it: the data ``root``, the sample size
    ``(height, width)`` (pixels), the spike ``window`` (planes) and its ``align``ment, a built
    Spike-KITTI ``spike_root`` (None: simulate windows with ``sim`` and ``seed``) and the
    ground-truth source (:func:`r2sdepth.data.kitti.resolve_gt_source`). Defaults: the config
    schema's (:class:`r2sdepth.config.DataConfig`). ``frame_cache``: RGB frames stored at the
    sample size (:mod:`r2sdepth.data.frame_cache`; None: decode and resize every read)."""

    root: Path
    height: int = DataConfig.height
    width: int = DataConfig.width
    window: int = DataConfig.window
    align: str = DataConfig.align
    spike_root: Path | None = None
    sim: SimParams = field(default_factory=SimParams)
    seed: int = TrainConfig.seed
    gt_source: str = DataConfig.gt_source
    frame_cache: Path | None = None


class DriveKind(ABC):
    """One drive of one recording kind (see the module docstring)."""

    stereo: bool = True

    def __init__(self, opts: DriveOptions, drive: str) -> None:
        self.opts, self.drive = opts, drive
        self._ids: dict[str, list[int]] = {}
        self._caches: dict[str, FrameCache] = {}

    @classmethod
    @abstractmethod
    def accepts(cls, opts: DriveOptions, drive: str) -> bool:
        """Whether ``ROOT/drive`` is this kind."""

    def list_frames(self, cam: str) -> list[int]:
        """The frame ids of ``cam`` on disk (sorted); :meth:`frame_ids` caches them."""
        return kitti.list_frame_ids(self.opts.root, self.drive, cam)

    def frame_ids(self, cam: str) -> list[int]:
        if cam not in self._ids:
            self._ids[cam] = self.list_frames(cam)
        return self._ids[cam]

    def nearest(self, cam: str, frame: int) -> int:
        """``frame`` when it exists, else the nearest existing frame id (a drive's ends)."""
        ids = self.frame_ids(cam)
        if frame in ids:
            return frame
        return ids[min(max(bisect.bisect_left(ids, frame), 0), len(ids) - 1)]

    def image(self, cam: str, frame: int) -> tuple[np.ndarray, tuple[int, int]]:
        if self.opts.frame_cache is not None:
            if cam not in self._caches:
                size = (self.opts.height, self.opts.width)
                self._caches[cam] = FrameCache(
                    self.opts.frame_cache, self.drive, cam, size, self.frame_ids(cam)
                )
            return self._caches[cam].image(frame)
        p = kitti.image_path(self.opts.root, self.drive, frame, cam)
        if not p.is_file():
            raise R2SDepthError(f"{p}: missing image")
        with Image.open(p) as im:
            native = (im.height, im.width)
            im = im.convert("RGB").resize((self.opts.width, self.opts.height), Image.BILINEAR)
            return np.asarray(im, dtype=np.float32) / 255.0, native

    def _calib_K(self, cam: str) -> np.ndarray:
        """``K`` ``[3, 3]`` of ``cam`` at the native size (the date's ``calib_cam_to_cam.txt``)."""
        return kitti.load_calib(self.opts.root / self.drive.split("/")[0], cam).K

    def native_intrinsics(self, cam: str, frame: int) -> tuple[np.ndarray, tuple[int, int]]:
        with Image.open(kitti.image_path(self.opts.root, self.drive, frame, cam)) as im:
            native = (im.height, im.width)
        return self._calib_K(cam), native

    def intrinsics(self, cam: str, native: tuple[int, int]) -> np.ndarray:
        return kitti.scale_intrinsics(self._calib_K(cam), native, (self.opts.height, self.opts.width))

    @abstractmethod
    def spikes(self, cam: str, frame: int, image: Callable[[int], np.ndarray]) -> np.ndarray:
        """The window ``[T, H, W]`` of ``frame``; ``image(j)``: RGB frame j at the options' size
        (cached per sample by the caller)."""

    def gt(self, cam: str, frame: int) -> np.ndarray:
        return kitti.gt_depth(self.opts.root, self.drive, frame, cam, source=self.opts.gt_source)


class RigDrive(DriveKind):
    """A paired rig sequence (``ROOT/drive/calib.yaml``, :class:`r2sdepth.data.rig.RigSequence`):
    RGB warped into the spike camera, the recorded spikes by timestamp (resized like the RGB,
    nearest), the spike camera's ``K``, its ``depth/`` as ground truth."""

    stereo = False

    @classmethod
    def accepts(cls, opts: DriveOptions, drive: str) -> bool:
        return (opts.root / drive / "calib.yaml").is_file()

    def __init__(self, opts: DriveOptions, drive: str) -> None:
        super().__init__(opts, drive)
        self.rig = RigSequence(opts.root / drive)

    def list_frames(self, cam: str) -> list[int]:
        return list(range(len(self.rig)))

    def image(self, cam: str, frame: int) -> tuple[np.ndarray, tuple[int, int]]:
        if self.opts.frame_cache is not None:
            raise R2SDepthError(
                "data.frame_cache holds KITTI-layout drives, not rig sequences: set it to null"
            )
        img = Image.fromarray(self.rig.rgb_in_spike_camera(frame))
        native = (img.height, img.width)
        size = (self.opts.width, self.opts.height)
        return np.asarray(img.resize(size, Image.BILINEAR), dtype=np.float32) / 255.0, native

    def native_intrinsics(self, cam: str, frame: int) -> tuple[np.ndarray, tuple[int, int]]:
        return self.rig.K, tuple(self.rig.calib.spike_size)

    def intrinsics(self, cam: str, native: tuple[int, int]) -> np.ndarray:
        size = (self.opts.height, self.opts.width)
        return kitti.scale_intrinsics(self.rig.K, self.rig.calib.spike_size, size)

    def spikes(self, cam: str, frame: int, image: Callable[[int], np.ndarray]) -> np.ndarray:
        size = (self.opts.height, self.opts.width)
        return fit_spatial(self.rig.window(frame, self.opts.window), size, "resize")

    def gt(self, cam: str, frame: int) -> np.ndarray:
        return self.rig.depth(frame)


class BuiltStreamDrive(DriveKind):
    """A KITTI-layout drive with a built Spike-KITTI stream under ``spike_root`` (memory-mapped)."""

    @classmethod
    def accepts(cls, opts: DriveOptions, drive: str) -> bool:
        return opts.spike_root is not None

    def __init__(self, opts: DriveOptions, drive: str) -> None:
        super().__init__(opts, drive)
        self.streams: dict[str, SpikeStream] = {}

    def spikes(self, cam: str, frame: int, image: Callable[[int], np.ndarray]) -> np.ndarray:
        o = self.opts
        if cam not in self.streams:
            path = Path(o.spike_root or "") / self.drive / f"spike_{cam}" / "stream.dat"
            if not path.is_file():
                raise R2SDepthError(
                    f"{path}: missing spike stream (build it with r2sdepth build-spike-kitti)"
                )
            st = SpikeStream(path)
            if (st.height, st.width) != (o.height, o.width):
                raise R2SDepthError(
                    f"{path}: stream is {st.height}x{st.width} but the training size is "
                    f"{o.height}x{o.width}: rebuild at that size or simulate on the fly"
                )
            self.streams[cam] = st
        return self.streams[cam].window_for_frame(frame, o.window, align=o.align)


class SimulatedDrive(DriveKind):
    """A KITTI-layout drive without a built stream: the window of frame t simulated on the fly by
    :func:`r2sdepth.spike.simulate.frame_window` from the RGB frames (the same bytes as a built
    stream with the same seed)."""

    @classmethod
    def accepts(cls, opts: DriveOptions, drive: str) -> bool:
        return True

    def spikes(self, cam: str, frame: int, image: Callable[[int], np.ndarray]) -> np.ndarray:
        o = self.opts

        def lum(j: int) -> np.ndarray:
            return luminance(image(self.nearest(cam, j)), linearize=o.sim.linearize)

        return frame_window(
            lum,
            frame,
            o.window,
            o.sim,
            seed=o.seed,
            sequence=sequence_key(self.drive, cam),
            first_frame=self.frame_ids(cam)[0],
        )


#: recording kinds of a drive, first match wins (a rig sequence before a built stream root)
DRIVE_KINDS: list[type[DriveKind]] = [RigDrive, BuiltStreamDrive, SimulatedDrive]


def drive_kind(opts: DriveOptions, drive: str) -> DriveKind:
    """The :class:`DriveKind` of ``opts.root / drive``: the first of :data:`DRIVE_KINDS` that
    accepts it."""
    return next(k for k in DRIVE_KINDS if k.accepts(opts, drive))(opts, drive)


def kind_for(root: str | os.PathLike, drive: str, gt_source: str = "auto") -> DriveKind:
    """The kind of one drive of ``root`` for evaluation (ground truth and intrinsics only)."""
    return drive_kind(DriveOptions(root=Path(root), gt_source=gt_source), drive)


# --- frame caches ------------------------------------------------------------------------------


def _cache_one(job: tuple[Any, ...]) -> tuple[str, bool]:
    """Cache one drive's camera unless an up-to-date cache is there: ``(array path, written)``."""
    root, cache, drive, cam, size = job
    kind = drive_kind(DriveOptions(root=Path(root), height=size[0], width=size[1]), drive)
    ids = kind.frame_ids(cam)
    try:
        FrameCache(cache, drive, cam, size, ids)  # complete, readable and the drive's frames: keep it
        return str(cache_paths(cache, drive, cam, size)[0]), False
    except R2SDepthError:
        pass
    return str(write_cache(cache, drive, cam, size, ids, lambda f: kind.image(cam, f))), True


def cache_frames(
    root: str | os.PathLike,
    cache: str | os.PathLike,
    size: tuple[int, int],
    cameras: tuple[str, ...] = ("02", "03"),
    workers: int = 1,
    progress: Callable[[str, bool], None] | None = None,
) -> list[tuple[str, bool]]:
    """Cache every drive of the KITTI-layout ``root`` (cameras that exist) at ``size`` ``(H, W)``
    under ``cache``; ``workers`` processes, one (drive, camera) each. Resumable: a drive camera whose
    cache is complete and matches its frames is kept. Returns ``(array path, written)`` per drive
    camera (``progress`` is called with each as it finishes)."""
    if size[0] < 1 or size[1] < 1:
        raise R2SDepthError(f"frame cache size must be positive, got {size[0]}x{size[1]}")
    if workers < 1:
        raise R2SDepthError(f"workers must be >= 1, got {workers}")
    drives = kitti.find_drives(root)
    if not drives:
        raise R2SDepthError(f"{root}: no drives (<date>/<drive>_sync/image_0X/data) to cache")
    Path(cache).mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(cache)  # left by a killed run
    jobs = [
        (str(root), str(cache), d, kitti.cam_index(c), tuple(size))
        for d in drives
        for c in cameras
        if kitti.image_dir(root, d, c).is_dir()
    ]
    done: list[tuple[str, bool]] = []
    with ProcessPoolExecutor(workers) if workers > 1 else contextlib.nullcontext() as pool:
        for res in (pool or builtins).map(_cache_one, jobs):
            done.append(res)
            if progress:
                progress(*res)
    return done
