"""Property-based checks (hypothesis, bounded examples in the default run) against plain-loop
references written here: TFP and TFI on any window, at its edges and in batches; window starts
for both alignments and odd lengths; median-scaled metrics invariant to a global scale."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from r2sdepth.evaluate import EvalProtocol, evaluate_depths
from r2sdepth.spike.io import window_start
from r2sdepth.spike.reconstruct import tfi, tfp


def _tfi_loop(s: np.ndarray, i: int) -> np.ndarray:
    """Inverse inter-spike interval at plane i, pixel by pixel: the interval between the last
    spike at or before i and the first one after i, the window length where either is missing."""
    t, h, w = s.shape
    out = np.zeros((h, w), np.float32)
    for y in range(h):
        for x in range(w):
            times = [k for k in range(t) if s[k, y, x]]
            prev = [k for k in times if k <= i]
            nxt = [k for k in times if k > i]
            interval = nxt[0] - prev[-1] if prev and nxt else t
            out[y, x] = 1.0 / max(interval, 1)
    return out


windows = st.tuples(
    st.integers(1, 24), st.integers(1, 4), st.integers(1, 5), st.floats(0.0, 1.0), st.integers(0, 2**31 - 1)
).map(lambda a: (np.random.default_rng(a[4]).random((a[0], a[1], a[2])) < a[3]).astype(np.uint8))


@settings(max_examples=60, deadline=None)
@given(windows, st.data())
def test_tfi_and_tfp_match_plain_loops_at_any_index(s, data):
    t = s.shape[0]
    idx = data.draw(st.lists(st.integers(0, t - 1), min_size=1, max_size=4))
    for i in {0, t - 1, *idx}:  # the window's edges always
        np.testing.assert_allclose(tfi(s, i), _tfi_loop(s, i), rtol=1e-6)
    many = tfi(s, idx)  # the vectorised path for several planes at once
    for k, i in enumerate(idx):
        np.testing.assert_allclose(many[k], _tfi_loop(s, i), rtol=1e-6)
    np.testing.assert_allclose(tfi(s), _tfi_loop(s, t // 2), rtol=1e-6)  # default: the centre
    np.testing.assert_allclose(tfp(s), s.sum(0) / t, rtol=1e-6)
    batch = np.stack([s, 1 - s])
    np.testing.assert_allclose(tfi(batch, idx[0])[1], _tfi_loop(1 - s, idx[0]), rtol=1e-6)
    np.testing.assert_allclose(tfp(batch)[1], (1 - s).sum(0) / t, rtol=1e-6)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 513))
def test_window_start_for_any_length(frame_plane, length):
    """End-aligned: the `length` planes just before the frame's plane; centred: the frame's plane
    is the middle one (for an odd length) or the first of the second half (even)."""
    planes = list(range(frame_plane - length, frame_plane))
    assert window_start(frame_plane, length, "end") == planes[0]
    c = window_start(frame_plane, length, "center")
    window = list(range(c, c + length))
    assert window[length // 2] == frame_plane
    assert len([p for p in window if p < frame_plane]) == length // 2


@settings(max_examples=40, deadline=None)
@given(st.floats(1e-3, 1e3), st.integers(0, 2**31 - 1))
def test_median_scaled_metrics_ignore_a_global_scale_and_a_perfect_prediction_scores_zero(k, seed):
    rng = np.random.default_rng(seed)
    gt = np.where(rng.random((40, 60)) < 0.5, rng.uniform(2.0, 70.0, (40, 60)), 0.0).astype(np.float32)
    pred = (gt + rng.uniform(0.5, 5.0, gt.shape)).astype(np.float32)
    pr = EvalProtocol(crop=None)
    a, b = evaluate_depths([pred], [gt], pr), evaluate_depths([pred * np.float32(k)], [gt], pr)
    for m in ("abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3"):
        assert abs(a[m] - b[m]) <= 1e-4 * max(1.0, abs(a[m])), (m, a[m], b[m])
    perfect = evaluate_depths([gt * np.float32(k) + (gt == 0)], [gt], pr)
    assert perfect["abs_rel"] < 1e-5 and perfect["a1"] == 1.0


@settings(max_examples=40, deadline=None)
@given(
    fx=st.floats(20.0, 400.0),
    fy=st.floats(20.0, 400.0),
    cx=st.floats(0.0, 40.0),
    cy=st.floats(0.0, 24.0),
    z=st.floats(0.5, 80.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_back_projection_then_projection_is_the_identity_for_any_camera_and_depth(fx, fy, cx, cy, z, seed):
    """Every pixel, back-projected at any depth and projected with the same intrinsics, lands on
    itself at that depth (pixel coordinates by hand: column u, row v)."""
    import torch

    from r2sdepth.geometry import backproject, project

    g = torch.Generator().manual_seed(seed)
    depth = z * (0.5 + torch.rand(1, 1, 6, 9, generator=g, dtype=torch.float64))
    K = torch.tensor([[[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]]], dtype=torch.float64)
    pix, d = project(backproject(depth, torch.linalg.inv(K)), K)
    v, u = np.mgrid[0:6, 0:9]
    np.testing.assert_allclose(pix[0, 0].reshape(6, 9).double().numpy(), u, atol=1e-3)
    np.testing.assert_allclose(pix[0, 1].reshape(6, 9).double().numpy(), v, atol=1e-3)
    np.testing.assert_allclose(d.reshape(6, 9).double().numpy(), depth[0, 0].numpy(), rtol=1e-5)


@settings(max_examples=40, deadline=None)
@given(
    fx=st.floats(20.0, 200.0),
    z=st.floats(2.0, 50.0),
    tx=st.floats(-0.3, 0.3),
    slope=st.floats(-0.05, 0.05),
    offset=st.floats(0.2, 0.8),
)
def test_a_sideways_move_shifts_a_plane_by_fx_tx_over_z_pixels(fx, z, tx, slope, offset):
    """A fronto-parallel plane at depth Z seen by a source camera moved by ``tx`` (target -> source):
    target pixel u samples the source at ``u + fx * tx / Z`` (by hand), so a horizontal ramp
    ``slope * u + offset``, which bilinear sampling reproduces exactly, warps to
    ``slope * (u + fx * tx / Z) + offset`` wherever that column is inside the source; the identity
    pose gives the source back."""
    import torch

    from r2sdepth.geometry import warp

    h, w = 8, 40
    u = torch.arange(w, dtype=torch.float32).expand(1, 3, h, w)
    src = slope * u + offset
    K = torch.tensor([[[fx, 0, w / 2], [0, fx, h / 2], [0, 0, 1.0]]])
    depth = torch.full((1, 1, h, w), z)
    T = torch.eye(4)[None].clone()
    T[0, 0, 3] = tx
    out, _ = warp(src, depth, T, K)
    shift = fx * tx / z
    inside = ((u[0, 0] + shift) >= 0) & ((u[0, 0] + shift) <= w - 1)
    want = slope * (u + shift) + offset
    torch.testing.assert_close(out[..., inside], want[..., inside], atol=1e-4, rtol=1e-4)
    same, _ = warp(src, depth, torch.eye(4)[None], K)
    torch.testing.assert_close(same, src, atol=1e-4, rtol=1e-4)
