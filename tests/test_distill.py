"""Stage 2: distillation losses, adaptive weights, the student's spike-only forward, gradients."""

import pytest
import torch

from r2sdepth.losses import adaptive_pixel_weights, attention_transfer_loss, feature_distill_loss, si_log_loss

TINY = {"modality": "fusion", "width": 8, "decoder_width": 4, "spike_repr": {"chunks": 2, "bins": 4}}


def feats(seed: int, b: int = 2) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(b, c, s, 2 * s, generator=g) for c, s in ((8, 16), (16, 8), (32, 4))]


@pytest.mark.parametrize("loss", [feature_distill_loss, attention_transfer_loss])
def test_feature_losses_zero_iff_equal_and_grad_only_to_student(loss):
    t = feats(0)
    assert float(loss([x.clone() for x in t], t)) == pytest.approx(0.0, abs=1e-6)
    s = [x.requires_grad_() for x in feats(1)]
    t = [x.requires_grad_() for x in t]
    v = loss(s, t)
    assert v.item() > 1e-3
    v.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s)
    assert all(x.grad is None for x in t)  # the teacher is detached


def test_feature_loss_pixel_weights_select_pixels():
    t = feats(0, 1)
    s = [x.clone() for x in t]
    s[0][..., :, :16] = torch.rand_like(s[0][..., :, :16])  # student differs on the left half only
    w = torch.zeros(1, 1, 64, 128)
    w[..., 64:] = 1  # trust the teacher on the right half only
    assert float(feature_distill_loss(s, t, w)) == pytest.approx(0.0, abs=1e-6)
    assert float(feature_distill_loss(s, t, 1 - w)) > 1e-3


def test_si_log_loss():
    t = torch.rand(2, 1, 8, 16) * 50 + 1
    assert float(si_log_loss(t.clone(), t)) == pytest.approx(0.0, abs=1e-6)
    # a global scale costs only (1 - lam) * log(s)^2; lam = 1 ignores it
    assert float(si_log_loss(2 * t, t, lam=0.85)) == pytest.approx(
        0.15 * float(torch.log(torch.tensor(2.0))) ** 2, rel=1e-4
    )
    assert float(si_log_loss(2 * t, t, lam=1.0)) == pytest.approx(0.0, abs=1e-6)
    s = (t * torch.exp(torch.randn_like(t) * 0.3)).requires_grad_()
    tt = t.clone().requires_grad_()
    v = si_log_loss(s, tt)
    assert v.item() > 1e-3
    v.backward()
    assert s.grad is not None and tt.grad is None
    # zero weight on the differing pixels -> zero loss
    w = torch.zeros_like(t)
    assert float(si_log_loss(s.detach(), t, w)) == 0.0


def test_adaptive_pixel_weights_constructed():
    es = torch.tensor([[[[0.1, 0.2, 0.3, 0.4]]]])
    et = torch.tensor([[[[0.05, 0.4, 0.3, 0.1]]]])  # teacher better, worse, tie, much better
    assert adaptive_pixel_weights(es, et, mode="hard").flatten().tolist() == [1, 0, 0, 1]
    soft = adaptive_pixel_weights(es, et, mode="soft").flatten()
    assert soft[0] > 0.5 and soft[1] < 0.5 and soft[2] == pytest.approx(0.5) and soft[3] == pytest.approx(0.8)
    mask = torch.tensor([[[[1.0, 1.0, 1.0, 0.0]]]])  # teacher's auto-mask drops the last pixel
    assert adaptive_pixel_weights(es, et, mask, mode="hard").flatten().tolist() == [1, 0, 0, 0]
    assert adaptive_pixel_weights(es, et, mode="none").flatten().tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="hard, soft or none"):
        adaptive_pixel_weights(es, et, mode="max")


def _batch(b=2, h=64, w=96, t=16):
    g = torch.Generator().manual_seed(0)
    K = torch.tensor([[0.58 * w, 0, 0.5 * w], [0, 1.92 * h, 0.5 * h], [0, 0, 1.0]]).expand(b, 3, 3)
    color = torch.rand(b, 3, 3, h, w, generator=g)
    return {
        "color": color,
        "color_aug": color.clone(),
        "K": K.clone(),
        "spikes": (torch.rand(b, t, h, w, generator=g) < 0.3).to(torch.uint8),
    }


def test_student_is_spike_only_and_gradients_reach_only_student():
    from r2sdepth.models.r2sdepth import student_forward
    from r2sdepth.train.distill import DistillModule

    torch.manual_seed(0)
    m = DistillModule(
        {"model": TINY, "pose": {"width": 8}}, data={"context": [-1, 1]}, distill={"pixel": "soft"}
    )
    m.init_from_teacher()
    assert m.net.modality == "spike" and not hasattr(m.net, "rgb_encoder")
    # the student starts as the teacher's spike branch + spike decoder
    for a, b in zip(m.net.spike.state_dict().values(), m.teacher.spike.state_dict().values()):
        assert torch.equal(a, b)
    batch = _batch()
    m.train()
    assert not m.teacher.training and not m.pose_net.training
    with torch.no_grad():  # spike window only: rgb=None would raise in any RGB path
        out = m.net(rgb=None, spikes=batch["spikes"])
        assert torch.equal(out["disp"][0], student_forward(m.net, batch["spikes"])[0])
    res = m.compute_loss(batch)
    assert {"distill_feat", "distill_at", "distill_depth"} <= set(res)
    res["loss"].backward()
    assert all(p.grad is None for p in m.teacher.parameters())
    assert all(p.grad is None for p in m.teacher_pose.parameters()) and all(
        p.grad is None for p in m.pose_net.parameters()
    )
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.net.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.connectors.parameters())
    # a checkpoint records exactly DistillModule's arguments (load_checkpoint passes them back)
    assert set(m.hparams) == {"teacher", "loss", "optim", "data", "steps_per_epoch", "distill"}
    # the balance EMAs were initialised from the first batch
    assert float(m.ema_photo) > 0 and float(m.ema_depth) > 0


def test_distill_terms_switch_off():
    from r2sdepth.train.distill import DistillModule

    m = DistillModule(
        {"model": TINY, "pose": {"width": 8}},
        data={"context": [-1, 1]},
        distill={"feat_weight": 0, "at_weight": 0, "depth_weight": 0, "adaptive": False},
    )
    res = m.compute_loss(_batch())
    assert not any(k.startswith("distill_") for k in res)
    assert torch.allclose(res["loss"], res["main"]["loss"])


def test_bad_teacher_config():
    from r2sdepth.errors import R2SDepthError
    from r2sdepth.train.distill import DistillModule

    with pytest.raises(R2SDepthError, match="spike-only teacher"):  # no features to imitate
        DistillModule({"model": {**TINY, "modality": "spike"}})
    DistillModule({"model": {**TINY, "modality": "spike"}}, distill={"feat_weight": 0.0, "at_weight": 0.0})
    with pytest.raises(R2SDepthError, match="feature_target"):
        DistillModule({"model": {**TINY, "modality": "rgb"}}, distill={"feature_target": "fused"})


def test_trainable_pose_copy_gets_gradients_teacher_pose_does_not():
    from r2sdepth.train.distill import DistillModule

    m = DistillModule(
        {"model": TINY, "pose": {"width": 8}}, data={"context": [-1, 1]}, distill={"pose_trainable": True}
    )
    m.init_from_teacher()
    m.train()
    assert m.pose_net.training and not m.teacher_pose.training
    m.compute_loss(_batch())["loss"].backward()
    assert any(p.grad is not None for p in m.pose_net.parameters())
    assert all(p.grad is None for p in m.teacher_pose.parameters())
