"""Synthetic scenes: dense city traffic (``synth --traffic``) and its guards."""

import json

import numpy as np
import pytest

from r2sdepth.data import kitti
from r2sdepth.data.synthetic import (
    SceneSpec,
    StreetLooks,
    camera_pose,
    draw_street_looks,
    make_world,
    render,
    synthesize,
)
from r2sdepth.errors import R2SDepthError


def test_traffic_lead_vehicle_keeps_its_distance_and_is_in_the_exact_depth(tmp_path):
    frames, fps = 4, 10.0
    synthesize(tmp_path, SceneSpec(frames=frames, height=64, width=96, seed=3, traffic=1.0), sequences=1)
    assert json.loads((tmp_path / "synth.json").read_text())["traffic"] == 1.0
    # the same world as render_sequence draws (same generator, same draws)
    rng = np.random.default_rng([3, 0])
    world = make_world(rng, length=frames / fps * 12.0 + 30, traffic=1.0)
    own = [b for b in world.boxes if b.vz > 0 and abs(0.5 * (b.lo[0] + b.hi[0]) - 1.75) < 0.3]
    lead = min(own, key=lambda b: b.lo[2])
    assert 2.0 <= world.speed <= 11.0 and lead.vz >= 0.9 * world.speed
    drive = "2000_01_01/2000_01_01_drive_0000_sync"
    for f in (0, frames - 1):
        t = f / fps
        gt = kitti.gt_depth(tmp_path, drive, f, source="exact")
        # the lead's rear face, straight ahead: its distance to the camera along z at time t
        cam_z = world.speed * t
        expect = lead.lo[2] + lead.vz * t - cam_z
        centre = gt[34:40, 44:52]  # just below the horizon, image centre: the lead vehicle's rear
        assert np.all(centre > 0)
        assert np.median(centre) == pytest.approx(expect, rel=0.06), (f, expect)
    # a vehicle moving with the camera: its distance hardly changes over the sequence
    assert abs(lead.vz - world.speed) * (frames - 1) / fps < 0.35


def test_traffic_off_is_the_old_street_and_parameters_are_guarded(tmp_path):
    rng_a, rng_b = np.random.default_rng([0, 1]), np.random.default_rng([0, 1])
    a, b = make_world(rng_a, 60.0), make_world(rng_b, 60.0, traffic=0.0)
    assert len(a.boxes) == len(b.boxes) and a.speed == b.speed
    t = make_world(np.random.default_rng([0, 1]), 60.0, traffic=0.5)
    assert len(t.boxes) > len(a.boxes) + 10
    img, depth = render(
        t,
        camera_pose(t, 0.0, np.zeros(3)),
        np.array([[55.7, 0, 48], [0, 122.9, 32], [0, 0, 1.0]]),
        64,
        96,
        0.0,
    )
    assert img.shape == (64, 96, 3) and np.isfinite(depth).all()
    synthesize(tmp_path, SceneSpec(frames=3, height=32, width=32, seed=0, traffic=0.5), sequences=1)
    with pytest.raises(R2SDepthError, match="other parameters"):
        synthesize(tmp_path, SceneSpec(frames=3, height=32, width=32, seed=0), sequences=1)
    with pytest.raises(R2SDepthError, match="traffic density"):
        synthesize(tmp_path / "x", SceneSpec(frames=3, height=32, width=32, traffic=1.5), sequences=1)


def test_roadside_view_static_camera_square_pixels_and_depth_of_a_passing_car(tmp_path):
    """A static roadside camera: identity poses, square-pixel intrinsics, and the exact depth of a
    car side at a hand-computed distance; its glass is darker than its body at the same depth."""
    from r2sdepth.data.synthetic import Box, _vehicle_parts, intrinsics, make_roadside_world

    synthesize(tmp_path, SceneSpec(frames=3, height=48, width=80, seed=5, view="roadside"), sequences=1)
    assert json.loads((tmp_path / "synth.json").read_text())["view"] == "roadside"
    drive = tmp_path / "2000_01_01/2000_01_01_drive_0000_sync"
    poses = np.loadtxt(drive / "poses.txt").reshape(-1, 3, 4)
    assert np.allclose(poses, np.hstack([np.eye(3), np.zeros((3, 1))])[None], atol=1e-9)
    calib = (tmp_path / "2000_01_01" / "calib_cam_to_cam.txt").read_text().splitlines()
    P = np.array([float(x) for x in next(ln for ln in calib if ln.startswith("P_rect_02:")).split()[1:]])
    assert np.allclose(
        P.reshape(3, 4)[:, :3], [[60.0, 0, 40.0], [0, 60.0, 24.0], [0, 0, 1]]
    )  # 0.75 W, square

    world = make_roadside_world(np.random.default_rng(0), duration=1.0, moving_cars=0)
    h = world.cam_height
    car = Box(np.array([0.9, h - 1.5, -3.0]), np.array([2.6, h, 3.0]), "metal", np.full(3, 0.9, np.float32))
    parts = _vehicle_parts(np.random.default_rng(1), car)
    world.boxes[:] = [car, *parts]
    T = camera_pose(world, 0.0, np.zeros(3))
    H, W = 96, 160
    K = intrinsics(H, W, "roadside")
    img, depth = render(world, T, K, H, W, 0.0)
    yaw, pitch = world.yaw, world.pitch
    # a point on the car side x = 2.6 (facing the camera) at height y, lateral z: its camera depth
    # is its distance along the optical axis (sin(yaw) cos(pitch), -sin(pitch), cos(yaw) cos(pitch))
    axis = np.array([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)])
    cam = np.array([world.cam_x, 0.0, 0.0])

    def pixel(p: np.ndarray) -> tuple[int, int, float]:
        pc = np.linalg.inv(T)[:3] @ np.append(p, 1.0)
        uv = K @ pc
        return int(round(uv[1] / uv[2])), int(round(uv[0] / uv[2])), float((p - cam) @ axis)

    glass = parts[0]
    body_y = 0.5 * (glass.hi[1] + car.hi[1] - 2 * 0.4)  # between the glass band and the wheels
    r, c, expect = pixel(np.array([2.6, body_y, 0.0]))
    assert depth[r, c] == pytest.approx(expect, rel=1e-3)
    gy = 0.5 * (glass.lo[1] + glass.hi[1])
    rg, cg, expect_g = pixel(np.array([2.62, gy, 0.0]))
    assert depth[rg, cg] == pytest.approx(expect_g, rel=1e-3)
    assert abs(depth[rg, cg] - depth[r, c]) < 0.1  # dark parts are as near as the body
    assert img[rg, cg].mean() < 0.5 * img[r, c].mean()
    with pytest.raises(R2SDepthError, match="roadside takes neither"):
        synthesize(
            tmp_path / "x",
            SceneSpec(frames=3, height=48, width=80, view="roadside", traffic=0.5),
            sequences=1,
        )
    with pytest.raises(R2SDepthError, match="view must be one of"):
        synthesize(tmp_path / "y", SceneSpec(frames=3, height=48, width=80, view="sideways"), sequences=1)


def test_roadside_shared_looks_walls_and_vehicles_draw_from_one_distribution():
    from r2sdepth.data.synthetic import SURFACES, make_roadside_world

    def bodies(world):  # vehicle bodies: boxes standing on the road that move
        return [b for b in world.boxes if b.vz != 0 and b.tex != "asphalt" and b.tint.mean() > 0.0]

    plain = make_roadside_world(np.random.default_rng(7), duration=5.0)
    shared = make_roadside_world(np.random.default_rng(7), duration=5.0, shared_looks=True)
    assert {b.tex for b in bodies(plain)} == {"metal"}
    assert {b.tex for b in bodies(shared)} <= set(SURFACES) and len({b.tex for b in bodies(shared)}) >= 4
    walls = shared.seg_tint[0].mean(1)
    cars = np.array([b.tint.mean() for b in bodies(shared) if b.hi[1] - b.lo[1] > 1.0])
    # one distribution: tints from near-black to white on both, with similar means
    assert walls.min() < 0.3 and walls.max() > 0.8 and cars.min() < 0.3 and cars.max() > 0.8
    assert abs(np.median(walls) - np.median(cars)) < 0.2
    with pytest.raises(R2SDepthError, match="needs --view roadside"):
        synthesize("unused", SceneSpec(frames=3, height=48, width=80, shared_looks=True), sequences=1)


def test_randomised_street_road_depth_by_hand_exposure_and_guards(tmp_path):
    """``synth --randomise``: the road's exact depth follows the drawn camera height (flat road seen
    from height h by a level camera: ``z = h fy / (v - cy)``, by hand), the drawn exposure scales the
    image, every drive of a folder draws its own looks, and the option is recorded and guarded."""
    K = np.array([[55.7, 0, 48], [0, 122.9, 32], [0, 0, 1.0]])
    level = np.eye(4)
    level[0, 3] = 1.75  # right-hand lane, looking down the street
    depth_at, imgs = {}, {}
    for h, exposure in ((1.65, 1.0), (1.95, 0.5)):
        looks = StreetLooks(cam_height=h, pitch=0.0, road_half=6.0, exposure=exposure)
        world = make_world(np.random.default_rng([5, 0]), 60.0, moving_cars=0, looks=looks)
        imgs[h], depth_at[h] = render(world, level, K, 64, 96, 0.0)
    for h, depth in depth_at.items():
        for v in (60, 63):  # bottom rows, image centre: the road a few metres ahead
            assert depth[v, 48] == pytest.approx(h * 122.9 / (v - 32), rel=1e-4), (h, v)
    # the same world bar the camera: where the higher camera still sees road, its image is half as bright
    dark, bright = imgs[1.95][60:, 40:56].astype(float), imgs[1.65][60:, 40:56].astype(float)
    ok = bright > 20
    assert np.median(dark[ok] / bright[ok]) == pytest.approx(0.5, abs=0.08)
    looks = [draw_street_looks(np.random.default_rng([1, s, 1])) for s in range(6)]
    heights = [lk.cam_height for lk in looks]
    assert all(1.3 <= h <= 2.0 for h in heights) and len(set(heights)) == 6
    assert all(0.6 <= lk.exposure <= 1.5 and 0.8 <= lk.gamma <= 1.25 for lk in looks)
    spec = SceneSpec(frames=3, height=32, width=64, seed=1, randomise=True)
    synthesize(tmp_path, spec, sequences=2)
    assert json.loads((tmp_path / "synth.json").read_text())["randomise"] is True
    with pytest.raises(R2SDepthError, match="other parameters"):
        synthesize(tmp_path, SceneSpec(frames=3, height=32, width=64, seed=1), sequences=2)
    with pytest.raises(R2SDepthError, match="needs --view street"):
        synthesize(tmp_path / "r", SceneSpec(frames=3, height=32, width=64, view="roadside", randomise=True))
