"""Loss terms against values worked out by hand (mutants mutmut found surviving in ``losses.py``:
``docs/results/mutation/``)."""

from __future__ import annotations

import math
import shutil
import sys

import pytest
import torch

from r2sdepth.geometry import disp_to_depth
from r2sdepth.losses import identity_error, reprojection_terms, si_log_loss


def test_si_log_loss_by_hand_with_weights_and_an_empty_image():
    """Image 0: log differences ``[ln 2, ln 2, 0, 0]`` under equal weights summing to 0.5 (the
    weights are normalised, so their sum does not matter); image 1: no weight at all (left out of
    the batch mean, not counted as a zero). Depths below 1 m (nothing clamps them)."""
    student = torch.tensor([[[[1.0, 1.0], [0.5, 0.5]]], [[[1.0, 2.0], [3.0, 4.0]]]])
    teacher = torch.tensor([[[[0.5, 0.5], [0.5, 0.5]]], [[[2.0, 2.0], [2.0, 2.0]]]])
    w = torch.zeros(2, 1, 2, 2)
    w[0] = 0.125
    ln2 = math.log(2)
    m1, m2 = ln2 / 2, ln2**2 / 2
    want = m2 - 0.85 * m1**2  # the default lambda
    assert float(si_log_loss(student, teacher, w)) == pytest.approx(want, rel=1e-6)
    assert float(si_log_loss(student, teacher, w, lam=1.0)) == pytest.approx(m2 - m1**2, rel=1e-6)


def test_si_log_loss_resizes_the_teacher_bilinearly_to_the_student():
    """A teacher at twice the student's width, a ramp 1, 2, 3, 4 along each row: bilinear
    resizing with pixel centres aligned (``align_corners=False``) samples it at 1.5 and 3.5, which
    is the student: loss 0 (corner-aligned sampling would give 1 and 4, nearest 1 and 3)."""
    teacher = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 1, 4).expand(1, 1, 2, 4).contiguous()
    student = torch.tensor([1.5, 3.5]).view(1, 1, 1, 2).expand(1, 1, 1, 2).contiguous()
    assert float(si_log_loss(student, teacher)) == pytest.approx(0.0, abs=1e-10)
    off = torch.tensor([1.0, 4.0]).view(1, 1, 1, 2)
    assert float(si_log_loss(off, teacher)) > 1e-3


def _scene():
    g = torch.Generator().manual_seed(0)
    b, h, w = 2, 16, 24
    target = torch.rand(b, 3, h, w, generator=g)
    sources = [torch.rand(b, 3, h, w, generator=g), target.clone()]
    K = torch.tensor([[20.0, 0, w / 2], [0, 20.0, h / 2], [0, 0, 1]]).expand(b, 3, 3).contiguous()
    T = torch.eye(4).expand(b, 4, 4).clone()
    T[:, 0, 3] = 0.3  # a sideways move: the warp depends on the depth
    poses = [T, T.clone()]
    disp = torch.rand(b, 1, h // 2, w // 2, generator=g)  # a coarser scale, upsampled inside
    return disp, target, sources, poses, K


def test_reprojection_terms_defaults_and_its_own_identity_error():
    """Called with its defaults, the result equals the call that spells them out (depth range
    0.1-100 m, auto-mask on, the identity error of the unwarped sources computed inside); the
    depth it returns is the upsampled disparity's depth."""
    disp, target, sources, poses, K = _scene()
    torch.manual_seed(1)
    got = reprojection_terms(disp, target, sources, poses, K)
    torch.manual_seed(1)
    ident = identity_error(target, sources)
    want = reprojection_terms(
        disp, target, sources, poses, K, min_depth=0.1, max_depth=100.0, automask=True, ident_best=ident
    )
    for k in ("loss_map", "reproj", "mask", "depth"):
        assert torch.equal(got[k], want[k]), k
    up = torch.nn.functional.interpolate(disp, size=(16, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(got["depth"], disp_to_depth(up, 0.1, 100.0)[1])
    # the unwarped copy of the target wins almost everywhere: those pixels are auto-masked
    assert float(got["mask"].mean()) < 0.5
    assert torch.allclose(got["loss_map"], torch.minimum(got["reproj"], ident))
    off = reprojection_terms(disp, target, sources, poses, K, automask=False)
    assert torch.equal(off["mask"], torch.ones_like(off["mask"])) and torch.equal(
        off["loss_map"], off["reproj"]
    )


def test_ssim_map_matches_scikit_image_inside_the_border():
    """SSIM over 3x3 windows (uniform weights, population statistics, C1 = 0.01^2, C2 = 0.03^2 for
    values in [0, 1]) computed by scikit-image, an independent implementation: the loss's per-pixel
    ``(1 - SSIM) / 2`` agrees away from the 1-pixel border (where the two pad differently), and keeps
    the input's size."""
    from skimage.metrics import structural_similarity  # noqa: PLC0415  (scikit-image: this test only)

    from r2sdepth.losses import SSIM  # noqa: PLC0415

    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 9, 11, generator=g)
    y = (x + 0.3 * torch.rand(1, 3, 9, 11, generator=g)).clamp(0, 1)
    got = SSIM()(x, y)
    assert got.shape == x.shape
    for c in range(3):
        _, ref = structural_similarity(
            x[0, c].double().numpy(),
            y[0, c].double().numpy(),
            win_size=3,
            data_range=1.0,
            gaussian_weights=False,
            use_sample_covariance=False,
            K1=0.01,
            K2=0.03,
            full=True,
        )
        want = torch.from_numpy((1 - ref) / 2).float().clamp(0, 1)
        assert torch.allclose(got[0, c, 1:-1, 1:-1], want[1:-1, 1:-1], atol=1e-5), c
    # anti-correlated windows: SSIM < 0, so (1 - SSIM) / 2 > 0.5 (not clamped at 0.5 or below)
    a = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]])
    assert float(SSIM()(a, 1 - a)[0, 0, 1, 1]) > 0.5


def test_resize_weight_block_means_down_nearest_up():
    from r2sdepth.losses import _resize_weight  # noqa: PLC0415

    w = torch.arange(16.0).reshape(1, 1, 4, 4)
    down = _resize_weight(w, (2, 2))
    assert torch.equal(down, torch.tensor([[[[2.5, 4.5], [10.5, 12.5]]]]))  # means of the 2x2 blocks
    up = _resize_weight(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), (4, 4))
    assert torch.equal(up[0, 0], torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]))
    same = torch.rand(1, 1, 3, 5)
    assert _resize_weight(same, (3, 5)) is same and _resize_weight(None, (3, 5)) is None


def test_si_log_loss_teacher_nearer_than_a_metre_and_weighted_mean_by_hand():
    """Asymmetric log differences (a clamp of the teacher at 1 m would change them) and the weighted
    mean's normalisation."""
    from r2sdepth.losses import _weighted_mean  # noqa: PLC0415

    student = torch.tensor([[[[2.0, 0.3]]]])
    teacher = torch.tensor([[[[0.5, 0.6]]]])
    d = [math.log(4.0), math.log(0.5)]
    m1, m2 = sum(d) / 2, (d[0] ** 2 + d[1] ** 2) / 2
    assert float(si_log_loss(student, teacher)) == pytest.approx(m2 - 0.85 * m1**2, rel=1e-6)
    x = torch.tensor([[[[1.0, 3.0]]]])
    w = torch.tensor([[[[0.25, 0.75]]]])
    assert float(_weighted_mean(x, w)) == pytest.approx((0.25 + 2.25) / 1.0)
    assert float(_weighted_mean(x, 0.1 * w)) == pytest.approx(2.5, rel=1e-6)  # weights normalised
    assert float(_weighted_mean(x, None)) == 2.0


def test_feature_distill_loss_by_hand_over_two_stages_with_weights():
    """Per pixel ``|| s/|s| - t/|t| ||^2`` over the channels, weighted mean over pixels (the weight
    resized to each stage), mean over stages."""
    from r2sdepth.losses import feature_distill_loss  # noqa: PLC0415

    s1 = torch.tensor([[[[3.0, 0.0]], [[4.0, 1.0]]]])  # [1, 2, 1, 2]: vectors (3, 4) and (0, 1)
    t1 = torch.tensor([[[[1.0, 2.0]], [[0.0, 0.0]]]])  # (1, 0) and (2, 0)
    s2 = torch.tensor([[[[1.0]], [[1.0]], [[0.0]]]])  # [1, 3, 1, 1]: (1, 1, 0)
    t2 = torch.tensor([[[[0.0]], [[2.0]], [[0.0]]]])  # (0, 1, 0)
    p1 = [(0.6 - 1) ** 2 + 0.8**2, 1.0 + 1.0]  # (0.6, 0.8) vs (1, 0); (0, 1) vs (1, 0)
    r = 1 / math.sqrt(2)
    p2 = r**2 + (r - 1) ** 2
    w = torch.tensor([[[[1.0, 3.0]]]])  # stage 1 full size; stage 2 (1 x 1): its mean, any value
    want = ((p1[0] * 1 + p1[1] * 3) / 4 + p2) / 2
    got = feature_distill_loss([s1, s2], [t1, t2], w)
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(feature_distill_loss([s1, s2], [t1, t2])) == pytest.approx((sum(p1) / 2 + p2) / 2, rel=1e-5)
    with pytest.raises(
        ValueError, match=r"feature shapes differ: student \(1, 2, 1, 2\), teacher \(1, 3, 1, 1\)"
    ):
        feature_distill_loss([s1], [t2])


def test_attention_transfer_by_hand():
    """Attention = channel mean of f^2 over the pixels, L2-normalised per sample; the loss sums the
    squared difference over pixels, mean over the batch and the stages. Channels may differ."""
    from r2sdepth.losses import attention_map, attention_transfer_loss  # noqa: PLC0415

    s = torch.tensor([[[[1.0, 2.0]], [[1.0, 0.0]]]])  # channel mean of f^2: (1, 2)
    t = torch.tensor([[[[0.0, 3.0]]]])  # one channel: (0, 9)
    a_s = torch.tensor([1.0, 2.0]) / math.sqrt(5)
    assert torch.allclose(attention_map(s)[0], a_s)
    per_stage = float(((a_s - torch.tensor([0.0, 1.0])) ** 2).sum())
    s2, t2 = torch.ones(1, 2, 2, 1), torch.ones(1, 5, 2, 1)  # uniform maps: no difference
    got = attention_transfer_loss([s, s2], [t, t2])
    assert float(got) == pytest.approx(per_stage / 2, rel=1e-6)
    with pytest.raises(
        ValueError, match=r"feature sizes differ: student \(1, 2, 1, 2\), teacher \(1, 1, 2, 1\)"
    ):
        attention_transfer_loss([s], [torch.ones(1, 1, 2, 1)])


def test_affine_normalise_by_hand():
    """Shift = weighted mean, scale = weighted mean absolute deviation, per image."""
    from r2sdepth.losses import affine_normalise  # noqa: PLC0415

    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]], [[[4.0, 4.0], [4.0, 4.0]]]])
    n, shift, scale = affine_normalise(x)
    # image 0: mean 3, deviations 2, 1, 0, 3 (mean 1.5); image 1: constant (scale clamped, maps to 0)
    assert torch.allclose(shift, torch.tensor([3.0, 4.0])) and scale[0] == pytest.approx(1.5)
    assert float(scale[1]) == pytest.approx(1e-8)
    assert torch.allclose(n[0, 0], torch.tensor([[-4 / 3, -2 / 3], [0.0, 2.0]]))
    assert torch.equal(n[1], torch.zeros(1, 2, 2))
    w = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]], [[[0.0, 0.0], [0.0, 2.0]]]])
    n, shift, scale = affine_normalise(x, w)
    # image 0 under weights (1, 1, 0, 0): mean 1.5, deviation 0.5
    assert torch.allclose(shift, torch.tensor([1.5, 4.0])) and scale[0] == pytest.approx(0.5)
    assert torch.allclose(n[0, 0], torch.tensor([[-1.0, 1.0], [3.0, 9.0]]))


def test_ssi_disparity_loss_by_hand_and_its_invariances():
    from r2sdepth.losses import ssi_disparity_loss  # noqa: PLC0415

    s = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = torch.tensor([[[[1.0, 1.0], [2.0, 5.0]]]])
    ns = [-1.5, -0.5, 0.5, 1.5]  # mean 2.5, mean absolute deviation 1
    dev = [1.25, 1.25, 0.25, 2.75]  # teacher: mean 2.25, mean absolute deviation 1.375
    nt = [(v - 2.25) / 1.375 for v in (1.0, 1.0, 2.0, 5.0)]
    assert sum(dev) / 4 == 1.375
    want = sum(abs(a - b) for a, b in zip(ns, nt)) / 4
    assert float(ssi_disparity_loss(s, t)) == pytest.approx(want, rel=1e-6)
    assert float(ssi_disparity_loss(s, 3 * s + 7)) == pytest.approx(0.0, abs=1e-6)  # any units
    assert float(ssi_disparity_loss(s, -s)) == pytest.approx(2.0, rel=1e-6)  # upside down
    assert float(ssi_disparity_loss(torch.ones_like(s), t)) == pytest.approx(1.0, rel=1e-6)  # constant
    # a second image with no weight is left out of the batch mean (not counted as 0)
    w = torch.ones(2, 1, 2, 2)
    w[1] = 0
    both = ssi_disparity_loss(torch.cat([s, s]), torch.cat([t, -t]), w)
    assert float(both) == pytest.approx(want, rel=1e-6)
    # a teacher at twice the size is resized to the student (block-constant: the same map)
    big = t.repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert float(ssi_disparity_loss(s, big)) == pytest.approx(want, rel=1e-5)


def test_can_compile_says_why_not(monkeypatch):
    from r2sdepth.losses import can_compile  # noqa: PLC0415

    if shutil.which("g++") or shutil.which("c++") or shutil.which("clang++"):
        assert can_compile("cpu") is None
    monkeypatch.setenv("PATH", "")
    assert can_compile("cpu") == "no C++ compiler (c++, g++ or clang++) on PATH"
    monkeypatch.setitem(sys.modules, "triton", None)  # import triton -> ImportError
    assert can_compile("cuda") == "triton is not installed"


def test_distillation_terms_per_image_of_a_batch_and_tiny_features():
    """Two images with their own weights (the per-pixel distance keeps its channel axis, the
    attention maps are normalised per image) and feature vectors of tiny norm (not blown up to unit
    length: the normalisations' eps keeps them small)."""
    from r2sdepth.losses import attention_map, feature_distill_loss  # noqa: PLC0415

    s = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]], [[[1.0, 1.0]], [[0.0, 0.0]]]])  # [2, 2, 1, 2]
    t = torch.tensor([[[[1.0, 1.0]], [[0.0, 0.0]]], [[[1.0, 1.0]], [[0.0, 0.0]]]])
    w = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 1.0]]]])
    # pixel distances: image 0 (0, 2), image 1 (0, 0); weighted: (0 * 1 + 2 * 0 + 0 + 0) / 2
    assert float(feature_distill_loss([s], [t], w)) == pytest.approx(0.0, abs=1e-7)
    w2 = torch.tensor([[[[0.0, 1.0]]], [[[1.0, 0.0]]]])
    assert float(feature_distill_loss([s], [t], w2)) == pytest.approx(2.0 / 2, rel=1e-6)
    tiny = torch.tensor([[[[1e-7]], [[0.0]]]])  # norm 1e-7 < eps 1e-6: stays about 0.1 long
    far = torch.tensor([[[[0.0]], [[1.0]]]])
    assert float(feature_distill_loss([tiny], [far])) == pytest.approx(0.1**2 + 1.0, rel=1e-4)
    a = attention_map(s)
    assert torch.allclose(a[0], torch.tensor([1.0, 1.0]) / math.sqrt(2)) and torch.allclose(a[1], a[0])
    assert torch.allclose(attention_map(0.1 * s), a)  # a small feature map has the same attention


def test_ssi_disparity_loss_weights_inside_an_image_per_image_means_and_resizing():
    """Weights that leave out part of an image change both normalisations (the left-out pixel's value
    must not matter); two weighted images are averaged per image, not pooled; a teacher at twice the
    width is resized with centre-aligned pixels (bilinear, ``align_corners=False``)."""
    from r2sdepth.losses import ssi_disparity_loss  # noqa: PLC0415

    s = torch.tensor([[[[1.0, 2.0, 3.0, 100.0]]]])
    t = torch.tensor([[[[2.0, 4.0, 6.0, -50.0]]]])  # an affine map of s on the first three pixels
    w = torch.tensor([[[[1.0, 1.0, 1.0, 0.0]]]])
    assert float(ssi_disparity_loss(s, t, w)) == pytest.approx(0.0, abs=1e-6)
    assert float(ssi_disparity_loss(s, t)) > 0.5
    # image 0: loss 0 on 2 weighted pixels; image 1: 2 (upside down) on 4: per-image mean (0 + 2) / 2
    s2 = torch.tensor([[[[1.0, 2.0, 5.0, 7.0]]], [[[1.0, 2.0, 3.0, 4.0]]]])
    t2 = torch.tensor([[[[3.0, 5.0, 0.0, 0.0]]], [[[4.0, 3.0, 2.0, 1.0]]]])
    w2 = torch.tensor([[[[1.0, 1.0, 0.0, 0.0]]], [[[1.0, 1.0, 1.0, 1.0]]]])
    assert float(ssi_disparity_loss(s2, t2, w2)) == pytest.approx(1.0, rel=1e-6)
    # teacher x^2 at x = 0..5, student the centre-aligned samples at 0.5, 2.5, 4.5: loss 0
    teacher = torch.tensor([[[[0.0, 1.0, 4.0, 9.0, 16.0, 25.0]]]])
    student = torch.tensor([[[[0.5, 6.5, 20.5]]]])
    assert float(ssi_disparity_loss(student, teacher)) == pytest.approx(0.0, abs=1e-6)
    corners = torch.tensor([[[[0.0, 6.5, 25.0]]]])  # what align_corners=True would sample
    assert float(ssi_disparity_loss(corners, teacher)) > 0.01


def test_reprojection_terms_pass_their_depth_range_and_take_4x4_intrinsics():
    """A depth range other than the default reaches the depth (by hand: ``1 / (1/max + (1/min -
    1/max) disp)``); 4x4 intrinsics (the homogeneous form the data module hands over) give the
    same terms as their 3x3 block."""
    disp, target, sources, poses, K = _scene()
    kw = {"min_depth": 0.5, "max_depth": 20.0, "automask": False}
    got = reprojection_terms(disp, target, sources, poses, K, **kw)
    up = torch.nn.functional.interpolate(disp, size=(16, 24), mode="bilinear", align_corners=False)
    assert torch.allclose(got["depth"], 1.0 / (1 / 20.0 + (1 / 0.5 - 1 / 20.0) * up), rtol=1e-6)
    K4 = torch.eye(4).expand(2, 4, 4).clone()
    K4[:, :3, :3] = K
    got4 = reprojection_terms(disp, target, sources, poses, K4, **kw)
    for k in ("loss_map", "reproj", "depth"):
        assert torch.allclose(got4[k], got[k], atol=1e-6), k


def test_self_supervised_loss_is_the_mean_over_scales_by_hand():
    """The multi-scale loss with a depth range, auto-mask off and a smoothness weight other than
    the defaults: the mean over scales of the reprojection map's mean (each scale's disparity
    upsampled to the target) + ``smooth_weight`` x the smoothness against the target resized to
    that scale, / 2^s; every option reaches every scale."""
    from r2sdepth.losses import self_supervised_loss, smoothness  # noqa: PLC0415

    disp, target, sources, poses, K = _scene()
    g = torch.Generator().manual_seed(3)
    disps = {0: torch.rand(2, 1, 16, 24, generator=g), 1: disp}
    kw = {"min_depth": 0.5, "max_depth": 20.0, "automask": False}
    got = self_supervised_loss(disps, target, sources, poses, K, smooth_weight=0.1, **kw)
    total, photo = 0.0, 0.0
    for s, d in disps.items():
        p = reprojection_terms(d, target, sources, poses, K, **kw)["loss_map"].mean()
        img = torch.nn.functional.interpolate(target, size=d.shape[-2:], mode="bilinear", align_corners=False)
        total = total + p + 0.1 * smoothness(d, img) / 2**s
        photo = photo + p
    assert float(got["loss"]) == pytest.approx(float(total) / 2, rel=1e-6)
    assert float(got["photo"]) == pytest.approx(float(photo) / 2, rel=1e-6)
    # auto-mask on: the masked map is the minimum with the unwarped sources' error at every scale
    on = self_supervised_loss(disps, target, sources, poses, K, min_depth=0.5, max_depth=20.0)
    assert float(on["photo"]) < float(got["photo"])


def test_resize_weight_pools_when_the_width_shrinks_and_samples_when_it_grows():
    """The rule is the width's: block means (area) when the width stays or shrinks, nearest
    sampling when it grows, whatever the height does; a 2 -> 3 upsampling by hand (nearest takes
    source pixels 0, 0, 1; area would mean the two in the middle)."""
    from r2sdepth.losses import _resize_weight  # noqa: PLC0415

    w = torch.arange(16.0).reshape(1, 1, 4, 4)
    rows = _resize_weight(w, (2, 4))  # height halves, width stays: means of row pairs
    assert torch.equal(rows[0, 0], torch.tensor([[2.0, 3, 4, 5], [10, 11, 12, 13]]))
    wide = torch.arange(16.0).reshape(1, 1, 2, 8)  # width 8 -> 4 (the height, 2, is below 4)
    assert torch.equal(_resize_weight(wide, (1, 4))[0, 0], torch.tensor([[4.5, 6.5, 8.5, 10.5]]))
    tall = torch.arange(8.0).reshape(1, 1, 4, 2)  # width grows 2 -> 4, height shrinks 4 -> 2: nearest
    assert torch.equal(_resize_weight(tall, (2, 4))[0, 0], torch.tensor([[0.0, 0, 1, 1], [4, 4, 5, 5]]))
    up = _resize_weight(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]), (3, 3))
    assert torch.equal(up[0, 0], torch.tensor([[1.0, 1, 2], [1, 1, 2], [3, 3, 4]]))


def test_adaptive_pixel_weights_default_to_hard():
    from r2sdepth.losses import adaptive_pixel_weights  # noqa: PLC0415

    es = torch.tensor([[[[0.2, 0.1, 0.3]]]])
    et = torch.tensor([[[[0.1, 0.2, 0.3]]]])
    assert torch.equal(adaptive_pixel_weights(es, et), torch.tensor([[[[1.0, 0.0, 0.0]]]]))


def test_weighted_normalisation_with_weights_summing_below_one():
    """Weights that sum to less than 1 (0.1 on four pixels) are normalised by their sum, not by 1,
    and such an image still counts: the shift is the plain mean, the scale the mean absolute
    deviation, and the scale-and-shift-invariant loss of a map against its own negative is 2."""
    from r2sdepth.losses import affine_normalise, ssi_disparity_loss  # noqa: PLC0415

    x = torch.tensor([[[[1.0, 2.0], [3.0, 6.0]]]])
    w = torch.full_like(x, 0.1)
    n, shift, scale = affine_normalise(x, w)
    assert float(shift) == pytest.approx(3.0) and float(scale) == pytest.approx(1.5)
    assert torch.allclose(n, (x - 3.0) / 1.5)
    assert float(ssi_disparity_loss(x, -x, w)) == pytest.approx(2.0, rel=1e-6)
    assert float(ssi_disparity_loss(x, 2 * x + 1, w)) == pytest.approx(0.0, abs=1e-6)
