"""`r2sdepth infer` and `r2sdepth export` on tiny in-process checkpoints; bad inputs."""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from r2sdepth.spike import write_dat

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
TINY = {"width": 8, "decoder_width": 4, "spike_repr": {"chunks": 2, "bins": 4}}


def r2(*args):
    return subprocess.run(["r2sdepth", *map(str, args)], capture_output=True, text=True)


def r2_in_process(*args) -> subprocess.CompletedProcess:
    """``r2sdepth ARGS`` through the console script's own entry point (``cli.main``) in this
    process: the same parsing, error handling and exit status, without a new interpreter's
    start-up (about 6 s on 2 cores). An exception that escapes ``main`` fails the test, as a
    traceback would."""
    import contextlib
    import io
    import threading
    import warnings

    from r2sdepth.cli import main

    out, err = io.StringIO(), io.StringIO()
    hook, fmt = threading.excepthook, warnings.formatwarning
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in args])
            except SystemExit as e:  # argparse errors
                rc = int(e.code or 0)
    finally:
        threading.excepthook, warnings.formatwarning = hook, fmt
    return subprocess.CompletedProcess(["r2sdepth", *map(str, args)], rc, out.getvalue(), err.getvalue())


def tiny_ckpt(path: Path, modality: str, h: int = 64, w: int = 96, window: int = 32, seed: int = 0) -> Path:
    """A slim checkpoint of an untrained tiny model (fast; the format `export --format slim` writes);
    ``seed``: its random initial weights."""
    from r2sdepth.train.module import DepthModule

    torch.manual_seed(seed)
    m = DepthModule(
        {"modality": modality, **TINY},
        data={"height": h, "width": w, "window": window, "sim": {"planes_per_frame": 32}},
    )
    meta = {
        "slim": True,
        "stage": 1,
        "modality": modality,
        "model": m.net.cfg,
        "height": h,
        "width": w,
        "window": window,
        "data": m.data_cfg,
    }
    torch.save({"r2sdepth": meta, "state_dict": m.net.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp("ck")
    return {m: tiny_ckpt(d / f"{m}.ckpt", m) for m in ("rgb", "spike", "fusion")}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    d = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    base = (rng.random((60, 100, 3)) * 255).astype(np.uint8)
    for i in range(5):
        Image.fromarray(np.roll(base, 3 * i, axis=1)).save(d / f"{i:04d}.png")
    return d


def test_fit_spatial_matches_torch_and_keeps_dtype():
    import torch.nn.functional as F

    from r2sdepth.infer import fit_spatial

    x = (np.random.default_rng(0).random((2, 5, 50, 70)) < 0.3).astype(np.uint8)
    padded = fit_spatial(x, (64, 96), "pad")
    ref = F.pad(torch.from_numpy(x).float(), (0, 26, 0, 14), mode="replicate").to(torch.uint8).numpy()
    assert padded.dtype == np.uint8 and np.array_equal(padded, ref)
    for size in ((128, 192), (32, 64)):  # up and down
        got = fit_spatial(x, size, "resize")
        ref = F.interpolate(torch.from_numpy(x).float(), size=size, mode="nearest").to(torch.uint8).numpy()
        assert got.dtype == np.uint8 and np.array_equal(got, ref)
    assert fit_spatial(x, (50, 70), "pad") is x


def test_infer_stream_outputs(tmp_path, ckpts):
    s = (np.random.default_rng(0).random((100, 50, 70)) < 0.2).astype(np.uint8)  # odd size: padded to 64x96
    write_dat(tmp_path / "s.dat", s)
    out = tmp_path / "o"
    r = r2(
        "infer",
        "--checkpoint",
        ckpts["spike"],
        "--input",
        tmp_path / "s.dat",
        "--out",
        out,
        "--stride-planes",
        "24",
        "--gif",
        tmp_path / "d.gif",
        "--fit",
        "pad",
    )
    assert r.returncode == 0, r.stderr
    summ = json.loads((out / "summary.json").read_text())
    assert summ["outputs"] == 3 and summ["names"] == [
        "000032",
        "000056",
        "000080",
    ]  # windows end at these planes
    assert summ["network_size"] == [64, 96] and summ["fit"] == "pad"
    d = np.load(out / "depth" / "000056.npy")
    assert d.shape == (50, 70) and d.dtype == np.float32 and np.isfinite(d).all() and (d > 0).all()
    # model units: lossless float32 TIFF, no KITTI PNG (x256 would leave a few dozen levels)
    tif = np.asarray(Image.open(out / "depth_tiff" / "000056.tiff"))
    assert tif.dtype == np.float32 and np.array_equal(tif, d) and not (out / "depth_png").exists()
    col = np.asarray(Image.open(out / "color" / "000056.png"))
    assert col.shape[0] == 200 and col.shape[1] > 4 * 70  # x4 (>= 192 rows, nearest) plus its colour bar
    np.testing.assert_array_equal(
        col[:200:4, : 4 * 70 : 4], col[3:200:4, 3 : 4 * 70 : 4]
    )  # blocks, not smoothed
    gif = Image.open(tmp_path / "d.gif")
    assert (
        gif.n_frames == 3 and gif.size[1] == 4 * 50 + 16 and gif.size[0] > 4 * 140
    )  # titled, x4: TFP | depth | bar
    summ0 = summ
    # a rerun with --scale (metric depth) into the same folder: KITTI PNGs, no stale files of the first run
    r = r2(
        "infer",
        "--checkpoint",
        ckpts["spike"],
        "--input",
        tmp_path / "s.dat",
        "--out",
        out,
        "--stride-planes",
        "48",
        "--scale",
        "70",
    )
    assert r.returncode == 0, r.stderr
    summ = json.loads((out / "summary.json").read_text())
    assert summ["names"] == ["000032", "000080"] and summ["depth_units"] == "m"
    for sub, ext in (("depth", ".npy"), ("color", ".png"), ("depth_png", ".png")):
        assert sorted(p.stem for p in (out / sub).glob("*" + ext)) == summ["names"], sub
    assert not list((out / "depth_tiff").glob("*.tiff"))
    d70 = np.load(out / "depth" / "000080.npy")
    png = np.asarray(Image.open(out / "depth_png" / "000080.png"))
    assert png.dtype == np.uint16 and np.array_equal(
        png, np.clip(np.rint(d70 * 256), 0, 65535).astype(np.uint16)
    )
    summ = summ0
    # the same windows through the Python API (padding crop == the batch path)
    from r2sdepth.infer import fit_spatial, load_checkpoint, predict_batch

    module, _ = load_checkpoint(ckpts["spike"])
    x = torch.from_numpy(fit_spatial(s[None, 24:56], (64, 96), "pad"))
    ref = predict_batch(module, {"spikes": x}, "spike")[0, 0, :50, :70].numpy()
    np.testing.assert_allclose(d, ref, rtol=1e-5)


@pytest.mark.skipif(not (SHARED / "spike_real" / "car_250x400.dat").is_file(), reason="shared data absent")
def test_infer_real_recording_pad_and_resize(tmp_path, ckpts):
    src = SHARED / "spike_real" / "car_250x400.dat"
    for extra, fit in ((["--fit", "pad"], "pad"), (["--net-size", "128x192"], "resize")):
        out = tmp_path / fit
        r = r2(
            "infer",
            "--checkpoint",
            ckpts["fusion"],
            "--input",
            src,
            "--sensor",
            "250x400",
            "--out",
            out,
            "--window",
            "32",
            "--stride-planes",
            "80",
            *extra,
        )
        assert r.returncode == 0, r.stderr
        summ = json.loads((out / "summary.json").read_text())
        assert summ["fit"] == fit and summ["modality"] == "spike" and summ["outputs"] == 3
        assert np.load(out / "depth" / f"{summ['names'][0]}.npy").shape == (250, 400)


def test_infer_folder_all_modalities(tmp_path, ckpts, frames):
    for m in ("rgb", "spike", "fusion"):
        out = tmp_path / m
        r = r2(
            "infer",
            "--checkpoint",
            ckpts[m],
            "--input",
            frames,
            "--out",
            out,
            "--gif",
            out / "a.gif",
            "--fit",
            "pad",
        )
        assert r.returncode == 0, r.stderr
        summ = json.loads((out / "summary.json").read_text())
        # outputs at the frames' own 60x100 (the network sees them padded to 64x128, and says that
        # differs from the 64x96 it was trained at); every frame has a window (pre-roll)
        assert summ["input_size"] == [60, 100] and summ["network_size"] == [64, 128] and summ["outputs"] == 5
        assert np.load(out / "depth" / "0004.npy").shape == (60, 100)
        assert "r2sdepth: warning: network input 64x128 differs from the 64x96" in r.stderr
        assert (out / "stream.dat").is_file() == (m != "rgb")
    # --net-size resizes to the trained size (no warning) and the depth back to the input's size
    r = r2(
        "infer",
        "--checkpoint",
        ckpts["fusion"],
        "--input",
        frames,
        "--out",
        tmp_path / "n",
        "--net-size",
        "64x96",
        "--stride-frames",
        "2",
    )
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    summ = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert (
        summ["fit"] == "resize"
        and summ["network_size"] == [64, 96]
        and summ["names"] == ["0000", "0002", "0004"]
    )
    assert np.load(tmp_path / "n" / "depth" / "0002.npy").shape == (60, 100)
    r = r2(
        "infer",
        "--checkpoint",
        ckpts["spike"],
        "--input",
        frames,
        "--out",
        tmp_path / "p",
        "--stride-planes",
        "2",
    )
    assert r.returncode == 2 and "--stride-frames" in r.stderr and not (tmp_path / "p").exists()
    # too few frames for the window: refused before anything is simulated or written
    r = r2(
        "infer", "--checkpoint", ckpts["spike"], "--input", frames, "--out", tmp_path / "x", "--window", "256"
    )
    assert r.returncode == 2 and "hold no 256-plane window" in r.stderr and not (tmp_path / "x").exists()


def test_infer_bad_inputs(tmp_path, ckpts):
    s = (np.random.default_rng(0).random((40, 16, 24)) < 0.2).astype(np.uint8)
    write_dat(tmp_path / "s.dat", s)
    cases = [
        (["--checkpoint", ckpts["rgb"], "--input", tmp_path / "s.dat"], "cannot run on a spike stream"),
        (
            ["--checkpoint", ckpts["spike"], "--input", tmp_path / "s.dat", "--window", "64"],
            "longer than the stream",
        ),
        (
            ["--checkpoint", ckpts["spike"], "--input", tmp_path / "s.dat", "--sensor", "24x16"],
            "does not match its sidecar",
        ),
        (
            ["--checkpoint", ckpts["fusion"], "--input", tmp_path / "s.dat", "--modality", "fusion"],
            "spike model",
        ),
        (["--checkpoint", tmp_path / "none.ckpt", "--input", tmp_path / "s.dat"], "checkpoint not found"),
        (
            ["--checkpoint", ckpts["spike"], "--input", tmp_path / "s.dat", "--gif", tmp_path / "a.avi"],
            ".gif or .mp4",
        ),
        (["--checkpoint", ckpts["spike"], "--input", tmp_path / "nothing"], "no such file or folder"),
        (
            ["--checkpoint", ckpts["spike"], "--input", tmp_path / "s.dat", "--net-size", "50x64"],
            "multiples of 32",
        ),
    ] + (
        []
        if torch.cuda.is_available()
        else [
            (
                ["--checkpoint", ckpts["spike"], "--input", tmp_path / "s.dat", "--device", "cuda"],
                "CUDA is not available",
            ),
        ]
    )
    for args, msg in cases:  # in process (start-up time); the truncated case below is a real process
        out = tmp_path / "o"
        r = r2_in_process("infer", *args, "--out", out)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            args,
            r.stderr,
        )
        assert not out.exists()  # nothing half-written
    # truncated stream: clear error
    raw = (tmp_path / "s.dat").read_bytes()
    (tmp_path / "t.dat").write_bytes(raw[:-7])
    r = r2(
        "infer",
        "--checkpoint",
        ckpts["spike"],
        "--input",
        tmp_path / "t.dat",
        "--out",
        tmp_path / "o2",
        "--sensor",
        "16x24",
    )
    assert (
        r.returncode == 2
        and "not a multiple of the frame size" in r.stderr
        and not (tmp_path / "o2").exists()
    )
    # a corrupt checkpoint
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    r = r2(
        "infer",
        "--checkpoint",
        tmp_path / "bad.ckpt",
        "--input",
        tmp_path / "s.dat",
        "--out",
        tmp_path / "o3",
    )
    assert r.returncode == 2 and "unreadable checkpoint" in r.stderr


def test_export_torchscript_onnx_slim(tmp_path, ckpts):
    from r2sdepth.export import SpikeDepth
    from r2sdepth.infer import load_checkpoint

    for fmt, name in (("torchscript", "m.pt"), ("onnx", "m.onnx")):
        r = r2("export", "--checkpoint", ckpts["fusion"], "--format", fmt, "--out", tmp_path / name)
        assert r.returncode == 0, r.stderr
        assert "max |exported - PyTorch|" in r.stdout
    # numerical check in-process
    module, _ = load_checkpoint(ckpts["spike"])
    x = (torch.rand(1, 32, 64, 96) < 0.2).float()
    with torch.no_grad():
        ref = SpikeDepth(module.net).eval()(x)
    r2("export", "--checkpoint", ckpts["spike"], "--format", "torchscript", "--out", tmp_path / "s.pt")
    with torch.no_grad():
        got = torch.jit.load(str(tmp_path / "s.pt"))(x)
    assert float((got - ref).abs().max()) < 1e-4
    ort = pytest.importorskip("onnxruntime")
    r2("export", "--checkpoint", ckpts["spike"], "--format", "onnx", "--out", tmp_path / "s.onnx")
    sess = ort.InferenceSession(str(tmp_path / "s.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"spikes": x.numpy()})[0]
    assert np.abs(got - ref.detach().numpy()).max() < 1e-3
    # slim: a fusion checkpoint slimmed to its spike path gives the same spike-only depth
    r = r2("export", "--checkpoint", ckpts["fusion"], "--format", "slim", "--out", tmp_path / "slim.ckpt")
    assert r.returncode == 0, r.stderr
    assert load_checkpoint(tmp_path / "slim.ckpt")[1]["modality"] == "fusion"
    from r2sdepth.export import slim_checkpoint
    from r2sdepth.models.r2sdepth import student_forward

    slim_checkpoint(ckpts["fusion"], tmp_path / "spike_only.ckpt", modality="spike")
    a, _ = load_checkpoint(ckpts["fusion"])
    b, meta = load_checkpoint(tmp_path / "spike_only.ckpt")
    assert meta["modality"] == "spike" and not hasattr(b.net, "rgb_encoder")
    with torch.no_grad():
        assert torch.equal(student_forward(a.net, x)[0], student_forward(b.net, x)[0])
    # errors: rgb has no spike path; size not a multiple of 32
    r = r2("export", "--checkpoint", ckpts["rgb"], "--format", "onnx", "--out", tmp_path / "r.onnx")
    assert r.returncode == 2 and "no spike-only network" in r.stderr and not (tmp_path / "r.onnx").exists()
    r = r2(
        "export",
        "--checkpoint",
        ckpts["spike"],
        "--format",
        "onnx",
        "--out",
        tmp_path / "x.onnx",
        "--net-size",
        "50x64",
    )
    assert r.returncode == 2 and "multiples of 32" in r.stderr
