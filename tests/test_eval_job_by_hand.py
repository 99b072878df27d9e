"""What ``r2sdepth eval`` decides (``evaluate.EvalJob``), its table and files, and the ground-truth
export, in process and against values worked out by hand (the CLI tests run it in a subprocess,
where a mutation tool cannot see it: ``docs/results/mutation/``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from r2sdepth import evaluate as ev
from r2sdepth.errors import R2SDepthError


def _gts() -> list[np.ndarray]:
    """Two 20 x 30 maps, depths 2-40 m, a band of invalid pixels (0)."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(2):
        g = rng.uniform(2.0, 40.0, (20, 30))
        g[15:, :5] = 0.0
        out.append(g.astype(np.float32))
    return out


def _crop(g: np.ndarray, max_depth: float = 80.0) -> np.ndarray:
    """Garg's crop by hand: rows 0.40810811 H to 0.99189189 H, columns 0.03594771 W to 0.96405229 W."""
    h, w = g.shape
    m = np.zeros_like(g, bool)
    m[int(0.40810811 * h) : int(0.99189189 * h), int(0.03594771 * w) : int(0.96405229 * w)] = True
    return m & (g > 1e-3) & (g < max_depth)


def test_eval_job_scores_npz_maps_by_hand(tmp_path):
    gts = _gts()
    gt_file, pred_file = tmp_path / "gt.npz", tmp_path / "pred.npz"
    ev.save_npz_maps(gt_file, gts, gt_source="velodyne")
    ev.save_npz_maps(pred_file, [2.0 * g + 0.5 for g in gts])  # twice as far, plus 0.5 m
    job = ev.EvalJob(gt=str(gt_file), pred=str(pred_file), scaling="none")
    gts_read, src = job.ground_truth()
    assert src == "velodyne" and all(np.array_equal(a, b) for a, b in zip(gts_read, gts))
    preds, Ks = job.predictions()
    assert Ks is None
    rows = job.score({"m": (preds, Ks)}, gts_read, src)
    per_image = []  # Monodepth2's protocol: the metrics of each image, then their mean
    for x in gts:
        g = x[_crop(x)].astype(np.float64)
        p = np.clip(2.0 * g + 0.5, 1e-3, 80.0)
        per_image.append(
            {
                "abs_rel": np.mean(np.abs(g - p) / g),
                "sq_rel": np.mean((g - p) ** 2 / g),
                "rmse": np.sqrt(np.mean((g - p) ** 2)),
                "rmse_log": np.sqrt(np.mean((np.log(g) - np.log(p)) ** 2)),
                "a1": np.mean(np.maximum(g / p, p / g) < 1.25),
            }
        )
    want = {k: np.mean([m[k] for m in per_image]) for k in per_image[0]}
    r = rows["m"]
    for k, v in want.items():
        assert r[k] == pytest.approx(v, rel=1e-6), k
    assert r["gt_source"] == "velodyne" and r["scaling"] == "none"
    # the same maps as disparities: inverted before scoring
    disp = tmp_path / "disp.npy"
    np.save(disp, np.stack([1.0 / (2.0 * x + 0.5) for x in gts]))
    with pytest.raises(R2SDepthError) as e:
        ev.EvalJob(gt=str(gt_file), pred=str(disp)).predictions()
    assert str(e.value).startswith(
        f"{disp}: say what the .npy holds with --pred-kind depth or --pred-kind disp"
    )
    job = ev.EvalJob(gt=str(gt_file), pred=str(disp), pred_kind="disp", scaling="none")
    (pd, _) = job.predictions()
    r2 = job.score({"d": (pd, None)}, gts, "velodyne")["d"]
    assert r2["abs_rel"] == pytest.approx(want["abs_rel"], rel=1e-6)


def test_eval_job_decisions_and_refusals(tmp_path):
    assert ev.EvalJob().scaling == "median"
    assert ev.EvalJob(no_median_scaling=True).scaling == "fixed"
    assert ev.EvalJob(scale=2.0).scaling == "fixed"
    assert ev.EvalJob(scaling="none").scaling == "none"
    job = ev.EvalJob(scale=3.0, crop="eigen", min_depth=0.5, max_depth=50.0, camera_height=2.0)
    assert job.protocol == ev.EvalProtocol(
        crop="eigen", min_depth=0.5, max_depth=50.0, scaling="fixed", scale=3.0, camera_height=2.0
    )
    for kw, msg in [
        (
            {"no_median_scaling": True, "scaling": "median"},
            "--no-median-scaling contradicts --scaling median",
        ),
        (
            {"baselines": True, "scaling": "none"},
            "--baselines are scored under median scaling, not --scaling none",
        ),
        ({"baseline_split": "s.txt"}, "--baseline-split needs --data"),
    ]:
        with pytest.raises(R2SDepthError) as e:
            ev.EvalJob(**kw)
        assert str(e.value) == msg
    with pytest.raises(R2SDepthError) as e:
        ev.EvalJob().ground_truth()
    assert str(e.value) == "ground truth needed: --gt gt_depths.npz, or --data DIR with --split FILE"
    bare = tmp_path / "bare.npz"
    ev.save_npz_maps(bare, _gts())
    assert ev.EvalJob(gt=str(bare)).ground_truth()[1] == "file bare.npz (source not recorded)"
    assert ev.npz_attribute(bare, "gt_source") is None
    with pytest.raises(R2SDepthError) as e:
        ev.EvalJob(gt=str(bare), pred=str(bare), scaling="camera-height").predictions()
    assert str(e.value) == "--scaling camera-height with --pred needs --data and --split (the intrinsics)"


def test_eval_job_baselines_and_report_files(tmp_path):
    gts = _gts()
    job = ev.EvalJob(baselines=True, max_depth=30.0)  # the baselines are scored by the job's protocol
    rows = job.score({"m": (gts, None)}, gts, "exact")
    assert list(rows) == ["m", "constant"]  # no data + split: no flat-road prior
    assert rows["m"]["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    g = [
        x[_crop(x, 30.0)].astype(np.float64) for x in gts
    ]  # a constant map, per-image median scaling: the median
    want = np.mean([np.mean(np.abs(x - np.median(x)) / x) for x in g])
    assert rows["constant"]["abs_rel"] == pytest.approx(want, rel=1e-9)
    assert all(r["gt_source"] == "exact" for r in rows.values())
    out = tmp_path / "res" / "r.json"
    out.parent.mkdir()
    table = ev.report(rows, out)
    assert json.loads(out.read_text())["constant"]["abs_rel"] == pytest.approx(rows["constant"]["abs_rel"])
    assert out.with_suffix(".md").read_text() == table + "\n"
    lines = table.splitlines()
    assert lines[0] == "| model | abs_rel | sq_rel | rmse | rmse_log | a1 | a2 | a3 | n |"
    assert lines[1] == "|---|" + "---:|" * 8
    assert lines[2].startswith("| m | 0.000 | 0.000 | 0.000 | 0.000 | 1.000 | 1.000 | 1.000 | 2 |")
    one = tmp_path / "one.json"
    ev.report({"m": rows["m"]}, one)  # one row: the row's object itself
    assert json.loads(one.read_text())["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert ev.report(rows, None) == table and not (tmp_path / "None").exists()
    assert ev.markdown_table({"x": {"abs_rel": 0.12345, "note": "s"}}, extra=("note",)).splitlines()[2] == (
        "| x | 0.123 |  |  |  |  |  |  | s |"
    )


def test_export_gt_writes_the_split_ground_truth_with_its_source(tmp_path):
    from r2sdepth.data import kitti  # noqa: PLC0415
    from r2sdepth.data.synthetic import SceneSpec, synthesize  # noqa: PLC0415

    root = tmp_path / "synth"
    synthesize(root, SceneSpec(frames=3, height=64, width=224, seed=1), sequences=1)
    split = tmp_path / "s.txt"
    drive = kitti.find_drives(root)[0]
    kitti.write_split(split, [kitti.Sample(drive, f, "l") for f in (2, 0)])
    out = tmp_path / "gt.npz"
    assert ev.export_gt(root, split, out) == 2
    maps = ev.load_npz_maps(out)
    want = [kitti.gt_depth(root, drive, f, "02", source="exact") for f in (2, 0)]
    assert all(np.array_equal(a, b) for a, b in zip(maps, want))  # split order, native size
    assert ev.npz_attribute(out, "gt_source") == "exact"
    assert ev.EvalJob(gt=str(out)).ground_truth()[1] == "exact"


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    from r2sdepth.data import kitti  # noqa: PLC0415
    from r2sdepth.data.synthetic import SceneSpec, synthesize  # noqa: PLC0415

    root = tmp_path_factory.mktemp("scenes")
    synthesize(root, SceneSpec(frames=3, height=64, width=224, seed=2), sequences=1)
    split = root / "three.txt"
    drive = kitti.find_drives(root)[0]
    kitti.write_split(split, [kitti.Sample(drive, f, "l") for f in range(3)])
    return root, split, drive


def test_split_intrinsics_by_hand(scenes):
    from r2sdepth.data import kitti  # noqa: PLC0415

    root, split, drive = scenes
    K = kitti.load_calib(root / drive.split("/")[0]).K
    got = ev.split_intrinsics(root, split, [(32, 112), (64, 224), (16, 448)])
    for Kg, (h, w) in zip(got, [(32, 112), (64, 224), (16, 448)]):
        sy, sx = h / 64, w / 224  # pixel corners: f s, (c + 0.5) s - 0.5
        want = np.array(
            [
                [K[0, 0] * sx, 0, (K[0, 2] + 0.5) * sx - 0.5],
                [0, K[1, 1] * sy, (K[1, 2] + 0.5) * sy - 0.5],
                [0, 0, 1],
            ]
        )
        np.testing.assert_allclose(Kg, want, rtol=1e-12, atol=1e-12)
    with pytest.raises(R2SDepthError) as e:
        ev.split_intrinsics(root, split, [(64, 224)])
    assert str(e.value) == "1 predictions for 3 split lines"


def test_eval_job_baseline_rows_by_hand(scenes):
    """With a KITTI-layout root: the flat-road prior (built here from its formula) and the mean
    training depth, each scored by the job's protocol, per image, then averaged."""
    from r2sdepth.data import kitti  # noqa: PLC0415

    root, split, drive = scenes
    job = ev.EvalJob(
        data=str(root), split=str(split), gt_source="exact", baselines=True, baseline_split=str(split)
    )
    gts, src = job.ground_truth()
    assert src == "exact" and len(gts) == 3
    rows = job.score({"perfect": (gts, None)}, gts, src)
    assert list(rows) == ["perfect", "mean-depth baseline", "constant", "flat-road prior"]
    K = kitti.load_calib(root / drive.split("/")[0]).K  # ground truth at the native size
    fy, cy = K[1, 1], K[1, 2]
    abs_rels, means = [], []
    for g in gts:
        h, w = g.shape
        v = np.arange(h, dtype=np.float64)[:, None].repeat(w, 1)
        prior = np.where(v > cy, np.minimum(fy * 1.65 / np.maximum(v - cy, 1e-9), 25.0), 25.0)
        m = _crop(g)
        gg, pp = g[m].astype(np.float64), prior[m]
        pp = pp * np.median(gg) / np.median(pp)
        abs_rels.append(np.mean(np.abs(gg - pp) / gg))
        means.append(g[(g > 0) & (g < 80.0)])
    assert rows["flat-road prior"]["abs_rel"] == pytest.approx(np.mean(abs_rels), rel=1e-5)
    assert rows["flat-road prior"]["far_cap_m"] == 25.0
    mean = float(np.mean(np.concatenate(means)))
    assert rows["mean-depth baseline"]["mean_depth"] == pytest.approx(mean, rel=1e-6)
    want = np.mean([np.mean(np.abs(g[_crop(g)] - mean) / g[_crop(g)]) for g in gts])
    assert rows["mean-depth baseline"]["abs_rel"] == pytest.approx(want, rel=1e-5)
    assert rows["mean-depth baseline"]["scaling"] == "none"
    with pytest.raises(R2SDepthError) as e:
        ev.flat_road_baseline(gts, [K])
    assert str(e.value) == "1 intrinsics for 3 ground-truth maps"


def test_summary_and_valid_pixels_by_hand():
    gts = _gts()
    empty = np.zeros((20, 30), np.float32)
    with pytest.warns(RuntimeWarning) as rec:
        r = ev.evaluate_depths([gts[0], gts[1], gts[0]], [gts[0], empty, gts[0]])
    assert str(rec[0].message) == (
        "1 image(s) have no valid ground truth inside the crop and were not evaluated (first: image 1)"
    )
    assert (
        r["n"] == 2 and r["skipped_no_gt"] == [1] and r["median_scaling"] is True and r["scaling"] == "median"
    )
    r = ev.evaluate_depths([2 * g for g in gts], gts, ev.EvalProtocol(scaling="fixed", scale=0.5))
    assert r["abs_rel"] == pytest.approx(0.0, abs=1e-6) and r["median_scaling"] is False
    assert r["scaling"] == "fixed" and "skipped_no_gt" not in r
    bad = gts[0].copy()
    bad[15, 20] = 0.0  # inside the crop, where the ground truth is valid
    with pytest.raises(R2SDepthError) as e:
        ev.evaluate_depths([bad], [gts[0]])
    assert str(e.value) == (
        "image 0: prediction has 1 non-positive depths where the ground truth is valid (depth must be > 0; "
        "for disparities use --pred-kind disp)"
    )
    small = np.ones((10, 15), np.float32)
    small[0, 0] = -1.0
    with pytest.raises(R2SDepthError) as e:
        ev.evaluate_depths([small], [gts[0]])
    assert str(e.value).startswith(
        "image 0: prediction has 1 non-positive depths (depth must be > 0 to resize"
    )
    with pytest.raises(R2SDepthError, match="depth maps must be 2-D"):
        ev.evaluate_depths([gts[0]], [np.stack([gts[0]] * 2)])


def test_metrics_thresholds_and_refusals_by_hand():
    g = np.array([10.0, 10.0, 10.0, 10.0])
    p = np.array([11.0, 15.0, 17.0, 4.0])  # ratios 1.1, 1.5, 1.7, 2.5
    m = ev.compute_metrics(g, p)
    assert (m["a1"], m["a2"], m["a3"]) == (0.25, 0.5, 0.75)
    assert m["abs_rel"] == pytest.approx((1 + 5 + 7 + 6) / 40)
    assert m["sq_rel"] == pytest.approx((1 + 25 + 49 + 36) / 40)
    assert m["rmse"] == pytest.approx(np.sqrt((1 + 25 + 49 + 36) / 4))
    assert m["rmse_log"] == pytest.approx(np.sqrt(np.mean(np.log(g / p) ** 2)))
    one = ev.compute_metrics(np.array([4.0]), np.array([5.0]))  # a single pixel is scored
    assert one["abs_rel"] == pytest.approx(0.25)
    with pytest.raises(R2SDepthError) as e:
        ev.compute_metrics(np.array([]), np.array([]))
    assert str(e.value) == "no valid ground-truth pixels to evaluate"
    gts = _gts()
    for kw, msg in [
        (
            {"scaling": "mean"},
            "scaling 'mean': choose one of median, camera-height, camera-height-run, none, fixed",
        ),
        ({"scaling": "fixed", "scale": 0.0}, "scale 0.0: must be a positive finite number"),
        ({"scaling": "fixed", "scale": float("nan")}, "scale nan: must be a positive finite number"),
        (
            {"scaling": "median", "scale": 2.0},
            "a fixed scale (2.0) applies to scaling 'fixed' only (asked for 'median')",
        ),
    ]:
        with pytest.raises(R2SDepthError) as e:
            ev.evaluate_depths(gts, gts, ev.EvalProtocol(**kw))
        assert str(e.value) == msg
    with pytest.raises(R2SDepthError) as e:
        ev.evaluate_depths([], [])
    assert str(e.value) == "nothing to evaluate"
    empty = [np.zeros((20, 30), np.float32)]
    with pytest.raises(R2SDepthError) as e:
        ev.evaluate_depths(empty, empty)
    assert str(e.value) == "no image has valid ground truth inside the crop"
    # a [1, H, W] prediction is one map; [2, H, W] is refused
    r = ev.evaluate_depths([gts[0][None]], [gts[0]], ev.EvalProtocol(scaling="none"))
    assert r["abs_rel"] == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(R2SDepthError, match=r"^image 0: depth maps must be 2-D, got pred \(2, 20, 30\)"):
        ev.evaluate_depths([np.stack([gts[0]] * 2)], [gts[0]])


def test_scale_ratios_recorded_by_hand():
    """Median scaling records the per-image factors median(gt) / median(pred); every scaling records
    ground truth / prediction before scaling; a prediction below min_depth is clipped up to it."""
    gts = _gts()
    preds = [g / 4.0 for g in gts[:1]] + [g / 5.0 for g in gts[1:]]
    r = ev.evaluate_depths(preds, gts)
    assert r["ratio_median"] == pytest.approx(4.5, rel=1e-6)  # factors 4 and 5
    assert r["ratio_std"] == pytest.approx(np.std(np.array([4.0, 5.0]) / 4.5), rel=1e-6)
    n = ev.evaluate_depths(preds, gts, ev.EvalProtocol(scaling="none"))
    assert n["gt_ratio_median"] == pytest.approx(4.5, rel=1e-6)
    tiny = [np.full_like(g, 1e-6) for g in gts]  # clipped to min_depth 1e-3 then scored
    t = ev.evaluate_depths(tiny, gts, ev.EvalProtocol(scaling="none"))
    assert t["abs_rel"] == pytest.approx(
        np.mean([np.mean(np.abs(g[_crop(g)] - 1e-3) / g[_crop(g)]) for g in gts]), rel=1e-6
    )


def test_camera_height_scaling_summary_by_hand(scenes):
    from r2sdepth.data import kitti  # noqa: PLC0415

    root, split, drive = scenes
    gts = ev.split_gt(root, split, "exact")
    preds = [np.where(g > 0, g, 80.0) / 5.0 for g in gts]
    Ks = ev.split_intrinsics(root, split, [p.shape for p in preds])
    r = ev.evaluate_depths(
        preds, gts, ev.EvalProtocol(scaling="camera-height", camera_height=1.65), intrinsics=Ks
    )
    assert r["camera_height"] == 1.65 and r["scale_failures"] == 0 and r["scaling"] == "camera-height"
    assert r["ratio_median"] == pytest.approx(5.0, rel=0.03) and r["abs_rel"] < 0.05
    assert r["gt_ratio_median"] == pytest.approx(1.0, rel=0.03)  # ground truth / the scaled prediction
    with pytest.raises(R2SDepthError) as e:
        ev.evaluate_depths(preds, gts, ev.EvalProtocol(scaling="camera-height"), intrinsics=Ks[:1])
    assert str(e.value) == (
        "camera-height scaling needs the intrinsics of every prediction (--data with calibration files, or a "
        "checkpoint run)"
    )
    assert kitti.find_drives(root) == [drive]


def test_npz_maps_reading_refusals(tmp_path):
    missing = tmp_path / "none.npz"
    with pytest.raises(R2SDepthError) as e:
        ev.load_npz_maps(missing)
    assert str(e.value) == f"{missing}: file not found"
    f = tmp_path / "k.npz"
    np.savez(f, other=np.zeros((1, 2, 2)))
    with pytest.raises(R2SDepthError) as e:
        ev.load_npz_maps(f)
    assert str(e.value) == f"{f}: no key 'data' (keys: ['other'])"
    s = tmp_path / "s.npz"
    np.savez(s, data=np.array([["a", "b"], ["c", "d"]]))
    with pytest.raises(R2SDepthError) as e:
        ev.load_npz_maps(s)
    assert str(e.value).startswith(f"{s}: map 0 is not numeric")
    one = tmp_path / "one.npy"
    np.save(one, np.arange(6, dtype=np.float64).reshape(2, 3))  # one 2-D map
    maps = ev.load_npz_maps(one)
    assert len(maps) == 1 and maps[0].dtype == np.float32 and maps[0].tolist() == [[0, 1, 2], [3, 4, 5]]
    fort = tmp_path / "f.npy"
    np.save(fort, np.asfortranarray(np.arange(12, dtype=np.float32).reshape(1, 3, 4)))
    assert ev.load_npz_maps(fort)[0].tolist() == np.arange(12).reshape(3, 4).tolist()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(R2SDepthError, match=rf"^{bad}: unreadable \.npz \("):
        ev.load_npz_maps(bad)
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((2, 8, 8), np.float32))
    short.write_bytes(short.read_bytes()[:-40])
    with pytest.raises(R2SDepthError, match=r"truncated array \(118 of 128 values\)"):
        ev.load_npz_maps(short)


def test_flat_road_prior_by_hand():
    K = np.array([[10.0, 0, 3.0], [0, 10.0, 5.0], [0, 0, 1]])  # fy 10, horizon at row 5
    z = ev.flat_road_prior((10, 3), K, camera_height=1.5, far=20.0)
    col = [20.0] * 6 + [10 * 1.5 / 1, 10 * 1.5 / 2, 10 * 1.5 / 3, 10 * 1.5 / 4]  # rows 0-5: the far cap
    assert z.shape == (10, 3) and z.dtype == np.float32
    np.testing.assert_allclose(z[:, 1], col, rtol=1e-6)
    assert (z == z[:, :1]).all()
    near = ev.flat_road_prior((10, 3), K, camera_height=1.5, far=12.0)  # 15 m capped at 12
    assert near[6, 0] == 12.0 and near[7, 0] == pytest.approx(7.5)
    small = ev.flat_road_prior((10, 3), np.array([[0.5, 0, 1], [0, 0.5, 5.0], [0, 0, 1]]), 0.5, 0.5)
    assert small[9, 0] == pytest.approx(0.5 * 0.5 / 4) and small[0, 0] == 0.5  # values below 1 are fine
    for kw in ({"camera_height": 0.0}, {"far": 0.0}):
        with pytest.raises(R2SDepthError) as e:
            ev.flat_road_prior((10, 3), K, **kw)
        assert str(e.value) == "flat-road prior: camera height, far cap and focal length must be positive"
    with pytest.raises(R2SDepthError):
        ev.flat_road_prior((10, 3), np.diag([10.0, 0.0, 1.0]))


def test_baselines_default_protocols_by_hand(scenes):
    root, split, _ = scenes
    gts = ev.split_gt(root, split, "exact")
    Ks = ev.split_intrinsics(root, split, [g.shape for g in gts])
    assert ev.flat_road_baseline(gts, Ks) == ev.flat_road_baseline(
        gts, Ks, ev.EvalProtocol()
    )  # median scaling
    r = ev.mean_depth_baseline(None, gts, mean=7.0)
    assert r["mean_depth"] == 7.0 and r["scaling"] == "none"
    train = [np.array([[0.5, 0.0, 90.0, 3.5]])]  # kept: 0.5 and 3.5 (> 0, < 80 m)
    assert ev.mean_depth_baseline(train, gts)["mean_depth"] == pytest.approx(2.0)
    capped = ev.mean_depth_baseline(train + [np.array([[50.0]])], gts, ev.EvalProtocol(max_depth=40.0))
    assert capped["mean_depth"] == pytest.approx(2.0)  # 50 m is beyond this protocol's 40


def test_eval_job_camera_height_intrinsics_and_per_run_factor(scenes):
    root, split, drive = scenes
    job = ev.EvalJob(data=str(root), split=str(split), gt_source="exact", scaling="camera-height")
    gts, _ = job.ground_truth()
    pred = root / "pred.npz"
    scales = [4.0, 5.0, 6.0]
    ev.save_npz_maps(pred, [np.where(g > 0, g, 80.0) / s for g, s in zip(gts, scales)])
    job.pred = str(pred)
    preds, Ks = job.predictions()
    want = ev.split_intrinsics(root, split, [p.shape for p in preds])
    assert all(np.array_equal(a, b) for a, b in zip(Ks, want))
    per_image = job.score({"p": (preds, Ks)}, gts, "exact")["p"]
    run = ev.evaluate_depths(preds, gts, ev.EvalProtocol(scaling="camera-height-run"), intrinsics=Ks)
    assert per_image["abs_rel"] < 0.05 < run["abs_rel"]  # one factor for all: off for the x4 and x6 images
    assert run["ratio_median"] == pytest.approx(5.0, rel=0.03)
    flat = [np.full_like(p, 10.0) for p in preds]  # no ground plane anywhere
    with pytest.raises(R2SDepthError) as e:
        ev.evaluate_depths(flat, gts, ev.EvalProtocol(scaling="camera-height"), intrinsics=Ks)
    assert str(e.value) == "camera-height scaling: no ground plane found in any prediction"
    with pytest.raises(R2SDepthError, match="ground truth needed"):
        ev.EvalJob(data=str(root)).ground_truth()


def test_crop_and_job_edges_by_hand(tmp_path):
    assert np.array_equal(ev.crop_mask((20, 30)), ev.crop_mask((20, 30), "garg"))  # Garg's crop by default
    assert ev.crop_mask((20, 30), None).all() and ev.crop_mask((20, 30), "none").all()
    with pytest.raises(R2SDepthError) as e:
        ev.crop_mask((20, 30), "center")
    assert str(e.value) == "unknown crop 'center'; choose garg, eigen or none"
    assert ev.EvalJob(split="s.txt").split == "s.txt"  # no data root: the split path is taken as given
    with pytest.raises(R2SDepthError, match="ground truth needed"):
        ev.EvalJob(split="s.txt").ground_truth()
    gt = tmp_path / "g.npz"
    ev.save_npz_maps(gt, _gts())
    for kw in ({"data": str(tmp_path)}, {"split": "s.txt"}):
        with pytest.raises(R2SDepthError, match="needs --data and --split"):
            ev.EvalJob(gt=str(gt), pred=str(gt), scaling="camera-height", **kw).predictions()


def test_predictions_resized_in_disparity_by_hand():
    """A prediction at another size is resized as disparity (bilinear, OpenCV's pixel centres):
    a 1 x 2 map of depths 1 and 4 m (disparities 1, 0.25) at 1 x 4 has disparities 1, 0.8125,
    0.4375, 0.25 (corner pixels clamp), i.e. depths 1, 1.2308, 2.2857, 4."""
    got = ev.resize_to(np.array([[1.0, 4.0]], np.float32), (1, 4))
    np.testing.assert_allclose(got[0], [1.0, 1 / 0.8125, 1 / 0.4375, 4.0], rtol=1e-5)
