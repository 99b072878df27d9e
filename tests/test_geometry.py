import numpy as np
import torch
from scipy.spatial.transform import Rotation

from r2sdepth.data import kitti
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.geometry import (
    axis_angle_to_matrix,
    backproject,
    disp_to_depth,
    pixel_grid,
    pose_vec_to_matrix,
    project,
    warp,
)


def test_backproject_project_roundtrip():
    K = torch.tensor([[[100.0, 0, 32], [0, 90, 24], [0, 0, 1]]]).repeat(2, 1, 1)
    depth = torch.rand(2, 1, 48, 64) * 10 + 1
    pts = backproject(depth, torch.inverse(K))
    pix, z = project(pts, K)
    v, u = torch.meshgrid(torch.arange(48.0), torch.arange(64.0), indexing="ij")
    assert torch.allclose(pix[0, 0].reshape(48, 64), u, atol=1e-3)
    assert torch.allclose(pix[1, 1].reshape(48, 64), v, atol=1e-3)
    assert torch.allclose(z.reshape(2, 1, 48, 64), depth, atol=1e-4)


def test_rotation_conversions():
    aa = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.0, 0.0], [1e-6, 0, 0], [0, 2.0, 0]])
    R = axis_angle_to_matrix(aa)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(3).expand(4, 3, 3), atol=1e-5)
    assert torch.allclose(torch.det(R), torch.ones(4), atol=1e-5)
    # against scipy's rotation vectors (Rodrigues' formula computed by another library)
    ref = Rotation.from_rotvec(aa.double().numpy()).as_matrix()
    np.testing.assert_allclose(R.numpy(), ref, atol=1e-6)
    # rotation about z by 90 degrees maps x to y
    Rz = axis_angle_to_matrix(torch.tensor([[0, 0, np.pi / 2]]))
    assert torch.allclose(Rz[0] @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-6)
    aa.requires_grad_(True)
    axis_angle_to_matrix(aa).sum().backward()
    assert torch.isfinite(aa.grad).all()


def test_pose_inverse():
    aa, t = torch.tensor([[0.05, 0.1, -0.02]]), torch.tensor([[0.3, -0.1, 1.2]])
    T = pose_vec_to_matrix(aa, t)
    Ti = pose_vec_to_matrix(aa, t, invert=True)
    assert torch.allclose(T @ Ti, torch.eye(4)[None], atol=1e-6)


def test_disp_to_depth_range():
    _, d = disp_to_depth(torch.tensor([0.0, 1.0]))
    assert torch.allclose(d, torch.tensor([100.0, 0.1]))


def test_warp_identity():
    img = torch.rand(1, 3, 20, 30)
    K = torch.tensor([[[40.0, 0, 15], [0, 40, 10], [0, 0, 1]]])
    out, valid = warp(img, torch.full((1, 1, 20, 30), 5.0), torch.eye(4)[None], K)
    assert torch.allclose(out, img, atol=1e-5) and valid.all()


def _load(root, drive, i):
    from PIL import Image

    img = np.asarray(Image.open(kitti.image_path(root, drive, i)), np.float32) / 255
    return torch.from_numpy(img).permute(2, 0, 1)[None], torch.from_numpy(kitti.gt_depth(root, drive, i))[
        None, None
    ]


def test_synthetic_view_synthesis_reproduces_target(tmp_path):
    """Ties synthetic data, calibration parsing and geometry together: warping frame t+1 into
    frame t with the exact depth and poses reproduces frame t on non-occluded pixels."""
    root = tmp_path / "syn"
    synthesize(root, SceneSpec(frames=3, height=96, width=320, seed=5, moving_cars=0), sequences=1)
    drive = kitti.find_drives(root)[0]
    K = torch.from_numpy(kitti.load_calib(root / drive.split("/")[0], "02").K).float()[None]
    poses = kitti.read_poses(root / drive / "poses.txt")
    tgt, dt = _load(root, drive, 1)
    src, ds = _load(root, drive, 2)
    T = torch.from_numpy(np.linalg.inv(poses[2]) @ poses[1]).float()[None]  # tgt cam -> src cam
    warped, valid = warp(src, dt.clamp(min=0.1), T, K)
    # occlusion test: the projected depth must match the source's depth where it lands
    pts = backproject(dt.clamp(min=0.1), torch.inverse(K))
    pix, z = project(pts, K, T)
    grid = torch.stack([2 * pix[:, 0] / 319 - 1, 2 * pix[:, 1] / 95 - 1], -1).reshape(1, 96, 320, 2)
    ds_at = torch.nn.functional.grid_sample(ds, grid, mode="nearest", align_corners=True)
    vis = (valid > 0) & (dt > 0) & ((ds_at - z.reshape(1, 1, 96, 320)).abs() < 0.02 * ds_at)
    assert vis.float().mean() > 0.6
    err = (warped - tgt).abs().mean(1, keepdim=True)[vis]
    print(
        "warp err median",
        float(err.median()),
        "mean",
        float(err.mean()),
        "visible",
        float(vis.float().mean()),
    )
    assert err.median() < 0.03, err.median()
    assert err.mean() < 0.06, err.mean()
    # a wrong pose gives a clearly worse reconstruction
    T_bad = T.clone()
    T_bad[0, 2, 3] += 1.0
    bad, _ = warp(src, dt.clamp(min=0.1), T_bad, K)
    assert (bad - tgt).abs().mean(1, keepdim=True)[vis].mean() > 2 * err.mean()


def test_real_kinect_depth_warp(shared_data):
    """Real RGB-D frames with real poses: warping with the measured depth beats identity."""
    from PIL import Image
    from scipy.spatial.transform import Rotation

    d = shared_data / "rgbd_kinect"
    poses = [list(map(float, ln.split())) for ln in (d / "pose.txt").read_text().splitlines() if ln.strip()]

    def T_of(p):
        T = np.eye(4)
        T[:3, :3] = Rotation.from_quat(p[3:7]).as_matrix()
        T[:3, 3] = p[:3]
        return T

    def img(i):
        return torch.from_numpy(
            np.asarray(Image.open(d / "color" / f"{i}.png").convert("RGB"), np.float32) / 255
        ).permute(2, 0, 1)[None]

    depth = torch.from_numpy(np.asarray(Image.open(d / "depth" / "1.pgm"), np.float32) / 1000.0)[None, None]
    K = torch.tensor([[[518.0, 0, 325.5], [0, 519.0, 253.5], [0, 0, 1]]])
    T = torch.from_numpy(np.linalg.inv(T_of(poses[1])) @ T_of(poses[0])).float()[None]
    warped, valid = warp(img(2), depth.clamp(min=0.1), T, K)
    m = (valid > 0) & (depth > 0)
    e_warp = (warped - img(1)).abs().mean(1, keepdim=True)[m].mean()
    e_id = (img(2) - img(1)).abs().mean(1, keepdim=True)[m].mean()
    assert e_warp < 0.8 * e_id


def test_pixel_grid_by_hand_in_any_dtype():
    """Homogeneous pixel coordinates ``[3, H*W]``, row-major (u = column, v = row), in the dtype
    asked for (all three rows: a float64 grid must not carry a float32 row of ones)."""
    for dtype in (torch.float32, torch.float64):
        g = pixel_grid(2, 3, dtype=dtype)
        assert g.dtype == dtype and g.shape == (3, 6)
        assert g.tolist() == [[0, 1, 2, 0, 1, 2], [0, 0, 0, 1, 1, 1], [1, 1, 1, 1, 1, 1]]


def test_rescale_translation_per_sample_short_and_long():
    """Each sample's translation is scaled to its own distance, also below 1 m (0.5 m -> 1 m) and
    when the other sample's is long (2 m -> 3 m): a norm over the batch or a floor at 1 m fails."""
    from r2sdepth.geometry import rescale_translation

    T = torch.eye(4).repeat(2, 1, 1)
    T[0, :3, 3] = torch.tensor([0.3, 0.0, 0.4])  # 0.5 m
    T[1, :3, 3] = torch.tensor([0.0, 2.0, 0.0])  # 2 m
    out = rescale_translation(T, torch.tensor([1.0, 3.0], dtype=torch.float64))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out[0, :3, 3], torch.tensor([0.6, 0.0, 0.8]))
    torch.testing.assert_close(out[1, :3, 3], torch.tensor([0.0, 3.0, 0.0]))


def _K(fx: float, cx: float, cy: float, b: int = 2, size: int = 3) -> torch.Tensor:
    K = torch.eye(size).repeat(b, 1, 1)
    K[:, 0, 0], K[:, 1, 1], K[:, 0, 2], K[:, 1, 2] = fx, fx, cx, cy
    return K


def test_warp_validity_at_the_image_edges_for_near_points_by_hand():
    """Depth 0.5 m, fx = 10 px: a camera moved 0.075 m left (x) shifts every projection by
    fx * t / Z = 1.5 px to the right, so the last two columns land beyond w - 1 (invalid) and sample
    the border; sample 2 moves up, which shifts the rows by 1.5 px down. A point that ends exactly in
    the source camera's plane (z = 0) is invalid; one 0.5 m in front is valid."""
    h, w = 6, 8
    src = torch.arange(h * w, dtype=torch.float32).reshape(1, 1, h, w).repeat(2, 1, 1, 1)
    depth = torch.full((2, 1, h, w), 0.5)
    T = torch.eye(4).repeat(2, 1, 1)
    T[0, 0, 3], T[1, 1, 3] = 0.075, 0.075  # the scene moves +x / +y in the source camera
    out, valid = warp(src, depth, T, _K(10.0, 3.0, 2.0))
    assert valid.dtype == torch.float32 and valid.shape == (2, 1, h, w)
    cols = torch.tensor([1.0] * (w - 2) + [0.0] * 2)  # u + 1.5 <= w - 1  <=>  u <= w - 2.5
    rows = torch.tensor([1.0] * (h - 2) + [0.0] * 2)
    assert torch.equal(valid[0, 0], cols.expand(h, w))
    assert torch.equal(valid[1, 0], rows[:, None].expand(h, w))
    # inside: bilinear halfway between two columns / rows; outside: the border value (padding "border")
    assert torch.allclose(out[0, 0, :, 0], src[0, 0, :, 1] + 0.5)
    assert torch.allclose(out[0, 0, :, -1], src[0, 0, :, -1])
    assert torch.allclose(out[1, 0, -1], src[1, 0, -1])
    # z = 0 after the move: the pixel on the optical axis projects to (0, 0) but lies in the camera plane
    T0 = torch.eye(4).repeat(2, 1, 1)
    T0[:, 2, 3] = -0.5
    _, v0 = warp(src, depth, T0, _K(10.0, 3.0, 2.0))
    assert v0[0, 0, 2, 3] == 0


def test_geometry_takes_4x4_intrinsics_like_3x3():
    K3, K4 = _K(20.0, 3.5, 2.5), _K(20.0, 3.5, 2.5, size=4)
    depth = torch.rand(2, 1, 6, 8, generator=torch.Generator().manual_seed(0)) * 5 + 1
    pts3, pts4 = backproject(depth, torch.inverse(K3)), backproject(depth, torch.inverse(K4))
    assert pts4.shape == (2, 3, 48) and torch.allclose(pts3, pts4)
    (pix3, z3), (pix4, z4) = project(pts3, K3), project(pts3, K4)
    assert pix4.shape == (2, 2, 48) and z4.shape == (2, 1, 48)
    assert torch.allclose(pix3, pix4) and torch.allclose(z3, z4)
    T = pose_vec_to_matrix(torch.tensor([[0.0, 0.01, 0.0]] * 2), torch.tensor([[0.1, 0.0, 0.2]] * 2))
    src = torch.rand(2, 3, 6, 8, generator=torch.Generator().manual_seed(1))
    (a, ma), (b, mb) = warp(src, depth, T, K3), warp(src, depth, T, K4)
    assert torch.allclose(a, b) and torch.equal(ma, mb)


def test_pose_vec_to_matrix_by_hand():
    t = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    T = pose_vec_to_matrix(torch.zeros(1, 3, dtype=torch.float64), t)
    ref = np.eye(4)
    ref[:3, 3] = [1, 2, 3]
    assert T.dtype == torch.float64 and T.shape == (1, 4, 4)
    np.testing.assert_array_equal(T[0].numpy(), ref)
    # a quarter turn about y, then 1 m along x: the inverse undoes both (R^T, -R^T t)
    aa = torch.tensor([[0.0, np.pi / 2, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    t2 = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, -2.0]], dtype=torch.float64)
    T2, inv = pose_vec_to_matrix(aa, t2), pose_vec_to_matrix(aa, t2, invert=True)
    assert T2.shape == (2, 4, 4)
    R = Rotation.from_rotvec([0, np.pi / 2, 0]).as_matrix()
    np.testing.assert_allclose(T2[0, :3, :3].numpy(), R, atol=1e-12)
    np.testing.assert_allclose(T2[:, :3, 3].numpy(), t2.numpy())
    np.testing.assert_allclose(inv[0, :3, 3].numpy(), -R.T @ [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose((T2 @ inv).numpy(), np.eye(4)[None].repeat(2, 0), atol=1e-12)


def test_axis_angle_to_matrix_below_the_small_angle_threshold():
    """Angles under 1e-4 rad take the first-order branch: its off-diagonal signs against scipy."""
    aa = torch.tensor([[2e-5, -3e-5, 5e-5]], dtype=torch.float64)
    R = axis_angle_to_matrix(aa)[0].numpy()
    ref = Rotation.from_rotvec(aa[0].numpy()).as_matrix()
    off = ~np.eye(3, dtype=bool)
    np.testing.assert_allclose(R[off], ref[off], rtol=1e-3, atol=1e-12)
