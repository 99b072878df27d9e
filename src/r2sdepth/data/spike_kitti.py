"""Spike-KITTI: spike streams simulated from KITTI raw drives (builder).

Output layout::

    OUT/<date>/<drive>_sync/spike_02/stream.dat   (+ stream.json sidecar)
    OUT/<date>/<drive>_sync/spike_03/stream.dat
    OUT/manifest.json

Each stream holds a pre-roll and one chunk of P planes per frame of the drive (the window
definition of :mod:`r2sdepth.spike.simulate`: every frame, frame 0 included, has a window, and
the window of ``(build seed, drive, camera, frame)`` is byte-identical to the on-the-fly mode of
:class:`SplitDataset` with ``data.seed`` = the build seed); its sidecar records the
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from r2sdepth import __version__
from r2sdepth.atomic import write_json_atomic
from r2sdepth.config import DataConfig, TrainConfig
from r2sdepth.data import kitti
from r2sdepth.data.drives import sequence_key
from r2sdepth.errors import R2SDepthError
from r2sdepth.frames import iter_frames
from r2sdepth.spike.io import read_sidecar, sidecar_path
from r2sdepth.spike.simulate import SimParams, simulate_to_file

MANIFEST_FORMAT = "r2sdepth-spike-kitti/1"


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


@dataclass(frozen=True)
class StreamSpec:
    """How every stream of a build is made: frames resized to ``height`` x ``width`` (pixels), the
    simulator's ``params`` and the build ``seed`` (defaults: the config schema's ``data.height``,
    ``data.width`` and ``seed``). A finished stream whose sidecar records another spec is rebuilt."""

    height: int = DataConfig.height
    width: int = DataConfig.width
    params: SimParams = field(default_factory=SimParams)
    seed: int = TrainConfig.seed

    def meta(self) -> dict[str, Any]:
        """What a stream's sidecar and the manifest record of the spec."""
        return {
            "simulator": {"model": "integrate-and-fire", **self.params.to_dict()},
            "height": self.height,
            "width": self.width,
            "build_seed": self.seed,
        }


def is_finished(job: Job, out: Path, spec: StreamSpec, verify: bool = False) -> bool:
    """Whether ``job``'s stream is complete and made with these parameters."""
    path = job.stream_path(out)
    try:
        meta = read_sidecar(path)
    except R2SDepthError:
        return False
    if meta is None or not path.is_file():
        return False
    want = spec.meta()
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


def build_one(job: Job, kitti_root: str, out: str, spec: StreamSpec) -> dict[str, Any]:
    """Simulate one (drive, camera) stream; returns its sidecar content."""
    out_p = Path(out)
    path = job.stream_path(out_p)
    sidecar_path(path).unlink(missing_ok=True)  # not finished until the new sidecar lands
    for stale in path.parent.glob(".stream.*.part"):  # left by an interrupted run of this job
        stale.unlink(missing_ok=True)
    ids = kitti.list_frame_ids(kitti_root, job.drive, job.cam)
    frames = iter_frames(
        kitti.image_dir(kitti_root, job.drive, job.cam), height=spec.height, width=spec.width
    )
    extra = {**spec.meta(), "sequence": job.drive, "camera": job.cam}
    return simulate_to_file(
        frames,
        path,
        spec.params,
        seed=spec.seed,
        sequence=sequence_key(job.drive, job.cam),
        source=f"{job.drive}/image_{job.cam}",
        extra_meta=extra,
        frame_ids=ids,
    )


def write_manifest(out: Path, spec: StreamSpec) -> dict[str, Any]:
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
        "height": spec.height,
        "width": spec.width,
        "build_seed": spec.seed,
        "rate_hz": spec.params.rate_hz,
        "simulator": spec.meta()["simulator"],
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
    spec: StreamSpec | None = None,
    *,
    cameras: list[str] | None = None,
    workers: int = 1,
    shard: str | None = None,
    sequences: str | os.PathLike | None = None,
    verify: bool = False,
    progress: bool = False,
) -> dict[str, Any]:
    """Build (or resume) Spike-KITTI under ``out``: one stream per (drive, camera) of ``kitti_root``
    (``cameras``: default ``02`` and ``03``; ``sequences``: a split file whose drives are built),
    each made as ``spec`` says (:class:`StreamSpec`); ``shard`` ``"i/n"`` builds every n-th job
    from the i-th (a job of a cluster array), ``workers`` processes in parallel, ``verify`` checks a
    finished stream's SHA-256 before skipping it. Returns a summary with the manifest."""
    kitti_root, out = Path(kitti_root), Path(out)
    spec = StreamSpec() if spec is None else spec
    seqs = read_sequence_list(sequences) if sequences else None
    jobs, skipped = plan_jobs(kitti_root, cameras or ["02", "03"], seqs)
    i, n = parse_shard(shard)
    jobs = jobs[i::n]
    out.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not is_finished(j, out, spec, verify)]
    done_before = len(jobs) - len(todo)
    bar = None
    if progress:
        bar = tqdm(total=len(jobs), initial=done_before, unit="stream", desc="spike-kitti")
    try:
        if workers <= 1:
            for j in todo:
                build_one(j, str(kitti_root), str(out), spec)
                if bar is not None:
                    bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers) as ex:
                futs = [ex.submit(build_one, j, str(kitti_root), str(out), spec) for j in todo]
                for f in as_completed(futs):
                    f.result()
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    manifest = write_manifest(out, spec)
    return {
        "built": len(todo),
        "skipped_finished": done_before,
        "missing_cameras": skipped,
        "shard": f"{i}/{n}",
        "manifest": manifest,
    }
