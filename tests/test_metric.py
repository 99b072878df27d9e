"""Metric depth without LiDAR: camera-height scaling, the velocity term, the stereo source,
point clouds, the model listing. References are computed another way (ray-plane intersection by
hand, the calibration file's numbers by hand, a PLY parsed by hand, warps of rendered views)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from r2sdepth import evaluate as ev
from r2sdepth.data import kitti
from r2sdepth.data.dataset import SampleOptions, SplitDataset
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.synthetic import STEREO_BASELINE, SceneSpec, synthesize
from r2sdepth.errors import R2SDepthError
from r2sdepth.geometry import warp
from r2sdepth.losses import photometric_error, velocity_loss
from r2sdepth.metric import camera_height_scale, intrinsics_matrix, parse_intrinsics
from r2sdepth.pointcloud import depth_to_points, write_ply

H, W = 96, 320
K = np.array([[200.0, 0, 159.5], [0, 200.0, 47.5], [0, 0, 1]])


def plane_depth(height: float, pitch: float = 0.0, tops: float | None = None) -> np.ndarray:
    """Depth by hand: the ray of pixel (u, v) is ``(x, y, 1)`` with ``x = (u - cx) / fx``; it meets
    the plane ``n . X = height`` (``n = (0, cos p, -sin p)``) at ``z = height / (n . ray)``. Above
    the horizon: a wall at 30 m. ``tops``: rows 53-77 are a horizontal surface ``tops`` metres
    below the camera (a queue of vehicle bonnets: 8,000 pixels, the road below them 5,760)."""
    u, v = np.meshgrid(np.arange(W, dtype=np.float64), np.arange(H, dtype=np.float64))
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    n = np.array([0.0, np.cos(pitch), -np.sin(pitch)])
    dot = n[0] * x + n[1] * y + n[2]
    z = np.where(dot > 1e-3, height / np.maximum(dot, 1e-3), 30.0)
    z = np.minimum(z, 30.0)
    if tops is not None:
        z[53:78] = np.minimum(z[53:78], tops / np.maximum(dot[53:78], 1e-3))
    return z


@pytest.mark.parametrize("pitch_deg, rel", [(0.0, 1e-6), (1.0, 1e-3), (-2.5, 1e-3), (2.5, 0.015)])
def test_camera_height_recovers_a_known_scale(pitch_deg, rel):
    """(Pitched 2.5 degrees down, the wall's lowest rows touch the road's far end and pull the
    fit by about 1%.)"""
    depth = plane_depth(1.4, np.radians(pitch_deg)) / 7.3  # a prediction 7.3x too small
    fit = camera_height_scale(depth, K, 1.4)
    assert fit.scale == pytest.approx(7.3, rel=rel)
    assert np.degrees(np.arccos(fit.normal[1])) == pytest.approx(abs(pitch_deg), abs=0.1)


def test_camera_height_takes_the_lowest_surface_not_the_largest():
    """Vehicle tops below the camera are horizontal and hold more pixels than the road here."""
    depth = plane_depth(1.65, tops=0.25) / 4.0
    assert camera_height_scale(depth, K, 1.65).scale == pytest.approx(4.0, rel=5e-3)


def test_camera_height_refuses_what_it_cannot_fit():
    with pytest.raises(R2SDepthError, match="positive"):
        camera_height_scale(plane_depth(1.65), K, 0.0)
    with pytest.raises(R2SDepthError, match="no near-horizontal plane"):  # a wall facing the camera
        camera_height_scale(np.full((H, W), 5.0), K, 1.65)


@pytest.fixture(scope="module")
def stereo_synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("stereo")
    synthesize(root, SceneSpec(frames=4, height=64, width=224, seed=3, stereo=True), sequences=2)
    return root


def test_camera_height_on_rendered_scenes_with_exact_depth(stereo_synth):
    """The synthetic camera is 1.65 m above the road: exact depth / 5 is recovered as x5."""
    drives = kitti.find_drives(stereo_synth)
    Kd = kitti.load_calib(stereo_synth / drives[0].split("/")[0]).K
    factors = []
    for d in drives:
        for f in range(4):
            g = kitti.gt_depth(stereo_synth, d, f, "02", source="exact")
            factors.append(camera_height_scale(np.where(g > 0, g, 80.0) / 5.0, Kd, 1.65).scale)
    assert np.median(factors) == pytest.approx(5.0, rel=0.02)


def test_eval_scalings_through_the_cli(stereo_synth, tmp_path):
    """``eval --pred`` of exact depth / 5: camera-height scaling finds the scale (no ground truth
    used), ``none`` sees the 5x error, ``median`` is exact; every row says which it used."""
    split = stereo_synth / "splits" / "test_files.txt"
    gts = ev.split_gt(stereo_synth, split)
    pred = tmp_path / "pred.npz"
    ev.save_npz_maps(pred, [np.where(g > 0, g, 80.0) / 5.0 for g in gts])
    out = {}
    for sc in ("median", "camera-height", "camera-height-run", "none"):
        r = subprocess.run(
            [
                "r2sdepth",
                "eval",
                "--pred",
                pred,
                "--data",
                stereo_synth,
                "--split",
                split,
                "--scaling",
                sc,
                "--out",
                tmp_path / f"{sc}.json",
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        out[sc] = json.loads((tmp_path / f"{sc}.json").read_text())
        assert out[sc]["scaling"] == sc
    assert out["median"]["abs_rel"] < 1e-3
    assert out["camera-height"]["abs_rel"] < 0.03 and out["camera-height-run"]["abs_rel"] < 0.03
    assert out["camera-height"]["ratio_median"] == pytest.approx(5.0, rel=0.02)
    assert out["none"]["abs_rel"] == pytest.approx(0.8, abs=0.01)  # |g/5 - g| / g
    assert out["none"]["gt_ratio_median"] == pytest.approx(5.0, rel=1e-3)
    r = subprocess.run(
        [
            "r2sdepth",
            "eval",
            "--pred",
            pred,
            "--data",
            stereo_synth,
            "--split",
            split,
            "--scaling",
            "median",
            "--scale",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "fixed" in r.stderr and "Traceback" not in r.stderr


def test_velocity_loss_by_hand():
    T = torch.eye(4).repeat(2, 1, 1)
    T[0, :3, 3] = torch.tensor([0.3, 0.0, 1.2])
    T[1, :3, 3] = torch.tensor([0.0, 0.4, -0.3])
    inv = torch.linalg.inv(T)  # a target->source pose of the opposite direction: same distance
    travel = torch.tensor([[1.0, 1.0], [0.5, 0.2]])
    got = velocity_loss([T, inv], travel)
    by_hand = (abs(np.sqrt(0.09 + 1.44) - 1.0) * 2 + abs(0.5 - 0.5) + abs(0.5 - 0.2)) / 4
    assert float(got) == pytest.approx(by_hand, rel=1e-5)
    # forward: the optical-axis component with its sign. Sample 0 drove 1.0 m forward to its second
    # source and came from 1.0 m behind its first; sample 1 0.5 m forward, then 0.2 m behind.
    # t_z: T 1.2 / inv -1.2 (sample 0), T -0.3 / inv 0.3 (sample 1); a correct pose has t_z = -forward.
    forward = torch.tensor([[-1.0, 1.0], [0.5, -0.2]])
    got = velocity_loss([T, inv], travel, "forward", forward)
    by_hand = (abs(1.2 - 1.0) + abs(-1.2 + 1.0) + abs(-0.3 + 0.5) + abs(0.3 - 0.2)) / 4
    assert float(got) == pytest.approx(by_hand, rel=1e-5)
    # the same distances the wrong way round (the pose net moving backwards) are penalised
    backwards = velocity_loss([T, inv], travel, "forward", -forward)
    assert float(backwards) == pytest.approx((2.2 + 2.2 + 0.8 + 0.5) / 4, rel=1e-5)
    with pytest.raises(R2SDepthError, match="signed forward travel"):
        velocity_loss([T, inv], travel, "forward")
    # both: the forward term plus the length term (by hand above)
    got = velocity_loss([T, inv], travel, "both", forward)
    length = (abs(np.sqrt(0.09 + 1.44) - 1.0) * 2 + abs(0.5 - 0.5) + abs(0.5 - 0.2)) / 4
    assert float(got) == pytest.approx(by_hand + length, rel=1e-5)
    with pytest.raises(R2SDepthError, match="velocity axis must be norm, forward or both"):
        velocity_loss([T], travel[:, :1], "up")


def test_travel_distances_from_poses(stereo_synth):
    ds = SplitDataset(
        DriveOptions(stereo_synth, height=64, width=224),
        stereo_synth / "splits" / "train_files.txt",
        SampleOptions(need_spikes=False, travel=True),
    )
    s = ds.samples[0]
    poses = np.loadtxt(stereo_synth / s.drive / "poses.txt").reshape(-1, 3, 4)
    by_hand = [np.linalg.norm(poses[s.frame + o][:, 3] - poses[s.frame][:, 3]) for o in (-1, 1)]
    np.testing.assert_allclose(ds[0]["travel"].numpy(), by_hand, rtol=1e-5)
    # the synthetic camera drives forward along its optical axis (the rotation's third column)
    ahead = [(poses[s.frame + o][:, 3] - poses[s.frame][:, 3]) @ poses[s.frame][:, 2] for o in (-1, 1)]
    np.testing.assert_allclose(ds[0]["travel_forward"].numpy(), ahead, rtol=1e-5)
    assert ahead[0] < -0.5 and ahead[1] > 0.5  # about 1 m per frame: behind, then ahead


def test_stereo_transform_of_the_kitti_calibration_by_hand(shared_data):
    """t = K^-1 P[:, 3] per camera, numbers read from the text file here."""
    text = (shared_data / "kitti_raw" / "2011_09_26" / "calib_cam_to_cam.txt").read_text()
    P = {
        c: np.array(re.search(rf"P_rect_{c}: (.*)", text).group(1).split(), float).reshape(3, 4)
        for c in ("02", "03")
    }
    t = {c: np.linalg.inv(P[c][:, :3]) @ P[c][:, 3] for c in P}
    T = kitti.stereo_transform(shared_data / "kitti_raw" / "2011_09_26", "02")
    np.testing.assert_allclose(T[:3, 3], t["03"] - t["02"], atol=1e-9)
    assert T[0, 3] == pytest.approx(-0.5327, abs=1e-3)  # KITTI's 0.54 m baseline, camera 03 to the right
    np.testing.assert_allclose(
        kitti.stereo_transform(shared_data / "kitti_raw" / "2011_09_26", "03"), np.linalg.inv(T), atol=1e-12
    )


@pytest.mark.parametrize("flip", [False, True])
def test_stereo_source_warps_the_right_view_onto_the_left(stereo_synth, flip):
    """With the exact depth and the dataset's stereo pose, the rendered right view warped into the
    left camera matches the left view; with the baseline's sign wrong it does not (also flipped)."""
    split = stereo_synth / "splits" / "train_files.txt"
    ds = SplitDataset(
        DriveOptions(stereo_synth, height=64, width=224),
        split,
        SampleOptions(need_spikes=False, stereo=True, context=()),
    )
    s = ds.samples[1]
    item = ds[1]
    left, K_ = item["color"][0], item["K"]
    right, T = ds._stereo_view(s.drive, s.cam, s.frame, flip)
    depth = torch.from_numpy(kitti.gt_depth(stereo_synth, s.drive, s.frame, "02", source="exact"))
    depth = torch.where(depth > 0, depth, torch.tensor(80.0))
    if flip:
        left, depth = left.flip(-1), depth.flip(-1)
        K_ = K_.clone()
        K_[0, 2] = 224 - 1 - K_[0, 2]
    assert T[0, 3] == pytest.approx(STEREO_BASELINE if flip else -STEREO_BASELINE, abs=1e-6)

    def err(T_):
        w, _ = warp(right[None], depth[None, None], T_[None], K_[None], torch.inverse(K_)[None])
        return float(photometric_error(w, left[None])[..., :, 8:-8].mean())

    wrong = T.clone()
    wrong[0, 3] = -wrong[0, 3]
    assert err(T) < 0.5 * err(wrong)
    assert err(T) < 0.08


def test_ply_round_trip_reproduces_the_depth_pixels(tmp_path):
    rng = np.random.default_rng(0)
    depth = rng.uniform(2, 40, (24, 40)).astype(np.float32)
    depth[3, 5] = 0  # invalid pixels are not written
    Kp = np.array([[30.0, 0, 19.5], [0, 31.0, 11.5], [0, 0, 1]])
    color = rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)
    pts, cols = depth_to_points(depth, Kp, color)
    write_ply(tmp_path / "a.ply", pts, cols, comment="test")
    data = (tmp_path / "a.ply").read_bytes()
    head, body = data.split(b"end_header\n", 1)
    n = int(re.search(rb"element vertex (\d+)", head).group(1))
    assert n == depth.size - 1
    rec = np.frombuffer(body, np.dtype([("p", "<f4", 3), ("c", "u1", 3)]), count=n)
    x, y, z = rec["p"].T.astype(np.float64)
    u = np.rint(x / z * Kp[0, 0] + Kp[0, 2]).astype(int)
    v = np.rint(y / z * Kp[1, 1] + Kp[1, 2]).astype(int)
    np.testing.assert_allclose(z, depth[v, u], rtol=1e-6)
    np.testing.assert_array_equal(rec["c"], color[v, u])
    assert (v * 40 + u).tolist() == [i for i in range(depth.size) if i != 3 * 40 + 5]


def test_intrinsics_from_text_and_fov():
    assert parse_intrinsics("721.5,721.5,609.6,172.9") == (721.5, 721.5, 609.6, 172.9)
    for bad in ("1,2,3", "0,1,2,3", "a,b,c,d", "nan,1,1,1"):
        with pytest.raises(R2SDepthError):
            parse_intrinsics(bad)
    Kf = intrinsics_matrix((375, 1242), fov_deg=90.0)
    assert Kf[0, 0] == pytest.approx(621.0) and Kf[0, 2] == pytest.approx(620.5)


def test_infer_pointcloud_and_camera_height_through_the_cli(stereo_synth, tmp_path):
    frames = stereo_synth / kitti.find_drives(stereo_synth)[0] / "image_02" / "data"
    r = subprocess.run(
        [
            "r2sdepth",
            "infer",
            "--checkpoint",
            "demo",
            "--input",
            frames,
            "--out",
            tmp_path / "a",
            "--pointcloud",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "intrinsics" in r.stderr and "Traceback" not in r.stderr
    Kd = kitti.load_calib(stereo_synth / "2000_01_01").K
    intr = f"{Kd[0, 0]},{Kd[1, 1]},{Kd[0, 2]},{Kd[1, 2]}"
    r = subprocess.run(
        [
            "r2sdepth",
            "infer",
            "--checkpoint",
            "demo",
            "--input",
            frames,
            "--out",
            tmp_path / "b",
            "--pointcloud",
            "--intrinsics",
            intr,
            "--camera-height",
            "1.65",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["depth_units"] == "m" and len(summary["camera_height_scales"]) == summary["outputs"]
    plys = sorted((tmp_path / "b" / "pointcloud").glob("*.ply"))
    assert [p.stem for p in plys] == summary["names"]
    # metric: the scaled prediction's median is near the exact depth's (a 70x ratio before scaling)
    name = summary["names"][0]
    pred = np.load(tmp_path / "b" / "depth" / f"{name}.npy")
    g = kitti.gt_depth(stereo_synth, kitti.find_drives(stereo_synth)[0], int(name), "02", source="exact")
    ratio = np.median(g[g > 0]) / np.median(pred[g > 0])
    assert 0.5 < ratio < 2.0


def test_models_listing_through_the_cli():
    r = subprocess.run(["r2sdepth", "models", "--json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = {m["name"]: m for m in json.loads(r.stdout)}
    assert set(rows) >= {"demo", "real"}
    for m in rows.values():
        assert m["modality"] == "spike" and m["trained_size"] == [64, 224] and m["window_planes"] == 64
        assert m["units"] and m["typical_scale"]
    r = subprocess.run(["r2sdepth", "models"], capture_output=True, text=True)
    assert r.returncode == 0 and "real" in r.stdout and "units" in r.stdout


def test_camera_height_run_uses_one_factor_for_every_image(stereo_synth):
    """Per image, each map's own factor (x5 and x10 here); per run, their median for both."""
    split = stereo_synth / "splits" / "test_files.txt"
    gts = ev.split_gt(stereo_synth, split)[:2]
    preds = [np.where(g > 0, g, 80.0) / s for g, s in zip(gts, (5.0, 10.0))]
    Ks = [kitti.load_calib(stereo_synth / "2000_01_01").K] * 2  # native size = the maps' size
    per_image = ev.evaluate_depths(preds, gts, ev.EvalProtocol(scaling="camera-height"), intrinsics=Ks)
    per_run = ev.evaluate_depths(preds, gts, ev.EvalProtocol(scaling="camera-height-run"), intrinsics=Ks)
    assert per_image["abs_rel"] < 0.03
    assert per_run["abs_rel"] > 0.15  # one factor (7.5) for a x5 and a x10 map: each a third off


def test_stereo_view_is_a_source_of_the_photometric_loss(stereo_synth):
    """Stage 1 with no temporal context and data.stereo: the stereo view is the only source, so
    the loss exists and depends on it (and on its pose)."""
    from r2sdepth.train.datamodule import collate
    from r2sdepth.train.module import DepthModule

    ds = SplitDataset(
        DriveOptions(stereo_synth, height=64, width=224),
        stereo_synth / "splits" / "train_files.txt",
        SampleOptions(need_spikes=False, stereo=True, context=()),
    )
    batch = collate([ds[0], ds[1]])
    torch.manual_seed(0)
    m = DepthModule(
        model={"modality": "rgb", "width": 16, "decoder_width": 8, "num_layers": 18, "init_depth": 10.0},
        pose={"width": 16},
        data={"context": []},
        loss={"automask": False},
    )
    m.eval()
    with torch.no_grad():
        base = float(m.compute_loss(batch)["photo"])
        moved = dict(batch, T_stereo=batch["T_stereo"].clone())
        moved["T_stereo"][:, 0, 3] *= 3.0
        other = float(m.compute_loss(moved)["photo"])
    assert np.isfinite(base) and abs(other - base) > 1e-4


@pytest.mark.parametrize("bad", ["0", "-2", "nan", "inf"])
def test_infer_refuses_a_scale_that_is_not_positive_and_finite(stereo_synth, tmp_path, bad):
    frames = stereo_synth / kitti.find_drives(stereo_synth)[0] / "image_02" / "data"
    r = subprocess.run(
        [
            "r2sdepth",
            "infer",
            "--checkpoint",
            "demo",
            "--input",
            frames,
            "--out",
            tmp_path / "o",
            f"--scale={bad}",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "--scale" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()  # nothing written


def test_eval_npy_needs_pred_kind_and_finds_a_relative_split(stereo_synth, tmp_path, monkeypatch):
    """A Monodepth2 ``.npy`` (disparities) is never read as depth silently; ``--split`` relative to
    ``--data`` is found there (as ``train`` finds it)."""
    split = stereo_synth / "splits" / "test_files.txt"
    gts = ev.split_gt(stereo_synth, split)
    disp = np.stack([1.0 / np.where(g > 0, g, 80.0) for g in gts]).astype(np.float32)
    np.save(tmp_path / "disps.npy", disp)
    monkeypatch.chdir(tmp_path)
    base = [
        "r2sdepth",
        "eval",
        "--pred",
        "disps.npy",
        "--data",
        stereo_synth,
        "--split",
        "splits/test_files.txt",
    ]
    r = subprocess.run(base, capture_output=True, text=True)
    assert r.returncode == 2 and "--pred-kind" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([*base, "--pred-kind", "disp", "--out", "r.json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads(Path("r.json").read_text())["abs_rel"] < 1e-3


@pytest.mark.parametrize("warmup, axis", [(0, "norm"), (1, "norm"), (0, "forward"), (0, "both")])
def test_velocity_term_in_the_stage1_loss_after_its_warmup(stereo_synth, warmup, axis):
    """The term equals velocity_loss of the pose net's translations and the batch's distances,
    and is off before ``loss.velocity_warmup`` steps (step 0 here: no trainer)."""
    from r2sdepth.train.datamodule import collate
    from r2sdepth.train.module import DepthModule

    ds = SplitDataset(
        DriveOptions(stereo_synth, height=64, width=224),
        stereo_synth / "splits" / "train_files.txt",
        SampleOptions(need_spikes=False, travel=True),
    )
    batch = collate([ds[0], ds[1]])
    m = DepthModule(
        model={"modality": "rgb", "width": 16, "decoder_width": 8},
        pose={"width": 16},
        loss={"velocity_weight": 0.5, "velocity_warmup": warmup, "velocity_axis": axis},
    )
    m.eval()
    with torch.no_grad():
        res = m.compute_loss(batch)
        if warmup:
            assert "velocity" not in res
            return
        t = torch.stack([p[:, :3, 3] for p in res["poses"]], 1)
        # forward: t_z = -(forward travel) for a correct pose (the scene comes nearer)
        fwd = float((t[..., 2] + batch["travel_forward"]).abs().mean())
        length = float((t.norm(dim=-1) - batch["travel"]).abs().mean())
        want = {"forward": fwd, "norm": length, "both": fwd + length}[axis]
        assert float(res["velocity"]) == pytest.approx(want, rel=1e-6)
        no_term = DepthModule(model={"modality": "rgb", "width": 16, "decoder_width": 8}, pose={"width": 16})
        no_term.load_state_dict(m.state_dict())
        no_term.eval()
        base = no_term.compute_loss(batch)["loss"]
    assert float(res["loss"]) == pytest.approx(float(base) + 0.5 * float(res["velocity"]), rel=1e-5)


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--data.context", "[]"], "needs source views"),
        (["--loss.velocity_weight", "0.1", "--loss.velocity_warmup", "-1"], "velocity_warmup"),
        (
            ["--loss.velocity_weight", "0.1", "--data.context", "[]", "--data.stereo", "true"],
            "context frames",
        ),
        (["--model.init_depth", "500"], "init_depth"),
        (["--loss.depth_lambda", "1.5"], "depth_lambda"),
    ],
)
def test_metric_training_options_are_checked_before_any_work(stereo_synth, tmp_path, args, msg):
    r = subprocess.run(
        [
            "r2sdepth",
            "train",
            "--config",
            "train_rgb_synth",
            "--data.root",
            stereo_synth,
            "--out",
            tmp_path / "run",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and msg in r.stderr and "Traceback" not in r.stderr, r.stderr[-800:]
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_rescale_translation_by_hand():
    from r2sdepth.geometry import axis_angle_to_matrix, rescale_translation

    T = torch.eye(4).repeat(2, 1, 1)
    T[0, :3, :3] = axis_angle_to_matrix(torch.tensor([[0.1, -0.2, 0.05]]))[0]
    T[0, :3, 3] = torch.tensor([3.0, 0.0, 4.0])
    out = rescale_translation(T, torch.tensor([10.0, 2.0]))
    np.testing.assert_allclose(out[0, :3, 3].numpy(), [6.0, 0.0, 8.0], rtol=1e-6)
    np.testing.assert_allclose(out[1, :3, 3].numpy(), [0.0, 0.0, 0.0])  # no direction: stays zero
    torch.testing.assert_close(out[:, :3, :3], T[:, :3, :3])


def test_known_speed_poses_have_the_distances_travelled(stereo_synth):
    """With loss.known_speed the warps use the pose net's directions at the real distances."""
    from r2sdepth.train.datamodule import collate
    from r2sdepth.train.module import DepthModule

    ds = SplitDataset(
        DriveOptions(stereo_synth, height=64, width=224),
        stereo_synth / "splits" / "train_files.txt",
        SampleOptions(need_spikes=False, travel=True),
    )
    batch = collate([ds[0], ds[1]])
    assert batch["travel"].shape == (2, 2) and (batch["travel"] > 0.5).all()  # ~1 m per frame at 10 Hz
    batch["travel"] = torch.tensor([[0.3, 1.7], [2.0, 0.5]])  # distinct per frame and per source
    m = DepthModule(
        model={"modality": "rgb", "width": 16, "decoder_width": 8},
        pose={"width": 16},
        loss={"known_speed": True},
    )
    with torch.no_grad():
        res = m.compute_loss(batch)
        raw = m.poses(batch)
    for j, T in enumerate(res["poses"]):
        np.testing.assert_allclose(T[:, :3, 3].norm(dim=-1).numpy(), batch["travel"][:, j].numpy(), rtol=1e-5)
        cos = torch.nn.functional.cosine_similarity(T[:, :3, 3], raw[j][:, :3, 3], dim=-1)
        np.testing.assert_allclose(cos.numpy(), 1.0, rtol=1e-5)


def test_pose_zero_init_reaches_the_pose_net_from_the_config():
    from r2sdepth.config import defaults
    from r2sdepth.train.module import DepthModule

    assert defaults("pose")["zero_init"] is False
    for zero in (True, False):
        m = DepthModule(
            model={"modality": "rgb", "width": 16, "decoder_width": 8},
            pose={**defaults("pose"), "width": 16, "zero_init": zero},
        )
        last = m.pose_net.head[-1]
        assert (float(last.weight.detach().abs().sum()) == 0.0) == zero


def test_stereo_calibration_and_poses_are_read_once_per_drive(stereo_synth, monkeypatch):
    """Not per sample: the data loader's hot path reads images only."""
    calls = {"stereo": 0, "positions": 0}
    real_T, real_pos = kitti.stereo_transform, kitti.drive_motion

    def count(name, fn):
        def wrapped(*a, **k):
            calls[name] += 1
            return fn(*a, **k)

        return wrapped

    monkeypatch.setattr(kitti, "stereo_transform", count("stereo", real_T))
    monkeypatch.setattr(kitti, "drive_motion", count("positions", real_pos))
    ds = SplitDataset(
        DriveOptions(stereo_synth, height=64, width=224),
        stereo_synth / "splits" / "train_files.txt",
        SampleOptions(need_spikes=False, stereo=True, travel=True),
    )
    for i in range(len(ds)):
        ds[i]
    drives = {s.drive for s in ds.samples}
    assert len(ds) > len(drives) and calls == {"stereo": 1, "positions": len(drives)}


@pytest.mark.parametrize(
    "args, logged",
    [
        (["--data.stereo", "true", "--data.context", "[]"], "train/photo"),
        (
            ["--data.stereo", "true", "--loss.velocity_weight", "0.5", "--loss.known_speed", "true"],
            "train/velocity",
        ),
    ],
)
def test_metric_recipes_train_through_a_real_fit(stereo_synth, tmp_path, args, logged):
    """Through the CLI and Lightning's Trainer.fit: the stereo source and the speed terms reach
    the logged loss, and the checkpoint records the data options."""
    import csv

    from r2sdepth.checkpoint import load_file

    run = tmp_path / "run"
    r = subprocess.run(
        [
            "r2sdepth",
            "train",
            "--config",
            "train_rgb_synth",
            "--data.root",
            stereo_synth,
            "--out",
            run,
            "--data.batch_size",
            "2",
            "--data.val_split",
            "null",
            "--data.num_workers",
            "0",
            "--trainer.max_steps",
            "3",
            "--trainer.log_every_n_steps",
            "1",
            "--model.init_depth",
            "10",
            "--trainer.enable_progress_bar",
            "false",
            *args,
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr[-1500:]
    rows = list(csv.DictReader(open(run / "logs" / "metrics.csv")))
    vals = [float(x[logged]) for x in rows if x.get(logged)]
    assert len(vals) == 3 and all(np.isfinite(vals))
    meta = load_file(run / "checkpoints" / "last.ckpt")["r2sdepth"]
    assert meta["data"]["stereo"] is True and meta["model"]["init_depth"] == 10.0


def _moving_samples(root: Path, tmp_path: Path) -> tuple[Path, SplitDataset]:
    """Frames 1 and 2 of every drive (their frames 0 and 3 are the sources), with exact depth and
    the signed distances travelled."""
    split = tmp_path / "moving.txt"
    kitti.write_split(split, [kitti.Sample(d, f, "l") for d in kitti.find_drives(root) for f in (1, 2)])
    drive = DriveOptions(root=root, height=64, width=224, window=64, gt_source="exact")
    opts = SampleOptions(context=(-1, 1), travel=True, with_gt=True, need_spikes=False)
    return split, SplitDataset(drive, split, opts)


def test_speed_scale_recovers_a_known_scale_from_exact_depth(stereo_synth, tmp_path):
    """Exact depth / 5 (the sky at 80 m) of rendered scenes whose camera drives forward: the
    frames before and after, moved straight by the known distance, explain each frame best at x5
    (median within one 2.9% step); the error at x5 is below the error at x2.5 and x10; a camera said
    to be standing (forward 0) gives no scale (NaN)."""
    from r2sdepth.metric import speed_scale, speed_scale_errors  # noqa: PLC0415

    _, ds = _moving_samples(stereo_synth, tmp_path)
    got = []
    for i in range(len(ds)):
        s = ds[i]
        gt = torch.nn.functional.interpolate(s["depth_gt"][None], size=(64, 224), mode="nearest")
        depth = torch.where(gt > 0, gt, torch.full_like(gt, 80.0)) / 5.0
        c, fwd, K = s["color"][None], s["travel_forward"][None], s["K"][None]
        assert float(fwd[0, 0]) < -0.3 and float(fwd[0, 1]) > 0.3  # t-1 behind, t+1 ahead
        got.append(float(speed_scale(depth, c[:, 0], [c[:, 1], c[:, 2]], fwd, K)[0]))
        errs = speed_scale_errors(
            depth, c[:, 0], [c[:, 1], c[:, 2]], fwd, K, torch.tensor([[2.5, 5.0, 10.0]])
        )
        assert float(errs[0, 1]) < min(float(errs[0, 0]), float(errs[0, 2]))
        still = speed_scale(depth, c[:, 0], [c[:, 1], c[:, 2]], torch.zeros_like(fwd), K)
        assert torch.isnan(still).all()
        # a source that did not move (the frame itself, as at a drive's first frame) is left out
        one = speed_scale(depth, c[:, 0], [c[:, 0], c[:, 2]], torch.stack([fwd[:, 0] * 0, fwd[:, 1]], 1), K)
        assert float(one[0]) == pytest.approx(5.0, rel=0.06)
    assert np.median(got) == pytest.approx(5.0, rel=0.03), got


def test_speed_scale_through_the_cli_makes_a_metric_copy(stereo_synth, tmp_path):
    """``r2sdepth speed-scale`` on the demo model (relative depth, about x60 of metres): the copy's
    depth is the factor times the model's at every pixel, the factor is recorded in the copy and
    printed; a split without motion, a drive without poses and --max-frames 0 are one line each
    and write nothing."""
    import shutil  # noqa: PLC0415

    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, load_file  # noqa: PLC0415
    from r2sdepth.infer import predict_split  # noqa: PLC0415

    split, _ = _moving_samples(stereo_synth, tmp_path)
    out = tmp_path / "metric.ckpt"
    cmd = ["r2sdepth", "speed-scale", "--checkpoint", "demo", "--data", stereo_synth, "--split", split]
    r = subprocess.run([*cmd, "--out", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    factor = float(re.search(r"depth x ([0-9.]+)", r.stdout).group(1))
    meta = load_file(out)["r2sdepth"]
    assert meta["depth_scale"]["factor"] == pytest.approx(factor, rel=1e-3)
    assert meta["depth_scale"]["from"] == "known speed" and meta["depth_scale"]["frames"] == 4
    assert 8 < factor < 500  # the demo's units are far from metres
    base, _ = predict_split(SHIPPED_CHECKPOINTS["demo"], stereo_synth, split)
    scaled, _ = predict_split(out, stereo_synth, split)
    for a, b in zip(base, scaled):
        np.testing.assert_allclose(b, a * meta["depth_scale"]["factor"], rtol=1e-4)
    # no motion: every frame is its own source
    still = tmp_path / "still"
    shutil.copytree(stereo_synth, still)
    for d in kitti.find_drives(still):
        poses = still / d / "poses.txt"
        rows = poses.read_text().splitlines()
        poses.write_text("\n".join([rows[0]] * len(rows)) + "\n")
    bad = tmp_path / "bad.ckpt"
    r = subprocess.run([*cmd[:5], still, "--split", split, "--out", bad], capture_output=True, text=True)
    assert r.returncode == 2 and "no frame gives a scale" in r.stderr, r.stderr[-800:]
    for d in kitti.find_drives(still):
        (still / d / "poses.txt").unlink()
    r = subprocess.run([*cmd[:5], still, "--split", split, "--out", bad], capture_output=True, text=True)
    assert r.returncode == 2 and "poses.txt or oxts" in r.stderr, r.stderr[-800:]
    r = subprocess.run([*cmd, "--out", bad, "--max-frames", "0"], capture_output=True, text=True)
    assert r.returncode == 2 and "--max-frames" in r.stderr
    assert not bad.exists()


def test_slim_checkpoint_depth_scale_must_be_positive(tmp_path):
    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS  # noqa: PLC0415
    from r2sdepth.export import slim_checkpoint  # noqa: PLC0415

    for bad in (0.0, -2.0, float("nan"), float("inf")):
        with pytest.raises(R2SDepthError, match="positive"):
            slim_checkpoint(SHIPPED_CHECKPOINTS["demo"], tmp_path / "x.ckpt", depth_scale=bad)
    assert not (tmp_path / "x.ckpt").exists()


def test_depth_scale_of_an_ensemble_scales_it_and_each_member(stereo_synth, tmp_path):
    """The shipped ``real`` (an ensemble of three networks) scaled x2: its depth is twice the
    original's at every pixel, and so is each member's when ``adapt`` takes it apart."""
    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS  # noqa: PLC0415
    from r2sdepth.export import ensemble_members, slim_checkpoint  # noqa: PLC0415
    from r2sdepth.infer import predict_split  # noqa: PLC0415

    split = tmp_path / "one.txt"
    kitti.write_split(split, [kitti.Sample(kitti.find_drives(stereo_synth)[0], 1, "l")])
    real = SHIPPED_CHECKPOINTS["real"]
    out = slim_checkpoint(real, tmp_path / "x2.ckpt", depth_scale=2.0)
    (a,), _ = predict_split(real, stereo_synth, split)
    (b,), _ = predict_split(out, stereo_synth, split)
    np.testing.assert_allclose(b, 2 * a, rtol=1e-5)
    m_scaled, m_orig = ensemble_members(out, tmp_path / "s"), ensemble_members(real, tmp_path / "o")
    (x,), _ = predict_split(m_scaled[2], stereo_synth, split)
    (y,), _ = predict_split(m_orig[2], stereo_synth, split)
    np.testing.assert_allclose(x, 2 * y, rtol=1e-5)
