"""Reading RGB frames: image files, folders of images and videos (torch-free).

Used by the simulator (:mod:`r2sdepth.spike.simulate`), the rig reader, ``infer`` and ``adapt``
alike. Images come back as uint8 RGB ``[H, W, 3]`` (or gray / 16-bit gray, see
:func:`read_image`); videos are read with OpenCV first and imageio's plugins second.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
from PIL import Image, UnidentifiedImageError

from r2sdepth.errors import R2SDepthError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".webp")
MAX_SIDE = 65536  # pixels; refused before any allocation
MAX_PIXELS = 1 << 27  # per frame (134 M pixels): float32 potential, threshold and luminance alone are 1.6 GB
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v", ".mpg", ".mpeg")


def list_frames(folder: str | os.PathLike) -> list[Path]:
    """Image files of a folder in name order; clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise R2SDepthError(f"{folder}: not a folder of images")
    files = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )  # hidden/temporary
    if not files:
        raise R2SDepthError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _resize(img: np.ndarray, height: int | None, width: int | None) -> np.ndarray:
    if height is None and width is None:
        return img

    h, w = img.shape[:2]
    height = height or round(h * width / w)  # type: ignore[operator]
    width = width or round(w * height / h)
    if (h, w) == (height, width):
        return img
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(img, (width, height), interpolation=interp)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as uint8 RGB ``[H, W, 3]``, gray uint8 ``[H, W]``, or for 16-bit files
    gray uint16 ``[H, W]`` (so :func:`luminance` scales it by 65535, not 255); float (mode F)
    images must hold values in [0, 1]. Decompression bombs (PIL's limit) and unreadable files
    are refused with a clear error."""

    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16"):
                return np.asarray(im).astype(np.uint16)
            if im.mode == "I":  # 16-bit PNGs often open as 32-bit integer
                a = np.asarray(im)
                if a.min() < 0 or a.max() > 65535:
                    raise R2SDepthError(f"{path}: integer image with values outside 0..65535")
                return a.astype(np.uint16)
            if im.mode == "F":
                a = np.asarray(im, dtype=np.float32)
                if not np.isfinite(a).all() or a.min() < 0 or a.max() > 1:
                    raise R2SDepthError(f"{path}: float image must hold finite values in [0, 1]")
                return a
            if im.mode not in ("RGB", "L"):
                im = im.convert("RGB")
            return np.asarray(im)
    except Image.DecompressionBombError as e:
        raise R2SDepthError(f"{path}: refused: {e}") from e
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
        raise R2SDepthError(f"{path}: unreadable image ({e.__class__.__name__}: {e})") from e


def iter_frames(
    source: str | os.PathLike, *, height: int | None = None, width: int | None = None
) -> Iterator[np.ndarray]:
    """RGB frames (uint8 ``[H, W, 3]``) of a folder of images or a video file, resized to
    ``height x width`` when given. All frames must share one size."""
    source = Path(source)
    for name, v in (("height", height), ("width", width)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > MAX_SIDE):
            raise R2SDepthError(f"{name} must be an integer between 1 and {MAX_SIDE}, got {v!r}")
    if height and width and height * width > MAX_PIXELS:
        raise R2SDepthError(f"{height}x{width} = {height * width} pixels per frame is more than {MAX_PIXELS}")
    if source.is_dir():
        it: Iterable[tuple[str, np.ndarray]] = ((str(p), read_image(p)) for p in list_frames(source))
    elif source.is_file():
        if source.suffix.lower() in IMAGE_SUFFIXES:
            raise R2SDepthError(f"{source}: a single image is not a video; give a folder of frames")
        it = _video_frames(source)
    else:
        raise R2SDepthError(f"{source}: no such file or folder")
    shape = None
    n = 0
    for name, img in it:
        if shape is None:
            shape = img.shape[:2]
        elif img.shape[:2] != shape:
            raise R2SDepthError(
                f"{name}: frame size {img.shape[1]}x{img.shape[0]} differs from the first "
                f"frame's {shape[1]}x{shape[0]}"
            )
        n += 1
        yield _resize(img, height, width)
    if n == 0:
        raise R2SDepthError(f"{source}: no frames")


def _video_frames(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """RGB frames of a video: OpenCV (a core dependency, with its own FFmpeg) first, imageio's
    plugins for what OpenCV cannot open."""

    cap = cv2.VideoCapture(str(path))
    try:
        ok, frame = cap.read() if cap.isOpened() else (False, None)
        if ok:
            i = 0
            while ok:
                yield f"{path}#{i}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                ok, frame = cap.read()
                i += 1
            return
    finally:
        cap.release()

    try:
        for i, frame in enumerate(iio.imiter(path)):
            yield f"{path}#{i}", np.asarray(frame)
    except (OSError, ValueError, RuntimeError) as e:
        msg = str(e).splitlines()[0]
        raise R2SDepthError(
            f"{path}: unreadable video (OpenCV could not open it; imageio: {msg}; for other containers "
            "install imageio's FFmpeg plugin: pip install 'r2sdepth[video]')"
        ) from e
