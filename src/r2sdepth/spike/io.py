"""Spike-camera ``.dat`` streams: reading (memory-mapped windows), writing, sidecar metadata.

File format (the PKU spike camera's own, verified on the real recordings in
``shared/data/spike_real`` and ``shared/data/spike_sim_reds``):

* no header; spike planes ("frames") back to back;
* one plane is ``ceil(H * W_stored / 8)`` bytes; when ``H * W_stored`` is not a multiple of 8 the
  plane is zero-padded to whole bytes (each plane starts on a byte boundary);
* pixel ``k`` of a plane, counted row-major over the *stored* rows, is bit ``k % 8`` of byte
  ``k // 8``, least-significant bit first (``bitorder="little"``; ``"big"`` for toolkits that
  write MSB first);
* rows are stored bottom to top (``flipud=True`` flips them back to an upright image); there is
  no horizontal mirror;
* some raw recordings carry 16 extra "head" columns in every stored row (the first-generation
  250 x 400 camera's raw files, 416 bits a row); ``head_cols`` drops them, so the stored row is
  ``width + head_cols`` pixels wide. Despite the name they are the *last* columns of the stored
  row (indices 400-415): SpikeCV's ``with_head`` deletes columns 400-415 of its 416-wide decode,
  and Spike-Zoo's ``remove_head`` keeps ``[:, :, :-16]``; r2sdepth follows both.

Variants other cameras and toolkits write, each an explicit parameter (and sidecar key):

* ``header_bytes``: bytes before every plane (some camera files carry a 16-byte header per
  plane); skipped, never decoded.
* ``stored_height`` / ``stored_width`` with ``row0`` / ``col0``: the stored plane is larger than
  the image (e.g. a 1000 x 1000 sensor written as 1024-column rows, with rows removed): the
  image is the ``height x width`` block at ``(row0, col0)`` of the upright stored plane.
  ``head_cols`` is the shorthand ``stored_width = width + head_cols``, ``col0 = 0``.
* ``allow_partial``: a recording whose last plane is incomplete (a camera stopped mid-write) is
  read as its whole planes (``size // plane stride``, as other toolkits do) and the ignored bytes
  are reported (``SpikeStream.ignored_bytes``); without it such a file is refused.

A sidecar JSON beside the stream (``X.dat`` -> ``X.json``) records the geometry and how the
stream was made (rate, bit order, flip, planes per RGB frame, simulator parameters, seed,
source). It is read when present; otherwise height and width must be given.
"""

from __future__ import annotations

import json
import math
import os
import stat as _stat
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from r2sdepth.atomic import tmp_path_for, write_json_atomic
from r2sdepth.errors import R2SDepthError, R2SDepthWarning

#: Default readout rate of the first-generation PKU spike camera (planes per second).
DEFAULT_RATE_HZ = 20000.0
#: Geometry of the first-generation PKU spike camera (rows, columns).
PKU_GEN1_SHAPE = (250, 400)
SIDECAR_FORMAT = "r2sdepth-spike/1"


def _popcount_table() -> np.ndarray:
    """[256] uint8: number of set bits of each byte value."""
    return np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint8)


def frame_nbytes(height: int, width: int, head_cols: int = 0) -> int:
    """Bytes per spike plane of a ``height x (head_cols + width)`` sensor (padded to bytes)."""
    return (height * (width + head_cols) + 7) // 8


def sidecar_path(path: str | os.PathLike) -> Path:
    """``X.dat`` -> ``X.json``."""
    return Path(path).with_suffix(".json")


MAX_SIDECAR_BYTES = 64 << 20  # a sidecar is metadata; anything larger is not one


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar metadata of stream ``path``, or ``None`` when there is none. Values of the
    keys r2sdepth reads are validated (:func:`validate_sidecar`); a sidecar that is not a regular
    file (FIFO, device), not UTF-8, nested absurdly deep or larger than 64 MB is refused."""
    sc = sidecar_path(path)
    try:
        st = sc.stat()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise R2SDepthError(f"{sc}: cannot read sidecar ({e.strerror or e})") from e

    if not _stat.S_ISREG(st.st_mode):
        raise R2SDepthError(f"{sc}: sidecar is not a regular file")
    if st.st_size > MAX_SIDECAR_BYTES:
        raise R2SDepthError(f"{sc}: sidecar of {st.st_size} bytes is too large to be metadata")
    try:
        meta = json.loads(sc.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise R2SDepthError(f"{sc}: sidecar is not UTF-8 text ({e.reason} at byte {e.start})") from e
    except RecursionError as e:
        raise R2SDepthError(f"{sc}: sidecar JSON is nested too deeply") from e
    except (OSError, json.JSONDecodeError) as e:
        raise R2SDepthError(f"{sc}: unreadable sidecar JSON ({e})") from e
    if not isinstance(meta, dict):
        raise R2SDepthError(f"{sc}: sidecar JSON must be an object")
    validate_sidecar(meta, sc)
    return meta


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_sidecar(meta: dict[str, Any], where: str | os.PathLike = "sidecar") -> dict[str, Any]:
    """Check the types and ranges of the keys whose meaning r2sdepth relies on (one error
    each): ``height``/``width`` positive integers, ``head_cols``/``frames`` integers >= 0,
    ``rate_hz`` a finite positive number, ``bitorder`` little/big, ``flipud`` a JSON boolean
    (the string "false" is not), ``frame_plane_index`` a list or object of integers >= 0."""

    def bad(key: str, why: str) -> R2SDepthError:
        return R2SDepthError(f"{where}: {key} {why}, got {meta[key]!r:.80}")

    for key in ("height", "width"):
        if key in meta and not (_is_int(meta[key]) and meta[key] > 0):
            raise bad(key, "must be a positive integer")
    for key in (
        "head_cols",
        "frames",
        "bytes",
        "header_bytes",
        "stored_height",
        "stored_width",
        "row0",
        "col0",
    ):
        if key in meta and not (_is_int(meta[key]) and meta[key] >= 0):
            raise bad(key, "must be an integer >= 0")
    if "rate_hz" in meta:
        v = meta["rate_hz"]
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
            raise bad("rate_hz", "must be a finite number > 0")
    if "bitorder" in meta and meta["bitorder"] not in ("little", "big"):
        raise bad("bitorder", 'must be "little" or "big"')
    if "flipud" in meta and not isinstance(meta["flipud"], bool):
        raise bad("flipud", "must be true or false (a JSON boolean, not a string)")
    if "frame_plane_index" in meta:
        fpi = meta["frame_plane_index"]
        vals = fpi.values() if isinstance(fpi, dict) else fpi if isinstance(fpi, list) else None
        if vals is None or not all(_is_int(v) and v >= 0 for v in vals):
            raise bad("frame_plane_index", "must be a list or object of integers >= 0")
    return meta


def decode_planes(
    packed: np.ndarray,
    height: int,
    width: int,
    *,
    bitorder: str = "little",
    flipud: bool = True,
    head_cols: int = 0,
    stored_height: int | None = None,
    stored_width: int | None = None,
    row0: int = 0,
    col0: int = 0,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Unpack planes ``packed`` (uint8 ``[T, nbytes]``) into uint8 0/1 ``[T, H, W]``, upright.

    The stored plane is ``stored_height x stored_width`` pixels (default ``height x (width +
    head_cols)``); the image is its ``height x width`` block at ``(row0, col0)`` after the flip.

    When stored rows are whole bytes (``W_stored % 8 == 0``, true of real cameras), the
    vertical flip is applied to the packed rows (1/8 of the data) before one flat
    ``np.unpackbits`` pass, which runs at several GB/s of packed data per core; otherwise the
    planes are unpacked and then flipped.
    """
    if bitorder not in ("little", "big"):
        raise ValueError(f"bitorder must be 'little' or 'big', got {bitorder!r}")
    packed = np.asarray(packed)
    t = packed.shape[0]
    hst = int(stored_height or height)
    wst = int(stored_width or width + head_cols)
    if not (0 <= row0 and row0 + height <= hst and 0 <= col0 and col0 + width <= wst):
        raise ValueError(
            f"image {height}x{width} at ({row0}, {col0}) does not fit the stored {hst}x{wst} plane"
        )
    nbytes = (hst * wst + 7) // 8
    if packed.ndim != 2 or packed.shape[1] != nbytes:
        raise ValueError(f"packed planes must be [T, {nbytes}], got {list(packed.shape)}")
    if wst % 8 == 0:
        rows = packed.reshape(t, hst, wst // 8)
        if flipud:
            rows = rows[:, ::-1, :]
        if (hst, row0) != (height, 0):  # rows outside the image are not decoded
            rows = rows[:, row0 : row0 + height]
        pix = np.unpackbits(np.ascontiguousarray(rows).reshape(-1), bitorder=bitorder)
        pix = pix.reshape(t, height, wst)
    else:
        pix = np.unpackbits(packed, axis=1, bitorder=bitorder)[:, : hst * wst]
        pix = pix.reshape(t, hst, wst)
        if flipud:
            pix = pix[:, ::-1, :]
        pix = pix[:, row0 : row0 + height]
    if (wst, col0) != (width, 0):  # e.g. the head columns that end each stored row (SpikeCV's with_head)
        pix = pix[:, :, col0 : col0 + width]
    if out is not None:
        out[...] = pix
        return out
    return np.ascontiguousarray(pix)


def encode_planes(spikes: np.ndarray, *, bitorder: str = "little", flipud: bool = True) -> np.ndarray:
    """Pack 0/1 planes ``[T, H, W]`` (any dtype, nonzero = spike) into uint8 ``[T, nbytes]``."""
    spikes = np.asarray(spikes)
    if spikes.ndim != 3:
        raise ValueError(f"spikes must be [T, H, W], got shape {list(spikes.shape)}")
    if bitorder not in ("little", "big"):
        raise ValueError(f"bitorder must be 'little' or 'big', got {bitorder!r}")
    t, h, w = spikes.shape
    if flipud:
        spikes = spikes[:, ::-1, :]
    bits = spikes.reshape(t, h * w)
    if bits.dtype != np.bool_ and bits.dtype != np.uint8:
        bits = bits != 0
    elif bits.dtype == np.uint8 and bits.size and bits.max(initial=0) > 1:
        bits = bits != 0
    return np.packbits(bits, axis=1, bitorder=bitorder)


class SpikeStream:
    """A spike ``.dat`` stream, memory-mapped; slicing decodes only the requested planes.

    ``stream[t0:t1]`` -> uint8 ``[T, H, W]`` (0/1, upright); ``stream[t]`` -> ``[H, W]``.
    Geometry, rate, bit order and flip come from the sidecar JSON when present; explicit
    arguments override it (and must agree with the file size). ``rate_hz`` is planes per second.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        height: int | None = None,
        width: int | None = None,
        *,
        bitorder: str | None = None,
        flipud: bool | None = None,
        head_cols: int | None = None,
        rate_hz: float | None = None,
        header_bytes: int | None = None,
        stored_height: int | None = None,
        stored_width: int | None = None,
        row0: int | None = None,
        col0: int | None = None,
        allow_partial: bool = False,
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise R2SDepthError(f"{self.path}: no such spike stream")
        if self.path.is_dir():
            raise R2SDepthError(f"{self.path}: is a folder, not a spike .dat stream")
        self.meta: dict[str, Any] = read_sidecar(self.path) or {}
        self._geometry(height, width)
        self._layout(bitorder, flipud, head_cols, header_bytes, stored_height, stored_width, row0, col0)
        self.rate_hz = float(rate_hz if rate_hz is not None else self.meta.get("rate_hz", DEFAULT_RATE_HZ))
        if not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise R2SDepthError(f"{self.path}: rate must be a finite number > 0, got {self.rate_hz}")
        self._map_planes(allow_partial)

    def _geometry(self, height: int | None, width: int | None) -> None:
        """The image size: the arguments, else the sidecar's; they must agree when both are given."""
        m = self.meta
        for name, given in (("height", height), ("width", width)):
            if given is not None and m.get(name) is not None and int(given) != int(m[name]):
                raise R2SDepthError(
                    f"{self.path}: stream geometry {height}x{width} does not match its sidecar's "
                    f"{m.get('height')}x{m.get('width')} (drop the geometry options or fix the sidecar)"
                )
        self.height = int(height if height is not None else m.get("height", 0)) or None
        self.width = int(width if width is not None else m.get("width", 0)) or None
        if self.height is None or self.width is None:
            raise R2SDepthError(
                f"{self.path}: unknown geometry: no sidecar {sidecar_path(self.path).name} "
                "with height/width; give the sensor size (--sensor 250x400 on the command line)"
            )
        if self.height <= 0 or self.width <= 0:
            raise R2SDepthError(f"{self.path}: invalid geometry {self.height}x{self.width}")

    def _layout(
        self,
        bitorder: str | None,
        flipud: bool | None,
        head_cols: int | None,
        header_bytes: int | None,
        stored_height: int | None,
        stored_width: int | None,
        row0: int | None,
        col0: int | None,
    ) -> None:
        """How a plane is stored (the variant): bit order, row order, head columns, per-plane header,
        the stored plane's size and where the image sits in it; the arguments, else the sidecar's."""
        m = self.meta
        self.bitorder = bitorder or m.get("bitorder", "little")
        if self.bitorder not in ("little", "big"):
            raise R2SDepthError(f"{self.path}: bitorder must be 'little' or 'big'")
        self.flipud = bool(flipud if flipud is not None else m.get("flipud", True))

        def opt(name: str, given: Any, default: Any) -> int:
            v = given if given is not None else m.get(name, default)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise R2SDepthError(f"{self.path}: {name} must be an integer >= 0, got {v!r}")
            return int(v)

        self.head_cols = opt("head_cols", head_cols, 0)
        self.header_bytes = opt("header_bytes", header_bytes, 0)
        self.row0, self.col0 = opt("row0", row0, 0), opt("col0", col0, 0)
        self.stored_height = opt("stored_height", stored_height, 0) or self.height
        self.stored_width = opt("stored_width", stored_width, 0) or self.width + self.head_cols
        if self.head_cols and self.stored_width != self.width + self.head_cols:
            raise R2SDepthError(
                f"{self.path}: head_cols {self.head_cols} and stored_width {self.stored_width} "
                f"disagree (head_cols means stored_width = width + head_cols)"
            )
        if self.row0 + self.height > self.stored_height or self.col0 + self.width > self.stored_width:
            raise R2SDepthError(
                f"{self.path}: the {self.height}x{self.width} image at row {self.row0}, column {self.col0} "
                "does "
                f"not fit the stored {self.stored_height}x{self.stored_width} plane"
            )

    def _map_planes(self, allow_partial: bool) -> None:
        """Memory-map the file's whole planes; a size that is no whole number of planes is an error
        (``allow_partial``: the remainder is ignored and counted in ``ignored_bytes``)."""
        m = self.meta
        #: packed bytes of one stored plane (without its header)
        self.frame_nbytes = (self.stored_height * self.stored_width + 7) // 8
        self.plane_stride = self.header_bytes + self.frame_nbytes
        geom = f"{self.stored_height}x{self.stored_width}" + (
            f" + {self.header_bytes} header" if self.header_bytes else ""
        )
        if not self.path.is_file():
            raise R2SDepthError(f"{self.path}: not a regular file")
        size = self.path.stat().st_size
        if size == 0:
            raise R2SDepthError(f"{self.path}: empty spike stream (0 bytes)")
        if self.plane_stride > size:
            raise R2SDepthError(
                f"{self.path}: geometry {geom} needs {self.plane_stride} "
                f"bytes per plane but the file has {size}: wrong geometry or truncated file"
            )
        n, rem = divmod(size, self.plane_stride)
        self.ignored_bytes = 0
        if rem and not allow_partial:
            raise R2SDepthError(
                f"{self.path}: size {size} bytes is not a multiple of the frame size "
                f"{self.plane_stride} bytes ({geom}); {n} whole planes and a remainder of {rem} "
                f"bytes: truncated file or wrong geometry (--allow-partial reads the {n} whole planes)"
            )
        self.ignored_bytes = rem
        if "frames" in m and int(m["frames"]) != n:
            raise R2SDepthError(
                f"{self.path}: holds {n} frames but its sidecar says {m['frames']}: "
                "truncated or mismatched file"
            )
        self._n = n
        self._raw = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(n, self.plane_stride))
        self._mm = self._raw[:, self.header_bytes :] if self.header_bytes else self._raw

    def _decode(self, packed: np.ndarray) -> np.ndarray:
        return decode_planes(
            packed,
            self.height,
            self.width,
            bitorder=self.bitorder,
            flipud=self.flipud,
            stored_height=self.stored_height,
            stored_width=self.stored_width,
            row0=self.row0,
            col0=self.col0,
        )

    @property
    def cropped(self) -> bool:
        """Whether the stored plane holds pixels outside the image (head columns, removed rows)."""
        return (self.stored_height, self.stored_width) != (self.height, self.width)

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(T, H, W)``."""
        return (self._n, self.height, self.width)

    @property
    def duration_s(self) -> float:
        """Duration in seconds at ``rate_hz``."""
        return self._n / self.rate_hz

    def read(self, t0: int, t1: int) -> np.ndarray:
        """Planes ``t0 <= t < t1`` as uint8 ``[t1 - t0, H, W]``; out-of-range raises."""
        if not (0 <= t0 <= t1 <= self._n):
            raise R2SDepthError(
                f"{self.path}: window [{t0}, {t1}) out of range for a stream of {self._n} frames"
            )
        return self._decode(self._mm[t0:t1])

    def read_packed(self, t0: int, t1: int) -> np.ndarray:
        """The raw packed bytes of planes ``[t0, t1)`` (uint8 ``[T, frame_nbytes]``, a view)."""
        if not (0 <= t0 <= t1 <= self._n):
            raise R2SDepthError(
                f"{self.path}: window [{t0}, {t1}) out of range for a stream of {self._n} frames"
            )
        return self._mm[t0:t1]

    def __getitem__(self, key: int | slice) -> np.ndarray:
        if isinstance(key, slice):
            start, stop, step = key.indices(self._n)
            if step == 1:
                return self.read(start, max(start, stop))
            idx = np.arange(start, stop, step)
            return self._decode(self._mm[idx])
        if isinstance(key, (int, np.integer)):
            k = int(key)
            if k < 0:
                k += self._n
            if not 0 <= k < self._n:
                raise R2SDepthError(f"{self.path}: frame {key} out of range for a stream of {self._n} frames")
            return self.read(k, k + 1)[0]
        raise TypeError(f"SpikeStream indices must be int or slice, not {type(key).__name__}")

    def windows(
        self, length: int, stride: int | None = None, *, start: int = 0, drop_last: bool = True
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Iterate ``(t0, window [length, H, W])`` with ``t0 = start, start + stride, ...``."""
        if length <= 0:
            raise ValueError("window length must be positive")
        stride = stride or length
        if length > self._n:
            raise R2SDepthError(f"{self.path}: window length {length} exceeds the stream ({self._n} frames)")
        t0 = start
        while t0 < self._n:
            t1 = t0 + length
            if t1 > self._n:
                if drop_last:
                    return
                t1 = self._n
            yield t0, self.read(t0, t1)
            t0 += stride

    def frame_plane_index(self, frame: int) -> int:
        """Plane index at which RGB frame ``frame`` is reached (simulated streams only).

        Plane ``p`` integrates light during ``(p, p + 1]`` in plane units; frame ``frame`` is
        reached at the end of plane ``frame_plane_index(frame) - 1``.
        """
        fpi = self.meta.get("frame_plane_index")
        if fpi is None:
            raise R2SDepthError(f"{self.path}: sidecar has no frame_plane_index: not aligned with RGB frames")
        key = str(frame)
        if isinstance(fpi, dict):
            if key not in fpi:
                raise R2SDepthError(f"{self.path}: RGB frame {frame} is not in this stream")
            return int(fpi[key])
        if not 0 <= frame < len(fpi):
            raise R2SDepthError(f"{self.path}: RGB frame {frame} is not in this stream")
        return int(fpi[frame])

    def window_for_frame(self, frame: int, length: int, *, align: str = "end") -> np.ndarray:
        """The spike window for RGB frame ``frame``: ``[length, H, W]``, oldest plane first.

        ``align="end"``: the ``length`` planes that end when the frame is reached (the planes
        between frame ``t-1`` and ``t`` when ``length`` equals planes per frame).
        ``align="center"``: centred on the frame's instant. Raises when the window would
        leave the stream.
        """
        t0 = window_start(self.frame_plane_index(frame), length, align)
        if t0 < 0 or t0 + length > self._n:
            raise R2SDepthError(
                f"{self.path}: the {length}-plane window ({align}) of RGB frame {frame} "
                f"[{t0}, {t0 + length}) leaves the stream of {self._n} planes"
            )
        return self.read(t0, t0 + length)

    def plane_counts(self, chunk: int = 1024) -> np.ndarray:
        """Spikes per plane, int64 ``[N]``: set bits counted in the packed bytes chunk by chunk
        (memory bounded by ``chunk`` planes; head columns excluded)."""
        counts = np.empty(self._n, dtype=np.int64)
        pop = _popcount_table()
        for t0 in range(0, self._n, chunk):
            t1 = min(t0 + chunk, self._n)
            if self.cropped:
                counts[t0:t1] = self.read(t0, t1).sum(axis=(1, 2), dtype=np.int64)
            else:
                counts[t0:t1] = pop[self._mm[t0:t1]].sum(axis=1, dtype=np.int64)
        return counts

    def stats(self, chunk: int = 1024) -> dict[str, Any]:
        """Summary: frames, duration, mean firing rate and per-plane rate min/max."""
        counts = self.plane_counts(chunk)
        rates = counts / float(self.height * self.width)
        return {
            "path": str(self.path),
            "frames": self._n,
            "height": self.height,
            "width": self.width,
            "rate_hz": self.rate_hz,
            "duration_s": self.duration_s,
            "mean_rate": float(rates.mean()),
            "frame_rate_min": float(rates.min()),
            "frame_rate_max": float(rates.max()),
            "bitorder": self.bitorder,
            "flipud": self.flipud,
            "head_cols": self.head_cols,
            "header_bytes": self.header_bytes,
            "stored_size": [self.stored_height, self.stored_width],
            "image_offset": [self.row0, self.col0],
            "ignored_bytes": self.ignored_bytes,
        }

    def close(self) -> None:
        """Release the memory map."""
        mm = getattr(self, "_raw", None)
        if mm is not None:
            mm._mmap.close()  # type: ignore[attr-defined]
            self._mm = self._raw = None  # type: ignore[assignment]

    def __enter__(self) -> SpikeStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"SpikeStream({str(self.path)!r}, frames={self._n}, height={self.height}, "
            f"width={self.width}, rate_hz={self.rate_hz:g})"
        )


def window_start(frame_plane: int, length: int, align: str = "end") -> int:
    """First plane of a ``length``-plane window for a frame reached at plane ``frame_plane``."""
    if align == "end":
        return frame_plane - length
    if align == "center":
        return frame_plane - length // 2
    raise ValueError(f"align must be 'end' or 'center', got {align!r}")


class SpikeWriter:
    """Append spike planes to a ``.dat`` stream; atomic (temporary name, renamed on close).

    Use as a context manager: on an exception the partial file is deleted and nothing
    appears at ``path``. ``meta`` (plus geometry and bit order) is written to the sidecar
    JSON after the stream is in place.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        height: int,
        width: int,
        *,
        bitorder: str = "little",
        flipud: bool = True,
        rate_hz: float = DEFAULT_RATE_HZ,
        meta: dict[str, Any] | None = None,
        sidecar: bool = True,
    ) -> None:
        if bitorder not in ("little", "big"):
            raise ValueError(f"bitorder must be 'little' or 'big', got {bitorder!r}")
        self.path = Path(path)
        self.height, self.width = int(height), int(width)
        self.bitorder, self.flipud, self.rate_hz = bitorder, bool(flipud), float(rate_hz)
        self.meta = dict(meta or {})
        self.sidecar = sidecar
        self.frames = 0
        self._tmp = tmp_path_for(self.path)
        self._fh = open(self._tmp, "wb")  # noqa: SIM115 (closed in close/abort)

    def append(self, spikes: np.ndarray) -> None:
        """Append planes ``[T, H, W]`` (or one ``[H, W]``); nonzero = spike."""
        spikes = np.asarray(spikes)
        if spikes.ndim == 2:
            spikes = spikes[None]
        if spikes.ndim != 3 or spikes.shape[1:] != (self.height, self.width):
            raise R2SDepthError(
                f"{self.path}: chunk of shape {list(spikes.shape)} does not match the stream "
                f"geometry [T, {self.height}, {self.width}]"
            )
        self.append_packed(encode_planes(spikes, bitorder=self.bitorder, flipud=self.flipud))

    def append_packed(self, packed: np.ndarray) -> None:
        """Append already packed planes ``[T, frame_nbytes]`` (same conventions as this file)."""
        nb = frame_nbytes(self.height, self.width)
        if packed.ndim != 2 or packed.shape[1] != nb:
            raise R2SDepthError(f"{self.path}: packed chunk must be [T, {nb}]")
        self._fh.write(memoryview(np.ascontiguousarray(packed, dtype=np.uint8)).cast("B"))
        self.frames += packed.shape[0]

    def sidecar_meta(self) -> dict[str, Any]:
        """The sidecar content as it will be written."""
        meta = {
            "format": SIDECAR_FORMAT,
            "height": self.height,
            "width": self.width,
            "frames": self.frames,
            "rate_hz": self.rate_hz,
            "bitorder": self.bitorder,
            "flipud": self.flipud,
            "head_cols": 0,
        }
        meta.update(self.meta)
        return meta

    def close(self) -> None:
        """Finish: flush, rename into place, write the sidecar."""
        if self._fh.closed:
            return
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        # Stream first, sidecar last: a complete sidecar beside a stream marks it finished
        # (the Spike-KITTI builder resumes on that).
        os.replace(self._tmp, self.path)
        if self.sidecar:
            write_json_atomic(sidecar_path(self.path), self.sidecar_meta())

    def abort(self) -> None:
        """Drop the partial output."""
        if not self._fh.closed:
            self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> SpikeWriter:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def read_dat(
    path: str | os.PathLike,
    height: int | None = None,
    width: int | None = None,
    *,
    bitorder: str | None = None,
    flipud: bool | None = None,
    head_cols: int | None = None,
    **variant: Any,
) -> np.ndarray:
    """Read a whole ``.dat`` stream into uint8 ``[T, H, W]`` (0/1, upright). ``variant``: the other
    layout options of :class:`SpikeStream` (``header_bytes``, ``stored_height``, ``stored_width``,
    ``row0``, ``col0``, ``allow_partial``).

    Every option left at ``None`` comes from the sidecar JSON when there is one, else the PKU
    camera's convention (little-endian bits, rows bottom to top, no head columns): the same
    rules as :class:`SpikeStream`, which this calls. For long streams prefer
    :class:`SpikeStream`, which decodes only the windows asked for.
    """
    s = SpikeStream(path, height, width, bitorder=bitorder, flipud=flipud, head_cols=head_cols, **variant)
    try:
        return s.read(0, len(s))
    finally:
        s.close()


def write_dat(
    path: str | os.PathLike,
    spikes: np.ndarray,
    *,
    bitorder: str = "little",
    flipud: bool = True,
    rate_hz: float = DEFAULT_RATE_HZ,
    meta: dict[str, Any] | None = None,
    sidecar: bool = True,
) -> Path:
    """Write spike planes ``[T, H, W]`` (nonzero = spike) to ``path`` atomically.

    Writes the sidecar JSON too unless ``sidecar=False`` (a bare camera-style file).
    """
    spikes = np.asarray(spikes)
    if spikes.ndim != 3 or spikes.shape[0] == 0:
        raise R2SDepthError(f"{path}: spikes must be a non-empty [T, H, W] array, got {list(spikes.shape)}")
    with SpikeWriter(
        path,
        spikes.shape[1],
        spikes.shape[2],
        bitorder=bitorder,
        flipud=flipud,
        rate_hz=rate_hz,
        meta=meta,
        sidecar=sidecar,
    ) as w:
        w.append(spikes)
    return Path(path)


def fit_spatial(x: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """``[..., h, w]`` -> ``[..., H, W]`` in its own dtype (no float copy of a spike window).

    ``pad``: repeat the last row/column (bottom/right) up to ``size`` (the prediction is cropped
    back); ``resize``: nearest neighbour, source index ``floor(i * h / H)`` as torch's ``nearest``
    (keeps spike planes binary; the prediction is resized back).
    """
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if mode == "pad":
        return np.pad(x, [(0, 0)] * (x.ndim - 2) + [(0, size[0] - h), (0, size[1] - w)], mode="edge")
    rows = np.floor(np.arange(size[0]) * (h / size[0])).astype(np.int64)
    cols = np.floor(np.arange(size[1]) * (w / size[1])).astype(np.int64)
    return x[..., rows[:, None], cols]


#: layouts tried by :func:`probe_layouts` (rows, columns, stored rows, stored columns): the PKU gen-1
#: camera with and without its head columns, newer large sensors written at 1024 columns, common sizes
KNOWN_LAYOUTS: tuple[tuple[int, int, int, int], ...] = (
    (250, 400, 250, 400),
    (250, 400, 250, 416),
    (1000, 1000, 1000, 1024),
    (1000, 1000, 1000, 1000),
    (256, 256, 256, 256),
    (480, 640, 480, 640),
    (720, 1280, 720, 1280),
)


def layout_plausibility(img: np.ndarray) -> float:
    """How much a firing-rate image ``[H, W]`` looks like a picture (higher is more plausible):
    the smaller of the correlations between vertically and horizontally adjacent pixels (natural
    images: about 0.7-1; a wrong width shears the rows apart: near 0 or below), divided by the
    *byte seam* when it exceeds 1: the mean step between columns ``8k + 7`` and ``8k + 8`` over the
    mean step elsewhere (1 for the right bit order; a reversed bit order puts pixels 7 apart side by
    side at every byte boundary: about 5 on the real gen-1 recording)."""
    x = np.asarray(img, np.float64)

    def corr(a: np.ndarray, b: np.ndarray) -> float:
        if np.ptp(a) == 0 or np.ptp(b) == 0:  # constant: no structure (rounding would say 1)
            return 0.0
        a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
        d = np.sqrt((a * a).sum() * (b * b).sum())
        return float((a * b).sum() / d) if d > 0 else 0.0

    c = min(corr(x[1:], x[:-1]), corr(x[:, 1:], x[:, :-1]))
    step = np.abs(np.diff(x, axis=1))
    seam_cols = np.arange(step.shape[1]) % 8 == 7
    inner = step[:, ~seam_cols].mean() if step.size else 0.0
    seam = step[:, seam_cols].mean() / inner if inner > 0 and seam_cols.any() else 1.0
    return float(c / seam if c > 0 and seam > 1 else c)


def probe_layouts(
    path: str | os.PathLike, extra: list[tuple[int, int]] | None = None, planes: int = 64
) -> list[dict[str, Any]]:
    """The layouts an unknown ``.dat`` file could have, most plausible first.

    Tries :data:`KNOWN_LAYOUTS` and ``extra`` sizes (both ways round), with and without a 16-byte
    header per plane and both bit orders; keeps those whose plane size divides the file size and
    scores each by :func:`layout_plausibility` of the firing rate over its first ``planes`` planes.
    Whether rows are stored bottom to top cannot be told from the bytes (all are reported with the
    PKU convention, ``flipud=True``)."""
    path = Path(path)
    size = path.stat().st_size
    cands = list(KNOWN_LAYOUTS) + [(w, h, ws, hs) for h, w, hs, ws in KNOWN_LAYOUTS if hs == h and ws == w]
    for h, w in extra or []:
        cands += [(h, w, h, w), (w, h, w, h)]
    seen, rows = set(), []
    for h, w, hs, ws in cands:
        for header in (0, 16):
            for order in ("little", "big"):
                key = (h, w, hs, ws, header, order)
                stride = header + (hs * ws + 7) // 8
                if key in seen or size % stride or size < stride:
                    continue
                seen.add(key)
                with SpikeStream(
                    path,
                    h,
                    w,
                    stored_height=hs,
                    stored_width=ws,
                    header_bytes=header,
                    bitorder=order,
                    rate_hz=DEFAULT_RATE_HZ,
                ) as st:
                    rate = st.read(0, min(planes, len(st))).mean(axis=0)
                    n = len(st)
                rows.append(
                    {
                        "height": h,
                        "width": w,
                        "stored_height": hs,
                        "stored_width": ws,
                        "header_bytes": header,
                        "bitorder": order,
                        "planes": n,
                        "plausibility": layout_plausibility(rate),
                    }
                )
    return sorted(rows, key=lambda r: -r["plausibility"])


#: below this :func:`layout_plausibility` a stream's geometry is warned about
PLAUSIBLE = 0.3


def warn_layout(stream: SpikeStream, planes: int = 64) -> float:
    """Warn (``R2SDepthWarning``) when a stream without a sidecar decodes to something that does not
    look like a picture (geometry the wrong way round, wrong width, bit order); returns the score."""
    if stream.meta or len(stream) == 0:
        return 1.0
    score = layout_plausibility(stream.read(0, min(planes, len(stream))).mean(axis=0))
    if score < PLAUSIBLE:
        warnings.warn(
            f"{stream.path}: decoded as {stream.height}x{stream.width} ({stream.bitorder} bit order) it does "
            f"not look like a picture (plausibility {score:.2f} < {PLAUSIBLE}): wrong geometry or variant? "
            f"r2sdepth info --probe {stream.path} lists the likely ones",
            R2SDepthWarning,
            stacklevel=2,
        )
    return score
