"""The learning core against independent references, through the real entry points.

Each test here was checked by breaking the code it guards (see the issue note): a frozen teacher
left in training mode, the schedule computed from the whole data set, float16 geometry, SSIM's
denominator sign, an auto-mask computed but not applied, mean instead of median scaling,
validation metrics without median scaling, gradients through the pixel weights, the teacher's
decoder exported instead of the student's, a window built from frame t+1.
"""

from __future__ import annotations

import copy
import csv
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from r2sdepth.data.transport import finish_batch

ROOT = Path(__file__).resolve().parents[1]
TINY = {"width": 8, "decoder_width": 4, "spike_repr": {"chunks": 2, "bins": 4}}


def r2(*args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "r2sdepth.cli", *map(str, args)], capture_output=True, text=True, **kw
    )


def data_cfg(root: Path, **kw):
    sp = root / "splits"
    return {
        "root": str(root),
        "train_split": str(sp / "train_files.txt"),
        "val_split": str(sp / "val_files.txt"),
        "height": 64,
        "width": 96,
        "window": 32,
        "sim": {"planes_per_frame": 32},
        "batch_size": 2,
        "val_batch_size": 2,
        "num_workers": 0,
        "augment": False,
        **kw,
    }


# -- stage 2: the teacher really is frozen ------------------------------------------------------------


@pytest.mark.parametrize("tmod", ["fusion", "spike"])
def test_teacher_frozen_through_a_real_fit_with_validation(synth, tmod):
    """A real Trainer.fit of stage 2 with a validation between steps: every teacher (and frozen
    pose net) parameter and buffer is byte-identical afterwards, and the teacher's output equals
    an eval-mode copy's; the frozen modules are in eval mode whenever a training step runs.
    ``spike``: self-distillation from a spike-only teacher (depth pseudo-labels + photometric)."""
    import lightning as L

    from r2sdepth.train.datamodule import SplitDataModule
    from r2sdepth.train.distill import DistillModule

    torch.manual_seed(0)
    extra = {"distill": {"feat_weight": 0.0, "at_weight": 0.0}} if tmod == "spike" else {}
    module = DistillModule(
        {"model": {"modality": tmod, **TINY}, "pose": {"width": 8}}, data=data_cfg(synth), **extra
    )
    # a teacher whose batch-norm statistics are not the defaults (as after stage 1)
    with torch.no_grad():
        for name, b in module.teacher.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
    module.init_from_teacher()
    if tmod == "spike":  # the student starts as the teacher, batch-norm statistics included
        t_sd = module.teacher.state_dict()
        assert all(torch.equal(v, t_sd[k]) for k, v in module.net.state_dict().items())
    frozen = {
        n: copy.deepcopy(m)
        for n, m in (
            ("teacher", module.teacher),
            ("teacher_pose", module.teacher_pose),
            ("pose_net", module.pose_net),
        )
    }
    seen: list[tuple[bool, ...]] = []

    class Probe(L.Callback):
        def on_before_backward(self, trainer, pl_module, loss):
            seen.append(tuple(m.training for m in pl_module.frozen_modules()) + (pl_module.net.training,))

    dm = SplitDataModule(data_cfg(synth), "fusion")
    trainer = L.Trainer(
        max_steps=4,
        val_check_interval=2,
        check_val_every_n_epoch=None,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=1,
        callbacks=[Probe()],
        use_distributed_sampler=False,
    )
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 4 and len(seen) == 4
    assert all(s == (False, False, False, True) for s in seen), seen  # frozen in eval, student training
    for name, ref in frozen.items():
        now = dict(getattr(module, name).state_dict())
        for k, v in ref.state_dict().items():
            assert torch.equal(now[k], v), f"{name}.{k} changed"
    # the student did train
    t_dec = frozen["teacher"].student_decoder if tmod == "fusion" else frozen["teacher"].decoder
    assert any(not torch.equal(a, b) for a, b in zip(module.net.decoder.parameters(), t_dec.parameters()))
    batch = finish_batch(next(iter(dm.val_dataloader())))  # what the trainer's transfer hook does
    module.train()  # whatever mode the module is put in, the teacher answers as in eval mode
    rgb = batch["color_aug"][:, 0] if tmod == "fusion" else None
    with torch.no_grad():
        got = module.teacher(rgb=rgb, spikes=batch["spikes"])["disp"][0]
        want = frozen["teacher"].eval()(rgb=rgb, spikes=batch["spikes"])["disp"][0]
    assert torch.equal(got, want)


# -- the fusion schedule under DDP ---------------------------------------------------------------------


def _epoch_end(run: Path, key: str = "schedule/w_rgb_epoch_end") -> list[float]:
    with open(run / "logs" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get(key)]
    return [float(r[key]) for r in sorted(rows, key=lambda r: int(r["epoch"]))]


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed unavailable")
def test_fusion_schedule_same_on_two_ddp_processes(synth, tmp_path):
    """w_rgb at the end of each epoch: 2-process gloo DDP == 1 process == the formula
    ``1 - (epoch + 1) / horizon`` (offset 0), since an epoch is the data set once, however split."""
    sp = synth / "splits"
    common = [
        "train",
        "--config",
        "train_fusion_synth",
        "--data.root",
        synth,
        "--data.train_split",
        sp / "train_files.txt",
        "--data.val_split",
        "null",
        "--model.width",
        "8",
        "--model.decoder_width",
        "8",
        "--pose.width",
        "8",
        "--model.fusion.horizon",
        "10",
        "--model.fusion.offset",
        "0",
        "--data.height",
        "64",
        "--data.width",
        "96",
        "--data.window",
        "32",
        "--data.sim.planes_per_frame",
        "32",
        "--data.batch_size",
        "1",
        "--data.num_workers",
        "0",
        "--trainer.max_steps",
        "-1",
        "--trainer.max_epochs",
        "2",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.accelerator",
        "cpu",
    ]
    r = r2(*common, "--out", tmp_path / "one", timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = r2(
        *common, "--out", tmp_path / "two", "--trainer.devices", "2", "--trainer.strategy", "ddp", timeout=600
    )
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = _epoch_end(tmp_path / "one"), _epoch_end(tmp_path / "two")
    assert one == pytest.approx([0.9, 0.8], abs=1e-6)
    assert two == pytest.approx(one, abs=1e-6)
    # each process really saw half of the data (its own shard), not all of it
    from r2sdepth.data.kitti import read_split

    n = len(read_split(sp / "train_files.txt"))
    assert _epoch_end(tmp_path / "one", "schedule/steps_per_epoch") == [n, n]
    assert _epoch_end(tmp_path / "two", "schedule/steps_per_epoch") == [math.ceil(n / 2)] * 2


# -- mixed precision keeps the geometry in float32 -------------------------------------------------------


def _kitti_case(h=192, w=640):
    from r2sdepth.geometry import pose_vec_to_matrix

    K = torch.tensor([[0.58 * w, 0, 0.5 * w], [0, 1.92 * h, 0.5 * h], [0, 0, 1.0]])[None]
    g = torch.Generator().manual_seed(0)
    depth = 1 + 79 * torch.rand(1, 1, h, w, generator=g)
    aa, t = torch.tensor([[0.01, -0.02, 0.005]]), torch.tensor([[0.1, -0.05, 0.9]])
    return K, depth, aa, t, pose_vec_to_matrix


def _autocast_dtypes():
    out = [torch.bfloat16]
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            torch.ones(2, 2) @ torch.ones(2, 2)
        out.append(torch.float16)
    except (RuntimeError, AssertionError):
        pass
    return out


@pytest.mark.parametrize("dtype", _autocast_dtypes())
def test_geometry_is_float32_under_autocast(dtype):
    """Sampling coordinates within 1e-3 px of float32 and the photometric gradient w.r.t.
    disparity within 1% under CPU autocast (it runs matmul in bf16/fp16 otherwise)."""
    from r2sdepth.geometry import backproject, project
    from r2sdepth.losses import reprojection_terms

    K, depth, aa, t, to_matrix = _kitti_case()

    def coords():
        T = to_matrix(aa, t)
        pix, _ = project(backproject(depth, torch.inverse(K)), K, T)
        return pix, T

    ref, T_ref = coords()
    with torch.autocast("cpu", dtype=dtype):
        got, T_got = coords()
    assert got.dtype == torch.float32 and T_got.dtype == torch.float32
    assert float((got - ref).abs().max()) < 1e-3

    g = torch.Generator().manual_seed(1)
    tgt = torch.rand(1, 3, 96, 320, generator=g)
    src = torch.roll(tgt, 3, -1)
    K2 = K.clone()
    K2[:, :2] /= 2

    def grad(enabled: bool):
        # as in training: the forward under autocast, backward outside it (Lightning's precision plugin)
        disp = torch.full((1, 1, 96, 320), 0.1, requires_grad=True)
        with torch.autocast("cpu", dtype=dtype, enabled=enabled):
            loss = reprojection_terms(disp, tgt, [src], [to_matrix(aa, t)], K2, automask=False)[
                "loss_map"
            ].mean()
        loss.backward()
        return disp.grad

    g32, gac = grad(False), grad(True)
    rel = float((gac - g32).norm() / g32.norm())
    assert rel < 0.01, rel


# -- losses against independent references -------------------------------------------------------------


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(1 - SSIM) / 2 per pixel, 3x3 windows, reflection padding, C1=0.01^2, C2=0.03^2: explicit
    loops over windows in float64 (population variances, as Monodepth2)."""
    c1, c2 = 0.01**2, 0.03**2
    xp, yp = np.pad(x, 1, mode="reflect"), np.pad(y, 1, mode="reflect")
    h, w = x.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            a, b = xp[i : i + 3, j : j + 3].ravel(), yp[i : i + 3, j : j + 3].ravel()
            ma, mb = a.mean(), b.mean()
            va, vb = ((a - ma) ** 2).mean(), ((b - mb) ** 2).mean()
            cov = ((a - ma) * (b - mb)).mean()
            s = (2 * ma * mb + c1) * (2 * cov + c2) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
            out[i, j] = np.clip((1 - s) / 2, 0, 1)
    return out


def test_ssim_matches_an_independent_reference():
    from r2sdepth.losses import SSIM

    rng = np.random.default_rng(0)
    x = rng.random((12, 17))
    y = np.clip(0.7 * x + 0.3 * rng.random((12, 17)) + 0.05, 0, 1)  # correlated, not equal
    got = (
        SSIM()(
            torch.tensor(x, dtype=torch.float32)[None, None], torch.tensor(y, dtype=torch.float32)[None, None]
        )[0, 0]
        .double()
        .numpy()
    )
    ref = _ssim_reference(x, y)
    assert 0.05 < ref.mean() < 0.45  # a non-trivial case
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_loss_map_is_masked_per_pixel_minimum_with_zero_gradient_where_masked():
    """loss_map = min over warped sources where the warp wins, the identity error elsewhere;
    masked pixels get no gradient; the reported photometric loss is the mean of that map."""
    from r2sdepth.geometry import disp_to_depth, pose_vec_to_matrix, warp
    from r2sdepth.losses import photometric_error, reprojection_terms, self_supervised_loss

    g = torch.Generator().manual_seed(0)
    h, w = 32, 48
    tgt = torch.rand(1, 3, h, w, generator=g)
    still = tgt.clone()
    still[..., :, : w // 2] = torch.rand(
        1, 3, h, w // 2, generator=g
    )  # left half changed: unwarped loses there
    moved = torch.roll(tgt, 2, -1)
    K = torch.tensor([[[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]]])
    poses = [
        pose_vec_to_matrix(torch.zeros(1, 3), torch.tensor([[0.05, 0, 0]])),
        pose_vec_to_matrix(torch.zeros(1, 3), torch.tensor([[-0.02, 0.01, 0.1]])),
    ]
    disp = torch.rand(1, 1, h, w, generator=g).mul(0.5).add(0.1).requires_grad_()
    res = reprojection_terms(disp, tgt, [still, moved], poses, K, automask=True)
    depth = disp_to_depth(disp.detach())[1]
    errs = torch.cat(
        [photometric_error(warp(s, depth, T, K)[0], tgt) for s, T in zip((still, moved), poses)], 1
    )
    best = errs.min(1, keepdim=True).values
    ident = torch.cat([photometric_error(s, tgt) for s in (still, moved)], 1).min(1, keepdim=True).values
    torch.testing.assert_close(res["reproj"].detach(), best, atol=1e-6, rtol=0)
    mask = res["mask"].bool()
    assert 0.05 < mask.float().mean() < 0.95  # both kinds of pixel present
    assert (
        torch.equal(mask, best < ident - 1e-4) or ((best - ident).abs()[mask != (best < ident)] < 1e-4).all()
    )
    lm = res["loss_map"]
    torch.testing.assert_close(lm[mask], best[mask], atol=1e-6, rtol=0)
    torch.testing.assert_close(lm[~mask], ident[~mask], atol=1e-4, rtol=0)
    # the masked pixels' loss does not depend on depth at all; the others' does
    (lm * (~mask)).sum().backward(retain_graph=True)
    assert disp.grad is None or float(disp.grad.abs().max()) == 0.0
    (lm * mask).sum().backward()
    assert float(disp.grad.abs().max()) > 0
    out = self_supervised_loss({0: disp.detach()}, tgt, [still, moved], poses, K, smooth_weight=0.0)
    assert float(out["photo"]) == pytest.approx(float(out["maps"][0]["loss_map"].mean()), abs=1e-7)
    assert float(out["photo"]) < float(best.mean())  # the mask lowers the loss where the identity wins


# -- evaluation: median scaling, one implementation ------------------------------------------------------


def test_evaluation_uses_median_not_mean_scaling():
    """A prediction whose mean and median ratios differ: abs_rel computed by hand with the
    median ratio (and the clamp to 80 m)."""
    from r2sdepth.evaluate import EvalProtocol, evaluate_depths

    gt = np.zeros((10, 10), np.float32)
    gt[5:, :] = np.linspace(2, 60, 50, dtype=np.float32).reshape(5, 10)
    pred = np.ones_like(gt)
    pred[5:, :] = gt[5:, :] / 3.0
    pred[9, 5:] *= 10  # a few far outliers drag the mean ratio, not the median
    res = evaluate_depths([pred], [gt], EvalProtocol(crop="none", max_depth=80.0))
    m = gt > 0
    g, p = gt[m].astype(np.float64), pred[m].astype(np.float64)
    r_med = np.median(g) / np.median(p)
    r_mean = np.mean(g) / np.mean(p)
    assert abs(r_med - r_mean) / r_med > 0.1
    expect = np.mean(np.abs(np.clip(p * r_med, 1e-3, 80) - g) / g)
    wrong = np.mean(np.abs(np.clip(p * r_mean, 1e-3, 80) - g) / g)
    assert res["abs_rel"] == pytest.approx(expect, rel=1e-6)
    assert abs(expect - wrong) > 0.05
    assert res["ratio_median"] == pytest.approx(r_med, rel=1e-6)


def test_validation_metrics_equal_r2sdepth_eval(synth, tmp_path):
    """The val/abs_rel a real training run logs is what ``r2sdepth eval`` computes for the same
    weights and split (one implementation, median scaling included)."""
    sp = synth / "splits"
    run = tmp_path / "run"
    r = r2(
        "train",
        "--config",
        "train_rgb_synth",
        "--out",
        run,
        "--data.root",
        synth,
        "--data.train_split",
        sp / "train_files.txt",
        "--data.val_split",
        sp / "val_files.txt",
        "--model.width",
        "8",
        "--model.decoder_width",
        "8",
        "--pose.width",
        "8",
        "--data.height",
        "64",
        "--data.width",
        "96",
        "--data.batch_size",
        "2",
        "--data.val_batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--trainer.max_steps",
        "-1",
        "--trainer.max_epochs",
        "1",
        "--trainer.check_val_every_n_epoch",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.accelerator",
        "cpu",
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    with open(run / "logs" / "metrics.csv", newline="") as f:
        val = [float(x["val/abs_rel"]) for x in csv.DictReader(f) if x.get("val/abs_rel")]
    assert len(val) == 1
    # TensorBoard: colour disparity, input and auto-mask images of the validation (Monodepth2's set)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(
        str(next(run.glob("logs/**/events.out.tfevents*")).parent), size_guidance={"images": 0}
    )
    ev.Reload()
    tags = set(ev.Tags()["images"])
    assert {"val/disp", "val/input_rgb", "val/automask"} <= tags, tags
    import io as _io

    from PIL import Image as _Image

    disp = np.asarray(_Image.open(_io.BytesIO(ev.Images("val/disp")[-1].encoded_image_string)))
    assert disp.shape == (64, 96, 3) and len(np.unique(disp.reshape(-1, 3), axis=0)) > 20  # colour, not grey
    mask = np.asarray(_Image.open(_io.BytesIO(ev.Images("val/automask")[-1].encoded_image_string)))
    assert mask.shape[:2] == (64, 96)
    for extra, same in (((), True), (("--no-median-scaling",), False)):
        r = r2(
            "eval",
            "--checkpoint",
            run / "checkpoints" / "last.ckpt",
            "--data",
            synth,
            "--split",
            sp / "val_files.txt",
            "--out",
            tmp_path / "e.json",
            *extra,
        )
        assert r.returncode == 0, r.stderr[-3000:]
        import json

        res = json.loads((tmp_path / "e.json").read_text())
        assert res["gt_source"] == "exact"
        assert (res["abs_rel"] == pytest.approx(val[0], rel=1e-5)) == same


# -- distillation: no gradient through the pixel weights --------------------------------------------------


@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_pixel_weights_carry_no_gradient(mode):
    from r2sdepth.losses import adaptive_pixel_weights, si_log_loss

    g = torch.Generator().manual_seed(0)
    es = torch.rand(1, 1, 8, 8, generator=g).requires_grad_()
    et = torch.rand(1, 1, 8, 8, generator=g).requires_grad_()
    w = adaptive_pixel_weights(es, et, torch.ones(1, 1, 8, 8, requires_grad=True), mode)
    assert not w.requires_grad
    s = (torch.rand(1, 1, 8, 8, generator=g) * 10 + 1).requires_grad_()
    t = torch.rand(1, 1, 8, 8, generator=g) * 10 + 1
    si_log_loss(s, t, w).backward()
    # the same loss with the weights as a constant: identical gradient
    s2 = s.detach().clone().requires_grad_()
    si_log_loss(s2, t, w.detach().clone()).backward()
    assert torch.equal(s.grad, s2.grad) and es.grad is None and et.grad is None


def test_distill_step_weights_are_detached(synth):
    from r2sdepth.data.dataset import SplitDataset, collate
    from r2sdepth.data.drives import DriveOptions
    from r2sdepth.spike.simulate import SimParams
    from r2sdepth.train.distill import DistillModule

    ds = SplitDataset(
        DriveOptions(synth, height=64, width=96, window=32, sim=SimParams(planes_per_frame=32)),
        synth / "splits" / "train_files.txt",
    )
    batch = collate([ds[0], ds[1]])
    for pixel in ("hard", "soft"):
        m = DistillModule(
            {"model": {"modality": "fusion", **TINY}, "pose": {"width": 8}}, distill={"pixel": pixel}
        )
        res = m.compute_loss(batch)
        assert not res["trust"].requires_grad and res["loss"].requires_grad


# -- one spike-only path: infer == export ------------------------------------------------------------------


def test_export_and_infer_share_the_student_path(tmp_path):
    """A fusion model whose student decoder differs from its teacher decoder: the exported graph,
    predict_batch (eval/infer) and the formula on the student decoder agree; the teacher's do not."""
    from r2sdepth.checkpoint import save_atomic
    from r2sdepth.export import SpikeDepth, export_model
    from r2sdepth.infer import load_checkpoint, predict_batch
    from r2sdepth.train.module import DepthModule

    torch.manual_seed(0)
    m = DepthModule(
        {"modality": "fusion", **TINY}, {"width": 8}, data={"height": 64, "width": 96, "window": 16}
    )
    with torch.no_grad():
        for p in m.net.student_decoder.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    ck = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "global_step": 0}
    m.on_save_checkpoint(ck)
    save_atomic(ck, tmp_path / "m.ckpt")
    module, _ = load_checkpoint(tmp_path / "m.ckpt")
    x = (torch.rand(1, 16, 64, 96, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    net = module.net
    with torch.no_grad():
        d = net.student_decoder(net.spike(x))[0]
        lo, hi = 1 / net.cfg["max_depth"], 1 / net.cfg["min_depth"]
        by_hand = 1.0 / (lo + (hi - lo) * d)
        teacher_dec = 1.0 / (lo + (hi - lo) * net.decoder(net.spike(x))[0])
        eager = predict_batch(module, {"spikes": x}, "spike")
        wrapped = SpikeDepth(net).eval()(x)
    torch.testing.assert_close(eager, by_hand, rtol=1e-5, atol=1e-5)
    assert torch.equal(eager, wrapped)
    assert float((teacher_dec - by_hand).abs().max()) > 1e-2
    res = export_model(tmp_path / "m.ckpt", "torchscript", tmp_path / "m.pt", window=16)
    with torch.no_grad():
        ts = torch.jit.load(str(tmp_path / "m.pt"))(x)
    torch.testing.assert_close(ts, eager, rtol=1e-5, atol=1e-5)
    assert res["max_abs_diff"] < 1e-4


# -- one window definition in the data set ----------------------------------------------------------------


def test_built_and_on_the_fly_windows_are_byte_equal(synth, tmp_path):
    """Spike-KITTI streams (build seed 5) and on-the-fly simulation (data seed 5) give the same
    window for frames 0, 1 and a middle frame; frame 0 has one (the pre-roll)."""
    from r2sdepth.data.dataset import SampleOptions, SplitDataset
    from r2sdepth.data.drives import DriveOptions
    from r2sdepth.data.kitti import Sample
    from r2sdepth.data.spike_kitti import StreamSpec, build_spike_kitti
    from r2sdepth.spike.simulate import SimParams

    build_spike_kitti(
        synth,
        tmp_path / "spk",
        StreamSpec(64, 96, SimParams(planes_per_frame=32), seed=5),
        cameras=["02"],
    )
    drive = "2000_01_01/2000_01_01_drive_0000_sync"
    samples = [Sample(drive, f, "l") for f in (0, 1, 2, 4)]
    fly_opts = DriveOptions(synth, height=64, width=96, window=32, sim=SimParams(planes_per_frame=32), seed=5)
    one = SampleOptions(context=())
    built = SplitDataset(replace(fly_opts, spike_root=tmp_path / "spk"), samples, one)
    fly = SplitDataset(fly_opts, samples, one)
    for i in range(len(samples)):
        a, b = built[i]["spikes"], fly[i]["spikes"]
        assert a.shape == (32, 64, 96) and torch.equal(a, b), samples[i]
    assert not torch.equal(built[1]["spikes"], built[2]["spikes"])
    other = SplitDataset(replace(fly_opts, seed=6), samples, one)
    assert not torch.equal(other[1]["spikes"], fly[1]["spikes"])  # the seed matters


def test_augmentation_is_a_function_of_seed_epoch_index(synth):
    """The same (seed, epoch, index) gives the same augmented sample in any process; another
    epoch gives another draw; colour jitter hits about half of the samples."""
    from r2sdepth.data.dataset import SampleOptions, SplitDataset
    from r2sdepth.data.drives import DriveOptions
    from r2sdepth.train.datamodule import SeededSampler

    ds = SplitDataset(
        DriveOptions(synth, height=64, width=96),
        synth / "splits" / "train_files.txt",
        SampleOptions(need_spikes=False, augment=True, context=()),
    )
    a, b = ds[(3, 1)], ds[(3, 1)]
    assert torch.equal(a["color_aug"], b["color_aug"]) and torch.equal(a["color"], b["color"])
    draws = {
        (e, i): bool(not torch.equal(ds[(e, i)]["color_aug"], ds[(e, i)]["color"]))
        for e in range(6)
        for i in range(len(ds))
    }
    assert 0.25 < np.mean(list(draws.values())) < 0.75
    assert len({tuple(ds[(e, 0)]["color_aug"].flatten()[:50].tolist()) for e in range(6)}) > 1
    # the sampler: a permutation per epoch from (seed, epoch), split across ranks without overlap
    s0, s1 = SeededSampler(10, 3, rank=0, world=2), SeededSampler(10, 3, rank=1, world=2)
    for e in (0, 1):
        s0.set_epoch(e), s1.set_epoch(e)
        i0, i1 = [i for _, i in s0], [i for _, i in s1]
        assert sorted(i0 + i1) == list(range(10)) and all(ep == e for ep, _ in s0)
    s0.set_epoch(0)
    first = [i for _, i in s0]
    s0.set_epoch(1)
    assert [i for _, i in s0] != first
