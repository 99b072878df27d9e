import json
import subprocess

import numpy as np
import pytest
from PIL import Image

from r2sdepth import __version__
from r2sdepth.cli import main
from r2sdepth.spike import write_dat


def run_cli(*args):
    """Run the installed console script (the real entry point)."""
    return subprocess.run(["r2sdepth", *map(str, args)], capture_output=True, text=True)


def test_help_and_version():
    r = run_cli("--help")
    assert r.returncode == 0 and "reconstruct" in r.stdout and "simulate" in r.stdout
    r = run_cli("--version")
    assert r.returncode == 0 and __version__ in r.stdout


def test_info_json(tmp_path, capsys):
    s = (np.random.default_rng(0).random((20, 10, 16)) < 0.25).astype(np.uint8)
    write_dat(tmp_path / "s.dat", s, rate_hz=20000, sidecar=False)
    assert main(["info", str(tmp_path / "s.dat"), "--sensor", "10x16", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["frames"] == 20 and info["height"] == 10 and info["width"] == 16
    assert info["mean_rate"] == pytest.approx(s.mean())
    assert info["frame_rate_min"] == pytest.approx(s.mean(axis=(1, 2)).min())
    assert info["duration_s"] == pytest.approx(0.001)


def test_reconstruct_pngs_named_by_centre(tmp_path):
    s = (np.random.default_rng(0).random((64, 10, 16)) < 0.25).astype(np.uint8)
    write_dat(tmp_path / "s.dat", s)
    r = run_cli(
        "reconstruct",
        tmp_path / "s.dat",
        "--method",
        "tfi",
        "--window",
        "16",
        "--every",
        "16",
        "--out",
        tmp_path / "rec",
        "--gif",
        tmp_path / "rec.gif",
    )
    assert r.returncode == 0, r.stderr
    names = sorted(p.name for p in (tmp_path / "rec").iterdir())
    assert names == ["000008.png", "000024.png", "000040.png", "000056.png"]
    img = np.asarray(Image.open(tmp_path / "rec" / "000008.png"))
    assert img.dtype == np.uint8 and img.shape == (10, 16)
    assert (tmp_path / "rec.gif").stat().st_size > 0
    assert (
        main(["reconstruct", str(tmp_path / "s.dat"), "--index", "30", "--out", str(tmp_path / "one")]) == 0
    )
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["000030.png"]


def test_real_recording_reconstruct(shared_data, tmp_path):
    r = run_cli(
        "reconstruct",
        shared_data / "spike_real" / "car_250x400.dat",
        "--sensor",
        "250x400",
        "--index",
        "100",
        "--out",
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    img = np.asarray(Image.open(tmp_path / "000100.png"))
    assert img.shape == (250, 400) and img.std() > 20


def test_simulate_folder_then_info(tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 30, 3), 60 * i + 40, np.uint8)).save(frames / f"{i:03d}.png")
    r = run_cli(
        "simulate",
        frames,
        "--out",
        tmp_path / "s.dat",
        "--planes-per-frame",
        "32",
        "--size",
        "10x16",
        "--seed",
        "7",
    )
    assert r.returncode == 0, r.stderr
    r = run_cli("info", tmp_path / "s.dat", "--json")
    info = json.loads(r.stdout)
    assert info["frames"] == 96 and (info["height"], info["width"]) == (10, 16)  # pre-roll + 2 chunks of 32
    assert info["sidecar"]["seed"] == 7 and info["sidecar"]["planes_per_frame"] == 32


def test_errors_are_one_line(tmp_path):
    (tmp_path / "t.dat").write_bytes(b"\x00" * 12501)
    r = run_cli("info", tmp_path / "t.dat", "--sensor", "250x400")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "not a multiple of the frame size 12500" in r.stderr and "remainder of 1" in r.stderr
    r = run_cli("info", tmp_path / "t.dat")
    assert r.returncode == 2 and "unknown geometry" in r.stderr
    r = run_cli("simulate", tmp_path / "nothing", "--out", tmp_path / "o.dat")
    assert r.returncode == 2 and "no such file" in r.stderr
    assert not (tmp_path / "o.dat").exists()


def test_demo_runs_shipped_model(tmp_path):
    """The one-command demo: shipped spike-only model on an unseen synthetic scene."""
    r = run_cli("demo", "--out", tmp_path / "demo")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "demo"
    m = json.loads((out / "metrics.json").read_text())
    assert {"model", "baseline"} <= set(m) and "abs_rel" in m["model"] and "abs_rel" in m["baseline"]
    # the shipped model beats the mean-depth baseline clearly, and the median-scaled constant too
    assert m["model"]["abs_rel"] < 0.7 * m["baseline"]["abs_rel"]
    assert m["model"]["abs_rel"] < m["baseline_median_scaled"]["abs_rel"]
    assert m["info"]["frames"] == 24 and (out / "demo.gif").is_file()  # every frame has a window (pre-roll)
    assert (
        len(list((out / "depth").glob("*.npy"))) == 24
        and len(list((out / "depth_tiff").glob("*.tiff"))) == 24
    )
    assert not (out / "depth_png").exists()  # model units are not metric: no KITTI x256 PNGs
    assert "abs_rel" in r.stdout and "metrics.json" in r.stdout
