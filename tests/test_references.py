"""Published outputs against values computed another way (issue 24): the velodyne ground truth
against OpenCV's projection of the raw calibration files parsed here, resized intrinsics against
where a dot actually lands when PIL resizes the image, and the evaluation's resize against the
bilinear rule written out by hand."""

import cv2
import numpy as np
import pytest
from PIL import Image

from r2sdepth.data import kitti
from r2sdepth.evaluate import resize_to


def _calib_values(path, key):
    for line in path.read_text().splitlines():
        if line.startswith(key + ":"):
            return np.array([float(v) for v in line.split(":", 1)[1].split()])
    raise KeyError(key)


@pytest.mark.parametrize("frame", [0, 17])
def test_velodyne_ground_truth_equals_an_opencv_projection_of_the_raw_calibration(shared_data, frame):
    """Every pixel of the ground-truth map, against: the calibration text parsed here, the
    points moved into the rectified camera 0 frame and projected by ``cv2.projectPoints`` into
    camera 2 (``P_rect_02 = K [I | b]``), the published protocol's rules written as a plain
    loop (points with velodyne x >= 0 in front of the camera, pixel = round(u) - 1, inside the
    image, the velodyne forward distance stored, the nearest point wins a pixel)."""
    date = shared_data / "kitti_raw" / "2011_09_26"
    velo = kitti.load_velodyne(
        date / "2011_09_26_drive_0005_sync" / "velodyne_points" / "data" / f"{frame:010d}.bin"
    )
    depth = kitti.project_velodyne(velo, kitti.load_calib(date, "02", need_velo=True))

    cam = date / "calib_cam_to_cam.txt"
    P = _calib_values(cam, "P_rect_02").reshape(3, 4)
    R_rect = _calib_values(cam, "R_rect_00").reshape(3, 3)
    w, h = _calib_values(cam, "S_rect_02").astype(int)
    vc = date / "calib_velo_to_cam.txt"
    R, T = _calib_values(vc, "R").reshape(3, 3), _calib_values(vc, "T")
    K = P[:, :3]
    b = np.linalg.solve(K, P[:, 3])  # camera 2's offset from camera 0, in the rectified frame
    front = velo[velo[:, 0] >= 0]
    X = (R_rect @ (R @ front[:, :3].T.astype(np.float64) + T[:, None])).T
    uv = cv2.projectPoints(X, np.zeros(3), b, K, None)[0][:, 0]
    z = X[:, 2] + b[2]
    ref = np.zeros((h, w))
    for (u, v), zi, d in zip(uv, z, front[:, 0]):
        u, v = int(np.round(u)) - 1, int(np.round(v)) - 1
        if zi > 0 and 0 <= u < w and 0 <= v < h and (ref[v, u] == 0 or d < ref[v, u]):
            ref[v, u] = d
    assert depth.shape == (h, w) and (ref > 0).sum() > 10_000
    np.testing.assert_allclose(depth, ref, rtol=0, atol=1e-4)


@pytest.mark.parametrize("to_size", [(192, 640), (64, 224), (750, 2484)])
def test_resized_intrinsics_put_a_point_where_the_resized_image_shows_it(to_size):
    """A 3D point projected with the scaled ``K`` must land where the image's dot lands after
    PIL's bilinear resize (what the data set does): the dot's centroid is measured in the
    resized image, not derived from the formula."""
    K = np.array([[721.5, 0, 609.6], [0, 721.5, 172.9], [0, 0, 1.0]])
    native = (375, 1242)
    X = np.array([3.1, -0.7, 12.0])  # a point in front of the camera (metres)
    u, v = (K @ X)[:2] / X[2]
    yy, xx = np.mgrid[: native[0], : native[1]]
    dot = np.exp(-((xx - u) ** 2 + (yy - v) ** 2) / (2 * 6.0**2))  # a blurred dot, sub-pixel centre
    small = np.asarray(
        Image.fromarray(dot.astype(np.float32)).resize(to_size[::-1], Image.BILINEAR), np.float64
    )
    ys, xs = np.mgrid[: to_size[0], : to_size[1]]
    cu, cv_ = (small * xs).sum() / small.sum(), (small * ys).sum() / small.sum()
    K2 = kitti.scale_intrinsics(K, native, to_size)
    u2, v2 = (K2 @ X)[:2] / X[2]
    assert abs(u2 - cu) < 0.05 and abs(v2 - cv_) < 0.05, (u2, cu, v2, cv_)


def test_evaluation_resizes_predictions_bilinearly_in_disparity():
    """A prediction whose disparity is a ramp along x (and along y): bilinear resizing with
    pixel centres aligned gives the ramp evaluated at ``x = (j + 0.5) * W / W' - 0.5`` (clamped
    at the borders); resizing the depth instead, or by nearest neighbour, does not."""
    H, W, H2, W2 = 6, 10, 15, 23
    y, x = np.mgrid[:H, :W].astype(np.float64)
    disp = 0.05 + 0.02 * x + 0.01 * y
    out = resize_to((1.0 / disp).astype(np.float32), (H2, W2))
    j = np.clip((np.arange(W2) + 0.5) * W / W2 - 0.5, 0, W - 1)
    i = np.clip((np.arange(H2) + 0.5) * H / H2 - 0.5, 0, H - 1)
    expected = 1.0 / (0.05 + 0.02 * j[None, :] + 0.01 * i[:, None])
    assert out.shape == (H2, W2)
    np.testing.assert_allclose(out, expected, rtol=1e-4)


def test_depth_png_is_the_kitti_devkit_format_for_every_kind_of_value(tmp_path):
    """``write_depth_png`` against the KITTI depth devkit's definition, read back with OpenCV (not
    the module's reader): a 16-bit PNG holding round(depth x 256); 0 means no depth. Invalid inputs
    (0, negative, NaN, +inf) are 0; depths below 1 m are kept; depths past the format's reach
    (255.996 m) saturate at 65535, never wrap around."""
    depth = np.array([[7.0, 0.0, -1.0, np.nan], [np.inf, 0.5, 300.0, 12.3456]])
    want = np.array([[1792, 0, 0, 0], [0, 128, 65535, round(12.3456 * 256)]], np.uint16)
    p = tmp_path / "d.png"
    kitti.write_depth_png(p, depth)
    got = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert got.dtype == np.uint16 and got.shape == (2, 4)
    np.testing.assert_array_equal(got, want)
    back = kitti.read_depth_png(p)  # and the module's reader inverts it (metres, 0 = invalid)
    np.testing.assert_allclose(back, want.astype(np.float32) / 256.0)


def test_velodyne_projection_by_hand_at_the_image_edges():
    """A hand-made scan and calibration (camera 100 px focal length, principal point (10, 10), the
    velodyne's x forward = the camera's z): the published protocol's rules worked out per point on
    paper. A point projecting to (1, 1) lands on pixel (0, 0) (MATLAB's 1-based rounding: round(u) - 1),
    the last row and column are kept, of two points on one pixel the nearer wins, a point behind the
    sensor (velodyne x < 0) is dropped although its projection falls inside the image, and one
    projecting left of the image is dropped."""
    P = np.array([[100.0, 0, 10, 0], [0, 100.0, 10, 0], [0, 0, 1, 0]])
    to_cam = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], np.float64)
    calib = kitti.CamCalib(P_rect=P, R_rect=np.eye(4), size=(12, 16), velo_to_cam=to_cam)

    def point(u: float, v: float, x: float) -> list[float]:
        """The velodyne point at forward distance x (metres) that projects to (u, v) (pixels)."""
        return [x, -(u - 10) * x / 100, -(v - 10) * x / 100, 0.5]

    scan = np.array(
        [
            point(1, 1, 10.0),  # -> pixel (0, 0)
            point(16, 12, 8.0),  # -> pixel (15, 11): the last column and row
            point(6, 6, 15.0),  # two points on pixel (5, 5): 15 m wins, whichever comes last
            point(6, 6, 20.0),
            point(3, 3, 0.5),  # -> pixel (2, 2): half a metre is a depth like any other
            point(0.4, 4, 9.0),  # round(0.4) - 1 = -1: left of the image
            [-5.0, -0.25, -0.25, 0.5],  # behind the sensor (its mirror image would be (5, 5)): dropped
        ],
        np.float32,
    )
    want = np.zeros((12, 16), np.float32)
    want[0, 0], want[11, 15], want[5, 5], want[2, 2] = 10.0, 8.0, 15.0, 0.5
    np.testing.assert_allclose(kitti.project_velodyne(scan, calib), want, atol=1e-5)
