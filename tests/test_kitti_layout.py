"""KITTI raw layout readers against values worked out by hand: oxts poses (the devkit's Mercator
projection against distances on the sphere), the stereo pair's transform (against projecting with
``P_rect`` directly), split and timestamp files, calibration files, which ground truth a root holds,
frame listing, and the one-line errors of each reader (the message says which file and what)."""

import math
from pathlib import Path

import numpy as np
import pytest

from r2sdepth.data import kitti
from r2sdepth.errors import R2SDepthError

EARTH = 6378137.0  # WGS84 equatorial radius (metres), the devkit's sphere


def _oxts(folder: Path, packets: list[tuple[float, ...]]) -> Path:
    """Write oxts packets (lat, lon, alt, roll, pitch, yaw; the other 24 fields zero)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(packets):
        values = list(p) + [0.0] * (30 - len(p))
        (folder / f"{i:010d}.txt").write_text(" ".join(f"{v:.12f}" for v in values) + "\n")
    return folder


def test_oxts_poses_match_distances_on_the_sphere_and_the_first_frame_heading(tmp_path):
    lat0, lon0, yaw0 = 49.0, 8.4, 0.3
    dlat, dlon = 1e-4, 2e-4  # degrees: about 11 m north and 15 m east
    d = _oxts(
        tmp_path / "oxts" / "data",
        [
            (lat0, lon0, 110.0, 0.0, 0.0, yaw0),
            (lat0 + dlat, lon0, 112.5, 0.0, 0.0, yaw0 + math.pi / 2),
            (lat0, lon0 + dlon, 110.0, 0.0, 0.05, yaw0),
        ],
    )
    poses = kitti.oxts_poses(d)
    assert poses.shape == (3, 4, 4) and np.allclose(poses[0], np.eye(4))
    north = EARTH * math.radians(dlat)  # arc along a meridian
    east = EARTH * math.cos(math.radians(lat0)) * math.radians(dlon)  # arc along the parallel
    # world: x east, y north, z up, expressed in the first IMU frame (x forward along yaw0)
    c, s = math.cos(yaw0), math.sin(yaw0)
    expect1 = np.array([s * north, c * north, 2.5])
    expect2 = np.array([c * east, -s * east, 0.0])
    assert np.allclose(poses[1, :3, 3], expect1, rtol=1e-4, atol=1e-3)
    assert np.allclose(poses[2, :3, 3], expect2, rtol=1e-4, atol=1e-3)
    # relative rotations: a quarter turn about z (yaw), a small one about y (pitch)
    assert np.allclose(poses[1, :3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-9)
    cp, sp = math.cos(0.05), math.sin(0.05)
    assert np.allclose(poses[2, :3, :3], [[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]], atol=1e-9)
    # roll is a rotation about x
    r = kitti.oxts_poses(_oxts(tmp_path / "roll", [(lat0, lon0, 0, 0, 0, 0), (lat0, lon0, 0, 0.1, 0, 0)]))
    cr, sr = math.cos(0.1), math.sin(0.1)
    assert np.allclose(r[1, :3, :3], [[1, 0, 0], [0, cr, -sr], [0, sr, cr]], atol=1e-9)
    # the Mercator scale is the first frame's: a second frame a degree further north does not change
    # the east offset of a third frame at the first frame's latitude
    far = kitti.oxts_poses(
        _oxts(
            tmp_path / "far",
            [(lat0, lon0, 0, 0, 0, 0), (lat0 + 1.0, lon0, 0, 0, 0, 0), (lat0, lon0 + dlon, 0, 0, 0, 0)],
        )
    )
    assert far[2, 0, 3] == pytest.approx(east, rel=1e-6)
    with pytest.raises(R2SDepthError, match="no oxts packets"):
        kitti.oxts_poses(tmp_path / "empty")


def test_drive_motion_from_poses_txt_from_oxts_or_none(tmp_path):
    drive = "2000_01_01/2000_01_01_drive_0000_sync"
    d = tmp_path / drive
    d.mkdir(parents=True)
    assert kitti.drive_motion(tmp_path, drive) is None
    _oxts(d / "oxts" / "data", [(49.0, 8.4, 100.0, 0, 0, 0), (49.0001, 8.4, 101.0, 0, 0, 0)])
    pos = kitti.drive_motion(tmp_path, drive)[0]
    assert pos.shape == (2, 3)
    assert np.allclose(pos[1], [0.0, EARTH * math.radians(1e-4), 1.0], rtol=1e-4, atol=1e-3)
    # poses.txt wins over oxts (synthetic scenes, odometry layout): the translation column
    pos, heading = kitti.drive_motion(tmp_path, drive)  # oxts: heading = the IMU's x axis, due east here
    assert np.allclose(heading, [[1, 0, 0], [1, 0, 0]], atol=1e-6)
    # poses.txt wins over oxts (synthetic scenes, odometry layout): the translation column
    (d / "poses.txt").write_text("1 0 0 0 0 1 0 0 0 0 1 0\n1 0 0 0.5 0 1 0 -0.25 0 0 1 3\n")
    assert np.allclose(kitti.drive_motion(tmp_path, drive)[0], [[0, 0, 0], [0.5, -0.25, 3.0]])
    # a camera turned 90 degrees left (its optical axis along world -x): heading = the rotation's third column
    (d / "poses.txt").write_text("0 0 -1 0 0 1 0 0 1 0 0 0\n")
    assert np.allclose(kitti.drive_motion(tmp_path, drive)[1], [[-1, 0, 0]])


def test_read_poses_by_hand_and_its_errors(tmp_path):
    p = tmp_path / "poses.txt"
    p.write_text("1 0 0 1.5 0 1 0 2.5 0 0 1 -3.25\n")  # one line is one pose (not a flat vector)
    poses = kitti.read_poses(p)
    assert poses.shape == (1, 4, 4) and poses.dtype == np.float64
    assert np.array_equal(poses[0], [[1, 0, 0, 1.5], [0, 1, 0, 2.5], [0, 0, 1, -3.25], [0, 0, 0, 1]])
    p.write_text("0 1 0 0.123456789012 -1 0 0 0 0 0 1 0\n1 0 0 0 0 1 0 0 0 0 1 7\n")
    poses = kitti.read_poses(p)
    assert poses.shape == (2, 4, 4) and poses[0, 0, 3] == 0.123456789012 and poses[1, 2, 3] == 7.0
    assert np.array_equal(poses[:, 3], [[0, 0, 0, 1]] * 2)
    p.write_text("1 0 0 0 0 1 0 0 0 0 1\n")
    with pytest.raises(R2SDepthError, match=r"poses.txt: expected 12 numbers per line, got 11"):
        kitti.read_poses(p)
    with pytest.raises(R2SDepthError, match="missing poses file"):
        kitti.read_poses(tmp_path / "nope.txt")


def test_stereo_transform_against_projecting_with_p_rect(shared_data):
    """A point in rectified camera-00 coordinates projects into camera 03 by ``P_rect_03`` directly;
    going through camera 02's coordinates and the stereo transform must land on the same pixel."""
    kitti_date = shared_data / "kitti_raw" / "2011_09_26"
    T = kitti.stereo_transform(kitti_date, "l")
    assert np.array_equal(kitti.stereo_transform(kitti_date), T)  # camera 02 by default
    back = kitti.stereo_transform(kitti_date, "r")
    c2, c3 = kitti.load_calib(kitti_date, "02"), kitti.load_calib(kitti_date, "03")
    X0 = np.array([[2.0, -1.0, 12.0], [-5.0, 1.5, 30.0], [0.3, 0.2, 4.0]])
    for X in X0:
        direct = c3.P_rect @ np.append(X, 1.0)
        x2 = X + np.linalg.solve(c2.K, c2.P_rect[:, 3])  # the point in camera 02's frame
        x3 = (T @ np.append(x2, 1.0))[:3]
        via = c3.K @ x3
        assert np.allclose(via[:2] / via[2], direct[:2] / direct[2], atol=1e-6)
    assert T[0, 3] == pytest.approx(-0.532, abs=0.01)  # KITTI's published 0.54 m baseline (rectified)
    assert np.allclose(T[:3, :3], np.eye(3)) and np.allclose(T @ back, np.eye(4))
    with pytest.raises(R2SDepthError, match="stereo pairs are cameras 02 and 03, not 00"):
        kitti.stereo_transform(kitti_date, "00")


def test_cam_index_every_spelling_and_the_error():
    for cam, expect in (("00", "00"), ("01", "01"), ("02", "02"), ("03", "03"), ("l", "02"), ("r", "03")):
        assert kitti.cam_index(cam) == expect
    assert kitti.cam_index(2) == "02" and kitti.cam_index(3) == "03"
    with pytest.raises(R2SDepthError, match=r"unknown KITTI camera '04' \(02/03 or l/r\)"):
        kitti.cam_index("04")


def test_read_split_by_hand_and_write_split_round_trip(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("a/x_sync 3 l\n\nb/y_sync -1\n   \nc/z_sync 12 r\n")  # blank lines, default side
    got = kitti.read_split(p)
    assert got == [
        kitti.Sample("a/x_sync", 3, "l"),
        kitti.Sample("b/y_sync", -1, "l"),
        kitti.Sample("c/z_sync", 12, "r"),
    ]
    assert [s.cam for s in got] == ["02", "02", "03"]
    out = tmp_path / "w.txt"
    kitti.write_split(out, got)
    assert out.read_text() == "a/x_sync 3 l\nb/y_sync -1 l\nc/z_sync 12 r\n"
    assert kitti.read_split(out) == got
    for text, line, what in (
        ("a 1 l\n\nb\n", 3, r"expected '<drive> <frame> \[l\|r\]', got 'b'"),
        ("a 1 l\nb x\n", 2, "expected '<drive> <frame>"),
        ("a 1 l\nb 2 x\n", 2, "side must be l or r, got 'x'"),
        ("a 1 R\n", 1, "side must be l or r, got 'R'"),
    ):
        p.write_text(text)
        with pytest.raises(R2SDepthError, match=rf"s.txt:{line}: {what}"):
            kitti.read_split(p)
    p.write_text("\n\n")
    with pytest.raises(R2SDepthError, match="s.txt: empty split file"):
        kitti.read_split(p)
    with pytest.raises(R2SDepthError, match="nope.txt: split file not found"):
        kitti.read_split(tmp_path / "nope.txt")


def test_read_timestamps_by_hand(tmp_path):
    p = tmp_path / "timestamps.txt"
    p.write_text("2011-09-26 13:02:25.964389445\n\n2011-09-26 13:02:26.067882758\n2011-09-26 13:02:27\n")
    t = kitti.read_timestamps(p)
    assert t.dtype == np.float64
    assert np.allclose(t, [0.0, 26.067882758 - 25.964389445, 27.0 - 25.964389445], atol=1e-6)
    p.write_text("2011-09-26 23:59:59.9\n2011-09-27 00:00:00.1\n")  # across midnight
    assert np.allclose(kitti.read_timestamps(p), [0.0, 0.2], atol=1e-6)
    p.write_text("")
    assert kitti.read_timestamps(p).size == 0


def test_read_calib_file_keys_values_and_skipped_lines(tmp_path):
    p = tmp_path / "calib.txt"
    p.write_text(
        "no colon on this line\n"
        "calib_time: 09-Jan-2012 13:57:47\n"
        "S_02: 1.392000e+03 5.120000e+02\n"
        "corner_dist: 9.950000e-02\n"
        "P_rect_02: 0.1234567890123 2 3\n"
    )
    c = kitti.read_calib_file(p)
    assert set(c) == {"S_02", "corner_dist", "P_rect_02"}
    assert np.array_equal(c["S_02"], [1392.0, 512.0]) and c["P_rect_02"].dtype == np.float64
    assert c["P_rect_02"][0] == 0.1234567890123
    with pytest.raises(R2SDepthError, match="nope.txt: missing calibration file"):
        kitti.read_calib_file(tmp_path / "nope.txt")


def _calib_dir(tmp_path: Path, velo: str | None) -> Path:
    d = tmp_path / "2011_01_01"
    d.mkdir(exist_ok=True)
    (d / "calib_cam_to_cam.txt").write_text(
        "R_rect_00: 1 0 0 0 1 0 0 0 1\n"
        "P_rect_02: 700 0 600 47 0 700 180 0 0 0 1 0\n"
        "S_rect_02: 1242 375\n"
        "P_rect_03: 700 0 600 -333 0 700 180 0 0 0 1 0\n"
        "S_rect_03: 1242 375\n"
    )
    if velo is not None:
        (d / "calib_velo_to_cam.txt").write_text(velo)
    return d


def test_load_calib_by_hand_and_which_file_is_wrong(tmp_path):
    d = _calib_dir(tmp_path, None)
    c = kitti.load_calib(d, "l")
    assert c.size == (375, 1242) and c.velo_to_cam is None
    assert np.array_equal(c.K, [[700, 0, 600], [0, 700, 180], [0, 0, 1]]) and c.P_rect[0, 3] == 47
    assert kitti.load_calib(d, "r").P_rect[0, 3] == -333
    text = (d / "calib_cam_to_cam.txt").read_text()
    (d / "calib_cam_to_cam.txt").write_text(text.replace("S_rect_03: 1242 375\n", ""))
    with pytest.raises(R2SDepthError, match=r"calib_cam_to_cam.txt: missing or malformed 'S_rect_03'"):
        kitti.load_calib(d, "r")
    with pytest.raises(
        R2SDepthError, match="calib_velo_to_cam.txt: missing calibration file .needed for velodyne"
    ):
        kitti.load_calib(d, "l", need_velo=True)
    d = _calib_dir(tmp_path, "R: 0 -1 0 0 0 -1 1 0 0\nT: 0.1 -0.2 -0.3\n")
    c = kitti.load_calib(d, "l", need_velo=True)
    assert np.array_equal(c.velo_to_cam[:3, 3], [0.1, -0.2, -0.3]) and c.velo_to_cam[2, 0] == 1
    d = _calib_dir(tmp_path, "R: 0 -1 0 0 0 -1 1 0 0\nT: 0.1 -0.2\n")
    with pytest.raises(R2SDepthError, match=r"calib_velo_to_cam.txt: missing or malformed 'T' \(3 numbers"):
        kitti.load_calib(d, "l")
    d = _calib_dir(tmp_path, "R: 0 -1 0\nT: 0.1 -0.2 -0.3\n")
    with pytest.raises(R2SDepthError, match=r"calib_velo_to_cam.txt: missing or malformed 'R' \(9 numbers"):
        kitti.load_calib(d, "l")
    (d / "calib_cam_to_cam.txt").write_text("R_rect_00: 1 0 0 0 1 0 0 0 1\nS_rect_02: 1242 375\n")
    with pytest.raises(R2SDepthError, match=r"calib_cam_to_cam.txt: missing or malformed 'P_rect_02' \(12"):
        kitti.load_calib(d, "l")
    (d / "calib_cam_to_cam.txt").write_text("P_rect_02: 700 0 600 45 0 700 180 0 0 0 1 0\n")
    with pytest.raises(R2SDepthError, match=r"calib_cam_to_cam.txt: missing or malformed 'R_rect_00' \(9"):
        kitti.load_calib(d, "l")


def test_velodyne_ground_truth_needs_its_calibration_and_uses_the_asked_camera(tmp_path):
    d = _calib_dir(tmp_path, None)
    drive = f"{d.name}/{d.name}_drive_0001_sync"
    scan = tmp_path / drive / "velodyne_points" / "data" / "0000000000.bin"
    scan.parent.mkdir(parents=True)
    # one point 10 m ahead (velodyne x forward); camera z = velodyne x with this calibration
    np.array([[10.0, 0.0, 0.0, 1.0], [20.0, 1.2, 0.6, 0.3], [-5.0, 0.0, 0.0, 1.0]], np.float32).tofile(scan)
    assert kitti.load_velodyne(scan).shape == (3, 4)
    with pytest.raises(R2SDepthError, match="needed for velodyne ground truth"):
        kitti.gt_depth(tmp_path, drive, 0)
    with pytest.raises(R2SDepthError, match="^velodyne projection needs calib_velo_to_cam.txt$"):
        kitti.project_velodyne(kitti.load_velodyne(scan), kitti.load_calib(d, "l"))
    _calib_dir(tmp_path, "R: 0 -1 0 0 0 -1 1 0 0\nT: 0 0 0\n")  # camera (x, y, z) = velodyne (-y, -z, x)
    left, right = kitti.gt_depth(tmp_path, drive, 0, "l"), kitti.gt_depth(tmp_path, drive, 0, "r")
    assert left.dtype == np.float32 and left.shape == (375, 1242)
    # by hand: u = (fx X + cx Z + P[0, 3]) / Z, v = (fy Y + cy Z) / Z, pixel index round(.) - 1 (the
    # devkit's 1-based convention); the point behind the sensor (x = -5 m) is dropped
    for gt, tx in ((left, 47.0), (right, -333.0)):
        for X, Y, Z in ((0.0, 0.0, 10.0), (-1.2, -0.6, 20.0)):
            u, v = (700 * X + 600 * Z + tx) / Z, (700 * Y + 180 * Z) / Z
            assert gt[round(v) - 1, round(u) - 1] == pytest.approx(Z), (tx, Z)
        assert np.count_nonzero(gt) == 2
    with pytest.raises(R2SDepthError, match="missing velodyne scan"):
        kitti.load_velodyne(scan.with_name("0000000009.bin"))
    with pytest.raises(R2SDepthError, match="no velodyne ground truth for .* frame 9"):
        kitti.gt_depth(tmp_path, drive, 9)


def test_resolve_gt_source_every_root_kind_and_mismatch(tmp_path):
    plain, synth, rig = tmp_path / "kitti", tmp_path / "synth", tmp_path / "rig"
    for r in (plain, synth, rig):
        r.mkdir()
    (synth / "synth.json").write_text("{}")
    (rig / "seq0").mkdir()
    (rig / "seq0" / "calib.yaml").write_text("x: 1\n")
    assert [kitti.resolve_gt_source(r) for r in (plain, synth, rig)] == ["velodyne", "exact", "rig"]
    assert kitti.resolve_gt_source(plain, "annotated") == "annotated"
    assert kitti.resolve_gt_source(rig, "rig") == "rig" and kitti.resolve_gt_source(synth, "exact") == "exact"
    for root, source, why in (
        (rig, "velodyne", "rig sequences: use rig"),
        (plain, "rig", "no rig sequences here"),
        (plain, "exact", "not a synthetic scene"),
        (synth, "velodyne", "a synthetic scene: use exact"),
    ):
        with pytest.raises(
            R2SDepthError, match=rf"ground-truth source '{source}' does not fit this root \({why}\)"
        ):
            kitti.resolve_gt_source(root, source)
    with pytest.raises(
        R2SDepthError, match="unknown ground-truth source 'lidar'; choose auto, velodyne, annotated, exact"
    ):
        kitti.resolve_gt_source(plain, "lidar")
    (synth / "proj_depth").mkdir()
    with pytest.raises(R2SDepthError, match="no exact ground truth for d/x_sync frame 4: .* missing"):
        kitti.gt_depth(synth, "d/x_sync", 4)


def test_frame_listing_image_paths_and_drives(tmp_path):
    drive = "2011_01_01/2011_01_01_drive_0001_sync"
    d = tmp_path / drive / "image_02" / "data"
    d.mkdir(parents=True)
    with pytest.raises(R2SDepthError, match="no PNG or JPEG frames"):
        kitti.list_frame_ids(tmp_path, drive)
    for name in ("0000000010.jpg", "0000000002.png", "0000000001.PNG", "notes.txt", "thumb.png"):
        (d / name).write_bytes(b"")
    assert kitti.list_frame_ids(tmp_path, drive) == [1, 2, 10]
    assert kitti.image_dir(tmp_path, drive) == d
    assert kitti.image_path(tmp_path, drive, 2) == d / "0000000002.png"
    assert kitti.image_path(tmp_path, drive, 10) == d / "0000000010.jpg"
    assert kitti.image_path(tmp_path, drive, 7) == d / "0000000007.png"  # none: the PNG name, for the error
    assert (
        kitti.image_path(tmp_path, drive, 2, "r") == tmp_path / drive / "image_03" / "data" / "0000000002.png"
    )
    with pytest.raises(R2SDepthError, match="image_03/data: no such image folder"):
        kitti.list_frame_ids(tmp_path, drive, "r")
    other = tmp_path / "2011_01_01" / "2011_01_01_drive_0002_sync" / "image_03" / "data"
    other.mkdir(parents=True)  # a right camera alone still makes a drive
    (tmp_path / "2011_01_01" / "2011_01_01_drive_0003_sync" / "velodyne_points").mkdir(parents=True)
    assert kitti.find_drives(tmp_path) == [drive, "2011_01_01/2011_01_01_drive_0002_sync"]
    with pytest.raises(R2SDepthError, match="nope: KITTI root folder not found"):
        kitti.find_drives(tmp_path / "nope")


def test_scale_intrinsics_leaves_its_input_alone_and_takes_integer_matrices():
    K = np.array([[100, 0, 49], [0, 80, 24], [0, 0, 1]])  # integers: the result must not truncate
    K2 = kitti.scale_intrinsics(K, (50, 100), (64, 224))
    assert K2.dtype == np.float64
    assert K2[0, 0] == pytest.approx(224.0) and K2[1, 1] == pytest.approx(80 * 64 / 50)
    assert K2[0, 2] == pytest.approx(49.5 * 2.24 - 0.5) and K2[1, 2] == pytest.approx(24.5 * 1.28 - 0.5)
    Kf = K.astype(np.float64)
    kitti.scale_intrinsics(Kf, (50, 100), (25, 50))
    assert np.array_equal(Kf, K)  # the caller's matrix is not scaled in place


def test_depth_png_errors_name_the_file(tmp_path):
    with pytest.raises(R2SDepthError, match="nope.png: missing depth PNG"):
        kitti.read_depth_png(tmp_path / "nope.png")
    from PIL import Image  # noqa: PLC0415  (only this test writes an 8-bit PNG)

    Image.fromarray(np.zeros((4, 5), np.uint8)).save(tmp_path / "u8.png")
    with pytest.raises(
        R2SDepthError, match=r"u8.png: not a 16-bit depth PNG \(dtype uint8, shape \(4, 5\)\)"
    ):
        kitti.read_depth_png(tmp_path / "u8.png")
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(R2SDepthError, match="not a 16-bit depth PNG"):
        kitti.read_depth_png(tmp_path / "rgb.png")
