"""The spike reader's pieces against values worked out by hand: sidecar checks with their exact
messages and boundaries, window placement, spatial fitting, the summary of a stream, plane counts,
packing rules and the geometry checks of the decoder (mutants mutmut found surviving in
``spike/io.py``: ``docs/results/mutation/``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from r2sdepth.errors import R2SDepthError
from r2sdepth.spike import SpikeStream, write_dat
from r2sdepth.spike.io import (
    decode_planes,
    encode_planes,
    fit_spatial,
    read_sidecar,
    validate_sidecar,
    window_start,
)


@pytest.mark.parametrize(
    "key, value, why",
    [
        ("height", 0, "must be a positive integer"),
        ("width", -3, "must be a positive integer"),
        ("height", 2.0, "must be a positive integer"),
        ("width", True, "must be a positive integer"),
        *[
            (k, -1, "must be an integer >= 0")
            for k in (
                "head_cols",
                "frames",
                "bytes",
                "header_bytes",
                "stored_height",
                "stored_width",
                "row0",
                "col0",
            )
        ],
        ("head_cols", 1.5, "must be an integer >= 0"),
        ("rate_hz", 0, "must be a finite number > 0"),
        ("rate_hz", -20000.0, "must be a finite number > 0"),
        ("rate_hz", float("inf"), "must be a finite number > 0"),
        ("rate_hz", float("nan"), "must be a finite number > 0"),
        ("rate_hz", True, "must be a finite number > 0"),
        ("rate_hz", "20000", "must be a finite number > 0"),
        ("bitorder", "LITTLE", 'must be "little" or "big"'),
        ("flipud", "false", "must be true or false (a JSON boolean, not a string)"),
        ("flipud", 0, "must be true or false (a JSON boolean, not a string)"),
        ("frame_plane_index", [0, -1], "must be a list or object of integers >= 0"),
        ("frame_plane_index", {"0": 2, "1": 1.5}, "must be a list or object of integers >= 0"),
        ("frame_plane_index", "0 64", "must be a list or object of integers >= 0"),
    ],
)
def test_sidecar_values_are_refused_with_the_key_the_rule_and_the_value(key, value, why):
    with pytest.raises(R2SDepthError) as e:
        validate_sidecar({key: value}, "rec.json")
    assert str(e.value) == f"rec.json: {key} {why}, got {value!r}"
    with pytest.raises(R2SDepthError) as e:  # the default name of the file
        validate_sidecar({key: value})
    assert str(e.value).startswith(f"sidecar: {key} ")


def test_sidecar_boundaries_that_are_accepted():
    ok = {
        "height": 1,
        "width": 1,
        **dict.fromkeys(
            ("head_cols", "frames", "bytes", "header_bytes", "stored_height", "stored_width", "row0", "col0"),
            0,
        ),
        "rate_hz": 1e-9,
        "bitorder": "big",
        "flipud": False,
        "frame_plane_index": [0, 0, 5],
    }
    assert validate_sidecar(dict(ok)) == ok
    assert validate_sidecar({"frame_plane_index": {"3": 0, "4": 64}, "rate_hz": 20000}) is not None
    assert validate_sidecar({}) == {}


def test_sidecar_file_read_and_checked(tmp_path):
    s = tmp_path / "rec.dat"
    write_dat(s, np.zeros((2, 4, 8), np.uint8))
    sc = s.with_suffix(".json")
    assert read_sidecar(tmp_path / "none.dat") is None
    sc.write_text(json.dumps({"rate_hz": 20000, "flipud": "no"}))
    with pytest.raises(R2SDepthError, match="flipud must be true or false"):
        read_sidecar(s)


@pytest.mark.parametrize(
    "plane, length, align, start",
    [
        (100, 64, "end", 36),
        (100, 64, "center", 68),
        (100, 7, "center", 97),
        (5, 7, "center", 2),
        (0, 3, "end", -3),
    ],
)
def test_window_start_by_hand(plane, length, align, start):
    """``end``: the window's last plane is the one before the frame's; ``center``: the frame's
    plane sits at index ``length // 2`` of the window (odd lengths: the middle one)."""
    assert window_start(plane, length, align) == start
    assert window_start(plane, length) == plane - length  # the default is "end"


def test_window_start_refuses_other_alignments():
    with pytest.raises(ValueError, match="align must be 'end' or 'center', got 'middle'"):
        window_start(10, 4, "middle")


def test_fit_spatial_pads_with_the_last_row_and_column_and_resizes_by_floor():
    x = np.arange(6, dtype=np.uint8).reshape(1, 2, 3)  # [[0 1 2] [3 4 5]]
    pad = fit_spatial(x, (3, 5), "pad")
    assert pad.dtype == np.uint8
    assert pad.tolist() == [[[0, 1, 2, 2, 2], [3, 4, 5, 5, 5], [3, 4, 5, 5, 5]]]
    up = fit_spatial(x, (4, 3), "resize")  # rows floor(i * 2 / 4): 0 0 1 1
    assert up.tolist() == [[[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]]]
    wide = fit_spatial(x[0], (2, 6), "resize")  # 2-D input; columns floor(j * 3 / 6): 0 0 1 1 2 2
    assert wide.tolist() == [[0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5]]
    down = fit_spatial(np.arange(16).reshape(4, 4), (2, 2), "resize")  # rows and columns 0, 2
    assert down.tolist() == [[0, 2], [8, 10]]
    assert fit_spatial(x, (2, 3), "pad") is x


def test_stream_summary_plane_counts_and_windows_by_hand(tmp_path):
    rng = np.random.default_rng(0)
    planes = (rng.random((10, 4, 8)) < 0.25).astype(np.uint8)
    p = tmp_path / "s.dat"
    write_dat(p, planes, rate_hz=20000.0)
    s = SpikeStream(p, 4, 8, rate_hz=20000.0)
    counts = s.plane_counts(chunk=3)  # chunks of 3, 3, 3, 1 planes
    assert counts.dtype == np.int64 and counts.tolist() == [int(planes[t].sum()) for t in range(10)]
    st = s.stats(chunk=4)
    rates = planes.reshape(10, -1).mean(1)
    assert st == {
        "path": str(p),
        "frames": 10,
        "height": 4,
        "width": 8,
        "rate_hz": 20000.0,
        "duration_s": pytest.approx(10 / 20000.0),
        "mean_rate": pytest.approx(rates.mean()),
        "frame_rate_min": pytest.approx(rates.min()),
        "frame_rate_max": pytest.approx(rates.max()),
        "bitorder": "little",
        "flipud": True,
        "head_cols": 0,
        "header_bytes": 0,
        "stored_size": [4, 8],
        "image_offset": [0, 0],
        "ignored_bytes": 0,
    }
    got = [(t0, w.shape[0]) for t0, w in s.windows(4, 3)]
    assert got == [(0, 4), (3, 4), (6, 4)]  # 9 + 4 > 10: dropped
    got = [(t0, w.shape[0]) for t0, w in s.windows(4, 3, drop_last=False)]
    assert got == [(0, 4), (3, 4), (6, 4), (9, 1)]
    assert [t0 for t0, _ in s.windows(10)] == [0]  # a window as long as the stream
    assert [t0 for t0, _ in s.windows(1, start=8)] == [8, 9]
    with pytest.raises(ValueError, match="window length must be positive"):
        next(s.windows(0))
    with pytest.raises(R2SDepthError, match="window length 11 exceeds the stream"):
        next(s.windows(11))


def test_encode_planes_reads_any_nonzero_as_a_spike():
    """bool, 0/1 uint8, uint8 above 1 and other dtypes pack alike (nonzero = spike); by hand, the
    little bit order puts pixel 0 in bit 0."""
    one = np.zeros((1, 1, 8), np.uint8)
    one[0, 0, [0, 3]] = 1
    assert encode_planes(one, flipud=False).tolist() == [[0b00001001]]
    assert encode_planes(one, flipud=False, bitorder="big").tolist() == [[0b10010000]]
    for x in (one.astype(bool), one * 7, one.astype(np.int16) * -2, one.astype(np.float32) * 0.5):
        assert encode_planes(x, flipud=False).tolist() == [[0b00001001]], x.dtype
    assert encode_planes(np.zeros((1, 1, 8), np.uint8), flipud=False).tolist() == [[0]]
    assert encode_planes(np.ones((1, 1, 8), np.uint8), flipud=False).tolist() == [[255]]
    with pytest.raises(ValueError, match=r"spikes must be \[T, H, W\], got shape \[8\]"):
        encode_planes(np.zeros(8))
    with pytest.raises(ValueError, match="bitorder must be 'little' or 'big', got 'middle'"):
        encode_planes(one, bitorder="middle")


def test_decode_planes_geometry_checks_and_crops_by_hand():
    """A 2 x 16 stored plane (16-bit rows) holding a 2 x 8 image at column 8 of each row (e.g. a
    camera's head columns first): rows flipped, the image's bytes only."""
    packed = np.array([[0x00, 0b00000001, 0x00, 0b10000000]], np.uint8)  # row 0: col 8; row 1: col 15
    got = decode_planes(packed, 2, 8, stored_width=16, col0=8)
    assert got.tolist() == [[[0, 0, 0, 0, 0, 0, 0, 1], [1, 0, 0, 0, 0, 0, 0, 0]]]  # flipped: row 1 first
    got = decode_planes(packed, 2, 8, stored_width=16, col0=8, flipud=False)
    assert got.tolist() == [[[1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1]]]
    got = decode_planes(packed, 2, 8, head_cols=8)  # head columns after the image: columns 0-7, all 0
    assert got.tolist() == [[[0, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0]]]
    one_row = decode_planes(packed, 1, 8, stored_height=2, stored_width=16, col0=8, row0=1)
    assert one_row.tolist() == [[[1, 0, 0, 0, 0, 0, 0, 0]]]  # after the flip, stored row 0 is image row 1
    for kw, msg in [
        ({"row0": -1, "stored_height": 2}, "does not fit"),
        ({"row0": 1}, "does not fit"),
        ({"col0": -1, "stored_width": 16}, "does not fit"),
        ({"col0": 9, "stored_width": 16}, "does not fit"),
    ]:
        with pytest.raises(ValueError, match=msg):
            decode_planes(packed, 2, 8, **kw)
    with pytest.raises(ValueError, match=r"packed planes must be \[T, 4\], got \[1, 3\]"):
        decode_planes(packed[:, :3], 2, 8, stored_width=16)
    with pytest.raises(ValueError, match=r"packed planes must be \[T, 4\], got \[4\]"):
        decode_planes(packed[0], 2, 8, stored_width=16)
