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


def _stored(tmp_path, name: str, planes: np.ndarray, header: int = 0, **sidecar) -> tuple:
    """A stream whose stored planes are ``planes`` (``[T, Hs, Ws]`` 0/1) packed little-endian and
    flipped, each behind ``header`` bytes, with ``sidecar`` as its JSON; returns its path."""
    packed = encode_planes(planes)
    rows = np.concatenate([np.full((len(packed), header), 0xAB, np.uint8), packed], 1) if header else packed
    p = tmp_path / f"{name}.dat"
    p.write_bytes(rows.tobytes())
    if sidecar:
        p.with_suffix(".json").write_text(json.dumps(sidecar))
    return p


def test_every_layout_key_of_the_sidecar_takes_effect(tmp_path):
    """A 2 x 8 image at row 1, column 8 of a 4 x 16 stored plane behind a 3-byte header, big bit
    order, rows stored top first: read from the sidecar alone it equals the explicit arguments and
    the image cut out by hand."""
    rng = np.random.default_rng(1)
    stored = (rng.random((3, 4, 16)) < 0.5).astype(np.uint8)
    big = np.packbits(stored.reshape(3, -1), axis=1, bitorder="big")  # no flip: rows top first
    p = tmp_path / "v.dat"
    p.write_bytes(np.concatenate([np.zeros((3, 3), np.uint8), big], 1).tobytes())
    layout = {
        "height": 2,
        "width": 8,
        "bitorder": "big",
        "flipud": False,
        "header_bytes": 3,
        "stored_height": 4,
        "stored_width": 16,
        "row0": 1,
        "col0": 8,
    }
    p.with_suffix(".json").write_text(json.dumps(layout))
    s = SpikeStream(p)
    want = stored[:, 1:3, 8:16]
    assert np.array_equal(s[:], want)
    assert (s.bitorder, s.flipud, s.header_bytes, s.row0, s.col0) == ("big", False, 3, 1, 8)
    assert (s.stored_height, s.stored_width, s.frame_nbytes, s.plane_stride) == (4, 16, 8, 11)
    p.with_suffix(".json").unlink()
    explicit = SpikeStream(
        p,
        2,
        8,
        bitorder="big",
        flipud=False,
        header_bytes=3,
        stored_height=4,
        stored_width=16,
        row0=1,
        col0=8,
    )
    assert np.array_equal(explicit[:], want)
    # head columns from the sidecar: the image is the first 8 of 12 stored columns
    img = (rng.random((2, 3, 12)) < 0.5).astype(np.uint8)
    q = _stored(tmp_path, "h", img, height=3, width=8, head_cols=4)
    assert np.array_equal(SpikeStream(q)[:], img[:, :, :8]) and SpikeStream(q).stored_width == 12


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"head_cols": -1}, "head_cols must be an integer >= 0, got -1"),
        ({"header_bytes": True}, "header_bytes must be an integer >= 0, got True"),
        ({"row0": 1.0}, "row0 must be an integer >= 0, got 1.0"),
        ({"col0": -2}, "col0 must be an integer >= 0, got -2"),
        ({"stored_height": -1}, "stored_height must be an integer >= 0, got -1"),
        ({"stored_width": -1}, "stored_width must be an integer >= 0, got -1"),
        ({"head_cols": 4, "stored_width": 16}, "head_cols 4 and stored_width 16 disagree"),
        ({"row0": 1}, "the 2x8 image at row 1, column 0 does not fit the stored 2x8 plane"),
        ({"col0": 1}, "the 2x8 image at row 0, column 1 does not fit the stored 2x8 plane"),
        ({"bitorder": "middle"}, "bitorder must be 'little' or 'big'"),
        ({"rate_hz": 0.0}, "rate must be a finite number > 0, got 0.0"),
        ({"rate_hz": float("nan")}, "rate must be a finite number > 0, got nan"),
    ],
)
def test_stream_layout_errors_name_the_option_and_value(tmp_path, kw, msg):
    p = _stored(tmp_path, "e", np.zeros((2, 2, 8), np.uint8))
    with pytest.raises(R2SDepthError) as e:
        SpikeStream(p, 2, 8, **kw)
    assert str(e.value) == f"{p}: {msg}" or str(e.value).startswith(f"{p}: {msg}")


def test_stream_geometry_from_arguments_and_sidecar(tmp_path):
    p = _stored(tmp_path, "g", np.zeros((2, 2, 8), np.uint8), height=2, width=8)
    assert (SpikeStream(p).height, SpikeStream(p).width) == (2, 8)
    assert len(SpikeStream(p, 2, 8)) == 2  # agreeing arguments are fine
    for h, w in ((4, 8), (2, 4)):
        with pytest.raises(R2SDepthError) as e:
            SpikeStream(p, h, w)
        assert str(e.value) == (
            f"{p}: stream geometry {h}x{w} does not match its sidecar's 2x8 "
            "(drop the geometry options or fix the sidecar)"
        )
    q = _stored(tmp_path, "n", np.zeros((2, 2, 8), np.uint8))
    for h, w in ((None, 8), (2, None), (None, None)):
        with pytest.raises(R2SDepthError, match=r"unknown geometry: no sidecar n\.json with height/width"):
            SpikeStream(q, h, w)
    for h, w in ((0, 8), (2, 0)):
        with pytest.raises(R2SDepthError, match=rf"unknown geometry|invalid geometry {h}x{w}"):
            SpikeStream(q, h, w)
    with pytest.raises(R2SDepthError, match=r"invalid geometry -2x8"):
        SpikeStream(q, -2, 8)
    with pytest.raises(R2SDepthError, match=r"invalid geometry 2x-8"):
        SpikeStream(q, 2, -8)


def test_stream_size_errors_by_hand(tmp_path):
    p = tmp_path / "t.dat"
    p.write_bytes(bytes(5))  # 2 x 8 planes are 2 bytes: 2 whole planes and 1 byte
    with pytest.raises(R2SDepthError) as e:
        SpikeStream(p, 2, 8)
    assert str(e.value) == (
        f"{p}: size 5 bytes is not a multiple of the frame size 2 bytes (2x8); 2 whole planes and a "
        "remainder of 1 bytes: truncated file or wrong geometry (--allow-partial reads the 2 whole planes)"
    )
    s = SpikeStream(p, 2, 8, allow_partial=True)
    assert (len(s), s.ignored_bytes) == (2, 1)
    assert SpikeStream(p, 2, 8, allow_partial=True, header_bytes=3).ignored_bytes == 0  # one 5-byte plane
    with pytest.raises(R2SDepthError) as e:
        SpikeStream(p, 8, 8, header_bytes=1)
    assert str(e.value) == (
        f"{p}: geometry 8x8 + 1 header needs 9 bytes per plane but the file has 5: wrong geometry or truncated file"
    )
    p.with_suffix(".json").write_text(json.dumps({"frames": 3}))
    with pytest.raises(R2SDepthError) as e:
        SpikeStream(p, 2, 8, allow_partial=True)
    assert str(e.value) == f"{p}: holds 2 frames but its sidecar says 3: truncated or mismatched file"


def test_stream_indexing_by_hand(tmp_path):
    planes = np.zeros((3, 2, 8), np.uint8)
    for t in range(3):
        planes[t, 0, t] = 1
    p = _stored(tmp_path, "i", planes)
    s = SpikeStream(p, 2, 8)
    assert np.array_equal(s[0], planes[0]) and np.array_equal(s[2], planes[2])
    assert np.array_equal(s[-1], planes[2]) and np.array_equal(s[-3], planes[0])
    assert np.array_equal(s[np.int64(1)], planes[1])
    assert np.array_equal(s[::2], planes[::2]) and np.array_equal(s[1:], planes[1:])
    for k in (3, -4):
        with pytest.raises(R2SDepthError) as e:
            s[k]
        assert str(e.value) == f"{p}: frame {k} out of range for a stream of 3 frames"
    with pytest.raises(TypeError) as e:
        s["0"]
    assert str(e.value) == "SpikeStream indices must be int or slice, not str"


@pytest.mark.parametrize("fpi", [[2, 4, 6], {"0": 2, "1": 4, "2": 6}])
def test_windows_of_rgb_frames_by_hand(tmp_path, fpi):
    """Frame f is reached at plane fpi[f]: its end-aligned window of L planes is [fpi - L, fpi),
    its centred one starts at fpi - L // 2; windows that leave the 8-plane stream are refused."""
    planes = np.zeros((8, 2, 8), np.uint8)
    for t in range(8):
        planes[t, 1, t] = 1
    p = _stored(tmp_path, "f", planes, height=2, width=8, frame_plane_index=fpi)
    s = SpikeStream(p)
    assert s.frame_plane_index(1) == 4
    assert np.array_equal(s.window_for_frame(1, 2), planes[2:4])
    assert np.array_equal(s.window_for_frame(0, 2), planes[0:2])  # starts at plane 0
    assert np.array_equal(s.window_for_frame(1, 3, align="center"), planes[3:6])
    assert np.array_equal(s.window_for_frame(2, 4, align="center"), planes[4:8])  # ends at the last plane
    with pytest.raises(R2SDepthError) as e:
        s.window_for_frame(0, 3)
    assert (
        str(e.value) == f"{p}: the 3-plane window (end) of RGB frame 0 [-1, 2) leaves the stream of 8 planes"
    )
    with pytest.raises(R2SDepthError) as e:
        s.window_for_frame(2, 6, align="center")
    assert (
        str(e.value)
        == f"{p}: the 6-plane window (center) of RGB frame 2 [3, 9) leaves the stream of 8 planes"
    )
    for frame in (3, -1):
        with pytest.raises(R2SDepthError) as e:
            s.frame_plane_index(frame)
        assert str(e.value) == f"{p}: RGB frame {frame} is not in this stream"
    q = _stored(tmp_path, "nofpi", planes, height=2, width=8)
    with pytest.raises(R2SDepthError) as e:
        SpikeStream(q).frame_plane_index(0)
    assert str(e.value) == f"{q}: sidecar has no frame_plane_index: not aligned with RGB frames"


def test_sidecar_files_that_are_not_metadata(tmp_path, monkeypatch):
    import r2sdepth.spike.io as sio  # noqa: PLC0415

    p = _stored(tmp_path, "m", np.zeros((1, 2, 8), np.uint8))
    sc = p.with_suffix(".json")
    cases = [
        (b"\xff\xfe{}", f"{sc}: sidecar is not UTF-8 text (invalid start byte at byte 0)"),
        (b"[" * 100000 + b"]" * 100000, f"{sc}: sidecar JSON is nested too deeply"),
        (b"[1, 2]", f"{sc}: sidecar JSON must be an object"),
    ]
    for data, msg in cases:
        sc.write_bytes(data)
        with pytest.raises(R2SDepthError) as e:
            read_sidecar(p)
        assert str(e.value) == msg
    sc.write_bytes(b"{bad")
    with pytest.raises(R2SDepthError, match=rf"^{sc}: unreadable sidecar JSON \("):
        read_sidecar(p)
    sc.write_text(json.dumps({"height": 2}))
    monkeypatch.setattr(sio, "MAX_SIDECAR_BYTES", sc.stat().st_size)
    assert read_sidecar(p) == {"height": 2}  # exactly the limit is read
    monkeypatch.setattr(sio, "MAX_SIDECAR_BYTES", sc.stat().st_size - 1)
    with pytest.raises(R2SDepthError) as e:
        read_sidecar(p)
    assert str(e.value) == f"{sc}: sidecar of {sc.stat().st_size} bytes is too large to be metadata"
    sc.unlink()
    sc.mkdir()
    with pytest.raises(R2SDepthError) as e:
        read_sidecar(p)
    assert str(e.value) == f"{sc}: sidecar is not a regular file"


def _picture(h: int = 32, w: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return 0.5 + 0.4 * np.sin(x / 6.0) * np.cos(y / 7.0)


def test_layout_plausibility_by_hand():
    """The smaller adjacent-pixel correlation (numpy's corrcoef, computed here), divided by the byte
    seam when it exceeds 1; 0 for a constant image; a reversed bit order's seam lowers the score."""
    img = _picture()
    cv = np.corrcoef(img[1:].ravel(), img[:-1].ravel())[0, 1]
    ch = np.corrcoef(img[:, 1:].ravel(), img[:, :-1].ravel())[0, 1]
    from r2sdepth.spike.io import layout_plausibility  # noqa: PLC0415

    step = np.abs(np.diff(img, axis=1))
    seam_cols = np.arange(step.shape[1]) % 8 == 7
    seam = step[:, seam_cols].mean() / step[:, ~seam_cols].mean()
    want = min(cv, ch) / seam if seam > 1 else min(cv, ch)
    assert layout_plausibility(img) == pytest.approx(want, rel=1e-9)
    assert layout_plausibility(np.full((8, 16), 0.3)) == 0.0
    # bytes read in the wrong bit order: each 8-column block reversed
    rev = img.reshape(32, 6, 8)[:, :, ::-1].reshape(32, 48)
    assert layout_plausibility(rev) < 0.5 * layout_plausibility(img)
    rng = np.random.default_rng(0)
    assert layout_plausibility(rng.random((32, 48))) < 0.1  # unrelated neighbours


def _rate_stream(tmp_path, name: str, img: np.ndarray, planes: int, sidecar: bool = False, **kw):
    rng = np.random.default_rng(1)
    spikes = (rng.random((planes, *img.shape)) < img).astype(np.uint8)
    p = tmp_path / f"{name}.dat"
    write_dat(p, spikes, **kw)
    if not sidecar and p.with_suffix(".json").exists():
        p.with_suffix(".json").unlink()
    return p, spikes


def test_warn_layout_scores_the_first_planes_and_warns_with_the_reason(tmp_path):
    import warnings  # noqa: PLC0415

    from r2sdepth.errors import R2SDepthWarning  # noqa: PLC0415
    from r2sdepth.spike.io import PLAUSIBLE, layout_plausibility, warn_layout  # noqa: PLC0415

    img = _picture()
    good, spikes = _rate_stream(tmp_path, "good", img, 96)
    noise = np.random.default_rng(2).random((32, 48))
    s = SpikeStream(good, 32, 48)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        score = warn_layout(s)
    assert score == pytest.approx(layout_plausibility(spikes[:64].mean(0)), rel=1e-9) and score > PLAUSIBLE
    assert warn_layout(s, planes=10) == pytest.approx(layout_plausibility(spikes[:10].mean(0)), rel=1e-9)
    assert warn_layout(s, planes=500) == pytest.approx(layout_plausibility(spikes.mean(0)), rel=1e-9)
    bad, _ = _rate_stream(tmp_path, "bad", noise, 64)
    b = SpikeStream(bad, 32, 48)
    with pytest.warns(R2SDepthWarning) as rec:
        score = warn_layout(b)
    assert score < PLAUSIBLE and len(rec) == 1
    assert str(rec[0].message) == (
        f"{bad}: decoded as 32x48 (little bit order) it does not look like a picture (plausibility "
        f"{score:.2f} < {PLAUSIBLE}): wrong geometry or variant? r2sdepth info --probe {bad} lists the likely ones"
    )
    with_meta, _ = _rate_stream(tmp_path, "meta", noise, 64, sidecar=True, rate_hz=20000.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert warn_layout(SpikeStream(with_meta, 32, 48)) == 1.0  # a sidecar says what the file is


def test_probe_layouts_finds_the_written_layout_first(tmp_path):
    """A 250 x 400 recording written with the camera's layout: every candidate whose plane size
    divides the file is listed (both bit orders, with and without a 16-byte header), the true one
    first; an extra size is tried both ways round."""
    from r2sdepth.spike.io import probe_layouts  # noqa: PLC0415

    img = _picture(250, 400)
    p, spikes = _rate_stream(tmp_path, "cam", img, 64)
    rows = probe_layouts(p)
    best = rows[0]
    assert {
        k: best[k] for k in ("height", "width", "stored_height", "stored_width", "header_bytes", "bitorder")
    } == {
        "height": 250,
        "width": 400,
        "stored_height": 250,
        "stored_width": 400,
        "header_bytes": 0,
        "bitorder": "little",
    }
    assert best["planes"] == 64
    assert best["plausibility"] > 0.5 and all(r["plausibility"] <= best["plausibility"] for r in rows)
    keys = {(r["height"], r["width"], r["header_bytes"], r["bitorder"]) for r in rows}
    assert (250, 400, 0, "big") in keys and (400, 250, 0, "little") in keys  # the transposed size too
    size = p.stat().st_size
    for r in rows:
        stride = r["header_bytes"] + (r["stored_height"] * r["stored_width"] + 7) // 8
        assert size % stride == 0 and r["planes"] == size // stride
    assert len(keys) == len(rows)  # each candidate once
    few = probe_layouts(p, planes=1)
    assert len(few) == len(rows)
    extra = probe_layouts(p, extra=[(125, 800)])
    got = {(r["height"], r["width"]) for r in extra}
    assert (125, 800) in got and (800, 125) in got
    assert {(r["height"], r["width"]) for r in rows} < got


def test_writer_reader_edges_by_hand(tmp_path):
    """Reads at the stream's edges, the writer's sidecar and its refusals, each with its message;
    bytes per plane and the popcount table by hand."""
    from r2sdepth.spike import SpikeWriter  # noqa: PLC0415
    from r2sdepth.spike.io import SIDECAR_FORMAT, _popcount_table, frame_nbytes, read_dat  # noqa: PLC0415

    assert frame_nbytes(250, 400) == 12500 and frame_nbytes(250, 400, 16) == 13000 and frame_nbytes(3, 3) == 2
    pop = _popcount_table()
    assert pop.dtype == np.uint8 and pop.tolist() == [bin(i).count("1") for i in range(256)]
    planes = (np.random.default_rng(4).random((3, 2, 12)) < 0.5).astype(np.uint8)  # 24 bits: 3 bytes a plane
    p = tmp_path / "w.dat"
    with SpikeWriter(p, 2, 12, bitorder="big", flipud=False, rate_hz=500.0, meta={"note": "x"}) as w:
        w.append(planes[0])  # one [H, W] plane
        w.append(planes[1:])
        assert w.frames == 3
        with pytest.raises(R2SDepthError) as e:
            w.append(np.zeros((1, 3, 12)))
        assert str(e.value) == f"{p}: chunk of shape [1, 3, 12] does not match the stream geometry [T, 2, 12]"
        for bad in (np.zeros((1, 4), np.uint8), np.zeros(3, np.uint8)):
            with pytest.raises(R2SDepthError) as e:
                w.append_packed(bad)
            assert str(e.value) == f"{p}: packed chunk must be [T, 3]"
        meta = w.sidecar_meta()
    assert meta["format"] == SIDECAR_FORMAT and meta["bitorder"] == "big" and meta["flipud"] is False
    assert meta["head_cols"] == 0 and meta["note"] == "x" and meta["height"] == 2 and meta["width"] == 12
    assert json.loads(p.with_suffix(".json").read_text())["frames"] == 3
    assert p.read_bytes() == np.packbits(planes.reshape(3, -1), axis=1, bitorder="big").tobytes()
    assert np.array_equal(read_dat(p), planes)  # 12 columns: not whole bytes per row
    out = np.empty((3, 2, 12), np.uint8)
    s = SpikeStream(p)
    assert np.array_equal(
        decode_planes(s.read_packed(0, 3), 2, 12, bitorder="big", flipud=False, out=out), planes
    )
    assert np.array_equal(out, planes)
    assert s.read(1, 1).shape == (0, 2, 12) and s.read_packed(3, 3).shape == (0, 3)
    for t0, t1 in ((-1, 2), (2, 1), (0, 4)):
        with pytest.raises(R2SDepthError) as e:
            s.read_packed(t0, t1)
        assert str(e.value) == f"{p}: window [{t0}, {t1}) out of range for a stream of 3 frames"
    assert repr(s).startswith(f"SpikeStream({str(p)!r}, frames=3, height=2")
    s.close()
    assert s._raw is None and s._mm is None
    s.close()  # twice is fine
    assert SpikeStream(p, rate_hz=0.5).rate_hz == 0.5
    # a camera-style variant through read_dat's options: big bit order, head columns, no flip
    h = tmp_path / "head.dat"
    stored = np.concatenate([planes, np.ones((3, 2, 4), np.uint8)], 2)  # 4 head columns after the image
    h.write_bytes(np.packbits(stored.reshape(3, -1), axis=1, bitorder="big").tobytes())
    assert np.array_equal(read_dat(h, 2, 12, bitorder="big", flipud=False, head_cols=4), planes)
    assert np.array_equal(read_dat(h, 2, 12, bitorder="big", flipud=False, stored_width=16, col0=0), planes)
    for bad, shape in ((np.zeros((0, 2, 8)), [0, 2, 8]), (np.zeros((2, 8)), [2, 8])):
        with pytest.raises(R2SDepthError) as e:
            write_dat(tmp_path / "x.dat", bad)
        assert (
            str(e.value) == f"{tmp_path / 'x.dat'}: spikes must be a non-empty [T, H, W] array, got {shape}"
        )
    assert write_dat(tmp_path / "one.dat", np.ones((1, 2, 8))).stat().st_size == 2  # a single plane
    with pytest.raises(ValueError, match="bitorder must be 'little' or 'big', got 'x'"):
        SpikeWriter(tmp_path / "y.dat", 2, 8, bitorder="x")
    with pytest.raises(R2SDepthError) as e:
        SpikeStream(tmp_path)
    assert str(e.value) == f"{tmp_path}: is a folder, not a spike .dat stream"


def test_writer_abort_leaves_nothing(tmp_path):
    from r2sdepth.spike import SpikeWriter  # noqa: PLC0415

    p = tmp_path / "a.dat"
    w = SpikeWriter(p, 2, 8)
    w.append(np.ones((2, 2, 8)))
    w.abort()
    w.abort()  # twice is fine
    assert list(tmp_path.iterdir()) == []
