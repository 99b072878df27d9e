"""Nothing lost, nothing executed, nothing silently wrong: checkpoints, resume, hostile input.

Through the real CLI: a run killed with SIGKILL and resumed ends bitwise equal to an
uninterrupted one; ``last.ckpt`` is the last step; checkpoints that would run code, corrupted
or malformed ones give one line and exit 2; ``.npz``/``.npy`` predictions never unpickle code;
sidecars mean what they say.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from r2sdepth.errors import R2SDepthError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth(synth_long):
    return synth_long


def cli(*args, **kw):
    return [sys.executable, "-m", "r2sdepth.cli", *map(str, args)]


def run(*args, **kw):
    return subprocess.run(cli(*args), capture_output=True, text=True, **kw)


def train_args(synth: Path, out: Path, *extra) -> list:
    sp = synth / "splits"
    return [
        "train",
        "--config",
        "train_rgb_synth",
        "--out",
        out,
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
        "--data.augment",
        "true",
        "--trainer.max_epochs",
        "1000",
        "--trainer.check_val_every_n_epoch",
        "2",
        "--trainer.log_every_n_steps",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.accelerator",
        "cpu",
        "--trainer.deterministic",
        "true",
        *extra,
    ]


def ckpt_step(path: Path) -> int:
    from r2sdepth.checkpoint import load_file

    return int(load_file(path)["global_step"])


def losses(run_dir: Path) -> dict[int, str]:
    with open(run_dir / "logs" / "metrics.csv", newline="") as f:
        return {
            int(r["step"]): r["train/loss_step"] if "train/loss_step" in r else r["train/loss"]
            for r in csv.DictReader(f)
            if (r.get("train/loss_step") or r.get("train/loss"))
        }


def test_sigkill_resume_equals_uninterrupted_run(synth, tmp_path):
    """Kill -9 after a checkpoint (mid-epoch), rerun: the final weights, optimiser state and the
    logged loss of every step equal an uninterrupted run's, bit for bit (CPU, one thread count,
    deterministic algorithms, augmentation on)."""
    from r2sdepth.data.kitti import read_split

    per_epoch = len(read_split(synth / "splits" / "train_files.txt")) // 2
    steps, every = 26, 7
    assert all(k % per_epoch for k in range(every, steps, every))  # every checkpoint is mid-epoch
    ref = tmp_path / "ref"
    r = run(
        *train_args(synth, ref, "--trainer.max_steps", steps, "--checkpoint.every_n_steps", every),
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        cli(*train_args(synth, killed, "--trainer.max_steps", steps, "--checkpoint.every_n_steps", every)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.time() + 600
    at = 0
    while time.time() < deadline and proc.poll() is None:
        if last.is_file():
            try:
                at = ckpt_step(last)
            except R2SDepthError:
                at = 0
            if at >= every:
                break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # still running: the kill landed mid-run
    at = ckpt_step(last)
    assert every <= at < steps and at % every == 0
    r = run(
        *train_args(synth, killed, "--trainer.max_steps", steps, "--checkpoint.every_n_steps", every),
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"trained to step {steps}" in r.stdout
    from r2sdepth.checkpoint import load_file

    a, b = load_file(ref / "checkpoints" / "last.ckpt"), load_file(last)
    assert a["global_step"] == b["global_step"] == steps
    diff = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not diff, f"{len(diff)} of {len(a['state_dict'])} tensors differ, e.g. {diff[:3]}"
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # the resumed run kept the earlier history and logged the same losses at the same steps
    la, lb = losses(ref), losses(killed)
    assert la == lb and min(lb) < at
    for run_dir in (ref, killed):  # one last.ckpt per run, however many callbacks write it
        assert sorted(p.name for p in (run_dir / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]


def test_raising_max_steps_on_a_finished_run_continues_it_exactly(synth, tmp_path):
    """A run stopped by trainer.max_steps in the middle of an epoch, then rerun with a larger
    max_steps (--allow-config-change), equals the longer run trained at once: weights and
    optimiser state bit for bit (the epoch is not restarted, so data order and augmentation
    follow the same sequence)."""
    from r2sdepth.checkpoint import load_file
    from r2sdepth.data.kitti import read_split

    per_epoch = len(read_split(synth / "splits" / "train_files.txt")) // 2
    short, long = per_epoch // 2, per_epoch + 2  # the first run ends mid-epoch
    assert short % per_epoch and long % per_epoch
    ref, ext = tmp_path / "ref", tmp_path / "ext"
    runs = ((ref, long, ()), (ext, short, ()), (ext, short, ()), (ext, long, ("--allow-config-change",)))
    for out, steps, extra in runs:  # the second short run trains nothing and must keep last.ckpt as it is
        r = run(*train_args(synth, out, "--trainer.max_steps", steps, *extra), timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        assert f"trained to step {steps}" in r.stdout
    a, b = load_file(ref / "checkpoints" / "last.ckpt"), load_file(ext / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == long and a["epoch"] == b["epoch"]
    diff = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not diff, f"{len(diff)} of {len(a['state_dict'])} tensors differ, e.g. {diff[:3]}"
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not list((ext / "checkpoints").glob(".final-step*"))


def test_a_ddp_run_ending_by_max_steps_finishes_on_every_rank(synth, tmp_path):
    """Two processes (DDP on CPU) stopping at trainer.max_steps: every rank ends cleanly (only rank 0
    moves the final-step checkpoint into place) and one complete last.ckpt is left."""
    out = tmp_path / "ddp"
    r = run(
        *train_args(
            synth, out, "--trainer.max_steps", 3, "--trainer.devices", 2, "--trainer.strategy", "ddp"
        ),
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "r2sdepth: error" not in r.stderr and "trained to step 3" in r.stdout
    assert sorted(p.name for p in (out / "checkpoints").glob("last*.ckpt")) == ["last.ckpt"]
    assert not list((out / "checkpoints").glob(".final-step*"))
    assert ckpt_step(out / "checkpoints" / "last.ckpt") == 3


def test_last_checkpoint_is_the_last_step_and_rerun_trains_nothing(synth, tmp_path):
    out = tmp_path / "r"
    # 8 batches per epoch, validation after each: the best is at step 8 at most, the run ends at 10
    args = train_args(
        synth,
        out,
        "--trainer.max_steps",
        10,
        "--checkpoint.every_n_steps",
        100,
        "--trainer.check_val_every_n_epoch",
        1,
    )
    r = run(*args, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    last = out / "checkpoints" / "last.ckpt"
    assert ckpt_step(last) == 10
    best = list((out / "checkpoints").glob("best-*.ckpt"))
    assert len(best) == 1
    before = last.read_bytes()
    with open(out / "logs" / "metrics.csv", newline="") as f:
        n_rows = len(list(csv.DictReader(f)))
    r = run(*args, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained to step 10" in r.stdout and ckpt_step(last) == 10
    from r2sdepth.checkpoint import load_file

    assert all(
        torch.equal(v, load_file(last)["state_dict"][k])
        for k, v in torch.load(__import__("io").BytesIO(before), weights_only=True)["state_dict"].items()
    )
    with open(out / "logs" / "metrics.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) >= n_rows  # history kept


def test_nan_validation_never_becomes_best(synth, tmp_path):
    import lightning as L

    from r2sdepth.train.datamodule import SplitDataModule
    from r2sdepth.train.module import DepthModule
    from r2sdepth.train.run import checkpoint_callbacks

    class NanModule(DepthModule):  # a model whose predictions went NaN
        def predict_depth(self, batch, head="disp"):
            return super().predict_depth(batch, head) * float("nan")

    sp = synth / "splits"
    cfg = {
        "root": str(synth),
        "train_split": str(sp / "train_files.txt"),
        "val_split": str(sp / "val_files.txt"),
        "height": 64,
        "width": 96,
        "batch_size": 2,
        "num_workers": 0,
        "augment": False,
    }
    m = NanModule({"modality": "rgb", "width": 8, "decoder_width": 8}, {"width": 8}, data=cfg)
    cbs = checkpoint_callbacks(tmp_path / "ck", {"every_n_steps": None, "every_n_minutes": None}, True)
    t = L.Trainer(
        max_steps=2,
        val_check_interval=1,
        check_val_every_n_epoch=None,
        callbacks=cbs,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        use_distributed_sampler=False,
        accelerator="cpu",
    )
    with pytest.warns(RuntimeWarning, match="not a candidate for the best"):
        t.fit(m, datamodule=SplitDataModule(cfg, "rgb"))
    assert not list((tmp_path / "ck").glob("best-*.ckpt"))
    assert (tmp_path / "ck" / "last.ckpt").is_file()


# -- hostile and broken checkpoints ---------------------------------------------------------------


class Boom:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _tiny_checkpoints(tmp_path: Path) -> dict[str, Path]:
    from r2sdepth.checkpoint import save_atomic
    from r2sdepth.train.module import DepthModule

    out = {}
    for modality in ("fusion", "spike"):
        m = DepthModule(
            {"modality": modality, "width": 8, "decoder_width": 4, "spike_repr": {"chunks": 2, "bins": 4}},
            {"width": 8},
            data={"height": 64, "width": 96, "window": 16, "sim": {"planes_per_frame": 16}},
        )
        ck = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "global_step": 0}
        m.on_save_checkpoint(ck)
        save_atomic(ck, tmp_path / f"{modality}.ckpt")
        out[modality] = tmp_path / f"{modality}.ckpt"
    return out


def test_hostile_checkpoints_are_refused_through_the_cli(synth, tmp_path):
    """A checkpoint with one pickled object that runs a shell command: every command that loads
    checkpoints refuses it with one line, exit 2, and the command never runs."""
    good = _tiny_checkpoints(tmp_path)
    marker = tmp_path / "PWNED"
    ck = torch.load(good["fusion"], weights_only=True)
    ck["extra"] = Boom(str(marker))
    torch.save(ck, tmp_path / "evil.ckpt")
    evil = tmp_path / "evil.ckpt"
    sp = synth / "splits"
    drive = synth / "2000_01_01" / "2000_01_01_drive_0000_sync" / "image_02" / "data"
    cmds = [
        ("eval", "--checkpoint", evil, "--data", synth, "--split", sp / "test_files.txt"),
        ("infer", "--checkpoint", evil, "--input", drive, "--out", tmp_path / "inf"),
        ("export", "--checkpoint", evil, "--format", "torchscript", "--out", tmp_path / "x.pt"),
        ("distill", "--config", "distill_synth", "--teacher", evil, "--out", tmp_path / "d"),
        tuple(train_args(synth, tmp_path / "t", "--init_from", evil, "--trainer.max_steps", 1)),
    ]
    for c in cmds:
        r = run(*c, timeout=300)
        assert r.returncode == 2, (c[0], r.stderr[-2000:])
        assert "refused" in r.stderr and "Traceback" not in r.stderr, (c[0], r.stderr[-2000:])
        assert not marker.exists(), c[0]


def _flip_tensor_bits(src: Path, dst: Path, n: int = 20) -> None:
    """Flip ``n`` bits inside the largest tensor record of a torch zip checkpoint."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    off = info.header_offset
    name_len = int.from_bytes(data[off + 26 : off + 28], "little")
    extra_len = int.from_bytes(data[off + 28 : off + 30], "little")
    start = off + 30 + name_len + extra_len
    rng = np.random.default_rng(0)
    for pos in rng.choice(info.file_size, n, replace=False):
        data[start + int(pos)] ^= 1 << int(rng.integers(8))
    dst.write_bytes(bytes(data))


def test_corrupt_and_malformed_checkpoints_give_one_line(tmp_path):
    from r2sdepth.checkpoint import save_atomic
    from r2sdepth.train.load import load_checkpoint

    good = _tiny_checkpoints(tmp_path)["spike"]
    _flip_tensor_bits(good, tmp_path / "flipped.ckpt")
    with pytest.raises(R2SDepthError, match="checksum mismatch"):
        load_checkpoint(tmp_path / "flipped.ckpt")
    raw = good.read_bytes()
    (tmp_path / "trunc.ckpt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(R2SDepthError, match="unreadable checkpoint"):
        load_checkpoint(tmp_path / "trunc.ckpt")
    ck = torch.load(good, weights_only=True)
    bad = {
        "nometa": {k: v for k, v in ck.items() if k != "r2sdepth"},
        "modality": {**ck, "r2sdepth": {**ck["r2sdepth"], "modality": "thermal"}},
        "shapes": {**ck, "state_dict": {k: v[..., :1] if v.ndim else v for k, v in ck["state_dict"].items()}},
        "missing": {**ck, "state_dict": dict(list(ck["state_dict"].items())[:3])},
    }
    msgs = {
        "nometa": "not an r2sdepth checkpoint",
        "modality": "unknown modality",
        "shapes": "do not fit",
        "missing": "do not fit",
    }
    for name, c in bad.items():
        save_atomic(dict(c), tmp_path / f"{name}.ckpt")
        with pytest.raises(R2SDepthError, match=msgs[name]):
            load_checkpoint(tmp_path / f"{name}.ckpt")
    r = run(
        "export",
        "--checkpoint",
        tmp_path / "flipped.ckpt",
        "--format",
        "torchscript",
        "--out",
        tmp_path / "x.pt",
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "checksum" in r.stderr
    # an rgb teacher cannot give fused features
    from r2sdepth.train.module import DepthModule

    m = DepthModule(
        {"modality": "rgb", "width": 8, "decoder_width": 4}, {"width": 8}, data={"height": 64, "width": 96}
    )
    c = {"state_dict": m.state_dict(), "hyper_parameters": dict(m.hparams), "global_step": 0}
    m.on_save_checkpoint(c)
    save_atomic(c, tmp_path / "rgb.ckpt")
    r = run(
        "distill",
        "--config",
        "distill_synth",
        "--teacher",
        tmp_path / "rgb.ckpt",
        "--out",
        tmp_path / "d2",
        "--distill.feature_target",
        "fused",
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr and "fused" in r.stderr, r.stderr[-2000:]


def test_atomic_save_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch):
    """A write that fails with ENOSPC: one-line project error, the previous file intact, no
    temporary left (the real-disk version through every command is the tmpfs test below)."""
    import builtins

    from r2sdepth.checkpoint import load_file, save_atomic

    p = tmp_path / "last.ckpt"
    save_atomic({"state_dict": {"w": torch.ones(3)}}, p)
    before = p.read_bytes()
    real_open = builtins.open

    class FullFile:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, b):
            raise OSError(28, "No space left on device")

    def fake_open(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        return FullFile(f) if "w" in mode and str(file).endswith(".part") else f

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(R2SDepthError, match="No space left"):
        save_atomic({"state_dict": {"w": torch.zeros(3)}}, p)
    monkeypatch.setattr(builtins, "open", real_open)
    assert p.read_bytes() == before and torch.equal(load_file(p)["state_dict"]["w"], torch.ones(3))
    assert not list(tmp_path.glob("*.part"))


# -- prediction files never unpickle code --------------------------------------------------------------


def test_pred_files_safe_and_monodepth2_npy(tmp_path):
    from r2sdepth.evaluate import load_npz_maps, save_npz_maps

    marker = tmp_path / "PWNED"
    arr = np.empty(2, dtype=object)
    arr[0], arr[1] = np.ones((4, 4), np.float32), Boom(str(marker))
    np.savez(tmp_path / "evil.npz", data=arr)
    with pytest.raises(R2SDepthError, match="refusing to load pickled"):
        load_npz_maps(tmp_path / "evil.npz")
    assert not marker.exists()
    r = run("eval", "--pred", tmp_path / "evil.npz", "--gt", tmp_path / "evil.npz")
    assert r.returncode == 2 and not marker.exists() and "Traceback" not in r.stderr
    # Monodepth2's saved disparities: a plain [N, H, W] .npy; gt_depths.npz: an object array
    gts = [np.full((8, 12), 10.0, np.float32), np.full((6, 9), 20.0, np.float32)]
    save_npz_maps(tmp_path / "gt.npz", gts)
    np.save(tmp_path / "disp.npy", np.stack([np.full((8, 12), 0.5, np.float32)] * 2))
    got = load_npz_maps(tmp_path / "gt.npz")
    assert [g.shape for g in got] == [(8, 12), (6, 9)]
    r = run(
        "eval",
        "--pred",
        tmp_path / "disp.npy",
        "--pred-kind",
        "disp",
        "--gt",
        tmp_path / "gt.npz",
        "--crop",
        "none",
        "--out",
        tmp_path / "r.json",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "r.json").read_text())
    assert res["abs_rel"] == pytest.approx(0.0, abs=1e-6) and res["n"] == 2
    np.save(tmp_path / "neg.npy", np.stack([np.full((8, 12), -1.0, np.float32)] * 2))
    r = run("eval", "--pred", tmp_path / "neg.npy", "--pred-kind", "depth", "--gt", tmp_path / "gt.npz")
    assert r.returncode == 2 and "non-positive" in r.stderr
    r = run("eval", "--pred", tmp_path / "disp.npy", "--gt", tmp_path / "gt.npz")  # .npy: say what it holds
    assert r.returncode == 2 and "--pred-kind" in r.stderr and "Traceback" not in r.stderr


# -- the reader and its sidecar ------------------------------------------------------------------------


def test_read_dat_honours_the_sidecar(tmp_path):
    from r2sdepth.spike.io import SpikeStream, read_dat, write_dat

    s = (np.random.default_rng(0).random((5, 6, 10)) < 0.3).astype(np.uint8)
    for bitorder in ("little", "big"):
        for flipud in (True, False):
            p = tmp_path / f"{bitorder}{flipud}.dat"
            write_dat(p, s, bitorder=bitorder, flipud=flipud)
            assert np.array_equal(read_dat(p), s), (bitorder, flipud)
            assert np.array_equal(SpikeStream(p)[0:5], s)


@pytest.mark.parametrize(
    "key,value,match",
    [
        ("height", float("nan"), "height must be a positive integer"),
        ("height", "6", "height must be a positive integer"),
        ("width", 0, "width must be a positive integer"),
        ("width", None, "width must be a positive integer"),
        ("width", [10], "width must be a positive integer"),
        ("height", -6, "height must be a positive integer"),
        ("rate_hz", float("inf"), "rate_hz must be a finite number"),
        ("rate_hz", "fast", "rate_hz must be a finite number"),
        ("head_cols", -1, "head_cols must be an integer"),
        ("flipud", "false", "flipud must be true or false"),
        ("bitorder", "middle", "bitorder"),
        ("frame_plane_index", 5, "frame_plane_index must be a list"),
    ],
)
def test_sidecar_values_are_validated(tmp_path, key, value, match):
    from r2sdepth.spike.io import SpikeStream, sidecar_path, write_dat

    p = tmp_path / "s.dat"
    write_dat(p, np.zeros((2, 6, 10), np.uint8))
    meta = json.loads(sidecar_path(p).read_text())
    meta[key] = value
    sidecar_path(p).write_text(json.dumps(meta))  # NaN/inf written as JSON's extension literals
    with pytest.raises(R2SDepthError, match=match):
        SpikeStream(p)
    r = run("info", p)
    assert r.returncode == 2 and r.stderr.count("\n") == 1


def test_sidecar_bad_files(tmp_path):
    from r2sdepth.spike.io import SpikeStream, sidecar_path, write_dat

    p = tmp_path / "s.dat"
    write_dat(p, np.zeros((2, 6, 10), np.uint8))
    sc = sidecar_path(p)
    sc.write_bytes(b'{"height": 6, "width": 10, "x": "\xff\xfe"}')
    with pytest.raises(R2SDepthError, match="not UTF-8"):
        SpikeStream(p)
    sc.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(R2SDepthError, match="nested too deeply|must be an object"):
        SpikeStream(p)
    sc.unlink()
    os.mkfifo(sc)
    t0 = time.time()
    with pytest.raises(R2SDepthError, match="not a regular file"):
        SpikeStream(p, 6, 10)
    assert time.time() - t0 < 5
    sc.unlink()
    # a claimed geometry far larger than the file: refused before anything is allocated
    with pytest.raises(R2SDepthError, match="bytes per plane"):
        SpikeStream(p, 100000, 100000)


@pytest.fixture()
def full_disk(tmp_path):
    """A 64 KiB tmpfs (root only; skipped where mounting is not allowed)."""
    d = tmp_path / "full"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_full_disk_every_command_one_line_and_no_partial_output(synth, tmp_path, full_disk):
    """ENOSPC in every command that writes: exit 2, one line, and nothing half-written under a
    final name (only complete files or nothing)."""
    from PIL import Image

    from r2sdepth.spike.io import write_dat

    ck = _tiny_checkpoints(tmp_path)["spike"]
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(4):
        Image.fromarray((np.random.default_rng(i).random((64, 96, 3)) * 255).astype(np.uint8)).save(
            frames / f"{i}.png"
        )
    from r2sdepth.checkpoint import load_file, trained_windows

    stream = tmp_path / "s.dat"  # at the model's own plane rate: no rate warning, the error is the one line
    write_dat(
        stream,
        (np.random.default_rng(0).random((400, 64, 96)) < 0.3).astype(np.uint8),
        rate_hz=trained_windows(load_file(ck)["r2sdepth"])["rate_hz"],
    )
    sp = synth / "splits"
    f = full_disk
    cmds = {
        "simulate": ["simulate", frames, "--out", f / "s.dat", "--planes-per-frame", "128"],
        "reconstruct": ["reconstruct", stream, "--window", "4", "--out", f / "rec"],
        "synth": ["synth", "--out", f / "synth", "--sequences", "1", "--frames", "5", "--size", "64x96"],
        "build-spike-kitti": [
            "build-spike-kitti",
            "--kitti-root",
            synth,
            "--out",
            f / "spk",
            "--cameras",
            "02",
            "--size",
            "64x96",
            "--planes-per-frame",
            "64",
        ],
        "export-gt": [
            "export-gt",
            "--kitti-root",
            synth,
            "--split",
            sp / "train_files.txt",
            "--out",
            f / "gt.npz",
        ],
        "infer": ["infer", "--checkpoint", ck, "--input", stream, "--out", f / "inf", "--window", "16"],
        "export": ["export", "--checkpoint", ck, "--format", "torchscript", "--out", f / "m.pt"],
        "slim": ["export", "--checkpoint", ck, "--format", "slim", "--out", f / "m.ckpt"],
        "train": train_args(synth, f / "run", "--trainer.max_steps", 2),
    }
    for name, c in cmds.items():
        # fill the disk but for a few bytes before each command
        filler = f / "filler"
        filler.unlink(missing_ok=True)
        with open(filler, "wb") as fh:
            with pytest.raises(OSError):
                fh.write(b"\0" * (1 << 20))
        filler.unlink()
        (f / "pad").write_bytes(b"\0" * 40000)
        r = run(*c, timeout=600)
        assert r.returncode == 2, (name, r.returncode, r.stderr[-1500:])
        errs = [ln for ln in r.stderr.splitlines() if ln.startswith("r2sdepth: error:")]
        assert "Traceback" not in r.stderr and len(errs) == 1, (name, r.stderr[-1500:])
        if name != "train":  # (Lightning logs its set-up lines before)
            assert r.stderr.strip().count("\n") == 0, (name, r.stderr[-1500:])
        assert "No space left" in r.stderr or "disk full" in r.stderr, (name, r.stderr[-500:])
        leftovers = [p for p in f.rglob("*") if p.is_file() and p.name != "pad" and ".part" in p.name]
        assert not leftovers, (name, leftovers)
        for p in f.rglob("*.ckpt"):  # whatever is under a final name is complete
            from r2sdepth.checkpoint import load_file

            load_file(p)
        (f / "pad").unlink()
        import shutil

        for p in f.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()


def test_reconstruct_and_infer_memory_does_not_grow_with_the_stream(tmp_path, monkeypatch):
    """Peak Python/numpy allocation for a 4x longer stream stays within 1.5x (it held every
    image before: ~36 MB per 1,000 planes of 250x400); animations keep at most N frames."""
    import tracemalloc

    import r2sdepth.viz

    monkeypatch.setattr(r2sdepth.viz, "MAX_ANIMATION_FRAMES", 20)

    from r2sdepth.infer import run_infer
    from r2sdepth.spike.io import SpikeStream, write_dat
    from r2sdepth.viz import save_reconstructions

    ck = _tiny_checkpoints(tmp_path)["spike"]
    rng = np.random.default_rng(0)
    peaks = {}
    for n in (256, 1024):
        p = tmp_path / f"s{n}.dat"
        write_dat(p, (rng.random((n, 64, 96)) < 0.3).astype(np.uint8))
        for what in ("reconstruct", "infer"):
            tracemalloc.start()
            if what == "reconstruct":
                with SpikeStream(p) as st:
                    save_reconstructions(
                        st, tmp_path / f"rec{n}", method="tfp", window=4, gif=tmp_path / f"r{n}.gif"
                    )
            else:
                run_infer(ck, p, tmp_path / f"inf{n}", window=16, stride_planes=4, gif=tmp_path / f"i{n}.gif")
            peaks[(what, n)] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
    for what in ("reconstruct", "infer"):
        assert peaks[(what, 1024)] < 1.5 * peaks[(what, 256)], (what, peaks)
    assert len(list((tmp_path / "rec1024").glob("*.png"))) == 256


def test_killed_synth_leaves_no_frames_behind(tmp_path):
    """Temporaries of a killed ``synth`` are removed by the rerun and never listed as frames."""
    from r2sdepth.data import kitti
    from r2sdepth.data.synthetic import SceneSpec, synthesize
    from r2sdepth.frames import list_frames

    out = tmp_path / "s"
    synthesize(out, SceneSpec(frames=3, height=32, width=64, seed=0), sequences=1)
    img = out / "2000_01_01" / "2000_01_01_drive_0000_sync" / "image_02" / "data"
    stale = img / ".0000000003.part-abc123.png"  # what a kill during a PNG write leaves
    stale.write_bytes(b"\x89PNG partial")
    assert stale not in list_frames(img) and kitti.list_frame_ids(
        out, "2000_01_01/2000_01_01_drive_0000_sync"
    ) == [0, 1, 2]
    synthesize(out, SceneSpec(frames=3, height=32, width=64, seed=0), sequences=1)
    assert not stale.exists() and not list(out.rglob("*.part*"))
