"""Where the inputs of ``r2sdepth infer`` come from: one small class per recording kind.

Every kind answers the same questions, so :func:`r2sdepth.infer.run_infer` holds no ``if kind``
chains: the output size ``hw`` ``(H, W)``, the planes per second ``rate_hz``, the camera
``intrinsics`` (``[3, 3]`` pixels at ``hw``, or None), how many outputs there will be (``count``;
None for a recording still being written), and :meth:`InferSource.items`, which yields one
:class:`Item` per output in order: its name, the spike window ``[T, H, W]`` (uint8 0/1, oldest
plane first), the RGB frame ``[H, W, 3]`` (uint8) and ground-truth depth ``[H, W]`` (metres)
where the kind has them.

Kinds (:data:`SOURCES`, first match wins): a spike ``.dat`` stream (:class:`StreamSource`); one
being written (:class:`FollowSource`, ``--follow``); a rig sequence with ``calib.yaml``
(:class:`RigSource`); a folder of images or a video (:class:`FrameSource`: spikes simulated
from the frames with the checkpoint's camera model). A new kind is one class with ``accepts``
and ``__init__(path, options)`` and one line in :data:`SOURCES`.
"""

from __future__ import annotations

import os
import time
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from r2sdepth.data.rig import RigSequence
from r2sdepth.errors import R2SDepthError, R2SDepthWarning
from r2sdepth.frames import iter_frames, list_frames
from r2sdepth.spike.io import SpikeStream, warn_layout
from r2sdepth.spike.simulate import SimParams, simulate_to_file


@dataclass
class Item:
    """One output: ``name`` (file stem), ``spikes`` ``[T, H, W]`` uint8, ``rgb`` ``[H, W, 3]``
    uint8, ``gt`` ``[H, W]`` metres (0 = none); each None where the kind or modality has none."""

    name: str
    spikes: np.ndarray | None = None
    rgb: np.ndarray | None = None
    gt: np.ndarray | None = None
    arrived: float | None = None  # time.monotonic() when a followed window was complete on disk
    index: int | None = None  # frame index (frames, rigs)


@dataclass
class SourceOptions:
    """What a source needs to know. ``window``: planes per window; ``need_spikes`` / ``need_rgb``:
    what the model (and the animation) will read; ``stride_planes`` (streams) / ``stride_frames``
    (frames, rigs): spacing of outputs (None: the window / 1); ``stream_kw``: :class:`SpikeStream`
    options (geometry, bit order, header bytes...); ``sim``: the checkpoint's camera model and
    ``seed`` for inputs whose spikes are simulated into ``out/stream.dat``; ``idle_timeout`` /
    ``poll``: seconds a followed recording may stay unchanged / between looks at it."""

    window: int
    need_spikes: bool = True
    need_rgb: bool = False
    stride_planes: int | None = None
    stride_frames: int | None = None
    stream_kw: dict[str, Any] = field(default_factory=dict)
    sim: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    out: Path | None = None
    follow: bool = False
    idle_timeout: float = 10.0
    poll: float = 0.05


class InferSource(ABC):
    """The interface (see the module docstring). ``kind`` names it in ``summary.json``;
    ``modalities``: the model paths this kind can feed (None: any)."""

    kind: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...] | None] = None
    hw: tuple[int, int]
    rate_hz: float
    intrinsics: np.ndarray | None = None
    count: int | None = None
    gt_available: bool = False
    #: spikes from a camera (their rate is checked against the model's), not simulated for it
    recorded: ClassVar[bool] = True

    @classmethod
    @abstractmethod
    def accepts(cls, path: Path, follow: bool) -> bool:
        """Whether ``path`` is this kind (``follow``: the user asked to follow a growing file)."""

    @abstractmethod
    def items(self) -> Iterator[Item]:
        """One :class:`Item` per output, in order."""

    def stride(self) -> dict[str, int]:
        """How outputs are spaced, for ``summary.json``."""
        return {"frames": 1}

    def close(self) -> None:  # noqa: B027 - optional hook: sources without open files release nothing
        """Release files."""


def _stream_warnings(stream: SpikeStream) -> None:
    warn_layout(stream)
    if stream.ignored_bytes:
        warnings.warn(
            f"{stream.path}: the last {stream.ignored_bytes} bytes (an incomplete plane) were ignored",
            R2SDepthWarning,
            stacklevel=3,
        )


class StreamSource(InferSource):
    """A finished spike ``.dat`` recording: windows of ``window`` planes every ``stride_planes``,
    named by the window's end plane ``{t1:06d}``."""

    kind = "stream"
    modalities = ("spike", "rgb-tfp", "rgb-tfi")

    @classmethod
    def accepts(cls, path: Path, follow: bool) -> bool:
        return not follow and path.suffix.lower() == ".dat"

    def __init__(self, path: Path, opts: SourceOptions) -> None:
        if opts.stride_frames is not None:
            raise R2SDepthError(
                "--stride-frames applies to folders and videos; windows of a spike stream are "
                "spaced by --stride-planes"
            )
        self.stream = SpikeStream(path, **opts.stream_kw)
        _stream_warnings(self.stream)
        self.window, self.step = opts.window, int(opts.stride_planes or opts.window)
        n = len(self.stream)
        if self.window > n:
            raise R2SDepthError(f"{path}: window {self.window} is longer than the stream ({n} planes)")
        self.starts = list(range(0, n - self.window + 1, self.step))
        self.hw, self.rate_hz, self.count = (
            (self.stream.height, self.stream.width),
            self.stream.rate_hz,
            len(self.starts),
        )

    def items(self) -> Iterator[Item]:
        for t0 in self.starts:
            yield Item(f"{t0 + self.window:06d}", spikes=self.stream.read(t0, t0 + self.window))

    def stride(self) -> dict[str, int]:
        return {"planes": self.step}

    def close(self) -> None:
        self.stream.close()


class FollowSource(StreamSource):
    """A spike ``.dat`` still being written (a camera recording to disk): each window is yielded
    as soon as its last plane is complete on disk; ends after ``idle_timeout`` seconds without a
    new plane (or when the caller stops iterating, e.g. on Ctrl-C). The geometry must come from
    the options or a sidecar; a sidecar's ``frames`` count is ignored (the file grows)."""

    kind = "follow"

    @classmethod
    def accepts(cls, path: Path, follow: bool) -> bool:
        return follow

    def __init__(self, path: Path, opts: SourceOptions) -> None:  # noqa: D107 - see class
        if path.suffix.lower() != ".dat":
            raise R2SDepthError(f"--follow reads a spike .dat being written, not {path}")
        if opts.stride_frames is not None:
            raise R2SDepthError("--stride-frames applies to folders and videos; use --stride-planes")
        self.path, self.opts = path, opts
        self.window, self.step = opts.window, int(opts.stride_planes or opts.window)
        self.stream = self._wait_open()
        self.hw, self.rate_hz, self.count = (self.stream.height, self.stream.width), self.stream.rate_hz, None
        # (time.monotonic(), whole planes on disk) each time the file was seen to grow: a window's
        # arrival is the first look that found its last plane, so a follower that falls behind
        # reports the real (growing) latency, not the time it took to predict one window
        self._seen: deque[tuple[float, int]] = deque([(time.monotonic(), len(self.stream))])

    def _wait_open(self) -> SpikeStream:
        """Open once the first whole plane is on disk (the file may not exist yet)."""
        t_last = time.monotonic()
        while True:
            try:
                return SpikeStream(self.path, allow_partial=True, **self._kw())
            except R2SDepthError as e:
                msg = str(e)
                if (
                    "no such spike stream" not in msg
                    and "empty spike stream" not in msg
                    and "bytes per plane" not in msg
                ):
                    raise
            if time.monotonic() - t_last > self.opts.idle_timeout:
                raise R2SDepthError(
                    f"{self.path}: no whole plane appeared within {self.opts.idle_timeout:g} s "
                    "(--idle-timeout)"
                )
            time.sleep(self.opts.poll)

    def _kw(self) -> dict[str, Any]:
        return {k: v for k, v in self.opts.stream_kw.items() if k != "allow_partial"}

    def _reopen(self) -> None:
        """Map the planes written since the last look (a sidecar ``frames`` count is not checked)."""
        n_old = len(self.stream)
        size = self.path.stat().st_size
        if size // self.stream.plane_stride <= n_old:
            return
        self.stream.close()
        meta_frames = None
        try:
            self.stream = SpikeStream(self.path, allow_partial=True, **self._kw())
        except R2SDepthError as e:
            if "its sidecar says" not in str(e):
                raise
            meta_frames = str(e)
        if meta_frames:
            raise R2SDepthError(
                f"{self.path}: its sidecar fixes the number of planes; a followed recording "
                "must not carry 'frames'"
            )

    def _look(self) -> None:
        """Note the whole planes on disk now (one ``stat``; the file is not reread)."""
        n = self.path.stat().st_size // self.stream.plane_stride
        if n > self._seen[-1][1]:
            self._seen.append((time.monotonic(), n))

    def _arrival(self, end: int) -> float:
        """When plane ``end`` (exclusive) was first seen on disk; older looks are dropped."""
        while len(self._seen) > 1 and self._seen[1][1] <= end:
            self._seen.popleft()
        first = self._seen[0] if self._seen[0][1] >= end or len(self._seen) == 1 else self._seen[1]
        return first[0]

    def items(self) -> Iterator[Item]:
        t0, idle_since = 0, time.monotonic()
        while True:
            self._look()
            if t0 + self.window <= len(self.stream):
                arrived = self._arrival(t0 + self.window)
                yield Item(
                    f"{t0 + self.window:06d}", spikes=self.stream.read(t0, t0 + self.window), arrived=arrived
                )
                t0 += self.step
                idle_since = time.monotonic()
                continue
            if time.monotonic() - idle_since > self.opts.idle_timeout:
                return
            time.sleep(self.opts.poll)
            self._reopen()


class RigSource(InferSource):
    """A rig sequence (``calib.yaml``; :mod:`r2sdepth.data.rig`): per RGB frame the recorded
    spike window ending at its timestamp, RGB warped into the spike camera, ``depth/`` as ground
    truth when every frame has one. Outputs in the spike camera's frame and resolution."""

    kind = "rig"

    @classmethod
    def accepts(cls, path: Path, follow: bool) -> bool:
        return path.is_dir() and (path / "calib.yaml").is_file()

    def __init__(self, path: Path, opts: SourceOptions) -> None:

        if opts.stride_planes is not None:
            raise R2SDepthError(
                "--stride-planes applies to spike streams; outputs of a rig sequence are "
                "spaced by --stride-frames"
            )
        self.rig = RigSequence(path)
        self.opts = opts
        self.hw = tuple(self.rig.calib.spike_size)  # type: ignore[assignment]
        self.rate_hz = self.rig.stream.rate_hz
        self.intrinsics = np.asarray(self.rig.K, np.float64)
        ends = [int(e) for e in self.rig.window_ends()]
        idx = [
            i for i in range(len(self.rig)) if ends[i] - opts.window >= 0 and ends[i] <= len(self.rig.stream)
        ]
        self.idx = idx[:: int(opts.stride_frames or 1)]
        if not self.idx:
            raise R2SDepthError(f"{path}: no RGB frame has a {opts.window}-plane spike window in the stream")
        self.count = len(self.idx)
        self.gt_available = all((path / "depth" / f"{i:06d}.npy").is_file() for i in self.idx)

    def items(self) -> Iterator[Item]:
        o = self.opts
        for i in self.idx:
            yield Item(
                f"{i:06d}",
                spikes=self.rig.window(i, o.window) if o.need_spikes else None,
                rgb=self.rig.rgb_in_spike_camera(i) if o.need_rgb else None,
                gt=self.rig.depth(i) if self.gt_available and o.need_rgb else None,
                index=i,
            )

    def stride(self) -> dict[str, int]:
        return {"frames": int(self.opts.stride_frames or 1)}


class FrameSource(InferSource):
    """A folder of images or a video at its own size. Spike models get spikes simulated from the
    frames with the checkpoint's camera model (``out/stream.dat``); the first outputs are the
    first frames that have a whole window behind them. Outputs are named by the images' stems
    (``1.png`` -> ``1``), a video's by the frame index ``{i:06d}``."""

    kind = "frames"
    recorded = False

    @classmethod
    def accepts(cls, path: Path, follow: bool) -> bool:
        return True

    def __init__(self, path: Path, opts: SourceOptions) -> None:
        if opts.stride_planes is not None:
            raise R2SDepthError(
                "--stride-planes applies to spike streams; outputs of a folder or video are "
                "spaced by --stride-frames"
            )
        self.opts = opts
        self.frames = list(iter_frames(path))  # native size: outputs at the input's resolution
        n = len(self.frames)
        if n < 2 and opts.need_spikes:
            raise R2SDepthError(f"{path}: at least two frames are needed to simulate spikes")
        self.hw = self.frames[0].shape[:2]
        sim = SimParams(**{k: v for k, v in opts.sim.items() if k in SimParams.__dataclass_fields__})
        self.rate_hz = sim.rate_hz
        self.stream: SpikeStream | None = None
        first = 0
        if opts.need_spikes:
            if (n - 1) * sim.planes_per_frame < opts.window:
                raise R2SDepthError(
                    f"{path}: {n} frames x {sim.planes_per_frame} planes per frame "
                    f"hold no {opts.window}-plane window"
                )
            assert opts.out is not None
            opts.out.mkdir(parents=True, exist_ok=True)
            simulate_to_file(self.frames, opts.out / "stream.dat", sim, seed=opts.seed, source=str(path))
            self.stream = SpikeStream(opts.out / "stream.dat")
            first = next((i for i in range(n) if self.stream.frame_plane_index(i) >= opts.window), n)
        self.idx = list(range(first, n, int(opts.stride_frames or 1)))
        if not self.idx:
            raise R2SDepthError(f"{path}: {n} frames hold no {opts.window}-plane window")
        self.count = len(self.idx)
        stems = [f.stem for f in list_frames(path)] if path.is_dir() else []
        # outputs keep the images' names (1.png -> depth/1.npy); a video's frames are numbered
        self.names = stems if len(set(stems)) == n else [f"{i:06d}" for i in range(n)]

    def items(self) -> Iterator[Item]:
        for i in self.idx:
            spk = self.stream.window_for_frame(i, self.opts.window) if self.stream is not None else None
            yield Item(self.names[i], spikes=spk, rgb=np.asarray(self.frames[i]), index=i)

    def stride(self) -> dict[str, int]:
        return {"frames": int(self.opts.stride_frames or 1)}

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()


#: the recording kinds, tried in order (the first whose ``accepts`` is true is used)
SOURCES: list[type[InferSource]] = [FollowSource, StreamSource, RigSource, FrameSource]


def source_kind(path: str | os.PathLike, follow: bool = False) -> type[InferSource]:
    """The class for ``path`` (see :data:`SOURCES`); construct it with ``(Path(path), options)``."""
    p = Path(path)
    for cls in SOURCES:
        if cls.accepts(p, follow):
            return cls
    raise R2SDepthError(f"{p}: not a spike stream, rig sequence, image folder or video")  # pragma: no cover


def open_source(path: str | os.PathLike, opts: SourceOptions) -> InferSource:
    """The source for ``path`` (see :data:`SOURCES`)."""
    return source_kind(path, opts.follow)(Path(path), opts)
