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

A sidecar JSON beside the stream (``X.dat`` -> ``X.json``) records the geometry and how the
stream was made (rate, bit order, flip, planes per RGB frame, simulator parameters, seed,
source). It is read when present; otherwise height and width must be given.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from r2sdepth.atomic import tmp_path_for, write_json_atomic
from r2sdepth.errors import R2SDepthError

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
    import stat as _stat

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
    import math

    def bad(key: str, why: str) -> R2SDepthError:
        return R2SDepthError(f"{where}: {key} {why}, got {meta[key]!r:.80}")

    for key in ("height", "width"):
        if key in meta and not (_is_int(meta[key]) and meta[key] > 0):
            raise bad(key, "must be a positive integer")
    for key in ("head_cols", "frames", "bytes"):
        if key in meta and not (_is_int(meta[key]) and meta[key] >= 0):
            raise bad(key, "must be an integer >= 0")
    if "rate_hz" in meta:
        v = meta["rate_hz"]
        if not (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0):
            raise bad("rate_hz", "must be a finite number > 0")
    if "bitorder" in meta and meta["bitorder"] not in ("little", "big"):
        raise bad("bitorder", "must be \"little\" or \"big\"")
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
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Unpack planes ``packed`` (uint8 ``[T, nbytes]``) into uint8 0/1 ``[T, H, W]``, upright.

    When stored rows are whole bytes (``W_stored % 8 == 0``, true of real cameras), the
    vertical flip is applied to the packed rows (1/8 of the data) before one flat
    ``np.unpackbits`` pass, which runs at several GB/s of packed data per core; otherwise the
    planes are unpacked and then flipped.
    """
    if bitorder not in ("little", "big"):
        raise ValueError(f"bitorder must be 'little' or 'big', got {bitorder!r}")
    packed = np.asarray(packed)
    t = packed.shape[0]
    wst = width + head_cols
    nbytes = frame_nbytes(height, width, head_cols)
    if packed.ndim != 2 or packed.shape[1] != nbytes:
        raise ValueError(f"packed planes must be [T, {nbytes}], got {list(packed.shape)}")
    if wst % 8 == 0:
        rows = packed.reshape(t, height, wst // 8)
        if flipud:
            rows = rows[:, ::-1, :]
        pix = np.unpackbits(np.ascontiguousarray(rows).reshape(-1), bitorder=bitorder)
        pix = pix.reshape(t, height, wst)
    else:
        pix = np.unpackbits(packed, axis=1, bitorder=bitorder)[:, : height * wst]
        pix = pix.reshape(t, height, wst)
        if flipud:
            pix = pix[:, ::-1, :]
    if head_cols:  # the extra columns end each stored row (SpikeCV's with_head, Spike-Zoo's remove_head)
        pix = pix[:, :, :width]
    if out is not None:
        out[...] = pix
        return out
    return np.ascontiguousarray(pix)


def encode_planes(
    spikes: np.ndarray, *, bitorder: str = "little", flipud: bool = True
) -> np.ndarray:
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
    ) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise R2SDepthError(f"{self.path}: no such spike stream")
        if self.path.is_dir():
            raise R2SDepthError(f"{self.path}: is a folder, not a spike .dat stream")
        self.meta: dict[str, Any] = read_sidecar(self.path) or {}
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
        self.bitorder = bitorder or m.get("bitorder", "little")
        if self.bitorder not in ("little", "big"):
            raise R2SDepthError(f"{self.path}: bitorder must be 'little' or 'big'")
        self.flipud = bool(flipud if flipud is not None else m.get("flipud", True))
        self.head_cols = int(head_cols if head_cols is not None else m.get("head_cols", 0))
        if self.head_cols < 0:
            raise R2SDepthError(f"{self.path}: head_cols must be >= 0, got {self.head_cols}")
        self.rate_hz = float(rate_hz if rate_hz is not None else m.get("rate_hz", DEFAULT_RATE_HZ))
        if not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise R2SDepthError(f"{self.path}: rate must be a finite number > 0, got {self.rate_hz}")
        self.frame_nbytes = frame_nbytes(self.height, self.width, self.head_cols)
        if not self.path.is_file():
            raise R2SDepthError(f"{self.path}: not a regular file")
        size = self.path.stat().st_size
        if size == 0:
            raise R2SDepthError(f"{self.path}: empty spike stream (0 bytes)")
        if self.frame_nbytes > size:
            raise R2SDepthError(
                f"{self.path}: geometry {self.height}x{self.width + self.head_cols} needs {self.frame_nbytes} "
                f"bytes per plane but the file has {size}: wrong geometry or truncated file")
        n, rem = divmod(size, self.frame_nbytes)
        if rem:
            raise R2SDepthError(
                f"{self.path}: size {size} bytes is not a multiple of the frame size "
                f"{self.frame_nbytes} bytes ({self.height}x{self.width + self.head_cols} pixels); "
                f"{n} whole frames and a remainder of {rem} bytes: truncated file or wrong geometry"
            )
        if "frames" in m and int(m["frames"]) != n:
            raise R2SDepthError(
                f"{self.path}: holds {n} frames but its sidecar says {m['frames']}: "
                "truncated or mismatched file"
            )
        self._n = n
        self._mm = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(n, self.frame_nbytes))

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
        return decode_planes(
            self._mm[t0:t1], self.height, self.width,
            bitorder=self.bitorder, flipud=self.flipud, head_cols=self.head_cols,
        )

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
            return decode_planes(
                self._mm[idx], self.height, self.width,
                bitorder=self.bitorder, flipud=self.flipud, head_cols=self.head_cols,
            )
        if isinstance(key, (int, np.integer)):
            k = int(key)
            if k < 0:
                k += self._n
            if not 0 <= k < self._n:
                raise R2SDepthError(
                    f"{self.path}: frame {key} out of range for a stream of {self._n} frames"
                )
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
            raise R2SDepthError(
                f"{self.path}: window length {length} exceeds the stream ({self._n} frames)"
            )
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
            raise R2SDepthError(
                f"{self.path}: sidecar has no frame_plane_index: not aligned with RGB frames"
            )
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
            if self.head_cols:
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
        }

    def close(self) -> None:
        """Release the memory map."""
        mm = getattr(self, "_mm", None)
        if mm is not None:
            mm._mmap.close()  # type: ignore[attr-defined]
            self._mm = None  # type: ignore[assignment]

    def __enter__(self) -> "SpikeStream":
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

    def __enter__(self) -> "SpikeWriter":
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
) -> np.ndarray:
    """Read a whole ``.dat`` stream into uint8 ``[T, H, W]`` (0/1, upright).

    Every option left at ``None`` comes from the sidecar JSON when there is one, else the PKU
    camera's convention (little-endian bits, rows bottom to top, no head columns): the same
    rules as :class:`SpikeStream`, which this calls. For long streams prefer
    :class:`SpikeStream`, which decodes only the windows asked for.
    """
    s = SpikeStream(path, height, width, bitorder=bitorder, flipud=flipud, head_cols=head_cols)
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
        path, spikes.shape[1], spikes.shape[2], bitorder=bitorder, flipud=flipud,
        rate_hz=rate_hz, meta=meta, sidecar=sidecar,
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
