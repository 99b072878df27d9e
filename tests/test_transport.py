"""The device transport (``data.transport: device``): packed spike windows unpacked on the device and
the colour jitter applied there give the samples of the plain transport; checked against the
``.dat`` reader's decode, ``np.unpackbits`` and torchvision's colour functions, and through a real
``Trainer.fit``."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from r2sdepth.data.dataset import SampleOptions, SplitDataset, collate
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.transport import color_jitter, draw_jitter, finish_batch, pack_spikes, unpack_spikes
from r2sdepth.spike.io import SpikeStream, SpikeWriter
from r2sdepth.spike.simulate import SimParams

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_unpack_on_the_device_equals_the_readers_decode(tmp_path, device):
    """Planes written as a real camera's ``.dat`` and read back by the reader (CPU decode) equal
    the same planes packed by the loader and unpacked on the device, bit for bit."""
    rng = np.random.default_rng(3)
    planes = (rng.random((40, 24, 64)) < 0.3).astype(np.uint8)
    path = tmp_path / "s.dat"
    with SpikeWriter(path, 24, 64) as w:
        w.append(planes)
    decoded = SpikeStream(path).read(0, 40)
    assert np.array_equal(decoded, planes)
    got = unpack_spikes(torch.from_numpy(pack_spikes(decoded)).to(device), 64).cpu().numpy()
    assert got.dtype == np.uint8 and np.array_equal(got, decoded)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(1, 5),
    h=st.integers(1, 6),
    w=st.integers(1, 41),
    p=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
)
def test_pack_unpack_round_trip_any_size(t, h, w, p, seed):
    """Any width (also not a multiple of 8): unpack(pack(x)) == x, and the bytes are numpy's
    big-endian bit order (leftmost pixel = most significant bit)."""
    x = (np.random.default_rng(seed).random((t, h, w)) < p).astype(np.uint8)
    packed = pack_spikes(x)
    assert packed.shape == (t, h, -(-w // 8))
    assert np.array_equal(np.unpackbits(packed, axis=-1)[..., :w], x)
    assert np.array_equal(unpack_spikes(torch.from_numpy(packed), w).numpy(), x)
    # a flipped sample: the packed bytes of the mirrored planes, unpacked by numpy (an independent route)
    mirrored = pack_spikes(x, flip=True)
    assert mirrored.shape == packed.shape
    assert np.array_equal(np.unpackbits(mirrored, axis=-1)[..., :w], x[..., ::-1])
    # a strided input packs as its values (the flat fast path copies it to rows first)
    wide = np.repeat(x, 8, axis=-1)[:, ::-1, ::2]
    assert np.array_equal(np.unpackbits(pack_spikes(wide), axis=-1)[..., : wide.shape[-1]], wide)


def test_unpack_refuses_what_cannot_be_a_window():
    with pytest.raises(ValueError, match="^packed spikes must be uint8, got torch.int32$"):
        unpack_spikes(torch.zeros(2, 3, dtype=torch.int32), 24)
    with pytest.raises(ValueError, match="^3 packed bytes per row hold fewer than 25 pixels$"):
        unpack_spikes(torch.zeros(5, 4, 3, dtype=torch.uint8), 25)


def _torchvision_jitter(frames: torch.Tensor, p: list[float]) -> torch.Tensor:
    x = TF.adjust_brightness(frames, p[0])
    x = TF.adjust_contrast(x, p[1])
    x = TF.adjust_saturation(x, p[2])
    return TF.adjust_hue(x, p[3]).clamp(0, 1)


@pytest.mark.parametrize("device", DEVICES)
def test_batched_jitter_equals_torchvision_per_sample(device):
    """One draw per sample applied to the whole batch at once equals torchvision's four functions
    applied sample by sample (grey pixels, saturated primaries and black included)."""
    g = torch.Generator().manual_seed(0)
    color = torch.rand(6, 3, 3, 20, 28, generator=g)
    color[0, :, :, :4] = 0.5  # grey: hue undefined
    color[1, :, :, :, :3] = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    color[2, :, :, 5:9] = 0.0
    color[3, :, :, :, -4:] = torch.tensor([0.2, 0.9, 0.9]).view(3, 1, 1)  # hue near a sector edge
    rng = np.random.default_rng(7)
    params = np.stack([draw_jitter(rng) for _ in range(6)])
    params[4] = [1.2, 0.8, 1.2, -0.1]  # the extremes of the draws
    params[5] = [0.8, 1.2, 0.8, 0.1]
    got = color_jitter(color.to(device), torch.from_numpy(params).to(device)).cpu()
    for i in range(6):
        want = _torchvision_jitter(color[i], params[i].tolist())
        assert torch.allclose(got[i], want, atol=1e-6), (i, float((got[i] - want).abs().max()))


def test_draws_stay_in_monodepth2s_ranges():
    rng = np.random.default_rng(0)
    p = np.stack([draw_jitter(rng) for _ in range(2000)])
    assert p.dtype == np.float32 and p.shape == (2000, 4)
    assert (p[:, :3] >= 0.8).all() and (p[:, :3] <= 1.2).all()
    assert (np.abs(p[:, 3]) <= 0.1).all() and p[:, 3].min() < -0.09 and p[:, 3].max() > 0.09
    assert (p[:, :3].min(0) < 0.81).all() and (p[:, :3].max(0) > 1.19).all()  # the whole range, each factor


def test_hue_shift_that_wraps_to_exactly_one_turn():
    """A shift of -1e-9 turn on a pure red pixel: ``(0 - 1e-9) mod 1`` rounds to 1.0 in float32,
    i.e. sector 6 of the hexcone, which is sector 0 (red) again, as torchvision has it."""
    color = torch.zeros(1, 1, 3, 2, 2)
    color[:, :, 0] = 1.0
    color[:, :, :, 1, 1] = torch.tensor([0.2, 0.6, 0.9])
    params = torch.tensor([[1.0, 1.0, 1.0, -1e-9]])
    got = color_jitter(color, params)[0]
    want = _torchvision_jitter(color[0], params[0].tolist())
    assert torch.allclose(got, want, atol=1e-6) and torch.allclose(got[0, :, 0, 0], torch.tensor([1.0, 0, 0]))


def _samples(synth, transport: str, keys):
    ds = SplitDataset(
        DriveOptions(synth, height=64, width=96, window=16, sim=SimParams(planes_per_frame=16)),
        synth / "splits" / "train_files.txt",
        SampleOptions(augment=True, transport=transport),
    )
    return collate([ds[k] for k in keys])


def test_device_transport_gives_the_plain_samples(synth):
    """Flipped and unflipped, jittered and not: the finished device batch is the plain batch
    (spikes bit for bit, jittered frames to float rounding), with 8x fewer spike bytes."""
    keys = [(e, i) for e in range(4) for i in range(3)]
    plain = _samples(synth, "plain", keys)
    raw = _samples(synth, "device", keys)
    assert raw["spikes_packed"].shape == (12, 16, 64, 12) and "color_aug" not in raw
    assert plain["spikes"].numel() == 8 * raw["spikes_packed"].numel()
    on = raw["jitter_on"]
    assert 0 < int(on.sum()) < 12  # both kinds of sample are in the batch
    dev = finish_batch(raw)
    assert torch.equal(dev["spikes"], plain["spikes"])
    assert torch.equal(dev["color"], plain["color"]) and torch.equal(dev["K"], plain["K"])
    assert torch.equal(dev["color_aug"][~on], plain["color"][~on])
    assert torch.allclose(dev["color_aug"], plain["color_aug"], atol=1e-6)
    assert not torch.equal(dev["color_aug"][on], plain["color"][on])
    flipped = plain["K"][:, 0, 2] != plain["K"][0, 0, 2]
    assert flipped.any() and (~flipped).any()


def test_bad_transport_is_refused(synth):
    from r2sdepth.errors import R2SDepthError

    with pytest.raises(R2SDepthError, match="transport must be one of"):
        SplitDataset(
            DriveOptions(synth, height=64, width=96),
            synth / "splits" / "train_files.txt",
            SampleOptions(transport="zip"),
        )
    with pytest.raises(R2SDepthError, match="must be a SimParams"):  # a config's dict, not converted
        SplitDataset(DriveOptions(synth, height=64, width=96, sim={"planes_per_frame": 16}), [])


def _fit(synth, transport: str) -> dict[str, torch.Tensor]:
    from r2sdepth.train.datamodule import SplitDataModule
    from r2sdepth.train.module import DepthModule

    sp = synth / "splits"
    cfg = {
        "root": str(synth),
        "train_split": str(sp / "train_files.txt"),
        "height": 64,
        "width": 96,
        "window": 16,
        "sim": {"planes_per_frame": 16},
        "batch_size": 2,
        "num_workers": 0,
        "transport": transport,
    }
    L.seed_everything(0)
    model = {"modality": "fusion", "width": 8, "decoder_width": 4, "spike_repr": {"chunks": 2, "bins": 4}}
    m = DepthModule(model, {"width": 8}, data=cfg)
    t = L.Trainer(
        max_steps=3,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        accelerator="cpu",
        deterministic=True,
    )
    t.fit(m, datamodule=SplitDataModule(cfg, "fusion"))
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_a_real_fit_learns_the_same_with_either_transport(synth):
    """Three fusion steps through ``Trainer.fit`` (augmentation on): the device transport ends with
    the weights of the plain transport; the trainer's transfer hook did the finishing."""
    a, b = _fit(synth, "plain"), _fit(synth, "device")
    assert a.keys() == b.keys()
    moved = [
        k for k in a if a[k].is_floating_point() and not torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4)
    ]
    assert not moved, moved[:5]
