"""Procedural driving scenes with exact depth and poses, written in the KITTI raw layout.

A road (asphalt with lane markings, sidewalks), building facades on both sides with gaps and a
second row of buildings behind, parked and moving cars (boxes), poles and sky, textured with
real photographs that ship with scikit-image (``brick``, ``gravel``, ``grass``, ``moon``,
``camera``, ``astronaut``, ``coffee``, ``rocket``, ``chelsea``) with mip-mapped look-ups and
mild lighting changes. A camera moves forward along the road at KITTI-like speed (about 10 m/s
at 10 Hz) with small yaw/pitch/lateral oscillations.
Everything is rendered by vectorised ray casting in numpy, exactly: the depth of every pixel is
the ray's hit distance along the optical axis.

World frame: x right, y down, z forward (the first camera's frame); the road is the plane
``y = camera_height``. Camera intrinsics are KITTI-like: ``fx = 0.58 W``, ``fy = 1.92 H``,
``c = (W/2, H/2)``.

Output per sequence (``<out>/<date>/<date>_drive_<id>_sync``)::

    image_02/data/%010d.png, image_02/timestamps.txt,
    proj_depth/groundtruth/image_02/%010d.png   (uint16, depth x 256, 0 = sky / beyond 255 m)
    poses.txt                                    (3x4 camera-to-world of camera 02 per frame)

plus ``<out>/<date>/calib_cam_to_cam.txt`` and ``<out>/splits/{train,val,test}_files.txt``.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from skimage import data
from tqdm import tqdm

from r2sdepth.atomic import remove_stale_temporaries, save_png, write_bytes_atomic, write_json_atomic
from r2sdepth.config import DataConfig, TrainConfig
from r2sdepth.data.kitti import Sample, write_depth_png, write_split
from r2sdepth.errors import R2SDepthError

DATE = "2000_01_01"
VIEWS = ("street", "roadside")
MAX_DEPTH_PNG = 255.0  # uint16 / 256 limit; farther points are stored as invalid

_TEXTURES: dict[str, list[np.ndarray]] | None = None


def _pyramid(img: np.ndarray, levels: int = 6) -> list[np.ndarray]:
    t = img.astype(np.float32)
    if t.ndim == 3:
        t = t @ np.array([0.299, 0.587, 0.114], np.float32)
    t = t / 255.0
    pyr = [t]
    for _ in range(levels - 1):
        t = t[: t.shape[0] // 2 * 2, : t.shape[1] // 2 * 2]
        t = 0.25 * (t[0::2, 0::2] + t[1::2, 0::2] + t[0::2, 1::2] + t[1::2, 1::2])
        pyr.append(np.ascontiguousarray(t))
    return pyr


def textures() -> dict[str, list[np.ndarray]]:
    """Mip pyramids (float32 gray in [0, 1]) of the photographs used as textures."""
    global _TEXTURES
    if _TEXTURES is None:
        _TEXTURES = {
            "asphalt": _pyramid(data.gravel()),
            "brick": _pyramid(data.brick()),
            "grass": _pyramid(data.grass()),
            "metal": _pyramid(data.moon()),
            "photo": _pyramid(data.camera()),
            "astronaut": _pyramid(data.astronaut()),
            "coffee": _pyramid(data.coffee()[:, 44:556]),
            "rocket": _pyramid(data.rocket()[:, 64:576]),
            "chelsea": _pyramid(data.chelsea()[:256, :256]),
        }
    return _TEXTURES


@dataclass
class Box:
    """Axis-aligned box in world coordinates (metres); ``vz`` forward speed (m/s)."""

    lo: np.ndarray
    hi: np.ndarray
    tex: str
    tint: np.ndarray
    vz: float = 0.0


@dataclass
class World:
    """A procedural street; all lengths in metres."""

    cam_height: float
    road_half: float
    facade_x: tuple[float, float]  # left (negative) and right plane x
    back_x: tuple[float, float]
    seg_start: list[np.ndarray]  # per side: segment start z (sorted)
    seg_height: list[np.ndarray]
    seg_gap: list[np.ndarray]
    seg_tint: list[np.ndarray]
    seg_tex: list[list[str]]
    boxes: list[Box] = field(default_factory=list)
    speed: float = 10.0
    light_phase: float = 0.0
    pitch: float = 0.0  # constant camera pitch (rad): where the horizon sits varies between rigs
    sky: float = 1.0  # sky brightness factor (> 1: overexposed, as in real driving footage)
    view: str = "street"  # "street": driving along the road; "roadside": a static camera at the curb
    cam_x: float = 1.75  # roadside: the camera's lateral position (m)
    yaw: float = 0.0  # roadside: constant camera yaw (rad; -pi/2 looks across the street)
    back_tex: str = "brick"  # texture of the second row behind the facades
    back_top: float = 28.0  # its height above the road (m)
    back_tint: tuple[float, float, float] = (0.75, 0.72, 0.7)
    exposure: float = 1.0  # image gain (x; a camera's exposure and aperture)
    white: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel gain (white balance)
    gamma: float = 1.0  # tone curve exponent applied after the gains


@dataclass(frozen=True)
class StreetLooks:
    """One drive's domain randomisation (:func:`draw_street_looks`): the camera rig's height above
    the road (metres) and constant pitch (rad), the road's half width and how far the facades stand
    beyond its edge (metres), and the camera's exposure, white balance and tone curve."""

    cam_height: float = 1.65
    pitch: float = 0.0
    road_half: float = 5.5
    setback: tuple[float, float] = (3.0, 5.5)  # facade distance beyond the road edge: U(lo, hi)
    exposure: float = 1.0
    white: tuple[float, float, float] = (1.0, 1.0, 1.0)
    gamma: float = 1.0


def draw_street_looks(rng: np.random.Generator) -> StreetLooks:
    """Random :class:`StreetLooks` of a street drive (``synth --randomise``): camera height 1.3-2.0 m
    (KITTI: 1.65), pitch +-0.05 rad (the horizon moves by up to 10% of the image height), road half
    width 4.5-7.5 m, exposure x0.6-1.5 (log-uniform; with the simulator's fixed threshold it spans
    the same spike rates as a threshold or gain change), per-channel white balance x0.85-1.15 and a
    tone-curve exponent 0.8-1.25."""
    return StreetLooks(
        cam_height=float(rng.uniform(1.3, 2.0)),
        pitch=float(rng.uniform(-0.05, 0.05)),
        road_half=float(rng.uniform(4.5, 7.5)),
        exposure=float(np.exp(rng.uniform(np.log(0.6), np.log(1.5)))),
        white=tuple(float(x) for x in rng.uniform(0.85, 1.15, 3)),
        gamma=float(rng.uniform(0.8, 1.25)),
    )


def _vehicle(rng: np.random.Generator, xc: float, z: float, cam_h: float, vz: float, trucks: float) -> Box:
    """A car, van or truck (with probability ``trucks``) centred at lateral ``xc``, rear at ``z``."""
    r = rng.random()
    if r < trucks:  # truck / tanker / bus
        w, hh, ln = rng.uniform(2.4, 2.55), rng.uniform(3.0, 4.0), rng.uniform(7.0, 14.0)
    elif r < trucks + 0.2:  # van
        w, hh, ln = rng.uniform(1.9, 2.1), rng.uniform(1.9, 2.5), rng.uniform(4.8, 6.0)
    else:
        w, hh, ln = rng.uniform(1.6, 1.9), rng.uniform(1.3, 1.7), rng.uniform(3.8, 4.8)
    # a third of real vehicles are white or silver: bright, low-texture surfaces that are near
    tint = np.full(3, rng.uniform(0.85, 1.0)) if rng.random() < 0.35 else rng.uniform(0.2, 1.0, 3)
    return Box(
        np.array([xc - w / 2, cam_h - hh, z]),
        np.array([xc + w / 2, cam_h, z + ln]),
        "metal",
        tint.astype(np.float32),
        vz,
    )


def _add_traffic(
    rng: np.random.Generator,
    boxes: list[Box],
    length: float,
    cam_h: float,
    road_half: float,
    speed: float,
    density: float,
) -> None:
    """Dense city traffic around the camera (``density`` in (0, 1]): a queue ahead in the camera's
    lane moving with it (a lead vehicle 6-25 m ahead), a slower queue in the left lane that the
    camera passes close by, trucks among the parked cars, trees on the sidewalks and an overpass.

    Vehicles that move with the camera show no parallax, so such scenes teach view synthesis the
    wrong depth for them; they are meant for training with the scenes' exact depth
    (``loss.depth_weight``) or for evaluation."""
    gap = lambda: rng.uniform(1.5, 8.0) / density  # noqa: E731  (bumper-to-bumper at density 1)
    z = rng.uniform(6.0, 25.0)
    while z < length + 120:  # own lane, moving with the camera
        boxes.append(
            _vehicle(rng, 1.75 + rng.uniform(-0.2, 0.2), z, cam_h, speed * rng.uniform(0.9, 1.0), 0.2)
        )
        z = boxes[-1].hi[2] + gap()
    z = rng.uniform(-15.0, 10.0)
    lane_speed = speed * rng.uniform(0.0, 0.7)
    while z < length + 120:  # left lane, slower: the camera passes them at 1.5-2.5 m
        boxes.append(_vehicle(rng, -1.75 + rng.uniform(-0.2, 0.2), z, cam_h, lane_speed, 0.3))
        z = boxes[-1].hi[2] + gap()
    z = rng.uniform(-10.0, 10.0)
    while z < length + 120:  # parked at the right curb, trucks among them
        if rng.random() < density:
            boxes.append(_vehicle(rng, road_half - 1.2, z, cam_h, 0.0, 0.35))
            z = boxes[-1].hi[2]
        z += rng.uniform(1.0, 6.0)
    for side in (-1, 1):  # trees: a trunk and a crown on the sidewalk
        z = rng.uniform(0, 15)
        while z < length + 120:
            xc, r = side * (road_half + rng.uniform(1.2, 2.5)), rng.uniform(1.2, 2.2)
            top = cam_h - rng.uniform(4.0, 8.0)
            boxes.append(
                Box(
                    np.array([xc - 0.15, top + r, z + r - 0.15]),
                    np.array([xc + 0.15, cam_h, z + r + 0.15]),
                    "asphalt",
                    np.array([0.35, 0.3, 0.25], np.float32),
                )
            )
            boxes.append(
                Box(
                    np.array([xc - r, top, z]),
                    np.array([xc + r, top + 1.6 * r, z + 2 * r]),
                    "grass",
                    rng.uniform([0.35, 0.55, 0.25], [0.55, 0.8, 0.4]).astype(np.float32),
                )
            )
            z += rng.uniform(6.0, 20.0) / density
    if rng.random() < 0.6:  # an overpass across the street
        z0, clear = rng.uniform(25.0, 70.0), rng.uniform(4.5, 6.0)
        boxes.append(
            Box(
                np.array([-40.0, cam_h - clear - 1.2, z0]),
                np.array([40.0, cam_h - clear, z0 + 12.0]),
                "brick",
                np.array([0.7, 0.7, 0.68], np.float32),
            )
        )


def _facades(rng: np.random.Generator, length: float) -> tuple[list, list, list, list, list]:
    """Both sides' building fronts along the street: segment starts (z, metres), heights, gaps,
    tints and textures."""
    seg_start, seg_height, seg_gap, seg_tint, seg_tex = [], [], [], [], []
    for _side in range(2):
        z, starts = -20.0, []
        while z < length + 150:
            starts.append(z)
            z += rng.uniform(6.0, 16.0)
        n = len(starts)
        seg_start.append(np.array(starts))
        seg_height.append(rng.uniform(5.0, 18.0, n))
        seg_gap.append(rng.random(n) < 0.25)
        seg_tint.append(rng.uniform(0.55, 1.0, (n, 3)).astype(np.float32))
        # mostly non-periodic photographs: periodic textures (brick) make view synthesis ambiguous
        seg_tex.append(
            [
                str(rng.choice(["brick", "photo", "astronaut", "coffee", "rocket", "chelsea"]))
                for _ in range(n)
            ]
        )
    return seg_start, seg_height, seg_gap, seg_tint, seg_tex


def _parked_cars_and_poles(
    rng: np.random.Generator, length: float, cam_h: float, road_half: float
) -> list[Box]:
    """Cars parked along both kerbs and poles on both sidewalks."""
    boxes: list[Box] = []
    for side in (-1, 1):
        z = rng.uniform(3, 12)
        while z < length + 120:  # parked cars
            if rng.random() < 0.6:
                w, hh, ln = rng.uniform(1.6, 1.9), rng.uniform(1.3, 1.7), rng.uniform(3.8, 4.8)
                xc = side * (road_half - 1.1)
                boxes.append(
                    Box(
                        np.array([xc - w / 2, cam_h - hh, z]),
                        np.array([xc + w / 2, cam_h, z + ln]),
                        "metal",
                        rng.uniform(0.2, 1.0, 3).astype(np.float32),
                    )
                )
            z += rng.uniform(5.5, 9.0)
        z = rng.uniform(5, 20)
        while z < length + 120:  # poles on the sidewalk
            xc = side * (road_half + 0.6)
            boxes.append(
                Box(
                    np.array([xc - 0.1, cam_h - rng.uniform(4.0, 6.0), z]),
                    np.array([xc + 0.1, cam_h, z + 0.2]),
                    "asphalt",
                    np.array([0.5, 0.5, 0.55], np.float32),
                )
            )
            z += rng.uniform(15, 30)
    return boxes


def _moving_cars(rng: np.random.Generator, n: int, cam_h: float) -> list[Box]:
    """``n`` cars in the street's lanes, alternately oncoming (left lane) and leading (own lane)."""
    boxes: list[Box] = []
    for i in range(n):  # oncoming (left lane) and leading (own lane) traffic
        oncoming = i % 2 == 0
        xc = -1.75 if oncoming else 1.75
        z0 = rng.uniform(30, 80)
        w, hh, ln = 1.8, rng.uniform(1.4, 1.6), 4.4
        vz = -rng.uniform(8, 12) if oncoming else rng.uniform(9, 11)
        boxes.append(
            Box(
                np.array([xc - w / 2, cam_h - hh, z0]),
                np.array([xc + w / 2, cam_h, z0 + ln]),
                "metal",
                rng.uniform(0.2, 1.0, 3).astype(np.float32),
                vz,
            )
        )
    return boxes


def make_world(
    rng: np.random.Generator,
    length: float,
    moving_cars: int = 2,
    traffic: float = 0.0,
    looks: StreetLooks | None = None,
) -> World:
    """A random street ``length`` metres long (plus margins); ``traffic`` > 0 adds dense city
    traffic (:func:`_add_traffic`, at a density of ``traffic`` x U(0.3, 1) per street), draws the
    camera speed from 2-11 m/s instead of 8-11, a constant camera pitch of +-0.03 rad (the horizon
    moves by up to 6% of the image height) and a sky brightness of x0.8-1.3 (overexposed).
    ``looks`` (:func:`draw_street_looks`) sets the camera height, pitch, road width, facade setback
    and the camera's exposure, white balance and tone curve (``None``: KITTI's rig, 1.65 m, 5.5 m)."""
    road_half = 5.5 if looks is None else looks.road_half  # two 3.5 m lanes plus parking strips
    if looks is None:
        fx = (-rng.uniform(8.5, 11.0), rng.uniform(8.5, 11.0))
    else:
        fx = (-(road_half + rng.uniform(*looks.setback)), road_half + rng.uniform(*looks.setback))
    bx = (fx[0] - rng.uniform(10, 16), fx[1] + rng.uniform(10, 16))
    seg_start, seg_height, seg_gap, seg_tint, seg_tex = _facades(rng, length)
    cam_h = 1.65 if looks is None else looks.cam_height
    camera = {} if looks is None else {"exposure": looks.exposure, "white": looks.white, "gamma": looks.gamma}
    boxes = _parked_cars_and_poles(rng, length, cam_h, road_half)
    boxes += _moving_cars(rng, moving_cars, cam_h)
    speed = float(rng.uniform(8.0, 11.0))
    light_phase = float(rng.uniform(0, 2 * np.pi))
    if traffic > 0:
        speed = float(rng.uniform(2.0, 11.0))
        _add_traffic(
            rng, boxes, length, cam_h, road_half, speed, min(float(traffic), 1.0) * rng.uniform(0.3, 1.0)
        )
        return World(
            cam_h,
            road_half,
            fx,
            bx,
            seg_start,
            seg_height,
            seg_gap,
            seg_tint,
            seg_tex,
            boxes,
            speed=speed,
            light_phase=light_phase,
            pitch=float(rng.uniform(-0.03, 0.03)) if looks is None else looks.pitch,
            sky=float(rng.uniform(0.8, 1.3)),
            **camera,
        )
    return World(
        cam_h,
        road_half,
        fx,
        bx,
        seg_start,
        seg_height,
        seg_gap,
        seg_tint,
        seg_tex,
        boxes,
        speed=speed,
        light_phase=light_phase,
        **({} if looks is None else {"pitch": looks.pitch, **camera}),
    )


def _vehicle_parts(rng: np.random.Generator, car: Box) -> list[Box]:
    """Dark glass (a band round the upper part) and four wheels of a vehicle box, each standing
    a few centimetres proud of the body so that it wins the depth test: vehicles are not uniformly
    bright, and their darkest parts are as near as their bodies."""
    lo, hi = car.lo, car.hi
    hh, ln = hi[1] - lo[1], hi[2] - lo[2]
    glass = Box(
        np.array([lo[0] - 0.02, lo[1] + 0.08 * hh, lo[2] + 0.15 * ln]),
        np.array([hi[0] + 0.02, lo[1] + rng.uniform(0.35, 0.45) * hh, hi[2] - 0.12 * ln]),
        "metal",
        np.full(3, rng.uniform(0.04, 0.3), np.float32),
        car.vz,
    )
    r = rng.uniform(0.3, 0.4)
    parts = [glass]
    for zc in (lo[2] + 0.18 * ln, hi[2] - 0.18 * ln):
        parts.append(
            Box(
                np.array([lo[0] - 0.03, hi[1] - 2 * r, zc - r]),
                np.array([hi[0] + 0.03, hi[1], zc + r]),
                "asphalt",
                np.full(3, rng.uniform(0.05, 0.2), np.float32),
                car.vz,
            )
        )
    return parts


#: textures of vertical surfaces that ``shared_looks`` draws from for walls and vehicles alike
SURFACES = ("metal", "photo", "brick", "coffee", "rocket", "chelsea")


def _look(rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """One texture of :data:`SURFACES` and a near-grey tint from black to white."""
    tint = rng.uniform(0.1, 1.0) * rng.uniform(0.85, 1.0, 3)
    return str(rng.choice(SURFACES)), tint.astype(np.float32)


def make_roadside_world(
    rng: np.random.Generator, duration: float, moving_cars: int = 2, shared_looks: bool = False
) -> World:
    """A static camera at the curb looking across the street (yaw -90 deg +- 9 deg) at traffic
    passing 0.7-4 m away in the near lane (and 4-8 m farther in the far lane), a low wall or
    building fronts on the far sidewalk 1-6 m behind the far lane, trees behind them, as in
    roadside spike-camera recordings. Vehicles carry dark glass and wheels (:func:`_vehicle_parts`)
    and their colours (white to black) are drawn independently of the background's, so that
    brightness does not tell near from far. ``duration`` (s) is how long the scene must be
    populated; ``moving_cars`` > 0 fills both lanes with traffic (0: an empty street).
    ``shared_looks``: walls, building fronts and vehicle bodies all draw their texture and tint
    from one distribution (:func:`_look`), so that a surface's appearance says nothing about its
    depth and only geometry does (occlusion, ground contact, size, height in the image)."""
    cam_h = float(rng.uniform(0.9, 1.7))
    road_half = float(rng.uniform(3.0, 5.0))
    far = -(road_half + float(rng.uniform(1.0, 6.0)))
    back = far - float(rng.uniform(2.0, 12.0))
    z, starts = -80.0, []
    while z < 80.0:
        starts.append(z)
        z += rng.uniform(4.0, 20.0)
    n = len(starts)
    low = rng.random(n) < 0.6  # low walls (1-3 m) with trees behind, or building fronts
    heights = np.where(low, rng.uniform(1.0, 3.0, n), rng.uniform(4.0, 15.0, n))
    tints = np.repeat(rng.uniform(0.25, 1.0, (n, 1)), 3, 1) * rng.uniform(0.85, 1.0, (n, 3))
    texs = [str(rng.choice(["metal", "photo", "brick", "coffee", "rocket", "chelsea"])) for _ in range(n)]
    if shared_looks:
        looks = [_look(rng) for _ in range(n)]
        texs, tints = [t for t, _ in looks], np.stack([c for _, c in looks])
    world = World(
        cam_h,
        road_half,
        (far, 1e4),  # nothing behind the camera is seen
        (back, 1e4 + 1),
        [np.array(starts), np.array([-1e5])],
        [heights, np.array([0.0])],
        [rng.random(n) < 0.05, np.array([True])],
        [tints.astype(np.float32), np.ones((1, 3), np.float32)],
        [texs, ["brick"]],
        speed=0.0,
        light_phase=float(rng.uniform(0, 2 * np.pi)),
        pitch=float(rng.uniform(-0.08, 0.05)),
        sky=float(rng.uniform(0.7, 1.3)),
        view="roadside",
        cam_x=float(road_half + rng.uniform(0.0, 1.5)),
        yaw=float(-np.pi / 2 + rng.uniform(-0.15, 0.15)),
        back_tex=str(rng.choice(["grass", "grass", "brick"])),
        back_top=float(rng.uniform(6.0, 20.0)),
        back_tint=tuple(float(x) for x in rng.uniform([0.3, 0.3, 0.3], [0.8, 0.85, 0.7])),
    )
    boxes = world.boxes
    for zc in np.arange(-60.0, 60.0, 1.0):  # trees and poles on the far sidewalk
        if rng.random() < 0.08:
            xc, r = far + rng.uniform(0.5, 1.0), rng.uniform(1.0, 2.5)
            top = cam_h - rng.uniform(3.5, 8.0)
            boxes.append(
                Box(
                    np.array([xc - 0.15, top + r, zc - 0.15]),
                    np.array([xc + 0.15, cam_h, zc + 0.15]),
                    "asphalt",
                    np.full(3, rng.uniform(0.2, 0.6), np.float32),
                )
            )
            boxes.append(
                Box(
                    np.array([xc - r, top, zc - r]),
                    np.array([xc + r, top + 1.6 * r, zc + r]),
                    "grass",
                    rng.uniform([0.3, 0.4, 0.25], [0.7, 0.8, 0.5]).astype(np.float32),
                )
            )
    if moving_cars > 0:
        for xc, direction in ((1.75, 1.0), (-1.75, -1.0)):  # near and far lane, opposite ways
            v = direction * float(rng.uniform(2.0, 14.0)) * (1 if rng.random() < 0.8 else -1)
            span = abs(v) * duration + 40.0
            z = float(-span + rng.uniform(0.0, 10.0))
            while z < span:
                car = _vehicle(rng, xc + rng.uniform(-0.3, 0.3), z, cam_h, v, 0.15)
                if shared_looks:
                    car.tex, car.tint = _look(rng)
                boxes.append(car)
                boxes.extend(_vehicle_parts(rng, car))
                z = float(car.hi[2] + rng.uniform(1.0, 14.0))
    return world


def intrinsics(height: int, width: int, view: str = "street") -> np.ndarray:
    """``[3, 3]`` intrinsics for an ``height x width`` image: KITTI-like for ``street``
    (``fx = 0.58 W``, ``fy = 1.92 H``), square pixels and a 67 deg horizontal field of view for
    ``roadside`` (``fx = fy = 0.75 W``, a typical C-mount lens on a spike camera)."""
    if view == "roadside":
        f = 0.75 * width
        return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)
    return np.array([[0.58 * width, 0, width / 2], [0, 1.92 * height, height / 2], [0, 0, 1]], np.float64)


def camera_pose(world: World, t: float, rng_phase: np.ndarray) -> np.ndarray:
    """Camera-to-world ``[4, 4]`` at time ``t`` seconds (``roadside``: static, on a tripod)."""
    a, b, c = rng_phase
    if world.view == "roadside":
        yaw, pitch, x, z = world.yaw, world.pitch, world.cam_x, 0.0
    else:
        yaw = 0.03 * np.sin(0.7 * t + a)
        pitch = world.pitch + 0.01 * np.sin(1.3 * t + b)
        x = 1.75 + 0.3 * np.sin(0.5 * t + c)  # right-hand lane
        z = world.speed * t
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    Ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    Rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    T = np.eye(4)
    T[:3, :3] = Ry @ Rx
    T[:3, 3] = [x, 0.0, z]
    return T


def _sample(
    tex: str, u: np.ndarray, v: np.ndarray, texel_per_m: float, depth: np.ndarray, f: float
) -> np.ndarray:
    """Mip-mapped bilinear look-up of texture ``tex`` at metric coordinates (u, v), tiled.

    The mip level follows the pixel footprint (``depth / f`` metres), so distant surfaces do not
    alias and consecutive frames stay photometrically consistent.
    """
    pyr = textures()[tex]
    foot = depth / f * texel_per_m  # texels per pixel at level 0
    # one level blurrier than the footprint: no aliasing, and the image keeps the large-scale
    # structure that view synthesis needs (textures at a metric scale like real facades)
    level = np.clip(np.floor(np.log2(np.maximum(foot, 1e-6)) + 1.0).astype(np.int64), 0, len(pyr) - 1)
    out = np.empty(u.shape, np.float32)
    for lv in np.unique(level):
        m = level == lv
        img = pyr[lv]
        h, w = img.shape
        s = texel_per_m / (2**lv)
        x = u[m] * s - 0.5
        y = v[m] * s - 0.5
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
        x0 = x0.astype(np.int64) % w
        y0 = y0.astype(np.int64) % h
        x1, y1 = (x0 + 1) % w, (y0 + 1) % h
        top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
        bot = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
        out[m] = top * (1 - fy) + bot * fy
    return out


def _hit_road_and_walls(
    world: World, c: np.ndarray, d: np.ndarray, best: np.ndarray, mat: np.ndarray
) -> None:
    """Ray casting against the road plane, the facades and the back walls: ``best`` (hit distance
    along the world direction ``d`` ``[3, N]`` from the camera centre ``c``) and ``mat`` (0 road,
    1/2 facade L/R, 3/4 back L/R) updated in place where a ray hits nearer."""
    dx, dy, dz = d
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(dy > 1e-9, (world.cam_height - c[1]) / dy, np.inf)
    hit = t < best
    best[hit], mat[hit] = t[hit], 0

    for side, (fxp, bxp) in enumerate(zip(world.facade_x, world.back_x)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (fxp - c[0]) / dx
        ok = (t > 0) & (t < best)
        zi = c[2] + t * dz
        yi = c[1] + t * dy
        seg = np.clip(
            np.searchsorted(world.seg_start[side], zi, side="right") - 1, 0, len(world.seg_start[side]) - 1
        )
        top = world.cam_height - world.seg_height[side][seg]
        ok &= ~world.seg_gap[side][seg] & (yi >= top) & (yi <= world.cam_height)
        best[ok], mat[ok] = t[ok], 1 + side
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (bxp - c[0]) / dx
        yi = c[1] + t * dy
        ok = (t > 0) & (t < best) & (yi >= world.cam_height - world.back_top) & (yi <= world.cam_height)
        best[ok], mat[ok] = t[ok], 3 + side


def _hit_boxes(
    world: World,
    T_cw: np.ndarray,
    K: np.ndarray,
    size: tuple[int, int],
    time_s: float,
    rays: tuple[np.ndarray, np.ndarray],
    hits: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> list:
    """Ray casting against the boxes (vehicles, buildings) at ``time_s``, each tested only for the
    rays inside its screen-space bounding rectangle; ``hits`` = ``(best, mat, shade)`` updated in
    place (``mat``: 5 + box index; ``shade``: by the face hit). Returns ``(box, rays hit, face axis,
    lower corner)`` per box for texturing."""
    height, width = size
    c, d = rays
    best, mat, shade = hits
    Tw2c = np.linalg.inv(T_cw)
    box_hits = []
    for bi, box in enumerate(world.boxes):
        lo, hi = box.lo.copy(), box.hi.copy()
        lo[2] += box.vz * time_s
        hi[2] += box.vz * time_s
        corners = np.array(
            [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
        )
        pc = (Tw2c[:3, :3] @ corners.T).T + Tw2c[:3, 3]
        if np.all(pc[:, 2] < 0.1) or np.min(pc[:, 2]) > 200:
            continue
        if np.any(pc[:, 2] < 0.1):
            u0, u1, v0, v1 = 0, width - 1, 0, height - 1
        else:
            pp = K @ pc.T
            uu, vv = pp[0] / pp[2], pp[1] / pp[2]
            u0, u1 = int(max(np.floor(uu.min()), 0)), int(min(np.ceil(uu.max()), width - 1))
            v0, v1 = int(max(np.floor(vv.min()), 0)), int(min(np.ceil(vv.max()), height - 1))
            if u0 > u1 or v0 > v1:
                continue
        idx = (np.arange(v0, v1 + 1)[:, None] * width + np.arange(u0, u1 + 1)[None, :]).ravel()
        dd = d[:, idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / dd
            t0 = (lo[:, None] - c[:, None]) * inv
            t1 = (hi[:, None] - c[:, None]) * inv
        tmin, tmax = np.minimum(t0, t1), np.maximum(t0, t1)
        tmin = np.nan_to_num(tmin, nan=-np.inf)
        tmax = np.nan_to_num(tmax, nan=np.inf)
        tn, tf = tmin.max(0), tmax.min(0)
        ok = (tn <= tf) & (tn > 0) & (tn < best[idx])
        sel = idx[ok]
        best[sel] = tn[ok]
        mat[sel] = 5 + bi
        axis = tmin[:, ok].argmax(0)  # the face hit: 0 side (x), 1 top (y), 2 front/back (z)
        shade[sel] = np.array([0.75, 1.0, 0.9], np.float32)[axis]
        box_hits.append((bi, sel, axis, lo))
    return box_hits


def _texture(
    world: World,
    K: np.ndarray,
    size: tuple[int, int],
    rays: tuple[np.ndarray, np.ndarray],
    best: np.ndarray,
    mat: np.ndarray,
    shade: np.ndarray,
    box_hits: list,
) -> np.ndarray:
    """Colour ``[N, 3]`` in [0, 1] of every ray from what it hit: sky, road and grass, facades,
    back walls, boxes."""
    height, width = size
    c, d = rays
    n = height * width
    v = np.repeat(np.arange(height, dtype=np.float64), width)
    f = K[0, 0]
    rgb = np.empty((n, 3), np.float32)
    sky = mat < 0
    vv = v[sky] / height
    rgb[sky] = np.stack([0.55 + 0.3 * vv, 0.7 + 0.2 * vv, 0.95 + 0.0 * vv], -1) * world.sky
    p = c[:, None] + d * np.where(np.isfinite(best), best, 0)[None]
    px, py, pz = p

    m = np.flatnonzero(mat == 0)
    if m.size:
        road = np.abs(px[m]) < world.road_half
        g = np.where(
            road,
            _sample("asphalt", px[m], pz[m], 40.0, best[m], f) * 0.6 + 0.1,
            _sample("grass", px[m], pz[m], 30.0, best[m], f) * 0.8 + 0.1,
        )
        lane = road & (np.abs(px[m]) < 0.08) & (np.mod(pz[m], 9.0) < 4.0)
        edge = road & (np.abs(np.abs(px[m]) - (world.road_half - 0.15)) < 0.06)
        g = np.where(lane | edge, 0.92, g)
        col = np.where(
            road[:, None], np.array([1.0, 1.0, 1.0], np.float32), np.array([0.55, 0.8, 0.45], np.float32)
        )
        rgb[m] = g[:, None] * col
    for side in range(2):
        m = np.flatnonzero(mat == 1 + side)
        if m.size:
            seg = np.clip(
                np.searchsorted(world.seg_start[side], pz[m], side="right") - 1,
                0,
                len(world.seg_start[side]) - 1,
            )
            g = np.empty(m.size, np.float32)
            for tex in set(world.seg_tex[side]):
                sel = np.isin(seg, [i for i, tname in enumerate(world.seg_tex[side]) if tname == tex])
                if sel.any():
                    g[sel] = _sample(tex, pz[m][sel], py[m][sel], 24.0, best[m][sel], f)
            rgb[m] = (0.15 + 0.8 * g)[:, None] * world.seg_tint[side][seg] * (0.85 if side else 0.7)
        m = np.flatnonzero(mat == 3 + side)
        if m.size:
            g = _sample(world.back_tex, pz[m], py[m], 12.0, best[m], f)
            rgb[m] = (0.2 + 0.6 * g)[:, None] * np.array(world.back_tint, np.float32)
    for bi, sel, axis, lo in box_hits:
        keep = mat[sel] == 5 + bi  # a later box may have covered part of it
        sel, axis = sel[keep], axis[keep]
        if not sel.size:
            continue
        box = world.boxes[bi]
        a = np.where(axis == 0, pz[sel] - lo[2], px[sel] - lo[0])
        b = np.where(axis == 1, pz[sel] - lo[2], py[sel] - lo[1])
        g = _sample(box.tex, a, b, 60.0, best[sel], f)
        rgb[sel] = (0.2 + 0.8 * g)[:, None] * box.tint * shade[sel][:, None]
    return rgb


def render(
    world: World, T_cw: np.ndarray, K: np.ndarray, height: int, width: int, time_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Render RGB uint8 ``[H, W, 3]`` and depth float32 ``[H, W]`` (metres; 0 = sky)."""
    n = height * width
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays_c = np.linalg.inv(K) @ np.stack([u.ravel(), v.ravel(), np.ones(n)])  # camera z = 1
    R, c = T_cw[:3, :3], T_cw[:3, 3]
    d = R @ rays_c  # world directions; hit distance t along d == camera depth
    best = np.full(n, np.inf)
    mat = np.full(n, -1, np.int64)  # 0 road, 1/2 facade L/R, 3/4 back L/R, 5+ boxes
    shade = np.ones(n, np.float32)
    _hit_road_and_walls(world, c, d, best, mat)
    box_hits = _hit_boxes(world, T_cw, K, (height, width), time_s, (c, d), (best, mat, shade))
    rgb = _texture(world, K, (height, width), (c, d), best, mat, shade, box_hits)
    light = 1.0 + 0.05 * np.sin(2 * np.pi * time_s / 4.0 + world.light_phase)
    rgb = np.clip(rgb * light, 0, 1)
    if world.exposure != 1.0 or world.white != (1.0, 1.0, 1.0) or world.gamma != 1.0:
        gain = world.exposure * np.asarray(world.white, np.float32)  # rgb is [N, 3]
        rgb = np.clip(rgb * gain, 0, 1) ** world.gamma
    depth = np.where(np.isfinite(best) & (best <= MAX_DEPTH_PNG), best, 0.0).astype(np.float32)
    img = (rgb.reshape(height, width, 3) * 255 + 0.5).astype(np.uint8)
    return img, depth.reshape(height, width)


STEREO_BASELINE = 0.54  # metres: camera 03 sits this far right of camera 02 (KITTI's pair)


def calib_text(K: np.ndarray, height: int, width: int) -> str:
    """A ``calib_cam_to_cam.txt``: ``P_rect_02`` holds ``K``; ``P_rect_03`` the same camera
    ``STEREO_BASELINE`` to its right (``P[0, 3] = -fx * b``, KITTI's convention)."""
    P = np.hstack([K, np.zeros((3, 1))])
    P3 = P.copy()
    P3[0, 3] = -K[0, 0] * STEREO_BASELINE
    fmt = lambda a: " ".join(f"{x:.12e}" for x in np.asarray(a).ravel())  # noqa: E731
    return (
        "calib_time: synthetic (r2sdepth synth)\n"
        f"S_rect_02: {fmt([width, height])}\n"
        f"R_rect_00: {fmt(np.eye(3))}\n"
        f"P_rect_02: {fmt(P)}\n"
        f"S_rect_03: {fmt([width, height])}\n"
        f"P_rect_03: {fmt(P3)}\n"
    )


@dataclass(frozen=True)
class SceneSpec:
    """What every drive of one :func:`synthesize` call shares: ``frames`` per drive at ``fps``,
    the image size (pixels; default the schema's ``data.height`` x ``data.width``), the seed, the
    number of moving cars, the traffic density (0-1; :func:`_add_traffic`, 0: none), ``stereo``
    (also camera 03, :data:`STEREO_BASELINE` to the right of camera 02), the ``view`` (``street``:
    a camera driving along the road, :func:`make_world`; ``roadside``: a static camera at the curb
    watching traffic pass, :func:`make_roadside_world`), ``shared_looks`` (roadside only: walls
    and vehicles draw their looks from one distribution), ``randomise`` (street only: every drive
    draws its own :class:`StreetLooks`, :func:`draw_street_looks`)."""

    frames: int = 20
    height: int = DataConfig.height
    width: int = DataConfig.width
    seed: int = TrainConfig.seed
    moving_cars: int = 2
    fps: float = 10.0
    traffic: float = 0.0
    stereo: bool = False
    view: str = "street"
    shared_looks: bool = False
    randomise: bool = False


def render_sequence(out: str, seq: int, spec: SceneSpec) -> str:
    """Render and write drive ``seq`` of ``spec``; returns its ``<date>/<drive>_sync`` name."""
    frames, height, width, fps, view = spec.frames, spec.height, spec.width, spec.fps, spec.view
    moving_cars, traffic, stereo, shared_looks = (
        spec.moving_cars,
        spec.traffic,
        spec.stereo,
        spec.shared_looks,
    )
    rng = np.random.default_rng([spec.seed, seq])
    if view == "roadside":
        world = make_roadside_world(
            rng, duration=frames / fps, moving_cars=moving_cars, shared_looks=shared_looks
        )
    else:
        # the looks come from their own stream: the streets of a randomised folder are those of a plain one
        looks = draw_street_looks(np.random.default_rng([spec.seed, seq, 1])) if spec.randomise else None
        world = make_world(
            rng, length=frames / fps * 12.0 + 30, moving_cars=moving_cars, traffic=traffic, looks=looks
        )
    phase = rng.uniform(0, 2 * np.pi, 3)
    K = intrinsics(height, width, view)
    drive = f"{DATE}/{DATE}_drive_{seq:04d}_sync"
    root = Path(out) / drive
    poses = [camera_pose(world, i / fps, phase) for i in range(frames)]
    T0_inv = np.linalg.inv(poses[0])
    lines, stamps = [], []
    for i, T in enumerate(poses):
        img, depth = render(world, T, K, height, width, i / fps)
        save_png(root / "image_02" / "data" / f"{i:010d}.png", img)
        if stereo:
            right = T.copy()
            right[:3, 3] += T[:3, 0] * STEREO_BASELINE  # along the camera's own x axis
            save_png(
                root / "image_03" / "data" / f"{i:010d}.png",
                render(world, right, K, height, width, i / fps)[0],
            )
        write_depth_png(root / "proj_depth" / "groundtruth" / "image_02" / f"{i:010d}.png", depth)
        Tr = T0_inv @ T  # camera-to-world with world = the first camera (KITTI odometry)
        lines.append(" ".join(f"{x:.9e}" for x in Tr[:3].ravel()))
        s = i / fps
        stamps.append(f"2000-01-01 00:{int(s // 60):02d}:{s - 60 * int(s // 60):012.9f}")
    write_bytes_atomic(root / "image_02" / "timestamps.txt", ("\n".join(stamps) + "\n").encode())
    # poses last: a drive with poses.txt is complete (resume marker)
    write_bytes_atomic(root / "poses.txt", ("\n".join(lines) + "\n").encode())
    return drive


def make_splits(drives: list[str], frames: int) -> dict[str, list[tuple[str, int]]]:
    """Split drives into train/val/test by sequence (test: last 20%, at least one; val: one)."""
    n = len(drives)
    if n == 1:
        parts = {"train": drives, "val": drives, "test": drives}
    elif n == 2:
        parts = {"train": drives[:1], "val": drives[1:], "test": drives[1:]}
    else:
        n_test = max(1, round(0.2 * n))
        parts = {
            "train": drives[: n - n_test - 1],
            "val": drives[n - n_test - 1 : n - n_test],
            "test": drives[n - n_test :],
        }
    # frames with both neighbours (context frames -1, +1)
    return {k: [(d, f) for d in v for f in range(1, frames - 1)] for k, v in parts.items()}


def _check_scene_options(
    counts: tuple[int, int],
    size: tuple[int, int],
    view: str,
    traffic: float,
    stereo: bool,
    shared_looks: bool,
) -> None:
    """One-line errors for options :func:`synthesize` cannot render (``counts``: sequences, frames)."""
    if counts[0] < 1 or counts[1] < 3:
        raise R2SDepthError("synth needs at least 1 sequence of at least 3 frames")
    if size[0] < 8 or size[1] < 8:
        raise R2SDepthError("synth image size must be at least 8 x 8")
    if view not in VIEWS:
        raise R2SDepthError(f"synth view must be one of {', '.join(VIEWS)}, got {view!r}")
    if view == "roadside" and (traffic > 0 or stereo):
        raise R2SDepthError("synth --view roadside takes neither --traffic nor --stereo")
    if shared_looks and view != "roadside":
        raise R2SDepthError("synth --shared-looks needs --view roadside")
    if not 0.0 <= traffic <= 1.0:
        raise R2SDepthError(f"synth traffic density must be in [0, 1], got {traffic}")


def _claim_folder(out: Path, params: dict[str, Any]) -> None:
    """Record the scene parameters in ``out/synth.json``; a folder made with others is refused (a
    resumed run must render the same scenes)."""
    pfile = out / "synth.json"
    if pfile.is_file():
        old = json.loads(pfile.read_text())
        if old != params:  # optional keys are written only when set: any difference is another scene
            raise R2SDepthError(
                f"{out}: holds scenes made with other parameters ({pfile.name}: {old}); "
                "choose another --out or remove it"
            )
    write_json_atomic(pfile, params)


def _render_all(args: list[tuple], workers: int, bar: Any) -> None:
    """:func:`render_sequence` for each argument tuple, in ``workers`` processes; ``bar`` counts."""
    if workers > 1 and len(args) > 1:
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for _ in ex.map(render_sequence, *zip(*args)):
                if bar is not None:
                    bar.update(1)
    else:
        for a in args:
            render_sequence(*a)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()


def synthesize(
    out: str | os.PathLike,
    spec: SceneSpec | None = None,
    *,
    sequences: int = 4,
    workers: int = 1,
    progress: bool = False,
) -> dict[str, Any]:
    """Write ``sequences`` drives of ``spec`` (:class:`SceneSpec`) under ``out``, rendered in
    ``workers`` processes; resumable (a folder made with another spec is refused)."""
    spec = SceneSpec() if spec is None else spec
    frames, height, width, view = spec.frames, spec.height, spec.width, spec.view
    _check_scene_options(
        (sequences, frames), (height, width), view, spec.traffic, spec.stereo, spec.shared_looks
    )
    if spec.randomise and view != "street":
        raise R2SDepthError("synth --randomise needs --view street (roadside scenes draw their rig already)")
    out = Path(out)
    K = intrinsics(height, width, view)
    params = {
        "frames": frames,
        "height": height,
        "width": width,
        "seed": spec.seed,
        "moving_cars": spec.moving_cars,
    }
    if spec.traffic > 0:  # (absent when 0: folders made before the option stay resumable)
        params["traffic"] = spec.traffic
    if spec.stereo:
        params["stereo"] = True
    if view != "street":
        params["view"] = view
    if spec.shared_looks:
        params["shared_looks"] = True
    if spec.randomise:
        params["randomise"] = True
    _claim_folder(out, params)
    remove_stale_temporaries(out)  # left by a killed run: never read as frames
    write_bytes_atomic(out / DATE / "calib_cam_to_cam.txt", calib_text(K, height, width).encode())
    todo = [s for s in range(sequences) if not _complete(out / f"{DATE}/{DATE}_drive_{s:04d}_sync", frames)]
    args = [(str(out), s, spec) for s in todo]
    bar = tqdm(total=sequences, initial=sequences - len(todo), unit="seq", desc="synth") if progress else None
    _render_all(args, workers, bar)
    drives = [f"{DATE}/{DATE}_drive_{s:04d}_sync" for s in range(sequences)]
    splits = make_splits(drives, frames)

    for name, items in splits.items():
        write_split(out / "splits" / f"{name}_files.txt", [Sample(d, f, "l") for d, f in items])
    return {
        "out": str(out),
        "drives": drives,
        "frames": frames,
        "height": height,
        "width": width,
        "rendered": len(todo),
        "K": K.tolist(),
        "splits": {k: len(v) for k, v in splits.items()},
    }


def _complete(drive_dir: Path, frames: int) -> bool:
    p = drive_dir / "poses.txt"
    return p.is_file() and len(p.read_text().splitlines()) == frames
