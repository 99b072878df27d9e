"""Spike-KITTI: spike streams simulated from KITTI raw drives (builder).

Output layout::

    OUT/<date>/<drive>_sync/spike_02/stream.dat   (+ stream.json sidecar)
    OUT/<date>/<drive>_sync/spike_03/stream.dat
    OUT/manifest.json

Each stream holds a pre-roll and one chunk of P planes per frame of the drive (the window
definition of :mod:`r2sdepth.spike.simulate`: every frame, frame 0 included, has a window, and
the window of ``(build seed, drive, camera, frame)`` is byte-identical to the on-the-fly mode of
:class:`SpikeKittiDataset` with ``data.seed`` = the build seed); its sidecar records the
simulator parameters, the build seed and sequence key, the frame -> plane index map, byte count
and sha256.

Resuming: a stream is finished when its sidecar is present (it is written after the stream is
renamed into place), records the same parameters, and its byte count matches the file (and,
with ``verify=True``, its sha256). Anything else is rebuilt from scratch; since every stream is
deterministic, an interrupted build (even ``kill -9``) rerun gives byte-identical output.
``manifest.json`` is rewritten at the end of every run from the finished sidecars, so builds of
disjoint shards on a shared filesystem end with the union.
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import default_collate
from tqdm import tqdm

from r2sdepth import __version__
from r2sdepth.atomic import write_json_atomic
from r2sdepth.config import DataConfig, TrainConfig
from r2sdepth.data import kitti, transport
from r2sdepth.data.drives import DriveKind, DriveOptions, drive_kind, sequence_key
from r2sdepth.errors import R2SDepthError
from r2sdepth.frames import iter_frames
from r2sdepth.seeds import stable_seed
from r2sdepth.spike.io import read_sidecar, sidecar_path
from r2sdepth.spike.simulate import SimParams, simulate_to_file

MANIFEST_FORMAT = "r2sdepth-spike-kitti/1"
#: how samples travel to the device (:mod:`r2sdepth.data.transport`)
TRANSPORTS = ("plain", "device")


@dataclass(frozen=True)
class Job:
    drive: str
    cam: str

    def stream_path(self, out: Path) -> Path:
        return out / self.drive / f"spike_{self.cam}" / "stream.dat"


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``"i/n"`` (0-based i) -> ``(i, n)``; ``None`` -> ``(0, 1)``."""
    if not spec:
        return 0, 1
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise R2SDepthError(f"--shard must be i/n (0 <= i < n), got {spec!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise R2SDepthError(f"--shard must be i/n with 0 <= i < n, got {spec!r}")
    return i, n


def read_sequence_list(path: str | os.PathLike) -> list[str]:
    """Drives to build from a file: one ``<date>/<drive>_sync`` per line (split files work too:
    only the first column is used)."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: sequence list not found")
    seen: dict[str, None] = {}
    for line in path.read_text().splitlines():
        if line.split():
            seen.setdefault(line.split()[0].strip("/"), None)
    if not seen:
        raise R2SDepthError(f"{path}: no sequences listed")
    return list(seen)


def plan_jobs(
    kitti_root: Path, cameras: list[str], sequences: list[str] | None
) -> tuple[list[Job], list[str]]:
    """All (drive, camera) jobs whose image folder exists, sorted; plus what was skipped."""
    drives = kitti.find_drives(kitti_root)
    if sequences is not None:
        missing = [s for s in sequences if s not in set(drives)]
        if missing:
            raise R2SDepthError(
                f"{kitti_root}: {len(missing)} listed sequence(s) not found, e.g. {missing[0]}"
            )
        drives = sorted(sequences)
    if not drives:
        raise R2SDepthError(f"{kitti_root}: no drives (<date>/<drive>_sync/image_02/data) found")
    jobs, skipped = [], []
    for d in drives:
        for c in cameras:
            c = kitti.cam_index(c)
            if kitti.image_dir(kitti_root, d, c).is_dir():
                jobs.append(Job(d, c))
            else:
                skipped.append(f"{d} image_{c}")
    return jobs, skipped


def _params_meta(params: SimParams, height: int, width: int, seed: int) -> dict[str, Any]:
    return {
        "simulator": {"model": "integrate-and-fire", **params.to_dict()},
        "height": height,
        "width": width,
        "build_seed": seed,
    }


def is_finished(
    job: Job, out: Path, params: SimParams, height: int, width: int, seed: int, verify: bool = False
) -> bool:
    """Whether ``job``'s stream is complete and made with these parameters."""
    path = job.stream_path(out)
    try:
        meta = read_sidecar(path)
    except R2SDepthError:
        return False
    if meta is None or not path.is_file():
        return False
    want = _params_meta(params, height, width, seed)
    if any(meta.get(k) != v for k, v in want.items()):
        return False
    if meta.get("bytes") != path.stat().st_size:
        return False
    if verify:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                h.update(block)
        return h.hexdigest() == meta.get("sha256")
    return True


def build_one(
    job: Job, kitti_root: str, out: str, params: SimParams, height: int, width: int, seed: int
) -> dict[str, Any]:
    """Simulate one (drive, camera) stream; returns its sidecar content."""
    out_p = Path(out)
    path = job.stream_path(out_p)
    sidecar_path(path).unlink(missing_ok=True)  # not finished until the new sidecar lands
    for stale in path.parent.glob(".stream.*.part"):  # left by an interrupted run of this job
        stale.unlink(missing_ok=True)
    ids = kitti.list_frame_ids(kitti_root, job.drive, job.cam)
    frames = iter_frames(kitti.image_dir(kitti_root, job.drive, job.cam), height=height, width=width)
    extra = _params_meta(params, height, width, seed)
    extra.update({"sequence": job.drive, "camera": job.cam})
    return simulate_to_file(
        frames,
        path,
        params,
        seed=seed,
        sequence=sequence_key(job.drive, job.cam),
        source=f"{job.drive}/image_{job.cam}",
        extra_meta=extra,
        frame_ids=ids,
    )


def write_manifest(out: Path, params: SimParams, height: int, width: int, seed: int) -> dict[str, Any]:
    """Rewrite ``OUT/manifest.json`` from every finished stream under ``out``."""
    entries = []
    for sc in sorted(out.glob("*/*/spike_*/stream.json")):
        meta = read_sidecar(sc)
        dat = sc.with_suffix(".dat")
        if not meta or not dat.is_file() or meta.get("bytes") != dat.stat().st_size:
            continue
        entries.append(
            {
                "sequence": meta.get("sequence"),
                "camera": meta.get("camera"),
                "path": str(dat.relative_to(out)),
                "rgb_frames": meta.get("rgb_frames"),
                "planes": meta.get("frames"),
                "bytes": meta.get("bytes"),
                "sha256": meta.get("sha256"),
                "seed": meta.get("seed"),
            }
        )
    manifest = {
        "format": MANIFEST_FORMAT,
        "r2sdepth_version": __version__,
        "height": height,
        "width": width,
        "build_seed": seed,
        "rate_hz": params.rate_hz,
        "simulator": {"model": "integrate-and-fire", **params.to_dict()},
        "sequences": len({e["sequence"] for e in entries}),
        "streams": len(entries),
        "rgb_frames": sum(e["rgb_frames"] or 0 for e in entries),
        "bytes": sum(e["bytes"] or 0 for e in entries),
        "entries": entries,
    }
    write_json_atomic(out / "manifest.json", manifest)
    return manifest


def build_spike_kitti(
    kitti_root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    cameras: list[str] | None = None,
    height: int = 192,
    width: int = 640,
    params: SimParams | None = None,
    seed: int = 0,
    workers: int = 1,
    shard: str | None = None,
    sequences: str | os.PathLike | None = None,
    verify: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Build (or resume) Spike-KITTI; returns a summary with the manifest."""
    kitti_root, out = Path(kitti_root), Path(out)
    params = params or SimParams()
    seqs = read_sequence_list(sequences) if sequences else None
    jobs, skipped = plan_jobs(kitti_root, cameras or ["02", "03"], seqs)
    i, n = parse_shard(shard)
    jobs = jobs[i::n]
    out.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not is_finished(j, out, params, height, width, seed, verify)]
    done_before = len(jobs) - len(todo)
    bar = None
    if progress:
        bar = tqdm(total=len(jobs), initial=done_before, unit="stream", desc="spike-kitti")
    try:
        if workers <= 1:
            for j in todo:
                build_one(j, str(kitti_root), str(out), params, height, width, seed)
                if bar is not None:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                futs = [
                    ex.submit(build_one, j, str(kitti_root), str(out), params, height, width, seed)
                    for j in todo
                ]
                for f in as_completed(futs):
                    f.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    manifest = write_manifest(out, params, height, width, seed)
    return {
        "built": len(todo),
        "skipped_finished": done_before,
        "missing_cameras": skipped,
        "shard": f"{i}/{n}",
        "manifest": manifest,
    }


# --- the torch Dataset ---------------------------------------------------------------------------


class SpikeKittiDataset:
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
    """

    def __init__(
        self,
        root: str | os.PathLike,
        split: str | os.PathLike | list,
        *,
        height: int = DataConfig.height,
        width: int = DataConfig.width,
        context: tuple[int, ...] | None = None,
        window: int = DataConfig.window,
        align: str = DataConfig.align,
        spike_root: str | os.PathLike | None = None,
        sim: dict[str, Any] | None = None,
        seed: int = TrainConfig.seed,
        augment: bool = False,
        with_gt: bool = False,
        gt_source: str = DataConfig.gt_source,
        need_rgb: bool = True,
        need_spikes: bool = True,
        stereo: bool = False,
        travel: bool = False,
        transport: str = "plain",
    ) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise R2SDepthError(f"{self.root}: data root not found")
        self.samples = kitti.read_split(split) if not isinstance(split, list) else split
        self.h, self.w = int(height), int(width)
        if self.h % 32 or self.w % 32:
            raise R2SDepthError(f"training size {self.h}x{self.w} must be a multiple of 32")
        self.context = tuple(DataConfig().context if context is None else context)
        self.window, self.align = int(window), align
        self.spike_root = Path(spike_root) if spike_root else None
        self.sim = SimParams(**(sim or {}))
        self.seed = seed
        self.augment, self.with_gt = augment, with_gt
        self.gt_source = kitti.resolve_gt_source(self.root, gt_source) if with_gt else gt_source
        self.need_rgb, self.need_spikes = need_rgb, need_spikes
        self.stereo, self.travel = bool(stereo), bool(travel)
        if transport not in TRANSPORTS:
            raise R2SDepthError(f"transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}")
        self.transport = transport
        self.drive_options = DriveOptions(
            root=self.root,
            height=self.h,
            width=self.w,
            window=self.window,
            align=align,
            spike_root=self.spike_root,
            sim=self.sim,
            seed=seed,
            gt_source=self.gt_source,
        )
        self._positions: dict[str, Any] = {}
        self._stereo_T: dict[tuple[str, str], Any] = {}
        self._K: dict[tuple[str, str], Any] = {}
        self._kinds: dict[str, DriveKind] = {}
        if self.spike_root is None and align != "end":
            raise R2SDepthError("on-the-fly spike simulation supports align='end' only")
        if self.sim.camera_rate_hz and align != "end":
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

    def _travel(self, drive: str, cam: str, frame: int):
        """Distances (metres) from frame t to each context frame ``t + o`` (nearest existing
        frame at a drive's ends), from :func:`r2sdepth.data.kitti.drive_positions`."""

        if drive not in self._positions:
            ids = self._frame_ids(drive, cam)
            self._positions[drive] = (
                kitti.drive_positions(self.root, drive),
                {f: k for k, f in enumerate(ids)},
            )
        pos, idx = self._positions[drive]
        if pos is None:
            raise R2SDepthError(
                f"{self.root / drive}: loss.velocity_weight / known_speed need the camera's "
                "motion (poses.txt or oxts/data)"
            )

        def at(f: int):
            k = idx[self._nearest(drive, cam, f)]
            if k >= len(pos):
                raise R2SDepthError(f"{self.root / drive}: {len(pos)} poses for {len(idx)} frames")
            return pos[k]

        return np.array([np.linalg.norm(at(frame + o) - at(frame)) for o in self.context], np.float32)

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
            spk = spk[..., ::-1] if flip else spk
            if device:
                out[transport.PACKED_KEY] = torch.from_numpy(transport.pack_spikes(spk))
            else:
                out["spikes"] = torch.from_numpy(np.ascontiguousarray(spk))
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
            out["travel"] = torch.from_numpy(self._travel(s.drive, cam, s.frame))
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
