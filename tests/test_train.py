"""Stage-1 training: overfit check, end-to-end CLI pipeline, resume, DDP, NaN handling."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from r2sdepth.data.dataset import SampleOptions, SplitDataset, collate
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.synthetic import SceneSpec, synthesize
from r2sdepth.spike.simulate import SimParams

ROOT = Path(__file__).resolve().parents[1]


def r2(*args, **kw):
    return subprocess.run(["r2sdepth", *map(str, args)], capture_output=True, text=True, **kw)


def test_dataset_sample(synth):
    ds = SplitDataset(
        DriveOptions(synth, height=64, width=96, window=32, sim=SimParams(planes_per_frame=32)),
        synth / "splits" / "train_files.txt",
        SampleOptions(augment=True, with_gt=True),
    )
    s = ds[0]
    assert s["color"].shape == (3, 3, 64, 96) and s["color_aug"].shape == (3, 3, 64, 96)
    assert s["spikes"].shape == (32, 64, 96) and s["spikes"].dtype == torch.uint8
    assert s["K"].shape == (3, 3) and s["depth_gt"].shape == (1, 64, 96)
    # on-the-fly spikes are deterministic
    assert torch.equal(ds[1]["spikes"], ds[1]["spikes"]) and s["spikes"].float().mean() > 0.05
    b = collate([ds[0], ds[1]])
    assert b["color"].shape == (2, 3, 3, 64, 96) and b["depth_gt"].shape == (2, 1, 64, 96)


def test_flip_is_consistent(synth):
    """A flipped sample mirrors every image-aligned target with its input: the RGB frames, the spike
    window, the ground-truth depth, and the principal point (cx' = W - 1 - cx; fx, fy, cy unchanged)."""
    drive = DriveOptions(synth, height=64, width=96, window=32, sim=SimParams(planes_per_frame=32))
    split = synth / "splits" / "train_files.txt"
    plain = SplitDataset(drive, split, SampleOptions(with_gt=True))
    aug = SplitDataset(drive, split, SampleOptions(with_gt=True, augment=True))
    flipped = None
    for i in range(len(aug)):
        a, p = aug[i], plain[i]
        if torch.equal(a["color"], p["color"].flip(-1)):
            flipped = (a, p)
            break
    assert flipped is not None
    a, p = flipped
    assert torch.equal(a["spikes"], p["spikes"].flip(-1))
    assert torch.equal(a["depth_gt"], p["depth_gt"].flip(-1)) and not torch.equal(
        a["depth_gt"], p["depth_gt"]
    )
    assert a["K"][0, 2] == pytest.approx(96 - 1 - p["K"][0, 2])
    for r, c in ((0, 0), (1, 1), (1, 2), (0, 1), (2, 2)):
        assert a["K"][r, c] == p["K"][r, c], (r, c)


def test_overfit_reduces_photometric_loss(tmp_path):
    """100 steps on one fixed batch reduce the photometric loss by >= 30%.

    Departure from the issue's "one sample at 96 x 320": with batch-norm at batch 1 (or eight
    frames of one sequence) this small from-scratch model lowered the loss by only 15-20% in
    100 steps (measured); eight samples from eight sequences at 64 x 224 is the smallest setting
    where it reliably learns.
    """
    from r2sdepth.data.kitti import read_split
    from r2sdepth.train.module import DepthModule

    root = tmp_path / "s"
    synthesize(root, SceneSpec(frames=3, height=64, width=224, seed=0), sequences=8)
    samples = [x for n in ("train", "val", "test") for x in read_split(root / "splits" / f"{n}_files.txt")]
    ds = SplitDataset(DriveOptions(root, height=64, width=224), samples, SampleOptions(need_spikes=False))
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["color"].shape[0] == 8
    torch.manual_seed(0)
    # the synthetic configs' settings: thin ResNet-18s, pose outputs x0.1 (see models/pose.py)
    m = DepthModule(
        {"modality": "rgb", "width": 16, "decoder_width": 8},
        {"width": 16, "scale": 0.1},
        None,
        None,
        {"context": [-1, 1]},
    )
    opt = torch.optim.Adam(m.parameters(), 2e-4)
    with torch.no_grad():
        first = float(m.compute_loss(batch)["photo"])
    for _ in range(100):
        loss = m.compute_loss(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = float(m.compute_loss(batch)["photo"])
    assert last <= 0.7 * first, (first, last)


def test_nan_batch_is_skipped(synth):
    from r2sdepth.train.module import DepthModule

    ds = SplitDataset(
        DriveOptions(synth, height=64, width=96, window=32, sim=SimParams(planes_per_frame=32)),
        synth / "splits" / "train_files.txt",
    )
    batch = collate([ds[0]])
    batch["color"][0, 1, 0, 0, 0] = float("nan")
    m = DepthModule(
        {"modality": "rgb", "width": 16, "decoder_width": 8}, {"width": 16}, None, None, {"context": [-1, 1]}
    )
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with pytest.warns(RuntimeWarning, match="skipped"):  # NaN in a source frame: the loss is NaN
        out = m.training_step(batch, 0)
    assert out is None
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())  # BN statistics too
    batch["color"][0, 1, 0, 0, 0] = 0.5
    batch["color_aug"][0, 0, 0, 0, 0] = float("inf")  # in the network's input: caught before the forward
    with pytest.warns(RuntimeWarning, match="color_aug"):
        assert m.training_step(batch, 0) is None
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())


CFG_OVERRIDES = [
    "--model.width",
    "16",
    "--model.decoder_width",
    "8",
    "--pose.width",
    "16",
    "--data.height",
    "64",
    "--data.width",
    "96",
    "--data.window",
    "32",
    "--data.sim.planes_per_frame",
    "32",
    "--data.batch_size",
    "2",
    "--data.num_workers",
    "0",
    "--trainer.check_val_every_n_epoch",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--trainer.enable_model_summary",
    "false",
]


def test_end_to_end_synth_build_train_eval_resume(tmp_path):
    data, spikes, run = tmp_path / "synth", tmp_path / "spikes", tmp_path / "run"
    assert r2("synth", "--out", data, "--sequences", "3", "--frames", "5", "--size", "64x96").returncode == 0
    r = r2(
        "build-spike-kitti",
        "--kitti-root",
        data,
        "--out",
        spikes,
        "--cameras",
        "02",
        "--size",
        "64x96",
        "--planes-per-frame",
        "32",
    )
    assert r.returncode == 0, r.stderr
    sp = data / "splits"
    common = [
        "--config",
        "train_fusion_synth",
        "--out",
        run,
        "--data.root",
        data,
        "--data.spike_root",
        spikes,
        "--data.train_split",
        sp / "train_files.txt",
        "--data.val_split",
        sp / "val_files.txt",
        *CFG_OVERRIDES,
    ]
    r = r2("train", *common, "--trainer.max_steps", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    ck = run / "checkpoints" / "last.ckpt"
    assert ck.is_file() and (run / "config.yaml").is_file()
    assert (run / "logs" / "metrics.csv").is_file()
    meta = torch.load(ck, map_location="cpu", weights_only=False)["r2sdepth"]
    assert meta["modality"] == "fusion" and meta["height"] == 64 and meta["width"] == 96
    # resume with a longer run: a changed config must be asked for, then continues from step 2 to 4
    r = r2("train", *common, "--trainer.max_steps", "4")
    assert r.returncode == 2 and "trainer.max_steps: 2 -> 4" in r.stderr
    r = r2("train", *common, "--trainer.max_steps", "4", "--allow-config-change")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained to step 4" in r.stdout
    ck2 = torch.load(ck, map_location="cpu", weights_only=False)
    assert ck2["global_step"] == 4
    # eval the fusion teacher and its spike-only head, with the mean-depth baseline
    for modality in ("fusion", "spike"):
        r = r2(
            "eval",
            "--checkpoint",
            ck,
            "--data",
            data,
            "--spike-root",
            spikes,
            "--split",
            sp / "test_files.txt",
            "--modality",
            modality,
            "--baseline-split",
            sp / "train_files.txt",
            "--out",
            tmp_path / f"{modality}.json",
        )
        assert r.returncode == 0, r.stderr[-3000:]
        res = json.loads((tmp_path / f"{modality}.json").read_text())
        assert "mean-depth baseline" in res and len(res) == 2
        model_row = next(v for k, v in res.items() if k != "mean-depth baseline")
        assert 0 <= model_row["abs_rel"] < 10 and model_row["n"] == 3
    r = r2("eval", "--checkpoint", ck, "--data", data, "--split", sp / "test_files.txt", "--modality", "rgb")
    assert r.returncode == 2 and "cannot run as rgb" in r.stderr
    # stage 2: distil the fusion teacher into a spike-only student, then evaluate the student
    run2 = tmp_path / "student"
    r = r2(
        "distill",
        "--config",
        "distill_synth",
        "--teacher",
        ck,
        "--out",
        run2,
        "--data.val_split",
        sp / "val_files.txt",
        "--data.batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--trainer.max_steps",
        "2",
        "--trainer.check_val_every_n_epoch",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    # what Lightning says that a user cannot act on stays out: adverts, the hardware roll-call, and
    # the "modules in eval mode" notice that the frozen teacher triggers on purpose
    for noise in (
        "💡",
        "try installing",
        "GPU available:",
        "in eval mode at the start of training",
        "LeafSpec",
    ):
        assert noise not in r.stderr, noise
    st = run2 / "checkpoints" / "last.ckpt"
    meta = torch.load(st, map_location="cpu", weights_only=False)["r2sdepth"]
    assert meta["modality"] == "spike" and meta["stage"] == 2 and meta["teacher_modality"] == "fusion"
    assert (run2 / "config.yaml").is_file() and "distill" in (run2 / "config.yaml").read_text()
    r = r2(
        "eval",
        "--checkpoint",
        st,
        "--data",
        data,
        "--spike-root",
        spikes,
        "--split",
        sp / "test_files.txt",
        "--out",
        tmp_path / "student.json",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert 0 <= json.loads((tmp_path / "student.json").read_text())["abs_rel"] < 10
    r = r2(
        "eval", "--checkpoint", st, "--data", data, "--split", sp / "test_files.txt", "--modality", "fusion"
    )
    assert r.returncode == 2 and "cannot run as fusion" in r.stderr
    # the student runs on a built stream with infer, and exports
    r = r2(
        "infer",
        "--checkpoint",
        st,
        "--input",
        spikes / "2000_01_01/2000_01_01_drive_0000_sync/spike_02/stream.dat",
        "--out",
        tmp_path / "inf",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (
        len(list((tmp_path / "inf" / "depth").glob("*.npy"))) == 5
    )  # (pre-roll + 4 chunks) x 32 planes / 32
    r = r2("distill", "--config", "distill_synth", "--teacher", st, "--out", tmp_path / "x")
    assert r.returncode == 2 and "stage-1 fusion, rgb or spike" in r.stderr


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_ddp_two_cpu_processes(synth, tmp_path):
    sp = synth / "splits"
    r = r2(
        "train",
        "--config",
        "train_rgb_synth",
        "--out",
        tmp_path / "ddp",
        "--data.root",
        synth,
        "--data.train_split",
        sp / "train_files.txt",
        "--data.val_split",
        "null",
        *CFG_OVERRIDES,
        "--trainer.max_steps",
        "2",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
        "--trainer.accelerator",
        "cpu",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "ddp" / "checkpoints" / "last.ckpt").is_file()


def test_init_from_copies_matching_weights(tmp_path):
    """Warm start: an rgb run's encoder, decoder and pose net go into a fusion model; the spike
    branch keeps its own initialisation; a checkpoint with nothing in common is refused."""
    from r2sdepth.errors import R2SDepthError
    from r2sdepth.models.pose import PoseNet
    from r2sdepth.train.module import DepthModule

    small = {"width": 8, "decoder_width": 4, "spike_repr": {"chunks": 2, "bins": 4}}
    torch.manual_seed(0)
    rgb = DepthModule({"modality": "rgb", **small}, {"width": 8})
    torch.save({"state_dict": rgb.state_dict()}, tmp_path / "rgb.ckpt")
    torch.manual_seed(1)
    fus = DepthModule({"modality": "fusion", **small}, {"width": 8})
    spike_before = {k: v.clone() for k, v in fus.net.spike.state_dict().items()}
    names = fus.init_from(tmp_path / "rgb.ckpt")
    assert any(n.startswith("net.rgb_encoder.") for n in names) and any(
        n.startswith("pose_net.") for n in names
    )
    for k, v in rgb.net.rgb_encoder.state_dict().items():
        assert torch.equal(fus.net.rgb_encoder.state_dict()[k], v)
    assert all(torch.equal(fus.net.spike.state_dict()[k], v) for k, v in spike_before.items())
    torch.save({"state_dict": {"other.weight": torch.zeros(1)}}, tmp_path / "x.ckpt")
    with pytest.raises(R2SDepthError, match="no weights match"):
        fus.init_from(tmp_path / "x.ckpt")
    # zero-initialised pose head: identity motion at the start
    p = PoseNet(width=8, zero_init=True)
    aa, t = p(torch.rand(2, 3, 64, 96), torch.rand(2, 3, 64, 96))
    assert torch.equal(aa, torch.zeros_like(aa)) and torch.equal(t, torch.zeros_like(t))


def test_adapt_config_warm_starts_and_holds_the_fusion_weight(synth, tmp_path):
    """``adapt_config`` (make_real_model / rig benchmark): a real ``Trainer.fit`` on new data that
    starts from the fusion checkpoint's weights and keeps its final RGB weight (the anneal
    schedule would restart at 1); non-fusion checkpoints are refused in one line."""
    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS
    from r2sdepth.errors import R2SDepthError
    from r2sdepth.train.run import adapt_config, apply_overrides, load_config, run_training

    sp = synth / "splits"
    cfg = apply_overrides(
        load_config("train_fusion_synth"),
        [
            "--data.root",
            str(synth),
            "--data.train_split",
            str(sp / "train_files.txt"),
            "--data.val_split",
            "null",
            *map(str, CFG_OVERRIDES),
            "--model.fusion.horizon",
            "4",
            "--trainer.max_steps",
            "3",
            "--seed",
            "1",
        ],
    )  # another seed than the adaptation's: its own initialisation differs from the teacher
    t = run_training(cfg, tmp_path / "teacher", resume=False)
    tck = torch.load(t["last"], map_location="cpu", weights_only=False)
    w_end = float(tck["state_dict"]["net.w_rgb"])
    assert 0.0 < w_end < 0.99
    a = adapt_config(
        t["last"],
        synth,
        sp / "test_files.txt",
        steps=1,
        batch_size=2,
        overrides=["--data.num_workers", "0", "--trainer.enable_model_summary", "false"],
    )
    res = run_training(a, tmp_path / "adapt", resume=False)
    ack = torch.load(res["last"], map_location="cpu", weights_only=False)
    assert ack["global_step"] == 1
    assert float(ack["state_dict"]["net.w_rgb"]) == pytest.approx(w_end, abs=1e-6)
    assert ack["r2sdepth"]["data"]["root"] == str(synth) and ack["r2sdepth"]["height"] == 64
    # warm start: one Adam step (lr 1e-4) from the teacher leaves every weight within a few lr of it
    moved = max(
        float((ack["state_dict"][k] - v).abs().max())
        for k, v in tck["state_dict"].items()
        if k.startswith("net.spike.")
        and v.is_floating_point()
        and "running" not in k
        and "num_batches" not in k
    )
    assert moved < 1e-3
    with pytest.raises(R2SDepthError, match="fusion"):
        adapt_config(SHIPPED_CHECKPOINTS["demo"], synth, sp / "test_files.txt")


def test_depth_supervision_is_the_si_log_loss_on_valid_pixels_by_hand():
    from r2sdepth.train.module import DepthModule

    m = DepthModule({"modality": "spike", "width": 8, "decoder_width": 4}, {"width": 8})
    g = torch.Generator().manual_seed(0)
    disp = torch.rand(2, 1, 8, 12, generator=g)
    gt = torch.rand(2, 1, 8, 12, generator=g) * 50 + 1
    gt[0, 0, :3] = 0  # invalid (sky)
    gt[1, 0, :, :2] = 150  # beyond max_depth (100): ignored
    lo, hi = 0.1, 100.0
    ref = []
    for b in range(2):  # by hand, numpy: depth = 1 / (1/hi + (1/lo - 1/hi) disp), Eigen's loss, lam 0.85
        dd = 1.0 / (1 / hi + (1 / lo - 1 / hi) * disp[b, 0].double().numpy())
        gg = gt[b, 0].double().numpy()
        ok = (gg > 0) & (gg < hi)
        d = np.log(dd[ok]) - np.log(gg[ok])
        ref.append(np.mean(d**2) - 0.85 * np.mean(d) ** 2)
    got = m.depth_supervision({0: disp}, gt)
    assert float(got) == pytest.approx(float(np.mean(ref)), rel=1e-5)
    # loss.depth_lambda 1: relative depth; a prediction 3x the ground truth everywhere costs nothing,
    # where lam 0.85 charges (1 - 0.85) log(3)^2
    gt3 = torch.full((1, 1, 8, 12), 3.0)
    disp3 = (1 / (3 * gt3) - 1 / hi) / (1 / lo - 1 / hi)  # depth 9 m
    assert float(m.depth_supervision({0: disp3}, gt3)) == pytest.approx(0.15 * np.log(3) ** 2, rel=1e-4)
    m1 = DepthModule(
        {"modality": "spike", "width": 8, "decoder_width": 4}, {"width": 8}, {"depth_lambda": 1.0}
    )
    assert abs(float(m1.depth_supervision({0: disp3}, gt3))) < 1e-6


def test_depth_supervised_training_through_the_cli_learns(synth_long, tmp_path):
    """``loss.depth_weight`` with ``photo_weight 0``: trained through ``r2sdepth train`` (a real
    Trainer.fit with validation) on exact synthetic depth, the model beats the constant + median
    scaling baseline on its training images after 60 steps; no pose network is used."""
    import csv

    from r2sdepth import evaluate as ev
    from r2sdepth.infer import predict_split

    data, run = synth_long, tmp_path / "run"
    sp = data / "splits"
    common = [
        "--config",
        "train_spike_synth",
        "--out",
        run,
        "--data.root",
        data,
        "--data.train_split",
        sp / "train_files.txt",
        "--data.val_split",
        sp / "val_files.txt",
        "--data.gt_source",
        "exact",
        *CFG_OVERRIDES,
        "--trainer.check_val_every_n_epoch",
        "4",
    ]
    r = r2(
        "train", *common, "--loss.photo_weight", "0", "--loss.depth_weight", "0", "--trainer.max_steps", "1"
    )
    assert (
        r.returncode == 2 and "needs loss.depth_weight > 0" in r.stderr and not run.exists()
    )  # nothing written
    assert len(r.stderr.strip().splitlines()) == 1
    r = r2(
        "train",
        *common,
        "--loss.photo_weight",
        "0",
        "--loss.depth_weight",
        "1",
        "--optim.lr",
        "1e-3",
        "--trainer.max_steps",
        "60",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    rows = list(csv.DictReader((run / "logs" / "metrics.csv").open()))
    cols = set(rows[0])
    assert "train/depth_sup" in cols and "val/abs_rel" in cols
    assert "train/photo" not in cols and not any(c.startswith("pose/") for c in cols)
    ck = run / "checkpoints" / "last.ckpt"
    # a depth-supervised run trains no pose net: it cannot be a distillation teacher once slimmed
    from r2sdepth.export import slim_checkpoint

    slim = slim_checkpoint(ck, tmp_path / "slim.ckpt")
    r = r2("distill", "--config", "distill_synth", "--teacher", slim, "--out", tmp_path / "d")
    assert (
        r.returncode == 2
        and "slim checkpoint has no pose network" in r.stderr
        and not (tmp_path / "d").exists()
    )
    r = r2(
        "distill",
        "--config",
        "distill_synth",
        "--teacher",
        ck,
        "--out",
        tmp_path / "d",
        "--loss.depth_weight",
        "1",
        "--distill.feat_weight",
        "0",
        "--distill.at_weight",
        "0",
    )
    assert r.returncode == 2 and "stage-1 (train) option" in r.stderr and not (tmp_path / "d").exists()
    gts = ev.split_gt(data, sp / "train_files.txt")
    preds, _ = predict_split(ck, data, sp / "train_files.txt")
    model, const = ev.evaluate_depths(preds, gts)["abs_rel"], ev.constant_median_baseline(gts)["abs_rel"]
    assert model < 0.8 * const, (model, const)


def test_depth_supervised_batches_read_no_context_frames(synth):
    """photo_weight 0: training samples carry frame t and its ground truth only (no context frames
    read); validation samples keep their context frames for the photometric validation loss."""
    from r2sdepth.train.datamodule import SplitDataModule

    sp = synth / "splits"
    cfg = {
        "root": str(synth),
        "train_split": str(sp / "train_files.txt"),
        "val_split": str(sp / "val_files.txt"),
        "height": 64,
        "width": 96,
        "window": 32,
        "sim": {"planes_per_frame": 32},
        "gt_source": "exact",
    }
    dm = SplitDataModule(cfg, "spike", train_gt=True, train_context=False)
    dm.setup("fit")
    tr, va = dm.train_ds[0], dm.val_ds[0]
    assert (
        tr["color"].shape[0] == 1
        and tr["depth_gt"].shape[-2:] == (64, 96)
        and float(tr["depth_gt"].max()) > 0
    )
    assert va["color"].shape[0] == 3


def test_speed_options_leave_the_training_unchanged_through_the_cli(synth, tmp_path):
    """``--optim.fused true`` (Adam's fused kernel) and ``--speed.compile_ssim true`` (SSIM through
    torch.compile) reach a real ``Trainer.fit`` (the saved optimiser state says fused) and train to
    the same weights as the defaults: the arithmetic is the same, only the kernels differ (float32
    rounding apart; one step moves a weight by up to the learning rate, 2e-4). ``--speed.channels_last
    true`` trains too, and its checkpoint is an ordinary one (loads and predicts like any)."""
    from r2sdepth.train.load import load_checkpoint

    weights = {}
    runs = {"default": [], "speed": ["--optim.fused", "true", "--speed.compile_ssim", "true"],
            "channels_last": ["--speed.channels_last", "true"]}  # fmt: skip
    for name, extra in runs.items():
        run = tmp_path / name
        r = r2(
            "train", "--config", "train_rgb_synth", "--out", run, "--data.root", synth,
            "--data.train_split", synth / "splits" / "train_files.txt", "--data.val_split", "null",
            "--data.num_workers", "0", "--data.augment", "false", *CFG_OVERRIDES,
            "--trainer.max_steps", "3", "--trainer.enable_progress_bar", "false", *extra,
        )  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        assert "R2SDepthWarning" not in r.stderr  # compiled here (a C++ compiler is on PATH), not eager
        ck = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        assert ck["optimizer_states"][0]["param_groups"][0]["fused"] is (True if name == "speed" else None)
        weights[name] = ck["state_dict"]
    diff = torch.cat(
        [
            (weights["speed"][k] - v).abs().flatten()
            for k, v in weights["default"].items()
            if v.is_floating_point()
        ]
    )
    assert diff.numel() > 100_000
    # Adam moves a weight by at most about lr = 2e-4 a step, so two runs differ by at most 2 lr a step
    # (a weight whose gradient is near Adam's eps can take the opposite sign by rounding); almost all agree
    assert float(diff.max()) < 3 * 2 * 2e-4 and float((diff > 1e-5).float().mean()) < 1e-3
    module, _ = load_checkpoint(tmp_path / "channels_last" / "checkpoints" / "last.ckpt")
    with torch.no_grad():
        disp = module.net(torch.rand(1, 3, 64, 96))["disp"][0]
    assert disp.shape == (1, 1, 64, 96) and torch.isfinite(disp).all()


def test_channels_last_gives_the_same_loss_and_gradients():
    """Networks in channels-last memory format compute the same loss and gradients on a fixed batch
    (other convolution kernels: float32 rounding, relative 1e-4). Adam then amplifies the rounding
    of gradients near zero (its step is about lr * sign(g)), so weights after a few steps are not
    compared."""
    from r2sdepth.train.module import DepthModule

    b, h, w = 2, 64, 96
    g = torch.Generator().manual_seed(0)
    small = torch.rand(b * 3, 3, 8, 12, generator=g)
    color = torch.nn.functional.interpolate(small, size=(h, w), mode="bilinear").view(b, 3, 3, h, w)
    K = torch.tensor([[0.58 * w, 0, w / 2], [0, 1.92 * h, h / 2], [0, 0, 1.0]]).expand(b, 3, 3).clone()
    batch = {"color": color, "color_aug": color.clone(), "K": K}
    res = {}
    for cl in (False, True):
        torch.manual_seed(0)
        m = DepthModule({"modality": "rgb", "width": 16, "decoder_width": 8}, {"width": 16, "scale": 0.1})
        if cl:
            m = m.to(memory_format=torch.channels_last)
            assert m.net.rgb_encoder.net.conv1.weight.is_contiguous(memory_format=torch.channels_last)
        torch.manual_seed(1)  # the auto-mask's tie-breaking noise
        loss = m.compute_loss(batch)["loss"]
        loss.backward()
        res[cl] = (float(loss), {k: p.grad for k, p in m.named_parameters() if p.grad is not None})
    assert res[True][0] == pytest.approx(res[False][0], rel=1e-6)
    assert len(res[True][1]) == len(res[False][1]) > 50
    for k, g0 in res[False][1].items():  # float32 sums in another order: 1e-3 relative
        assert float((res[True][1][k] - g0).norm()) <= 1e-3 * float(g0.norm()) + 1e-12, k


def test_compiled_ssim_equals_eager_and_falls_back_without_a_compiler(monkeypatch):
    """Inside ``compiled_ssim(True)`` the photometric error and its gradient equal the eager ones
    (float32 rounding); with no C++ compiler on PATH it warns once and stays eager."""
    import warnings

    from r2sdepth import losses
    from r2sdepth.errors import R2SDepthWarning

    g = torch.Generator().manual_seed(0)
    pred, target = torch.rand(2, 3, 24, 40, generator=g), torch.rand(2, 3, 24, 40, generator=g)
    out = {}
    for on in (False, True):
        x = pred.clone().requires_grad_()
        with losses.compiled_ssim(on):
            assert (losses._SSIM is not losses.SSIM) and isinstance(losses._SSIM, torch.nn.Module)
            compiled = type(losses._SSIM).__name__ == "OptimizedModule"
            assert compiled == on
            e = losses.photometric_error(x, target, stats=losses.target_stats(target))
            e.sum().backward()
        out[on] = (e.detach(), x.grad)
        assert type(losses._SSIM).__name__ == "SSIM"  # restored
    torch.testing.assert_close(out[True][0], out[False][0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out[True][1], out[False][1], rtol=1e-4, atol=1e-7)
    monkeypatch.setenv("PATH", "")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        with losses.compiled_ssim(True):
            assert type(losses._SSIM).__name__ == "SSIM"
    assert [str(x.message) for x in w if issubclass(x.category, R2SDepthWarning)] == [
        "speed.compile_ssim: no C++ compiler (c++, g++ or clang++) on PATH; SSIM runs eagerly"
    ]
