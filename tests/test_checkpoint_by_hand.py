"""checkpoint.py against values worked out by hand: the tensor checksum against hashlib over the
documented byte layout, the trained-window description, the window rule and the rate warning at
their boundaries, and what a failed write leaves behind."""

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from r2sdepth.checkpoint import (
    CHECKSUM_KEY,
    RATE_TOLERANCE,
    check_window,
    load_file,
    rate_mismatch,
    save_atomic,
    state_checksum,
    trained_windows,
)
from r2sdepth.errors import R2SDepthError, R2SDepthWarning


def test_state_checksum_is_sha256_of_the_documented_layout():
    a = torch.tensor([1.0, -2.0], dtype=torch.float32)
    b = torch.arange(6, dtype=torch.int16).reshape(2, 3)
    e = torch.zeros(0, 4)
    state = {"z.b": b, "a.w": a, "empty": e, "step": 7}  # a non-tensor entry does not count
    h = hashlib.sha256()
    h.update(b"a.w|torch.float32|(2,)|" + np.array([1.0, -2.0], "<f4").tobytes())
    h.update(b"empty|torch.float32|(0, 4)|")
    h.update(b"z.b|torch.int16|(2, 3)|" + np.arange(6, dtype="<i2").tobytes())
    assert state_checksum(state) == h.hexdigest()
    # a transposed (non-contiguous) view hashes its values in row-major order, like a copy of it
    assert state_checksum({"x": b.t()}) == state_checksum({"x": b.t().contiguous()})
    # one flipped bit, a renamed key, another dtype or shape: another checksum
    flipped = a.clone()
    flipped.view(torch.int32)[0] ^= 1
    for other in ({**state, "a.w": flipped}, {"a.v": a, "empty": e, "z.b": b}, {**state, "a.w": a.double()},
                  {**state, "z.b": b.reshape(3, 2)}):  # fmt: skip
        assert state_checksum(other) != state_checksum(state)


def test_saved_checksum_is_verified_and_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "m.ckpt"
    save_atomic({"state_dict": {"w": torch.ones(3)}}, p)
    ck = load_file(p)
    assert ck[CHECKSUM_KEY] == state_checksum({"w": torch.ones(3)})
    tampered = dict(ck, state_dict={"w": torch.tensor([1.0, 1.0, 1.5])})
    torch.save(tampered, tmp_path / "t.ckpt")
    with pytest.raises(R2SDepthError, match="checksum mismatch"):
        load_file(tmp_path / "t.ckpt")
    assert load_file(tmp_path / "t.ckpt", verify=False)["state_dict"]["w"][2] == 1.5

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("r2sdepth.checkpoint.os.fsync", full)
    with pytest.raises(R2SDepthError, match="cannot write checkpoint .No space left"):
        save_atomic({"state_dict": {"w": torch.zeros(3)}}, p)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.ckpt", "t.ckpt"]  # no temporary file left
    assert torch.equal(load_file(p)["state_dict"]["w"], torch.ones(3))  # the previous file intact


def test_trained_windows_by_hand():
    cam = {"window": 64, "data": {"sim": {"camera_rate_hz": 20000.0, "planes_per_frame": 64}}}
    assert trained_windows(cam) == {
        "planes": 64,
        "rate_hz": 20000.0,
        "duration_s": 64 / 20000,
        "mode": "camera-rate",
    }
    # per-frame: P planes fill the 100 ms interval of a 10 Hz video -> 10 P planes per second
    pf = {"data": {"window": 32, "sim": {"planes_per_frame": 32, "video_fps": 10.0, "camera_rate_hz": 0.0}}}
    assert trained_windows(pf) == {"planes": 32, "rate_hz": 320.0, "duration_s": 0.1, "mode": "per-frame"}
    assert trained_windows({})["planes"] is None and trained_windows({})["duration_s"] is None


def test_check_window_multiples_and_the_trained_length():
    meta = {"window": 64, "model": {"spike_repr": {"chunks": 4, "bins": 8}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_window(meta, 64)  # the trained length: silent
    with pytest.warns(R2SDepthWarning, match="window 96 differs from the 64 planes"):
        check_window(meta, 96)
    for bad, near in ((48, "32 or 64"), (20, "32"), (0, "32"), (-32, "32")):
        with pytest.raises(R2SDepthError, match=f"multiples of 32 planes .e.g. {near}; trained on 64"):
            check_window(meta, bad)
    with pytest.raises(R2SDepthError, match="multiples of 32"):
        check_window(meta, True)
    small = {"model": {"spike_repr": {"chunks": 2, "bins": 4}}}
    check_window(small, 24)  # 8 planes per chunk x bin; no trained length recorded: no warning
    with pytest.raises(
        R2SDepthError, match="2 chunks x 4 bins, so it takes multiples of 8 planes .e.g. 8 or 16"
    ):
        check_window(small, 12)


def test_rate_mismatch_at_the_tolerance():
    meta = {"window": 64, "data": {"sim": {"camera_rate_hz": 20000.0, "planes_per_frame": 64}}}
    assert RATE_TOLERANCE == 1.5
    for ok in (20000.0, 30000.0, 20000.0 / 1.5):
        assert rate_mismatch(meta, ok, 64) is None
    slow = rate_mismatch(meta, 640.0, 64)  # 64 planes at 640/s last 100 ms
    assert slow.startswith(
        "the model was trained on 64-plane windows at 20000 planes/s (3.2 ms, a real camera's"
    )
    assert "this input's 64 planes at 640 planes/s last 100 ms" in slow and "camera_rate_hz 640" in slow
    assert rate_mismatch(meta, 30001.0, 64) is not None
    pf = {"window": 64, "data": {"sim": {"planes_per_frame": 64, "video_fps": 10.0}}}
    fast = rate_mismatch(pf, 20000.0, 64)
    assert "at 640 planes/s (100 ms, P planes spread over each 100 ms RGB frame interval" in fast


def test_pickled_objects_are_refused_in_process_and_bad_files_give_their_reason(tmp_path):
    """Loading never unpickles an arbitrary object (here a harmless ``datetime.date``: a loader without
    ``weights_only`` would return it); each bad file names what is wrong."""
    import datetime

    p = tmp_path / "hostile.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1)}, "payload": datetime.date(2020, 1, 1)}, p)
    with pytest.raises(
        R2SDepthError, match=r"refused: the checkpoint holds a pickled datetime\.date, which would run"
    ):
        load_file(p)
    with pytest.raises(R2SDepthError, match=r"missing\.ckpt: checkpoint not found"):
        load_file(tmp_path / "missing.ckpt")
    torch.save([1, 2], tmp_path / "list.ckpt")
    with pytest.raises(R2SDepthError, match=r"not a checkpoint \(a list, expected a dict\)"):
        load_file(tmp_path / "list.ckpt")
    (tmp_path / "junk.ckpt").write_bytes(b"not a zip and not a pickle")
    with pytest.raises(R2SDepthError, match=r"junk\.ckpt: unreadable checkpoint \(\w+: "):
        load_file(tmp_path / "junk.ckpt")


def test_state_dict_of_and_checkpoint_path(tmp_path, monkeypatch):
    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, checkpoint_path, state_dict_of

    assert state_dict_of({"state_dict": {"w": torch.ones(1)}}, "x")["w"].item() == 1.0
    for bad in ({}, {"state_dict": [1]}, {"state_dict": {"w": torch.ones(1), "step": 3}}):
        with pytest.raises(R2SDepthError, match="x: no state_dict of tensors in this checkpoint"):
            state_dict_of(bad, "x")
    monkeypatch.chdir(tmp_path)
    assert checkpoint_path("demo") == SHIPPED_CHECKPOINTS["demo"]
    assert checkpoint_path("nowhere.ckpt") == Path("nowhere.ckpt")  # not a shipped name: the path itself
    Path("demo").write_bytes(b"x")  # a file of that name here wins over the shipped model
    assert checkpoint_path("demo") == Path("demo")


def test_save_atomic_makes_its_folder_and_a_full_disk_at_the_temporary_file_is_one_error(
    tmp_path, monkeypatch
):
    save_atomic({"state_dict": {"w": torch.ones(1)}}, tmp_path / "a" / "b" / "m.ckpt")
    assert load_file(tmp_path / "a" / "b" / "m.ckpt")["state_dict"]["w"].item() == 1.0

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("r2sdepth.atomic.tempfile.mkstemp", full)
    with pytest.raises(R2SDepthError, match=r"m2\.ckpt: cannot write checkpoint \(No space left on device\)"):
        save_atomic({"state_dict": {}}, tmp_path / "m2.ckpt")
    assert not (tmp_path / "m2.ckpt").exists()


def test_window_defaults_and_the_suggested_lengths():
    from r2sdepth.checkpoint import trained_window

    bare: dict = {}  # no spike_repr recorded: the schema's 4 chunks x 8 bins
    with pytest.raises(
        R2SDepthError, match=r"4 chunks x 8 bins, so it takes multiples of 32 planes \(e\.g\. 96 or 128"
    ):
        check_window(bare, 100)
    assert trained_window({"window": 48, "data": {"window": 96}}) == 48
    assert trained_window({"data": {"window": 96}}) == 96
    assert trained_window({}) == 128  # the schema's data.window (config.py DataConfig)


def test_rate_mismatch_boundaries_and_durations():
    meta = {"window": 999, "data": {"sim": {"camera_rate_hz": 3000.0, "planes_per_frame": 64}}}
    assert rate_mismatch(meta, 2000.0, 999) is None  # 2000 / 3000 is exactly 1 / 1.5: inside
    long = rate_mismatch(
        {"window": 999, "data": {"sim": {"camera_rate_hz": 1000.0, "planes_per_frame": 64}}}, 100.0, 99
    )
    assert "(999 ms, a real camera's rate); this input's 99 planes at 100 planes/s last 990 ms" in long
    unknown = rate_mismatch({"data": {"sim": {"camera_rate_hz": 1000.0, "planes_per_frame": 64}}}, 100.0, 100)
    assert "trained on None-plane windows at 1000 planes/s (0 ms" in unknown


def test_shipped_models_by_hand():
    from r2sdepth.checkpoint import SHIPPED_CHECKPOINTS, shipped_models

    rows = {r["name"]: r for r in shipped_models()}
    assert set(rows) == set(SHIPPED_CHECKPOINTS)
    demo, real = rows["demo"], rows["real"]
    assert demo["path"] == str(SHIPPED_CHECKPOINTS["demo"]) and demo["modality"] == "spike"
    assert (demo["window_planes"], demo["planes_per_second"], demo["window_mode"]) == (64, 640.0, "per-frame")
    assert demo["window_s"] == pytest.approx(0.1) and demo["trained_size"] == [64, 224]
    assert (real["window_planes"], real["planes_per_second"], real["window_mode"]) == (
        64,
        20000.0,
        "camera-rate",
    )
    assert real["window_s"] == pytest.approx(64 / 20000) and real["trained_size"] == [64, 224]
    assert all({"units", "typical_scale", "trained_on"} <= set(r) for r in rows.values())


def test_lightning_checkpoint_io_saves_atomically_and_verifies(tmp_path):
    from r2sdepth.checkpoint import lightning_checkpoint_io

    io = lightning_checkpoint_io()
    p = tmp_path / "sub" / "last.ckpt"
    io.save_checkpoint({"state_dict": {"w": torch.ones(2)}, "global_step": 5}, p)  # makes the folder
    ck = io.load_checkpoint(p)
    assert ck["global_step"] == 5 and ck[CHECKSUM_KEY] == state_checksum({"w": torch.ones(2)})
    torch.save(dict(ck, state_dict={"w": torch.zeros(2)}), p)
    with pytest.raises(R2SDepthError, match="checksum mismatch"):
        io.load_checkpoint(p)
