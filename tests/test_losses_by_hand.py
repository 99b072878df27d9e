"""Loss terms against values worked out by hand (mutants mutmut found surviving in ``losses.py``:
``docs/results/mutation/``)."""

from __future__ import annotations

import math

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
