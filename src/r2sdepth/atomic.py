"""Atomic file output (standard library only).

Every file the tool writes goes to a temporary name in the destination folder and is renamed
into place only when complete, so an interrupted run never leaves a half-written output.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_MODE = 0o666 & ~_umask()


def tmp_path_for(path: str | os.PathLike, *, keep_suffix: bool = False) -> Path:
    """A fresh temporary path beside ``path`` (same folder, so the rename is atomic), with the
    permissions a plain ``open(path, "w")`` would give (mkstemp's are owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if keep_suffix:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.part-", suffix=path.suffix, dir=path.parent)
    else:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.fchmod(fd, _MODE)
    os.close(fd)
    return Path(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path; on success rename it to ``path``, on error delete it.

    The temporary name keeps the destination's suffix so that writers which pick a format
    from the extension (PIL, imageio, numpy) still do so.
    """
    tmp_p = tmp_path_for(path, keep_suffix=True)
    try:
        yield tmp_p
        os.replace(tmp_p, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_p.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def is_temporary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is one of our temporary files (``.NAME.part-XXXX.ext`` / ``.NAME.XXXX.part``)."""
    name = Path(path).name
    return name.startswith(".") and ".part" in name


def remove_stale_temporaries(folder: str | os.PathLike) -> int:
    """Delete temporary files an interrupted (killed) run left under ``folder``; returns how many."""
    n = 0
    for p in Path(folder).rglob(".*.part*"):
        if p.is_file() and is_temporary(p):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                n += 1
    return n


def save_png(path: str | os.PathLike, img: Any) -> Path:
    """Save uint8 ``[H, W]``/``[H, W, 3]`` or uint16 ``[H, W]`` as PNG, atomically."""

    with atomic_path(path) as tmp:
        Image.fromarray(np.asarray(img)).save(tmp, format="PNG")
    return Path(path)
