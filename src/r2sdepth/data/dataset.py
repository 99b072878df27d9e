"""The training and evaluation samples of a split (a ``torch.utils.data.Dataset``).

Each drive's pieces (RGB frames, intrinsics, spike window, ground truth) come from its recording
kind (:mod:`r2sdepth.data.drives`: a built Spike-KITTI stream, on-the-fly simulation, a rig
sequence); this module stacks them into samples, applies the augmentation and prepares what
travels to the device (:mod:`r2sdepth.data.transport`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from r2sdepth.config import DataConfig
from r2sdepth.data import kitti, transport
from r2sdepth.data.drives import DriveKind, DriveOptions, drive_kind
from r2sdepth.errors import R2SDepthError
from r2sdepth.seeds import stable_seed
from r2sdepth.spike.simulate import SimParams

#: how samples travel to the device (:mod:`r2sdepth.data.transport`)
TRANSPORTS = ("plain", "device")


@dataclass(frozen=True)
class SampleOptions:
    """What each sample of :class:`SplitDataset` holds (what the drive's frames come from is
    :class:`r2sdepth.data.drives.DriveOptions`):

    * ``context``: source frames relative to the target (frame offsets; default: the schema's
      ``data.context``);
    * ``augment``: horizontal flips and colour jitter (training);
    * ``with_gt``: ``depth_gt`` from the drive options' ground-truth source;
    * ``need_rgb`` / ``need_spikes``: whether the sample carries the RGB frames / the spike window;
    * ``stereo``: the other camera of the pair as ``color_stereo`` with its pose ``T_stereo``;
    * ``travel``: the distances to the context frames (metres) as ``travel``, and the signed
      distances along the target frame's heading as ``travel_forward`` (negative: the context
      frame lies behind, e.g. ``t - 1`` of a vehicle driving forward);
    * ``transport``: ``plain`` or ``device`` (:mod:`r2sdepth.data.transport`).
    """

    context: tuple[int, ...] = field(default_factory=lambda: tuple(DataConfig().context))
    augment: bool = False
    with_gt: bool = False
    need_rgb: bool = True
    need_spikes: bool = True
    stereo: bool = False
    travel: bool = False
    transport: str = "plain"


class SplitDataset(Dataset):
    """Samples of a split for training and evaluation (a ``torch.utils.data.Dataset``).

    For split line ``(drive, frame t, side)`` it returns a dict:

    * ``color`` / ``color_aug``: float32 ``[F, 3, H, W]`` in [0, 1], frames ``t + o`` for
      ``o in (0, *context)`` (``color_aug``: colour-jittered, the network's input; the loss uses
      ``color``). Missing neighbours at a drive's ends are replaced by the nearest frame.
    * ``spikes``: uint8 ``[T, H, W]``, the spike window of frame t, read by memory map from a
      built Spike-KITTI stream under ``spike_root`` or, when ``spike_root`` is None, simulated
      on the fly from the RGB frames (deterministic from ``(seed, drive, side, t)``).
    * ``K``: float32 ``[3, 3]`` intrinsics scaled to ``H x W``.
    * ``depth_gt``: float32 ``[1, Hg, Wg]`` at the native size (0 = invalid), when ``with_gt``,
      from ``gt_source`` (:func:`r2sdepth.data.kitti.resolve_gt_source`).

    Horizontal flips (``augment``) apply to RGB, spikes and ``K`` alike.

    ``transport="device"`` (what the training data module uses): ``spikes_packed`` (uint8
    ``[T, H, W / 8]``) instead of ``spikes`` and the jitter draws (``jitter`` ``[4]``,
    ``jitter_on``) instead of ``color_aug``; :func:`r2sdepth.data.transport.finish_batch` makes
    the plain sample of them on the device.

    Built from two parameter objects: ``drive`` (:class:`r2sdepth.data.drives.DriveOptions`: data
    root, sample size, spike window, simulator, seed, ground-truth source) and ``sample``
    (:class:`SampleOptions`: context frames, augmentation, what a sample carries); ``split`` is a
    split file or a list of :class:`r2sdepth.data.kitti.Sample`.
    """

    def __init__(
        self,
        drive: DriveOptions,
        split: str | os.PathLike | list,
        sample: SampleOptions | None = None,
    ) -> None:
        sample = SampleOptions() if sample is None else sample
        self.root = Path(drive.root)
        if not self.root.is_dir():
            raise R2SDepthError(f"{self.root}: data root not found")
        self.samples = kitti.read_split(split) if not isinstance(split, list) else split
        self.h, self.w = int(drive.height), int(drive.width)
        if self.h % 32 or self.w % 32:
            raise R2SDepthError(f"training size {self.h}x{self.w} must be a multiple of 32")
        if sample.transport not in TRANSPORTS:
            raise R2SDepthError(f"transport must be one of {', '.join(TRANSPORTS)}, got {sample.transport!r}")
        gt_source = kitti.resolve_gt_source(self.root, drive.gt_source) if sample.with_gt else drive.gt_source
        spike_root = Path(drive.spike_root) if drive.spike_root else None
        if not isinstance(drive.sim, SimParams):
            raise R2SDepthError(f"DriveOptions.sim must be a SimParams, got {type(drive.sim).__name__}")
        self.drive_options = replace(
            drive,
            root=self.root,
            height=self.h,
            width=self.w,
            window=int(drive.window),
            spike_root=spike_root,
            gt_source=gt_source,
        )
        self.window, self.align = int(drive.window), drive.align
        self.spike_root, self.sim, self.seed, self.gt_source = spike_root, drive.sim, drive.seed, gt_source
        self.context = tuple(sample.context)
        self.augment, self.with_gt = sample.augment, sample.with_gt
        self.need_rgb, self.need_spikes = sample.need_rgb, sample.need_spikes
        self.stereo, self.travel, self.transport = bool(sample.stereo), bool(sample.travel), sample.transport
        self._positions: dict[str, Any] = {}
        self._stereo_T: dict[tuple[str, str], Any] = {}
        self._K: dict[tuple[str, str], Any] = {}
        self._kinds: dict[str, DriveKind] = {}
        if self.spike_root is None and self.align != "end":
            raise R2SDepthError("on-the-fly spike simulation supports align='end' only")
        if self.sim.camera_rate_hz and self.align != "end":
            raise R2SDepthError(
                "camera-rate windows (data.sim.camera_rate_hz) end at their frame: align must be "
                "'end' (the planes around a frame are not simulated)"
            )

    def __len__(self) -> int:
        return len(self.samples)

    # -- pieces ---------------------------------------------------------------------------------
    def _kind(self, drive: str) -> DriveKind:
        """The recording kind of ``drive`` (:func:`r2sdepth.data.drives.drive_kind`), chosen once."""
        if drive not in self._kinds:
            self._kinds[drive] = drive_kind(self.drive_options, drive)
        return self._kinds[drive]

    def _frame_ids(self, drive: str, cam: str) -> list[int]:
        return self._kind(drive).frame_ids(cam)

    def _nearest(self, drive: str, cam: str, frame: int) -> int:
        return self._kind(drive).nearest(cam, frame)

    def _image(self, drive: str, cam: str, frame: int, cache: dict | None = None):
        """RGB float32 ``[H, W, 3]`` at the training size and the native ``(H, W)``; ``cache``
        (per sample) avoids reading a frame twice for the colour stack and the spike window."""
        if cache is not None and frame in cache:
            return cache[frame]
        res = self._kind(drive).image(cam, frame)
        if cache is not None:
            cache[frame] = res
        return res

    def _intrinsics(self, drive: str, cam: str, native: tuple[int, int]):
        key = (drive, cam)
        if key not in self._K:
            self._K[key] = self._kind(drive).intrinsics(cam, native)
        return self._K[key]

    def _spikes(self, drive: str, cam: str, frame: int, cache: dict | None = None):
        """The spike window ``[T, H, W]`` of ``frame`` (see :class:`r2sdepth.data.drives.DriveKind`)."""
        return self._kind(drive).spikes(cam, frame, lambda j: self._image(drive, cam, j, cache)[0])

    def _stereo_view(self, drive: str, cam: str, frame: int, flip: bool):
        """The other camera of the pair at ``frame`` (float32 ``[3, H, W]``) and the
        target->source transform ``[4, 4]`` from the calibration (x negated for a flipped sample:
        in the mirrored pair the other camera sits on the other side)."""

        if not self._kind(drive).stereo:
            raise R2SDepthError(f"{drive}: data.stereo needs a KITTI-layout stereo pair, not a rig sequence")
        other = "03" if kitti.cam_index(cam) == "02" else "02"
        if not kitti.image_path(self.root, drive, frame, other).is_file():
            raise R2SDepthError(
                f"{kitti.image_path(self.root, drive, frame, other)}: missing image of the other "
                f"camera (data.stereo needs image_{other})"
            )
        img = torch.from_numpy(self._kind(drive).image(other, frame)[0]).permute(2, 0, 1)
        key = (drive.split("/")[0], cam)
        if key not in self._stereo_T:  # the calibration is read once per date and camera, not per sample
            self._stereo_T[key] = kitti.stereo_transform(self.root / key[0], cam)
        T = torch.from_numpy(self._stereo_T[key]).float()
        if flip:
            img = img.flip(-1)
            T[0, 3] = -T[0, 3]
        return img, T

    def _travel(self, drive: str, cam: str, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances [S], forward [S])`` in metres from frame t to each context frame ``t + o``
        (nearest existing frame at a drive's ends): the distance between the two positions, and
        the displacement's component along frame t's heading (a speedometer's signed reading), from
        :func:`r2sdepth.data.kitti.drive_motion`."""

        if drive not in self._positions:
            ids = self._frame_ids(drive, cam)
            self._positions[drive] = (kitti.drive_motion(self.root, drive), {f: k for k, f in enumerate(ids)})
        motion, idx = self._positions[drive]
        if motion is None:
            raise R2SDepthError(
                f"{self.root / drive}: loss.velocity_weight / known_speed need the camera's "
                "motion (poses.txt or oxts/data)"
            )
        pos, heading = motion

        def at(f: int) -> int:
            k = idx[self._nearest(drive, cam, f)]
            if k >= len(pos):
                raise R2SDepthError(f"{self.root / drive}: {len(pos)} poses for {len(idx)} frames")
            return k

        t = at(frame)
        moves = [pos[at(frame + o)] - pos[t] for o in self.context]
        return (
            np.array([np.linalg.norm(m) for m in moves], np.float32),
            np.array([m @ heading[t] for m in moves], np.float32),
        )

    # -- item -----------------------------------------------------------------------------------
    def __getitem__(self, key: int | tuple[int, int]) -> dict[str, Any]:
        """``key``: an index, or ``(epoch, index)`` (what the training sampler yields): the
        augmentation (flip, colour jitter) is drawn from ``(seed, epoch, index)`` alone."""

        epoch, i = (int(key[0]), int(key[1])) if isinstance(key, (tuple, list)) else (0, int(key))
        s = self.samples[i]
        cam = s.cam
        out: dict[str, Any] = {"index": i}
        rng = np.random.default_rng(stable_seed(self.seed, "aug", epoch, i))
        flip = self.augment and rng.random() < 0.5
        cache: dict[int, Any] = {}
        imgs, native = [], None
        offsets = (0, *self.context) if self.need_rgb else (0,)
        for o in offsets:
            img, nat = self._image(s.drive, cam, self._nearest(s.drive, cam, s.frame + o), cache)
            native = native or nat
            imgs.append(torch.from_numpy(img).permute(2, 0, 1))
        color = torch.stack(imgs)
        K = torch.from_numpy(self._intrinsics(s.drive, cam, native)).float()
        device = self.transport == "device"
        if self.need_spikes:
            spk = self._spikes(s.drive, cam, s.frame, cache)
            if device:  # (flipped in the packed bytes: far cheaper than packing a mirrored view)
                out[transport.PACKED_KEY] = torch.from_numpy(transport.pack_spikes(spk, flip=flip))
            else:
                out["spikes"] = torch.from_numpy(np.ascontiguousarray(spk[..., ::-1] if flip else spk))
        if flip:
            color = color.flip(-1)
            K = K.clone()
            K[0, 2] = self.w - 1 - K[0, 2]
        jitter = self.augment and rng.random() < 0.5  # Monodepth2: colour jitter on half the samples
        params = transport.draw_jitter(rng) if jitter else np.array([1, 1, 1, 0], np.float32)
        if device:
            out[transport.JITTER_KEY], out[transport.JITTER_ON_KEY] = torch.from_numpy(params), jitter
        else:
            aug = transport.color_jitter(color[None], torch.from_numpy(params)[None])[0] if jitter else color
            out["color_aug"] = aug
        out["color"], out["K"] = color, K
        if self.stereo:
            out["color_stereo"], out["T_stereo"] = self._stereo_view(s.drive, cam, s.frame, flip)
        if self.travel:
            dist, forward = self._travel(s.drive, cam, s.frame)
            out["travel"], out["travel_forward"] = torch.from_numpy(dist), torch.from_numpy(forward)
        if self.with_gt:
            gt = torch.from_numpy(self._kind(s.drive).gt(cam, s.frame))[None]
            out["depth_gt"] = gt.flip(-1) if flip else gt
        return out


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack samples; ``depth_gt`` stays a list when native sizes differ (KITTI dates)."""

    gts = [b.pop("depth_gt") for b in batch] if "depth_gt" in batch[0] else None
    out = default_collate(batch)
    if gts is not None:
        same = all(g.shape == gts[0].shape for g in gts)
        out["depth_gt"] = torch.stack(gts) if same else gts
    return out
