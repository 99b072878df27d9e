"""KITTI raw: layout, calibration, velodyne -> depth ground truth, depth PNGs, oxts poses, splits.

Layout (as downloaded, and as ``r2sdepth synth`` writes it)::

    ROOT/<date>/calib_cam_to_cam.txt, calib_velo_to_cam.txt
    ROOT/<date>/<date>_drive_<id>_sync/image_02/data/0000000000.png ...   (image_03: right camera)
    ROOT/<date>/<drive>_sync/image_02/timestamps.txt                     (optional)
    ROOT/<date>/<drive>_sync/velodyne_points/data/0000000000.bin          (float32 x, y, z, r)
    ROOT/<date>/<drive>_sync/oxts/data/0000000000.txt                      (optional)
    ROOT/<date>/<drive>_sync/proj_depth/groundtruth/image_02/*.png         (optional; uint16 / 256)
    ROOT/<date>/<drive>_sync/poses.txt                                     (synthetic scenes only)

Velodyne ground truth follows the protocol of the published KITTI Eigen numbers exactly:
``P_rect_0c @ R_rect_00 @ Tr_velo_to_cam``; points with velodyne ``x < 0`` dropped; pixel
``round(u) - 1, round(v) - 1``; the stored depth is the velodyne forward distance ``x``; when
several points fall in one pixel the nearest wins; image size from ``S_rect_0c``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

from r2sdepth.atomic import save_png, write_bytes_atomic
from r2sdepth.errors import R2SDepthError

SIDES = {"l": "02", "r": "03", "2": "02", "3": "03"}


def read_calib_file(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Parse a KITTI ``key: v1 v2 ...`` calibration file; non-numeric lines are skipped."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: missing calibration file")
    out: dict[str, np.ndarray] = {}
    for line in path.read_text().splitlines():
        if ":" not in line:
            continue
        key, val = line.split(":", 1)
        try:
            out[key.strip()] = np.array([float(x) for x in val.split()], dtype=np.float64)
        except ValueError:
            continue  # e.g. calib_time
    return out


def _need(calib: dict[str, np.ndarray], key: str, n: int, path: Path) -> np.ndarray:
    if key not in calib or calib[key].size != n:
        raise R2SDepthError(f"{path}: missing or malformed '{key}' ({n} numbers expected)")
    return calib[key]


@dataclass
class CamCalib:
    """Rectified calibration of one camera of a KITTI date."""

    P_rect: np.ndarray  # [3, 4] projection of the rectified camera
    R_rect: np.ndarray  # [4, 4] rectifying rotation of camera 00
    size: tuple[int, int]  # (height, width) of the rectified image
    velo_to_cam: np.ndarray | None  # [4, 4] velodyne -> camera 00, when calibrated

    @property
    def K(self) -> np.ndarray:
        """[3, 3] intrinsics of the rectified camera (pixels)."""
        return self.P_rect[:, :3].copy()


def stereo_transform(date_dir: str | os.PathLike, cam: str | int = "02") -> np.ndarray:
    """``[4, 4]`` transform from the rectified camera ``cam`` (02 or 03) to the other colour
    camera of the pair (metres): rectified cameras differ by a translation only,
    ``t_i = K^-1 P_rect_i[:, 3]``, so ``X_other = X_cam + (t_other - t_cam)`` (KITTI: about
    -0.54 m in x from camera 02 to camera 03)."""
    c = cam_index(cam)
    if c not in ("02", "03"):
        raise R2SDepthError(f"stereo pairs are cameras 02 and 03, not {c}")
    other = "03" if c == "02" else "02"
    a, b = load_calib(date_dir, c), load_calib(date_dir, other)
    t = np.linalg.solve(b.K, b.P_rect[:, 3]) - np.linalg.solve(a.K, a.P_rect[:, 3])
    T = np.eye(4)
    T[:3, 3] = t
    return T


def cam_index(cam: str | int) -> str:
    """'02' for camera 2 / 'l'; '03' for camera 3 / 'r'."""
    c = str(cam)
    c = SIDES.get(c, c)
    if c not in ("00", "01", "02", "03"):
        raise R2SDepthError(f"unknown KITTI camera {cam!r} (02/03 or l/r)")
    return c


def load_calib(date_dir: str | os.PathLike, cam: str | int = "02", *, need_velo: bool = False) -> CamCalib:
    """Calibration of camera ``cam`` from ``<date>/calib_cam_to_cam.txt`` (+ ``calib_velo_to_cam``)."""
    date_dir = Path(date_dir)
    c = cam_index(cam)
    p = date_dir / "calib_cam_to_cam.txt"
    cc = read_calib_file(p)
    P = _need(cc, f"P_rect_{c}", 12, p).reshape(3, 4)
    R = np.eye(4)
    R[:3, :3] = _need(cc, "R_rect_00", 9, p).reshape(3, 3)
    s = _need(cc, f"S_rect_{c}", 2, p)
    size = (int(round(s[1])), int(round(s[0])))
    velo = None
    pv = date_dir / "calib_velo_to_cam.txt"
    if pv.is_file():
        vc = read_calib_file(pv)
        velo = np.eye(4)
        velo[:3, :3] = _need(vc, "R", 9, pv).reshape(3, 3)
        velo[:3, 3] = _need(vc, "T", 3, pv)
    elif need_velo:
        raise R2SDepthError(f"{pv}: missing calibration file (needed for velodyne ground truth)")
    return CamCalib(P, R, size, velo)


def load_velodyne(path: str | os.PathLike) -> np.ndarray:
    """Velodyne scan ``[N, 4]`` float32 (x forward, y left, z up in metres; reflectance)."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: missing velodyne scan")
    raw = np.fromfile(path, dtype=np.float32)
    if raw.size % 4:
        raise R2SDepthError(f"{path}: {raw.size} floats is not a multiple of 4 (truncated scan?)")
    return raw.reshape(-1, 4)


def project_velodyne(velo: np.ndarray, calib: CamCalib, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Sparse depth map float32 ``[H, W]`` (metres, 0 = no point) from a velodyne scan.

    ``shape`` defaults to the rectified image size of the calibration (``S_rect``).
    """
    if calib.velo_to_cam is None:
        raise R2SDepthError("velodyne projection needs calib_velo_to_cam.txt")
    h, w = shape or calib.size
    P = calib.P_rect @ calib.R_rect @ calib.velo_to_cam  # [3, 4]
    pts = velo[velo[:, 0] >= 0].astype(np.float64)
    pts[:, 3] = 1.0
    uvz = pts @ P.T
    z = uvz[:, 2]
    ok = z > 0
    u = np.round(uvz[ok, 0] / z[ok]) - 1
    v = np.round(uvz[ok, 1] / z[ok]) - 1
    d = pts[ok, 0]  # the velodyne forward distance, as the published protocol stores
    inb = (u >= 0) & (v >= 0) & (u < w) & (v < h)
    u, v, d = u[inb].astype(np.int64), v[inb].astype(np.int64), d[inb]
    depth = np.full(h * w, np.inf)
    np.minimum.at(depth, v * w + u, d)  # nearest point wins
    depth[~np.isfinite(depth)] = 0
    depth[depth < 0] = 0
    return depth.reshape(h, w).astype(np.float32)


def read_depth_png(path: str | os.PathLike) -> np.ndarray:
    """KITTI depth PNG (uint16, depth x 256, 0 = invalid) -> float32 metres (0 = invalid)."""

    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: missing depth PNG")
    with Image.open(path) as im:
        a = np.asarray(im)
    if a.dtype not in (np.uint16, np.int32) or a.ndim != 2:
        raise R2SDepthError(f"{path}: not a 16-bit depth PNG (dtype {a.dtype}, shape {a.shape})")
    return a.astype(np.float32) / 256.0


def write_depth_png(path: str | os.PathLike, depth: np.ndarray) -> None:
    """Write metres as a KITTI depth PNG (uint16, depth x 256, 0 = invalid), atomically."""

    d = np.asarray(depth, dtype=np.float64)
    d = np.where(np.isfinite(d) & (d > 0), d, 0.0)
    save_png(path, np.clip(np.rint(d * 256.0), 0, 65535).astype(np.uint16))


def scale_intrinsics(K: np.ndarray, from_size: tuple[int, int], to_size: tuple[int, int]) -> np.ndarray:
    """Scale ``[3, 3]`` intrinsics from image size ``(H, W)`` to ``(H', W')`` (pixel-corner
    convention: ``f' = f * s``, ``c' = (c + 0.5) * s - 0.5``)."""
    sy, sx = to_size[0] / from_size[0], to_size[1] / from_size[1]
    K2 = np.array(K, dtype=np.float64, copy=True)
    K2[0, 0] *= sx
    K2[1, 1] *= sy
    K2[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K2[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K2


# --- layout ------------------------------------------------------------------------------------


def find_drives(root: str | os.PathLike) -> list[str]:
    """``<date>/<drive>_sync`` of every drive under ``root`` with an ``image_0X/data`` folder."""
    root = Path(root)
    if not root.is_dir():
        raise R2SDepthError(f"{root}: KITTI root folder not found")
    drives = sorted(
        f"{d.parent.name}/{d.name}"
        for d in root.glob("*/*_sync")
        if any((d / f"image_{c}" / "data").is_dir() for c in ("02", "03"))
    )
    return drives


def image_dir(root: str | os.PathLike, drive: str, cam: str | int = "02") -> Path:
    return Path(root) / drive / f"image_{cam_index(cam)}" / "data"


def list_frame_ids(root: str | os.PathLike, drive: str, cam: str | int = "02") -> list[int]:
    """Frame numbers (file stems) of a drive's camera, sorted."""
    d = image_dir(root, drive, cam)
    if not d.is_dir():
        raise R2SDepthError(f"{d}: no such image folder")
    ids = sorted(
        {int(p.stem) for p in d.iterdir() if p.suffix.lower() in FRAME_SUFFIXES and p.stem.isdigit()}
    )
    if not ids:
        raise R2SDepthError(f"{d}: no PNG or JPEG frames")
    return ids


FRAME_SUFFIXES = (".png", ".jpg", ".jpeg")  # KITTI raw ships PNG; Monodepth2's recipe converts to JPEG


def image_path(root: str | os.PathLike, drive: str, frame: int, cam: str | int = "02") -> Path:
    """The frame's image file: ``NNNNNNNNNN.png``, else ``.jpg`` / ``.jpeg`` (the PNG path when
    none exists, for the error message)."""
    d = image_dir(root, drive, cam)
    for suffix in FRAME_SUFFIXES:
        p = d / f"{frame:010d}{suffix}"
        if p.is_file():
            return p
    return d / f"{frame:010d}.png"


def read_timestamps(path: str | os.PathLike) -> np.ndarray:
    """Seconds (float64) since the first line of a KITTI ``timestamps.txt``."""

    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    t = []
    for ln in lines:
        date, clock = ln.split()
        hms, frac = (clock.split(".") + ["0"])[:2]
        dt = datetime.fromisoformat(f"{date} {hms}")
        t.append(dt.timestamp() + float("0." + frac))
    a = np.array(t)
    return a - a[0] if a.size else a


GT_SOURCES = ("velodyne", "annotated", "exact")


def resolve_gt_source(root: str | os.PathLike, source: str = "auto") -> str:
    """Which ground truth a data root provides, never a mix:

    * ``velodyne``: the Velodyne scan projected into the camera (the Eigen protocol; raw KITTI);
    * ``annotated``: KITTI's improved (depth-completion) maps ``proj_depth/groundtruth``;
    * ``exact``: the rendered depth of r2sdepth's synthetic scenes (a root with ``synth.json``).

    * ``rig``: the depth stored with paired rig sequences (``SEQ/depth/NNNNNN.npy``, spike camera
      frame; a root whose sequences have ``calib.yaml``, see :mod:`r2sdepth.data.rig`).

    ``auto``: ``exact`` for synthetic roots, ``rig`` for rig roots, else ``velodyne`` (annotated
    maps merged into a KITTI root are used only when asked for)."""
    synthetic = (Path(root) / "synth.json").is_file()
    rig = Path(root).is_dir() and any(
        (p / "calib.yaml").is_file() for p in Path(root).iterdir() if p.is_dir()
    )
    if source == "auto":
        return "exact" if synthetic else "rig" if rig else "velodyne"
    if rig != (source == "rig"):
        raise R2SDepthError(
            f"{root}: ground-truth source {source!r} does not fit this root "
            f"({'rig sequences: use rig' if rig else 'no rig sequences here'})"
        )
    if source == "rig":
        return source
    if source not in GT_SOURCES:
        raise R2SDepthError(f"unknown ground-truth source {source!r}; choose auto, {', '.join(GT_SOURCES)}")
    if synthetic != (source == "exact"):
        raise R2SDepthError(
            f"{root}: ground-truth source {source!r} does not fit this root "
            f"({'a synthetic scene: use exact' if synthetic else 'not a synthetic scene'})"
        )
    return source


def gt_depth(
    root: str | os.PathLike, drive: str, frame: int, cam: str | int = "02", source: str = "auto"
) -> np.ndarray:
    """Ground-truth depth of a frame (metres, 0 = invalid) from ``source`` (see
    :func:`resolve_gt_source`); a missing file is an error, never a fallback to another source."""
    c = cam_index(cam)
    src = resolve_gt_source(root, source)
    if src in ("annotated", "exact"):
        png = Path(root) / drive / "proj_depth" / "groundtruth" / f"image_{c}" / f"{frame:010d}.png"
        if not png.is_file():
            raise R2SDepthError(f"no {src} ground truth for {drive} frame {frame}: {png} missing")
        return read_depth_png(png)
    velo = Path(root) / drive / "velodyne_points" / "data" / f"{frame:010d}.bin"
    if not velo.is_file():
        raise R2SDepthError(f"no velodyne ground truth for {drive} frame {frame}: {velo} missing")
    calib = load_calib(Path(root) / drive.split("/")[0], c, need_velo=True)
    return project_velodyne(load_velodyne(velo), calib)


# --- poses -------------------------------------------------------------------------------------


def read_poses(path: str | os.PathLike) -> np.ndarray:
    """``poses.txt`` (12 numbers a line, 3x4 camera-to-world) -> ``[N, 4, 4]``."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: missing poses file")
    a = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if a.shape[1] != 12:
        raise R2SDepthError(f"{path}: expected 12 numbers per line, got {a.shape[1]}")
    out = np.tile(np.eye(4), (a.shape[0], 1, 1))
    out[:, :3, :] = a.reshape(-1, 3, 4)
    return out


def oxts_poses(oxts_dir: str | os.PathLike) -> np.ndarray:
    """IMU poses ``[N, 4, 4]`` (IMU-to-world, world = first IMU pose) from ``oxts/data/*.txt``.

    Mercator projection of lat/lon with the scale of the first frame, altitude as z, rotation
    ``Rz(yaw) Ry(pitch) Rx(roll)``, as in the KITTI raw development kit.
    """
    files = sorted(Path(oxts_dir).glob("*.txt"))
    if not files:
        raise R2SDepthError(f"{oxts_dir}: no oxts packets")
    er = 6378137.0
    packets = np.array([np.loadtxt(f, dtype=np.float64)[:6] for f in files])
    lat, lon, alt, roll, pitch, yaw = packets.T
    scale = np.cos(lat[0] * np.pi / 180.0)
    tx = scale * lon * np.pi * er / 180.0
    ty = scale * er * np.log(np.tan((90.0 + lat) * np.pi / 360.0))
    poses = np.tile(np.eye(4), (len(files), 1, 1))
    for i in range(len(files)):
        cr, sr, cp, sp, cy, sy = (
            np.cos(roll[i]),
            np.sin(roll[i]),
            np.cos(pitch[i]),
            np.sin(pitch[i]),
            np.cos(yaw[i]),
            np.sin(yaw[i]),
        )
        Rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
        Ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
        Rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
        poses[i, :3, :3] = Rz @ Ry @ Rx
        poses[i, :3, 3] = [tx[i], ty[i], alt[i]]
    return np.linalg.inv(poses[0]) @ poses


def drive_motion(root: str | os.PathLike, drive: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(positions [N, 3], headings [N, 3])`` per frame of a drive, in metres and unit vectors in
    the drive's world frame: the camera (``poses.txt``, synthetic scenes and the KITTI odometry
    layout: camera-to-world, heading = the optical axis, the rotation's third column) or the IMU
    (the oxts packets of KITTI raw: heading = the IMU's forward x axis, the rotation's first
    column; KITTI's cameras look along it). None when the drive has neither."""
    d = Path(root) / drive
    if (d / "poses.txt").is_file():
        poses, forward = read_poses(d / "poses.txt"), 2
    elif (d / "oxts" / "data").is_dir():
        poses, forward = oxts_poses(d / "oxts" / "data"), 0
    else:
        return None
    return poses[:, :3, 3], poses[:, :3, forward]


# --- splits ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One split line: ``<date>/<drive>_sync <frame> <l|r>``."""

    drive: str
    frame: int
    side: str = "l"

    @property
    def cam(self) -> str:
        return cam_index(self.side)


def read_split(path: str | os.PathLike) -> list[Sample]:
    """Read a split file (one ``<drive dir> <frame> <l|r>`` per line)."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: split file not found")
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].lstrip("-").isdigit():
            raise R2SDepthError(f"{path}:{i}: expected '<drive> <frame> [l|r]', got {line!r}")
        side = parts[2] if len(parts) > 2 else "l"
        if side not in ("l", "r"):
            raise R2SDepthError(f"{path}:{i}: side must be l or r, got {side!r}")
        out.append(Sample(parts[0], int(parts[1]), side))
    if not out:
        raise R2SDepthError(f"{path}: empty split file")
    return out


def write_split(path: str | os.PathLike, samples: list[Sample]) -> None:

    write_bytes_atomic(path, "".join(f"{s.drive} {s.frame} {s.side}\n" for s in samples).encode())
