"""Synthetic scenes: dense city traffic (``synth --traffic``) and its guards."""

import json

import numpy as np
import pytest

from r2sdepth.data import kitti
from r2sdepth.data.synthetic import camera_pose, make_world, render, synthesize
from r2sdepth.errors import R2SDepthError


def test_traffic_lead_vehicle_keeps_its_distance_and_is_in_the_exact_depth(tmp_path):
    frames, fps = 4, 10.0
    synthesize(tmp_path, sequences=1, frames=frames, height=64, width=96, seed=3, traffic=1.0)
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
    synthesize(tmp_path, sequences=1, frames=3, height=32, width=32, seed=0, traffic=0.5)
    with pytest.raises(R2SDepthError, match="other parameters"):
        synthesize(tmp_path, sequences=1, frames=3, height=32, width=32, seed=0)
    with pytest.raises(R2SDepthError, match="traffic density"):
        synthesize(tmp_path / "x", sequences=1, frames=3, height=32, width=32, traffic=1.5)
