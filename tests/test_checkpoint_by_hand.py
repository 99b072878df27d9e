"""checkpoint.py against values worked out by hand: the tensor checksum against hashlib over the
documented byte layout, the trained-window description, the window rule and the rate warning at
their boundaries, and what a failed write leaves behind."""

import hashlib
import warnings

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
