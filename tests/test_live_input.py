"""Inputs as a user meets them: a recording still being written (`infer --follow`, a writer
thread appending planes), `DepthModel.stream`, the trained-size default on a real KITTI frame,
names kept from the input, `--metric` on a model that is not metric."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.io import encode_planes

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
sys.path.insert(0, str(Path(__file__).parent))
from test_infer import r2, tiny_ckpt  # noqa: E402


@pytest.fixture(scope="module")
def spike_ckpt(tmp_path_factory):
    return tiny_ckpt(tmp_path_factory.mktemp("ck") / "spike.ckpt", "spike")


def test_follow_processes_a_recording_while_it_is_written(tmp_path, spike_ckpt):
    """A writer thread appends planes (in pieces that split planes) while `infer --follow` runs;
    every window is written as it arrives and equals `infer` on the finished file."""
    s = (np.random.default_rng(1).random((160, 40, 60)) < 0.2).astype(np.uint8)
    packed = encode_planes(s).tobytes()
    live = tmp_path / "live.dat"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "r2sdepth.cli",
            "infer",
            "--checkpoint",
            str(spike_ckpt),
            "--input",
            str(live),
            "--sensor",
            "40x60",
            "--out",
            str(tmp_path / "f"),
            "--follow",
            "--idle-timeout",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    seen_early = []

    def writer():
        time.sleep(1.0)  # the file does not exist when infer starts
        step = 1000  # bytes: 300 per plane, so most appends end inside a plane
        with open(live, "ab") as f:
            for i in range(0, len(packed), step):
                f.write(packed[i : i + step])
                f.flush()
                time.sleep(0.01)
                if i == 24000:  # 80 planes and a bit written: wait for the depth of their two windows
                    t_wait = time.monotonic()
                    while (
                        time.monotonic() - t_wait < 60 and len(list((tmp_path / "f").glob("depth/*.npy"))) < 2
                    ):
                        time.sleep(0.05)
                    seen_early.append(sorted(p.stem for p in (tmp_path / "f").glob("depth/*.npy")))

    t = threading.Thread(target=writer)
    t.start()
    out, err = proc.communicate(timeout=120)
    t.join()
    assert proc.returncode == 0, err
    assert "windows/s" in out and "latency median" in out
    summ = json.loads((tmp_path / "f" / "summary.json").read_text())
    assert summ["kind"] == "follow" and summ["names"] == ["000032", "000064", "000096", "000128", "000160"]
    assert summ["latency_s"]["median"] is not None and summ["latency_s"]["max"] < 60
    assert seen_early and seen_early[0] == ["000032", "000064"]  # depth came before the recording ended
    r = r2(
        "infer", "--checkpoint", spike_ckpt, "--input", live, "--sensor", "40x60", "--out", tmp_path / "done"
    )
    assert r.returncode == 0, r.stderr
    for n in summ["names"]:  # batches of 1 there, of 5 here: equal up to float rounding
        np.testing.assert_allclose(
            np.load(tmp_path / "f" / "depth" / f"{n}.npy"),
            np.load(tmp_path / "done" / "depth" / f"{n}.npy"),
            rtol=1e-5,
        )


def test_follow_latency_counts_from_when_a_plane_was_on_disk_not_when_it_was_read(tmp_path):
    """A follower that is busy while planes pile up must report the time since those planes were
    first on disk: here two windows are on disk at once, the consumer takes 0.3 s per window, so the
    second window has waited >= 0.3 s when it is handed out (the time of the hand-out is not it)."""
    from r2sdepth.data.sources import FollowSource, SourceOptions

    live = tmp_path / "live.dat"
    live.write_bytes(
        encode_planes((np.random.default_rng(0).random((32, 8, 16)) < 0.3).astype(np.uint8)).tobytes()
    )
    src = FollowSource(
        live, SourceOptions(window=16, stream_kw={"height": 8, "width": 16}, idle_timeout=0.2, poll=0.01)
    )
    t_on_disk = time.monotonic()
    waits = []
    for it in src.items():
        time.sleep(0.3)  # the model's time for one window
        waits.append(time.monotonic() - it.arrived)
    src.close()
    assert len(waits) == 2 and waits[0] >= 0.3 and waits[1] >= 0.6 and waits[1] - waits[0] >= 0.25, waits
    assert waits[1] < time.monotonic() - t_on_disk + 1.0  # not from some earlier clock


def test_follow_gives_up_on_a_file_that_never_appears_and_refuses_animations(tmp_path, spike_ckpt):
    follow = ["infer", "--checkpoint", spike_ckpt, "--input", tmp_path / "none.dat", "--sensor", "40x60"]
    follow += ["--out", tmp_path / "o", "--follow"]
    t0 = time.monotonic()
    r = r2(
        *follow,
        "--idle-timeout",
        "1",
    )
    assert (
        r.returncode == 2 and "no whole plane appeared within 1 s" in r.stderr and "Traceback" not in r.stderr
    )
    assert time.monotonic() - t0 < 60
    r = r2(
        *follow,
        "--gif",
        tmp_path / "a.gif",
    )
    assert r.returncode == 2 and "--follow" in r.stderr and "Traceback" not in r.stderr
    r = r2(
        *follow,
        "--idle-timeout",
        "nan",
    )
    assert r.returncode == 2 and "--idle-timeout" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()


def test_stream_api_yields_what_predict_gives_with_a_bounded_queue(spike_ckpt):
    import r2sdepth

    model = r2sdepth.load_model(spike_ckpt)
    wins = (np.random.default_rng(2).random((6, 32, 40, 60)) < 0.2).astype(np.uint8)
    pulled = []

    def camera():  # a producer that records how far ahead of the consumer it got
        for i, w in enumerate(wins):
            pulled.append(i)
            yield w

    got = []
    for d in model.stream(camera(), queue_size=2):
        time.sleep(0.05)
        got.append(d)
        assert len(pulled) <= len(got) + 2 + 1  # queue of 2, plus the window the reader holds
    assert len(got) == 6
    ref = model.predict(wins)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5)

    def broken():
        yield wins[0]
        raise OSError("camera unplugged")

    it = model.stream(broken())
    next(it)
    with pytest.raises(OSError, match="camera unplugged"):
        next(it)
    with pytest.raises(R2SDepthError, match="queue_size"):
        next(model.stream(iter(wins), queue_size=0))


def test_folder_outputs_keep_the_image_names_and_metric_warns(tmp_path, spike_ckpt):
    d = tmp_path / "imgs"
    d.mkdir()
    base = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    for i, name in enumerate(["a1", "a10", "a2", "b"]):
        Image.fromarray(np.roll(base, 2 * i, axis=1)).save(d / f"{name}.png")
    r = r2("infer", "--checkpoint", spike_ckpt, "--input", d, "--out", tmp_path / "o", "--metric")
    assert r.returncode == 0, r.stderr
    summ = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summ["names"] and set(summ["names"]) <= {"a1", "a10", "a2", "b"}
    assert sorted(p.stem for p in (tmp_path / "o" / "depth").glob("*.npy")) == sorted(summ["names"])
    assert "not be metres" in r.stderr and "--camera-height" in r.stderr  # an untrained, non-metric model


@pytest.mark.skipif(not (SHARED / "kitti_raw").is_dir(), reason="shared data absent")
def test_default_network_size_is_the_trained_size_on_a_kitti_frame(tmp_path):
    """`infer` without flags on full-size KITTI frames: the demo model sees them at its trained
    64x224 (what `--net-size 64x224` gives), and that scores better against LiDAR than padding."""
    from r2sdepth.data import kitti

    drive = SHARED / "kitti_raw" / "2011_09_26" / "2011_09_26_drive_0009_sync"
    frames = tmp_path / "frames"
    frames.mkdir()
    idx = [10, 11, 12]
    for i in idx:
        (frames / f"{i:010d}.png").write_bytes((drive / "image_02" / "data" / f"{i:010d}.png").read_bytes())
    runs = {"default": [], "net": ["--net-size", "64x224"], "pad": ["--fit", "pad"]}
    for name, extra in runs.items():
        r = r2("infer", "--checkpoint", "demo", "--input", frames, "--out", tmp_path / name, *extra)
        assert r.returncode == 0, r.stderr
    summ = json.loads((tmp_path / "default" / "summary.json").read_text())
    assert summ["network_size"] == [64, 224] and summ["fit"] == "resize" and summ["input_size"] == [375, 1242]
    assert summ["names"] == [
        f"{i:010d}" for i in idx
    ]  # names kept (the simulator's pre-roll gives frame 10 a window)
    abs_rel = {}
    for name in runs:
        errs = []
        for n in summ["names"]:
            pred = np.load(tmp_path / name / "depth" / f"{n}.npy")
            gt = kitti.gt_depth(SHARED / "kitti_raw", "2011_09_26/2011_09_26_drive_0009_sync", int(n))
            h, w = gt.shape
            crop = np.zeros_like(gt, bool)  # Garg crop (the Eigen protocol's), written out here
            crop[int(0.40810811 * h) : int(0.99189189 * h), int(0.03594771 * w) : int(0.96405229 * w)] = True
            m = (gt > 1e-3) & (gt < 80) & crop
            p = pred[m] * np.median(gt[m]) / np.median(pred[m])
            errs.append(float(np.mean(np.abs(p - gt[m]) / gt[m])))
        abs_rel[name] = float(np.mean(errs))
    for n in summ["names"]:
        np.testing.assert_array_equal(
            np.load(tmp_path / "default" / "depth" / f"{n}.npy"),
            np.load(tmp_path / "net" / "depth" / f"{n}.npy"),
        )
    assert abs_rel["default"] < abs_rel["pad"] - 0.02, abs_rel


def test_a_video_is_read_with_opencv_without_extras(tmp_path, spike_ckpt):
    """An MP4 written by OpenCV is read by the core install (no imageio plugin): frames in RGB order
    (the red ramp written in OpenCV's BGR comes back as red), and `infer` runs on it."""
    import cv2

    from r2sdepth.frames import iter_frames

    path = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for i in range(6):
        f = np.zeros((64, 96, 3), np.uint8)
        f[..., 2] = 40 * i  # BGR: red
        f[10:30, 10 + 5 * i : 30 + 5 * i] = 255
        w.write(f)
    w.release()
    frames = list(iter_frames(path))
    assert len(frames) == 6 and frames[0].shape == (64, 96, 3)
    for i, fr in enumerate(frames):
        assert abs(int(fr[50, 80, 0]) - 40 * i) <= 12 and fr[50, 80, 1:].max() <= 12, fr[50, 80]
    r = r2("infer", "--checkpoint", spike_ckpt, "--input", path, "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["outputs"] >= 4
