import json
import subprocess

import numpy as np
import pytest

from r2sdepth.data import kitti
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.errors import R2SDepthError
from r2sdepth.evaluate import (
    EvalProtocol,
    compute_metrics,
    crop_mask,
    evaluate_depths,
    load_npz_maps,
    save_npz_maps,
)


def test_metrics_hand_computed():
    gt = np.array([1.0, 2.0, 4.0])
    pred = np.array([1.0, 1.0, 5.0])
    m = compute_metrics(gt, pred)
    assert m["abs_rel"] == pytest.approx((0 + 0.5 + 0.25) / 3)
    assert m["sq_rel"] == pytest.approx((0 + 1 / 2 + 1 / 4) / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(2 / 3))
    assert m["rmse_log"] == pytest.approx(np.sqrt((np.log(2) ** 2 + np.log(1.25) ** 2) / 3))
    # ratios 1, 2, 1.25: a1 counts < 1.25 strictly
    assert m["a1"] == pytest.approx(1 / 3)
    assert m["a2"] == pytest.approx(2 / 3)
    assert m["a3"] == pytest.approx(2 / 3)


def test_perfect_and_scaled_predictions():
    rng = np.random.default_rng(0)
    gts = [rng.uniform(2, 70, (50, 160)).astype(np.float32) for _ in range(3)]
    gts[0][:30] = 0  # invalid pixels are ignored
    perfect = evaluate_depths(gts, gts)
    assert perfect["abs_rel"] == pytest.approx(0, abs=1e-6) and perfect["a1"] == 1.0
    scaled = evaluate_depths([g * 3.7 + (g == 0) for g in gts], gts)
    assert scaled["abs_rel"] == pytest.approx(0, abs=1e-5)
    assert scaled["ratio_median"] == pytest.approx(1 / 3.7, rel=1e-4)
    assert scaled["ratio_std"] == pytest.approx(0, abs=1e-5)
    unscaled = evaluate_depths([g * 2 + 1 for g in gts], gts, EvalProtocol(scaling="fixed"))
    assert unscaled["abs_rel"] > 0.5
    fixed = evaluate_depths([g * 2 + (g == 0) for g in gts], gts, EvalProtocol(scaling="fixed", scale=0.5))
    assert fixed["abs_rel"] == pytest.approx(0, abs=1e-5)
    # predictions of another size are resized to the ground truth
    ramp = np.tile(np.linspace(5, 50, 160, dtype=np.float32), (50, 1))
    small = evaluate_depths([ramp[::2, ::2]], [ramp], EvalProtocol(scaling="fixed"))
    assert small["n"] == 1 and small["abs_rel"] < 0.02


def test_eval_bad_input():
    g = np.ones((10, 10), np.float32) * 5
    with pytest.raises(R2SDepthError, match="NaN"):
        evaluate_depths([np.full((10, 10), np.nan, np.float32)], [g])
    with pytest.raises(R2SDepthError, match="predictions for"):
        evaluate_depths([g, g], [g])
    with pytest.raises(R2SDepthError, match="no image"):
        evaluate_depths([g], [np.zeros((10, 10), np.float32)])


def test_crops():
    m = crop_mask((375, 1242), "garg")
    rows = np.flatnonzero(m.any(1))
    cols = np.flatnonzero(m.any(0))
    assert (rows[0], rows[-1] + 1) == (int(0.40810811 * 375), int(0.99189189 * 375))
    assert (cols[0], cols[-1] + 1) == (int(0.03594771 * 1242), int(0.96405229 * 1242))
    assert crop_mask((4, 4), "none").all()


def test_npz_roundtrip_object_array(tmp_path):
    maps = [np.ones((3, 4), np.float32), np.zeros((5, 6), np.float32)]
    save_npz_maps(tmp_path / "gt.npz", maps)
    z = np.load(tmp_path / "gt.npz", allow_pickle=True)["data"]  # Monodepth2's loader
    assert z.dtype == object and z[1].shape == (5, 6)
    back = load_npz_maps(tmp_path / "gt.npz")
    assert [b.shape for b in back] == [(3, 4), (5, 6)]


def test_velodyne_projection_real_kitti(shared_data):
    date = shared_data / "kitti_raw" / "2011_09_26"
    calib = kitti.load_calib(date, "02", need_velo=True)
    assert calib.size == (375, 1242)
    velo = kitti.load_velodyne(
        date / "2011_09_26_drive_0005_sync" / "velodyne_points" / "data" / "0000000000.bin"
    )
    depth = kitti.project_velodyne(velo, calib)
    valid = depth > 0
    assert depth.shape == (375, 1242)
    assert 10_000 < valid.sum() < 30_000  # ~4-6% of pixels, as on the Eigen split
    assert 1.0 < depth[valid].min() and depth[valid].max() < 120
    assert 5 < np.median(depth[valid]) < 40
    assert not valid[:100].any() or valid[:100].mean() < 0.01  # nothing above the scan's field
    # nearest point wins: the map equals the min over all points projecting to each pixel
    P = calib.P_rect @ calib.R_rect @ calib.velo_to_cam
    pts = velo[velo[:, 0] >= 0].astype(np.float64)
    pts[:, 3] = 1
    uvz = pts @ P.T
    u = np.round(uvz[:, 0] / uvz[:, 2]).astype(int) - 1
    v = np.round(uvz[:, 1] / uvz[:, 2]).astype(int) - 1
    k = np.flatnonzero((u >= 0) & (v >= 0) & (u < 1242) & (v < 375) & (uvz[:, 2] > 0))
    i = k[np.argmax(pts[k, 0])]
    assert depth[v[i], u[i]] <= pts[i, 0]


def test_export_gt_and_eval_cli_on_real_kitti(shared_data, tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("".join(f"2011_09_26/2011_09_26_drive_0005_sync {i} l\n" for i in (0, 10, 20)))
    r = subprocess.run(
        [
            "r2sdepth",
            "export-gt",
            "--kitti-root",
            shared_data / "kitti_raw",
            "--split",
            split,
            "--out",
            tmp_path / "gt.npz",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    gts = load_npz_maps(tmp_path / "gt.npz")
    assert len(gts) == 3 and gts[0].shape == (375, 1242)
    save_npz_maps(tmp_path / "pred.npz", [np.where(g > 0, g * 2, 10.0) for g in gts])
    r = subprocess.run(
        [
            "r2sdepth",
            "eval",
            "--pred",
            tmp_path / "pred.npz",
            "--gt",
            tmp_path / "gt.npz",
            "--out",
            tmp_path / "res.json",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert set(res) >= {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"}
    assert res["abs_rel"] < 1e-5 and res["ratio_median"] == pytest.approx(0.5, rel=1e-4)
    assert "| abs_rel |" in r.stdout.replace("| model | abs_rel |", "| abs_rel |")


def test_missing_calibration(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(R2SDepthError, match="missing calibration"):
        kitti.load_calib(tmp_path / "d")
    (tmp_path / "d" / "calib_cam_to_cam.txt").write_text("R_rect_00: 1 0 0 0 1 0 0 0 1\n")
    with pytest.raises(R2SDepthError, match="P_rect_02"):
        kitti.load_calib(tmp_path / "d")
    bad = tmp_path / "v.bin"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(R2SDepthError, match="multiple of 4"):
        kitti.load_velodyne(bad)


def test_synthetic_layout_and_exact_depth(tmp_path):
    res = synthesize(tmp_path, SceneSpec(frames=4, height=48, width=160, seed=1), sequences=2)
    assert res["splits"] == {"train": 2, "val": 2, "test": 2}
    drives = kitti.find_drives(tmp_path)
    assert len(drives) == 2
    calib = kitti.load_calib(tmp_path / drives[0].split("/")[0], "02")
    assert calib.size == (48, 160)
    np.testing.assert_allclose(calib.K, [[0.58 * 160, 0, 80], [0, 1.92 * 48, 24], [0, 0, 1]])
    d = kitti.gt_depth(tmp_path, drives[0], 2)
    assert d.shape == (48, 160) and d.dtype == np.float32
    assert (d == 0).mean() < 0.5 and d.max() <= 256
    # the road at the bottom row: depth = f_y * h / (v - c_y) for a level camera (pitch ~ 0.01 rad)
    assert d[-1, 80] == pytest.approx(1.92 * 48 * 1.65 / (47 - 24), rel=0.1)
    poses = kitti.read_poses(tmp_path / drives[0] / "poses.txt")
    assert poses.shape == (4, 4, 4) and np.allclose(poses[0], np.eye(4))
    assert 0.5 < poses[1][2, 3] < 1.5  # ~10 m/s at 10 Hz, forward
    ts = kitti.read_timestamps(tmp_path / drives[0] / "image_02" / "timestamps.txt")
    np.testing.assert_allclose(ts, [0, 0.1, 0.2, 0.3], atol=1e-6)
    # rerun resumes (nothing rendered), other parameters are refused
    assert (
        synthesize(tmp_path, SceneSpec(frames=4, height=48, width=160, seed=1), sequences=2)["rendered"] == 0
    )
    with pytest.raises(R2SDepthError, match="other parameters"):
        synthesize(tmp_path, SceneSpec(frames=4, height=48, width=160, seed=2), sequences=2)


def test_intrinsics_scaling():
    K = np.array([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1]])
    K2 = kitti.scale_intrinsics(K, (375, 1242), (192, 640))
    assert K2[0, 0] == pytest.approx(721.5 * 640 / 1242)
    assert K2[1, 1] == pytest.approx(721.5 * 192 / 375)
    assert K2[0, 2] == pytest.approx((609.6 + 0.5) * 640 / 1242 - 0.5)


def test_trivial_baselines():
    from r2sdepth.evaluate import constant_median_baseline, mean_depth_baseline

    g = np.full((20, 30), 10.0, np.float32)
    g[:10] = 20.0
    train = [np.full((5, 5), 15.0, np.float32), np.zeros((5, 5), np.float32)]  # zeros = no ground truth
    a = mean_depth_baseline(train, [g], EvalProtocol(crop=None))
    b = mean_depth_baseline(None, [g], EvalProtocol(crop=None), mean=15.0)
    assert a["mean_depth"] == b["mean_depth"] == 15.0 and a["abs_rel"] == b["abs_rel"]
    assert a["abs_rel"] == pytest.approx((0.5 + 0.25) / 2) and not a["median_scaling"]
    c = constant_median_baseline([g], EvalProtocol(crop=None))  # scaled to the median depth, 15 m
    assert c["median_scaling"] and c["abs_rel"] == pytest.approx((0.5 + 0.25) / 2)


def test_gt_source_is_explicit_and_never_mixed(shared_data, tmp_path):
    """A KITTI root with both a Velodyne scan and an annotated map: ``auto`` means velodyne (the
    Eigen protocol), ``annotated`` must be asked for, a missing file is an error (no fallback),
    and the source is recorded by export-gt and eval."""
    import shutil

    drive = "2011_09_26/2011_09_26_drive_0005_sync"
    root = tmp_path / "kitti"
    (root / drive / "velodyne_points" / "data").mkdir(parents=True)
    for f in ("calib_cam_to_cam.txt", "calib_velo_to_cam.txt"):
        shutil.copy(shared_data / "kitti_raw" / "2011_09_26" / f, root / "2011_09_26" / f)
    shutil.copy(
        shared_data / "kitti_raw" / drive / "velodyne_points" / "data" / "0000000000.bin",
        root / drive / "velodyne_points" / "data" / "0000000000.bin",
    )
    kitti.write_depth_png(
        root / drive / "proj_depth" / "groundtruth" / "image_02" / "0000000001.png",
        np.full((375, 1242), 7.0, np.float32),
    )
    kitti.write_depth_png(
        root / drive / "proj_depth" / "groundtruth" / "image_02" / "0000000000.png",
        np.full((375, 1242), 7.0, np.float32),
    )
    velo = kitti.gt_depth(root, drive, 0)
    assert (velo > 0).mean() < 0.2 and not np.allclose(velo[velo > 0], 7.0)  # sparse LiDAR, not the PNG
    assert np.allclose(kitti.gt_depth(root, drive, 0, source="annotated"), 7.0)
    with pytest.raises(R2SDepthError, match="no velodyne ground truth"):
        kitti.gt_depth(root, drive, 1)  # only the annotated map exists: no silent fallback
    with pytest.raises(R2SDepthError, match="not a synthetic scene"):
        kitti.gt_depth(root, drive, 0, source="exact")
    split = tmp_path / "split.txt"
    split.write_text(f"{drive} 0 l\n")
    for src in ("auto", "annotated"):
        out = tmp_path / f"gt_{src}.npz"
        r = subprocess.run(
            [
                "r2sdepth",
                "export-gt",
                "--kitti-root",
                root,
                "--split",
                split,
                "--out",
                out,
                "--gt-source",
                src,
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        save_npz_maps(tmp_path / "pred.npz", [np.full((375, 1242), 3.0, np.float32)])
        r = subprocess.run(
            [
                "r2sdepth",
                "eval",
                "--pred",
                tmp_path / "pred.npz",
                "--gt",
                out,
                "--out",
                tmp_path / "res.json",
            ],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr
        assert json.loads((tmp_path / "res.json").read_text())["gt_source"] == (
            "velodyne" if src == "auto" else src
        )


def test_demo_real_on_the_shared_kitti_frames(shared_data, tmp_path):
    """``r2sdepth demo --real``: a spike-only model on the real KITTI frames it was not adapted on
    (``adapted_on`` in the checkpoint), LiDAR ground truth; the baseline row checked by hand."""
    import json
    import subprocess
    import sys

    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, load_file, save_atomic
    from r2sdepth.data.kitti import gt_depth

    def r2(*a):
        return subprocess.run(
            [sys.executable, "-m", "r2sdepth.cli", *map(str, a)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    kitti = shared_data / "kitti_raw"
    r = r2(
        "demo",
        "--real",
        "--checkpoint",
        tmp_path / "none.ckpt",
        "--kitti-root",
        kitti,
        "--out",
        tmp_path / "x",
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "make_real_model" in r.stderr
    r = r2("demo", "--kitti-root", kitti, "--out", tmp_path / "y")
    assert r.returncode == 2 and r.stderr.strip() == "r2sdepth: error: --kitti-root applies to demo --real"
    ck = load_file(SHIPPED_CHECKPOINTS["demo"])
    ck["r2sdepth"]["adapted_on"] = {"frames": list(range(20))}
    save_atomic(ck, tmp_path / "adapted.ckpt")
    r = r2(
        "demo",
        "--real",
        "--checkpoint",
        tmp_path / "adapted.ckpt",
        "--kitti-root",
        kitti,
        "--out",
        tmp_path / "o",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert m["info"]["frames"] == list(range(20, 30)) and m["info"]["gt"] == "velodyne"
    for sub, ext in (("color", ".png"), ("depth", ".npy"), ("depth_tiff", ".tiff")):
        assert sorted(p.name for p in (tmp_path / "o" / sub).iterdir()) == [
            f"{f:06d}{ext}" for f in range(20, 30)
        ]
    # constant + median scaling by hand: Garg crop, 1e-3 < d < 80 m, prediction = the image's median
    rels = []
    for f in range(20, 30):
        g = gt_depth(kitti, "2011_09_26/2011_09_26_drive_0005_sync", f, "02", source="velodyne")
        h, w = g.shape
        crop = np.zeros_like(g, dtype=bool)
        crop[int(0.40810811 * h) : int(0.99189189 * h), int(0.03594771 * w) : int(0.96405229 * w)] = True
        v = g[crop & (g > 1e-3) & (g < 80)]
        rels.append(np.mean(np.abs(v - np.median(v)) / v))
    assert m["baseline_median_scaled"]["abs_rel"] == pytest.approx(np.mean(rels), rel=1e-3)
    assert np.isfinite(m["model"]["abs_rel"]) and m["model"]["n"] == 10
    # the flat-road prior's row is the one `eval --baselines` reports for the same frames
    split = tmp_path / "s.txt"
    split.write_text("".join(f"2011_09_26/2011_09_26_drive_0005_sync {f} l\n" for f in range(20, 30)))
    from r2sdepth import evaluate as ev

    gts = ev.split_gt(kitti, split, "velodyne")
    prior = ev.flat_road_baseline(gts, ev.split_intrinsics(kitti, split, [g.shape for g in gts]))
    assert m["flat_road_prior"]["abs_rel"] == pytest.approx(prior["abs_rel"], rel=1e-6)


def test_shipped_real_model_beats_the_constant_on_unseen_real_frames(shared_data, tmp_path):
    """The shipped real-footage model (``r2sdepth demo --real``): on the KITTI frames it was not
    adapted on, abs_rel at least 10% below the constant + median-scaling baseline (the bar of
    ``scripts/make_real_model.py --ship``), and it was adapted without the LiDAR."""
    import json
    import subprocess
    import sys

    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, load_file

    if not SHIPPED_CHECKPOINTS["real"].is_file():
        pytest.skip("no real-footage model shipped")
    meta = load_file(SHIPPED_CHECKPOINTS["real"])["r2sdepth"]
    assert meta["modality"] == "spike" and "LiDAR not used" in meta["adapted_on"]["recipe"]
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "r2sdepth.cli",
            "demo",
            "--real",
            "--kitti-root",
            shared_data / "kitti_raw",
            "--out",
            tmp_path / "o",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert not set(m["info"]["frames"]) & set(m["info"]["adapted_on_frames"])
    assert m["model"]["abs_rel"] <= 0.9 * m["baseline_median_scaled"]["abs_rel"], m


def test_flat_road_prior_by_hand():
    """Row v sees the road at fy * height / (v - cy) below the horizon (pixel centres), the far
    cap above it and beyond it; every column the same."""
    from r2sdepth.evaluate import flat_road_prior

    K = np.array([[10.0, 0, 3.0], [0, 10.0, 4.5], [0, 0, 1]])
    d = flat_road_prior((10, 6), K, camera_height=1.5, far=25.0)
    col = [25.0] * 5 + [25.0, 10.0, 6.0, 15 / 3.5, 15 / 4.5]  # rows 0-4 at or above cy; 5: 30 m -> cap
    assert d.shape == (10, 6) and (d == d[:, :1]).all()
    np.testing.assert_allclose(d[:, 0], col, rtol=1e-6)
    with pytest.raises(R2SDepthError, match="positive"):
        flat_road_prior((10, 6), K, camera_height=0.0)


def test_eval_baselines_on_real_kitti_match_an_outside_figure(shared_data, tmp_path):
    """`eval --baselines` on drive 0009 frames 0-50: the flat-road prior scores what an outside check
    of the same definition reported for these frames (abs_rel 0.307, issue 23), and a constant
    prediction given with --pred scores exactly the constant row."""
    split = tmp_path / "split.txt"
    split.write_text("".join(f"2011_09_26/2011_09_26_drive_0009_sync {i} l\n" for i in range(51)))
    gts = [
        kitti.gt_depth(shared_data / "kitti_raw", "2011_09_26/2011_09_26_drive_0009_sync", i)
        for i in range(51)
    ]
    save_npz_maps(tmp_path / "const.npz", [np.full(g.shape, 7.0, np.float32) for g in gts])
    r = subprocess.run(
        [
            "r2sdepth",
            "eval",
            "--pred",
            tmp_path / "const.npz",
            "--data",
            shared_data / "kitti_raw",
            "--split",
            split,
            "--baselines",
            "--out",
            tmp_path / "res.json",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "res.json").read_text())
    assert set(res) == {"const", "constant", "flat-road prior"} and "| flat-road prior |" in r.stdout
    assert res["const"]["abs_rel"] == pytest.approx(res["constant"]["abs_rel"], abs=1e-9)
    assert res["flat-road prior"]["abs_rel"] == pytest.approx(0.307, abs=0.002)
    assert res["flat-road prior"]["n"] == 51 and res["flat-road prior"]["far_cap_m"] == 25.0
    r = subprocess.run(
        [
            "r2sdepth",
            "eval",
            "--pred",
            tmp_path / "const.npz",
            "--data",
            shared_data / "kitti_raw",
            "--split",
            split,
            "--baselines",
            "--scaling",
            "none",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and "median scaling" in r.stderr and "Traceback" not in r.stderr
