"""RGB frames stored once at the training size (``r2sdepth cache-frames``, ``data.frame_cache``).

A training sample reads three RGB frames; decoding and resizing a KITTI PNG costs more than the
rest of a built-stream sample. The cache holds, per drive and camera, every frame as the data set
would make it (the recording kind's own decode and resize, so the pixels are the same bytes) in one
uint8 array ``[N, H, W, 3]`` read by memory map:

``CACHE/<date>/<drive>_sync/image_<cam>/<H>x<W>.npy`` and, written last (the completion marker),
``<H>x<W>.json``: the frame ids in array order and the native ``(H, W)`` of the frames.

A cache whose frame ids differ from the drive's frames on disk is refused (stale: run
``cache-frames`` again), never read in part. :func:`r2sdepth.data.drives.cache_frames` writes the caches
of a data root with each drive's recording kind (this module does not import the kinds: they read it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from r2sdepth.atomic import atomic_path, write_json_atomic
from r2sdepth.data import kitti
from r2sdepth.errors import R2SDepthError


def cache_paths(cache: str | os.PathLike, drive: str, cam: str, size: tuple[int, int]) -> tuple[Path, Path]:
    """The ``(.npy, .json)`` of one drive's camera at ``size`` ``(H, W)`` under ``cache``."""
    folder = Path(cache) / drive / f"image_{kitti.cam_index(cam)}"
    stem = f"{size[0]}x{size[1]}"
    return folder / f"{stem}.npy", folder / f"{stem}.json"


class FrameCache:
    """The cached frames of one drive's camera: ``image(frame)`` -> float32 ``[H, W, 3]`` in [0, 1]
    and the native ``(H, W)``, as the recording kind's own ``image`` returns them."""

    def __init__(self, cache: str | os.PathLike, drive: str, cam: str, size: tuple[int, int], ids: list[int]):
        arr_p, meta_p = cache_paths(cache, drive, cam, size)
        if not meta_p.is_file() or not arr_p.is_file():
            raise R2SDepthError(
                f"{meta_p.parent}: no {size[0]}x{size[1]} frame cache for this drive "
                f"(r2sdepth cache-frames --size {size[0]}x{size[1]}, or data.frame_cache null)"
            )
        try:
            meta = json.loads(meta_p.read_text())
            self.frames = np.load(arr_p, mmap_mode="r")
            cached_ids = [int(i) for i in meta["frames"]]
            self.native = (int(meta["native"][0]), int(meta["native"][1]))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as e:
            raise R2SDepthError(f"{arr_p}: unreadable frame cache ({e}); run cache-frames again") from None
        if self.frames.dtype != np.uint8 or self.frames.shape != (len(cached_ids), *size, 3):
            raise R2SDepthError(
                f"{arr_p}: holds {self.frames.dtype} {tuple(self.frames.shape)}, expected uint8 "
                f"({len(cached_ids)}, {size[0]}, {size[1]}, 3); run cache-frames again"
            )
        if cached_ids != list(ids):
            raise R2SDepthError(
                f"{meta_p}: stale frame cache ({len(cached_ids)} frames cached, {len(ids)} on disk or "
                "other ids); run cache-frames again"
            )
        self.index = {f: k for k, f in enumerate(cached_ids)}

    def image(self, frame: int) -> tuple[np.ndarray, tuple[int, int]]:
        return np.asarray(self.frames[self.index[frame]], dtype=np.float32) / 255.0, self.native


def write_cache(
    cache: str | os.PathLike,
    drive: str,
    cam: str,
    size: tuple[int, int],
    ids: list[int],
    image: Callable[[int], tuple[np.ndarray, tuple[int, int]]],
) -> Path:
    """Write the cache of one drive's camera from ``image(frame)`` (the recording kind's own reader:
    float32 ``[H, W, 3]`` in [0, 1] whose values are bytes / 255, and the native size); atomic,
    the JSON last. Frames of different native sizes are refused."""
    arr_p, meta_p = cache_paths(cache, drive, cam, size)
    native = None
    with atomic_path(arr_p) as tmp:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(ids), *size, 3))
        for k, f in enumerate(ids):
            img, nat = image(f)
            if native is not None and nat != native:
                raise R2SDepthError(
                    f"{drive} camera {cam}: frame {f} is {nat[0]}x{nat[1]}, frame {ids[0]} "
                    f"{native[0]}x{native[1]}: a drive's frames must share one size"
                )
            native = nat
            out[k] = np.rint(img * 255.0).astype(np.uint8)
        out.flush()
        del out
    write_json_atomic(meta_p, {"frames": list(ids), "native": list(native or (0, 0))})
    return arr_p
