"""RGB frames cached at the training size (``r2sdepth cache-frames``, ``data.frame_cache``): the same
samples as reading the images, the same weights after a real ``Trainer.fit``, and one-line errors for
a missing, stale or damaged cache."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from r2sdepth.data.dataset import SampleOptions, SplitDataset
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.frame_cache import cache_paths, write_cache
from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.simulate import SimParams

DRIVE = "2000_01_01/2000_01_01_drive_0000_sync"


def r2(*args):
    return subprocess.run(["r2sdepth", *map(str, args)], capture_output=True, text=True)


def _dataset(root, cache, augment=True):
    opts = DriveOptions(
        root, height=32, width=64, window=16, sim=SimParams(planes_per_frame=16), seed=3, frame_cache=cache
    )
    return SplitDataset(opts, root / "splits" / "train_files.txt", SampleOptions(augment=augment))


def test_cached_samples_equal_the_read_samples_and_stale_caches_are_refused(synth, tmp_path):
    """Frames resized 64x96 -> 32x64 (PIL's bilinear, the reader's own): every tensor of every sample
    (RGB stack, the spike window simulated from the frames, intrinsics, flips and jitter) is the same
    with the cache as without; a frame added after caching makes the cache stale."""
    root = tmp_path / "root"
    shutil.copytree(synth, root)
    cache = tmp_path / "cache"
    r = r2("cache-frames", "--data", root, "--out", cache, "--size", "32x64", "--cameras", "02")
    assert r.returncode == 0, r.stderr
    assert "cached 3 drive camera(s) at 32x64" in r.stdout
    arr = np.load(cache_paths(cache, DRIVE, "02", (32, 64))[0])
    assert arr.shape == (5, 32, 64, 3) and arr.dtype == np.uint8
    plain, cached = _dataset(root, None), _dataset(root, cache)
    assert len(plain) == len(cached) >= 3
    flips = 0
    for i in range(len(plain)):
        a, b = plain[i], cached[i]
        assert a.keys() == b.keys()
        for k, v in a.items():
            if isinstance(v, torch.Tensor):
                assert torch.equal(v, b[k]), (i, k)
        flips += int(not torch.equal(a["K"], _dataset(root, None, augment=False)[i]["K"]))
    assert flips > 0  # some samples were mirrored, and they match too
    # a frame that appeared after caching: refused, never read in part
    img = root / DRIVE / "image_02" / "data"
    shutil.copy(img / "0000000004.png", img / "0000000005.png")
    with pytest.raises(R2SDepthError, match="stale frame cache .5 frames cached, 6 on disk"):
        _dataset(root, cache)[0]
    # a rerun rewrites only the stale drive camera (resumable): the others keep their files
    others = [p for p in cache.rglob("32x64.npy") if DRIVE not in str(p)]
    stamps = {p: p.stat().st_mtime_ns for p in others}
    r = r2("cache-frames", "--data", root, "--out", cache, "--size", "32x64", "--cameras", "02")
    assert r.returncode == 0 and "(1 written, 2 already up to date)" in r.stdout, r.stdout + r.stderr
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert np.load(cache_paths(cache, DRIVE, "02", (32, 64))[0]).shape[0] == 6
    _dataset(root, cache)[0]  # fresh again
    with pytest.raises(R2SDepthError, match="no 32x64 frame cache for this drive"):
        _dataset(root, tmp_path / "elsewhere")[0]


def test_training_with_the_cache_through_the_cli_gives_the_same_weights(synth, tmp_path):
    cache = tmp_path / "cache"
    assert r2("cache-frames", "--data", synth, "--out", cache, "--size", "64x64").returncode == 0
    common = [
        "--config", "train_spike_synth", "--data.root", synth, "--data.height", "64", "--data.width", "64",
        "--data.train_split", synth / "splits" / "train_files.txt", "--data.val_split", "null",
        "--data.num_workers", "0", "--data.window", "32", "--data.sim.planes_per_frame", "32",
        "--model.width", "8", "--model.decoder_width", "4", "--pose.width", "8",
        "--trainer.max_steps", "2", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    weights = {}
    for name, extra in {"read": [], "cached": ["--data.frame_cache", cache]}.items():
        r = r2("train", "--out", tmp_path / name, *common, *extra)
        assert r.returncode == 0, r.stderr[-3000:]
        ck = torch.load(tmp_path / name / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
        weights[name] = ck["state_dict"]
    assert all(torch.equal(v, weights["cached"][k]) for k, v in weights["read"].items())
    # a window the spike representation cannot split: one line before any data is read
    r = r2("train", "--out", tmp_path / "w", *common, "--data.window", "16")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "data.window 16 must be a multiple of model.spike_repr.chunks x bins = 4 x 8" in r.stderr
    # the wrong size: one line, no traceback
    r = r2("train", "--out", tmp_path / "bad", *common, "--data.frame_cache", cache, "--data.width", "96")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "no 64x96 frame cache for this drive" in r.stderr
    r = r2("train", "--out", tmp_path / "small", *common, "--data.height", "32")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "data.height x data.width 32x64 must be multiples of 32 and at least 64" in r.stderr


def test_damaged_caches_and_bad_input_are_one_line_errors(synth, tmp_path):
    cache = tmp_path / "cache"
    assert r2("cache-frames", "--data", synth, "--out", cache, "--size", "32x64").returncode == 0
    arr_p, meta_p = cache_paths(cache, DRIVE, "02", (32, 64))
    arr_p.write_bytes(arr_p.read_bytes()[:1000])  # truncated
    with pytest.raises(R2SDepthError, match="unreadable frame cache"):
        _dataset(synth, cache)[0]
    np.save(arr_p, np.zeros((5, 32, 64, 3), np.float32))
    with pytest.raises(R2SDepthError, match=r"holds float32 \(5, 32, 64, 3\), expected uint8"):
        _dataset(synth, cache)[0]

    def two_sizes(f):
        return np.zeros((32, 64, 3), np.float32), (64, 96) if f < 2 else (65, 96)

    with pytest.raises(R2SDepthError, match="frame 2 is 65x96, frame 0 64x96: a drive's frames must share"):
        write_cache(tmp_path / "c2", DRIVE, "02", (32, 64), [0, 1, 2], two_sizes)
    assert not any(p.is_file() for p in (tmp_path / "c2").rglob("*"))  # nothing half-written
    for args, msg in (
        (["--data", tmp_path / "nope", "--out", cache], "KITTI root folder not found"),
        (["--data", synth, "--out", cache, "--workers", "0"], "workers must be >= 1"),
    ):
        r = r2("cache-frames", *args)
        assert r.returncode != 0 and msg in r.stderr and "Traceback" not in r.stderr
