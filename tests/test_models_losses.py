import pytest
import torch

from r2sdepth.losses import SSIM, photometric_error, self_supervised_loss, smoothness
from r2sdepth.models.r2sdepth import R2SDepthNet, fusion_weight, student_forward
from r2sdepth.models.spike_repr import SpikeRepresentation

SMALL = {"width": 16, "decoder_width": 8, "num_layers": 18}


def spikes(b, t, h, w, p=0.2):
    return (torch.rand(b, t, h, w) < p).to(torch.uint8)


@pytest.mark.parametrize("b", [1, 3])
@pytest.mark.parametrize("hw", [(64, 96), (96, 320)])
@pytest.mark.parametrize(
    "modality,enc",
    [
        ("rgb", "resnet"),
        ("spike", "resnet"),
        ("spike", "spiking"),
        ("fusion", "resnet"),
        ("fusion", "spiking"),
    ],
)
def test_shapes(b, hw, modality, enc):
    h, w = hw
    net = R2SDepthNet({**SMALL, "modality": modality, "spike_encoder": enc})
    out = net(rgb=torch.rand(b, 3, h, w), spikes=spikes(b, 64, h, w))
    for s in range(4):
        assert out["disp"][s].shape == (b, 1, h // 2**s, w // 2**s)
        assert ((out["disp"][s] >= 0) & (out["disp"][s] <= 1)).all()
    if modality == "fusion":
        assert out["disp_student"][0].shape == (b, 1, h, w)
        assert len(out["feat_fused"]) == 5


def test_spike_repr_per_sample_and_odd_sizes():
    rep = SpikeRepresentation(chunks=4, bins=8, hidden=1)
    x = spikes(3, 64, 37, 51)
    y = rep(x)
    assert y.shape == (3, rep.out_channels, 37, 51)
    # each sample's output depends on that sample only (the published code mixed the batch)
    y0 = rep(x[:1])
    assert torch.allclose(y[:1], y0, atol=1e-5)
    # rate channel is the firing rate
    assert torch.allclose(y[:, 0], x.float().mean(1), atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        rep(spikes(1, 60, 8, 8))


def test_gru_state_carried_across_chunks():
    rep = SpikeRepresentation(chunks=2, bins=4, hidden=1)
    a = torch.zeros(1, 16, 8, 8, dtype=torch.uint8)
    b = a.clone()
    b[:, :8] = 1  # differ only in the first chunk
    ya, yb = rep(a), rep(b)
    last = slice(rep.out_channels - 1, rep.out_channels)
    assert not torch.allclose(ya[:, last], yb[:, last])  # the second chunk's output remembers


def test_fusion_schedule():
    assert fusion_weight(0, 10, 0) == 1.0
    assert fusion_weight(5, 10, 0) == 0.5
    assert fusion_weight(0, 10, 1) == pytest.approx(0.9)  # the paper's
    assert fusion_weight(9, 10, 1) == 0.0
    assert fusion_weight(30, 10, 1) == 0.0  # clamped, never negative
    assert fusion_weight(30, 10, 0, floor=0.2) == 0.2
    net = R2SDepthNet({**SMALL, "modality": "fusion"})
    assert net.set_epoch(2.5) == pytest.approx(0.75)


def test_spike_branch_gets_gradients_in_fusion():
    net = R2SDepthNet({**SMALL, "modality": "fusion", "student_decoder": False})
    net.set_epoch(0)  # w_rgb = 1: RGB dominates, the spike branch must still learn
    out = net(rgb=torch.rand(2, 3, 64, 96), spikes=spikes(2, 64, 64, 96))
    out["disp"][0].mean().backward()
    g = [p.grad for p in net.spike.parameters() if p.grad is not None]
    assert g and sum(x.abs().sum() for x in g) > 0


def test_student_path_needs_no_rgb():
    net = R2SDepthNet({**SMALL, "modality": "fusion"})
    d = student_forward(net, spikes(1, 64, 64, 96))
    assert d[0].shape == (1, 1, 64, 96)
    with pytest.raises(ValueError, match="RGB"):
        net(spikes=spikes(1, 64, 64, 96))
    with pytest.raises(ValueError):
        student_forward(R2SDepthNet({**SMALL, "modality": "rgb"}), spikes(1, 64, 64, 96))


def test_ssim_and_photometric():
    x = torch.rand(2, 3, 16, 16)
    assert SSIM()(x, x).max() < 1e-4
    assert photometric_error(x, x).max() < 1e-4
    assert photometric_error(x, torch.rand(2, 3, 16, 16)).mean() > 0.1
    flat = torch.full((1, 1, 8, 8), 0.5)
    assert smoothness(flat, torch.rand(1, 3, 8, 8)) == 0


def test_loss_zero_for_true_depth_and_static_mask():
    # a fronto-parallel plane at 10 m seen from a camera moved 1 m sideways
    from r2sdepth.geometry import warp

    K = torch.tensor([[[50.0, 0, 32], [0, 50, 16], [0, 0, 1]]])
    tgt = torch.rand(1, 3, 32, 64)
    T = torch.eye(4)[None]
    T[0, 0, 3] = 0.2
    # build the source by warping the target with the inverse motion
    src, _ = warp(tgt, torch.full((1, 1, 32, 64), 10.0), torch.linalg.inv(T), K)
    disp_true = (1 / 10.0 - 0.01) / (10 - 0.01)
    d = {0: torch.full((1, 1, 32, 64), disp_true)}
    res = self_supervised_loss(d, tgt, [src], [T], K, smooth_weight=0)
    wrong = self_supervised_loss({0: torch.full((1, 1, 32, 64), 0.9)}, tgt, [src], [T], K, smooth_weight=0)
    inner = (slice(None), slice(None), slice(4, 28), slice(16, 48))
    assert res["maps"][0]["reproj"][inner].mean() < 0.5 * wrong["maps"][0]["reproj"][inner].mean()
    # identical source frame -> auto-mask keeps (almost) nothing
    res = self_supervised_loss(d, tgt, [tgt], [T], K, smooth_weight=0)
    assert res["maps"][0]["mask"].mean() < 0.05


def test_multi_scale_loss_and_gradients_unchanged_by_computing_the_identity_error_once():
    """The identity (unwarped) error is computed once for all scales instead of per scale; on a
    fixed batch the loss and the gradients equal the figures of the per-scale implementation,
    recorded from it before the change (only the 1e-5 tie-breaking noise is drawn differently)."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(0)
    B, H, W = 2, 32, 48
    tex = F.interpolate(torch.rand(B, 3, H // 4, (W + 8) // 4, generator=g), size=(H, W + 8), mode="bilinear")
    target, sources = tex[..., 4 : W + 4], [tex[..., 1 : W + 1], tex[..., 7 : W + 7]]
    disps = {
        s: (0.2 + 0.6 * torch.rand(B, 1, H >> s, W >> s, generator=g)).requires_grad_() for s in range(4)
    }
    poses = []
    for sign in (-1, 1):
        T = torch.eye(4).repeat(B, 1, 1)
        T[:, 2, 3], T[:, 0, 3] = 0.1 * sign, 0.02
        poses.append(T)
    K = torch.tensor([[0.58 * W, 0, W / 2], [0, 1.92 * H, H / 2], [0, 0, 1.0]]).expand(B, 3, 3).clone()
    torch.manual_seed(1)
    out = self_supervised_loss(disps, target, sources, poses, K)
    out["loss"].backward()
    assert float(out["loss"]) == pytest.approx(0.24552468955516815, rel=2e-6)
    assert float(out["photo"]) == pytest.approx(0.24518832564353943, rel=2e-6)
    recorded = [6.209310619386616e-06, 7.992078029210474e-06, 2.295359428400848e-05, 4.725842884910625e-05]
    for s, want in enumerate(recorded):
        assert float(disps[s].grad.double().pow(2).sum()) == pytest.approx(want, rel=1e-5)
