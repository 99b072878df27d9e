"""Real spike cameras: windows at the camera's rate, every .dat variant byte by byte, the layout
probe, fit-sim's recovery of known camera parameters, and the CLI's refusals and warnings."""

import json
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r2sdepth.errors import R2SDepthError
from r2sdepth.seeds import stable_seed
from r2sdepth.spike.fit import fit_sim
from r2sdepth.spike.io import SpikeStream, probe_layouts, write_dat
from r2sdepth.spike.simulate import SimParams, SpikeSimulator, frame_window, simulate_chunk, simulate_to_file


def run_cli(*args):
    return subprocess.run(["r2sdepth", *map(str, args)], capture_output=True, text=True)


# -- windows at the camera's rate ------------------------------------------------------------------


def _loop_reference(l0, l1, planes, rate, fps, theta, gain, v0):
    """Integrate-and-fire by a plain float64 loop over the planes, each plane's light taken at its
    own midpoint time (seconds) between the frames: an independent statement of camera-rate mode."""
    v = v0.astype(np.float64).copy()
    out = []
    interval = 1.0 / fps
    for k in range(planes):
        t_mid = interval - (planes - k - 0.5) / rate  # seconds after frame t-1
        a = t_mid / interval
        v += gain * ((1 - a) * l0 + a * l1)
        s = v >= theta
        out.append(s)
        v -= theta * s
    return np.array(out, np.uint8)


@pytest.mark.parametrize("rate,planes,fps", [(20000.0, 32, 10.0), (40000.0, 64, 10.0), (2000.0, 50, 20.0)])
def test_camera_rate_chunk_matches_a_plain_loop(rate, planes, fps):
    rng = np.random.default_rng(1)
    l0, l1 = rng.random((6, 10), np.float32), rng.random((6, 10), np.float32)
    p = SimParams(planes_per_frame=planes, camera_rate_hz=rate, video_fps=fps, gain=1.3)
    got = simulate_chunk(l0, l1, p, seed=4, sequence="q", frame=7)
    v0 = np.random.default_rng(stable_seed(4, "q", 7)).random((6, 10), np.float32) * np.float32(2.0)
    ref = _loop_reference(l0, l1, planes, rate, fps, 2.0, 1.3, v0)
    assert (got != ref).sum() <= 1  # float32 vs float64 ties at the threshold at most
    assert p.rate_hz == rate and p.window_mode == "camera-rate"
    # a ramp from dark to white: the window sees only the last P / rate seconds of it (mean light
    # 1 - span / 2), the per-frame mode sees the whole ramp (mean light 1 / 2)
    z, o = np.zeros((40, 40), np.float32), np.ones((40, 40), np.float32)
    span = planes * fps / rate
    snap = simulate_chunk(z, o, p, seed=4, frame=7)
    full = simulate_chunk(z, o, SimParams(planes_per_frame=planes, gain=1.3), seed=4, frame=7)
    assert snap.mean() == pytest.approx(0.65 * (1 - span / 2), abs=0.02)
    assert full.mean() == pytest.approx(0.65 * 0.5, abs=0.02)


def test_camera_rate_light_of_every_path_is_taken_at_the_plane_midpoint():
    """The noisy / flow paths (plane_luminance) and the torch backend take each plane's light from
    plane_fraction; checked against the midpoint time by hand and against the numpy bytes."""
    rng = np.random.default_rng(3)
    l0, l1 = rng.random((5, 9), np.float32), rng.random((5, 9), np.float32)
    p = SimParams(planes_per_frame=16, camera_rate_hz=20000.0)
    sim = SpikeSimulator(5, 9, p)
    for k, lk in enumerate(sim.plane_luminance(l0, l1)):
        a = (0.1 - (16 - k - 0.5) / 20000.0) / 0.1
        np.testing.assert_allclose(lk, (1 - a) * l0 + a * l1, atol=1e-6)
    pytest.importorskip("torch")
    got = simulate_chunk(l0, l1, p, seed=2, frame=1, backend="torch")
    ref = simulate_chunk(l0, l1, p, seed=2, frame=1)
    assert (got != ref).sum() <= 1


def test_camera_rate_refusals():
    with pytest.raises(R2SDepthError, match="longer than the"):
        SimParams(planes_per_frame=4000, camera_rate_hz=20000.0)  # 200 ms > the 100 ms between frames
    with pytest.raises(R2SDepthError, match="camera_rate_hz must be >= 0"):
        SimParams(camera_rate_hz=-1.0)
    p = SimParams(planes_per_frame=32, camera_rate_hz=20000.0)
    lum = lambda j: np.full((4, 8), 0.5, np.float32)  # noqa: E731
    with pytest.raises(R2SDepthError, match="camera-rate chunks hold 32 planes"):
        frame_window(lum, 3, 64, p)


def test_camera_rate_stream_equals_on_the_fly_and_says_so(tmp_path):
    rng = np.random.default_rng(2)
    frames = [rng.random((8, 16), np.float32) for _ in range(4)]
    p = SimParams(planes_per_frame=32, camera_rate_hz=20000.0)
    meta = simulate_to_file(
        [(f * 255).astype(np.uint8) for f in frames], tmp_path / "s.dat", p, seed=3, sequence="d"
    )
    assert meta["rate_hz"] == 20000.0 and meta["window_definition"] == "r2sdepth-rate-windows/1"
    assert meta["window_mode"] == "camera-rate"
    s = SpikeStream(tmp_path / "s.dat")
    lums = [np.asarray((f * 255).astype(np.uint8), np.float32) / 255 for f in frames]
    for t in range(4):
        ref = frame_window(lambda j: lums[j], t, 24, p, seed=3, sequence="d")
        assert np.array_equal(s.window_for_frame(t, 24), ref)


# -- .dat variants, byte by byte --------------------------------------------------------------------


def _pack_by_hand(planes, *, stored=None, offset=(0, 0), header=b"", order="little", flip=True, tail=b""):
    """Bytes of a .dat built pixel by pixel with Python ints (no numpy packing)."""
    t, h, w = planes.shape
    hs, ws = stored or (h, w)
    out = bytearray()
    for k in range(t):
        plane = np.zeros((hs, ws), np.uint8)
        plane[offset[0] : offset[0] + h, offset[1] : offset[1] + w] = planes[k]
        rows = plane[::-1] if flip else plane
        bits = [int(b) for b in rows.reshape(-1)]
        by = bytearray((len(bits) + 7) // 8)
        for i, b in enumerate(bits):
            if b:
                by[i // 8] |= (1 << (i % 8)) if order == "little" else (1 << (7 - i % 8))
        out += header + by
    return bytes(out + tail)


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"header": bytes(range(16))},
        {"stored": (7, 24), "offset": (2, 5)},
        {"stored": (5, 16), "offset": (0, 0)},  # head columns: the last ones of each stored row
        {"order": "big", "flip": False},
        {
            "stored": (9, 20),
            "offset": (3, 1),
            "header": b"\xff" * 16,
            "order": "big",
        },  # not whole bytes per row
    ],
)
def test_dat_variants_decode_exactly(tmp_path, variant):
    rng = np.random.default_rng(5)
    img = (rng.random((6, 5, 12)) < 0.4).astype(np.uint8)
    (tmp_path / "v.dat").write_bytes(_pack_by_hand(img, **variant))
    hs, ws = variant.get("stored", (5, 12))
    r0, c0 = variant.get("offset", (0, 0))
    s = SpikeStream(
        tmp_path / "v.dat",
        5,
        12,
        header_bytes=len(variant.get("header", b"")),
        stored_height=hs,
        stored_width=ws,
        row0=r0,
        col0=c0,
        bitorder=variant.get("order", "little"),
        flipud=variant.get("flip", True),
    )
    assert len(s) == 6 and np.array_equal(s.read(0, 6), img) and np.array_equal(s[::2], img[::2])
    assert np.array_equal(s.plane_counts(), img.sum(axis=(1, 2)))
    if variant == {"stored": (5, 16), "offset": (0, 0)}:
        assert np.array_equal(SpikeStream(tmp_path / "v.dat", 5, 12, head_cols=4).read(0, 6), img)


def test_incomplete_last_plane_refused_or_read_with_allow_partial(tmp_path):
    img = (np.random.default_rng(6).random((4, 8, 16)) < 0.3).astype(np.uint8)
    (tmp_path / "p.dat").write_bytes(_pack_by_hand(img, tail=b"\x01\x02\x03"))
    with pytest.raises(R2SDepthError, match="remainder of 3 bytes.*--allow-partial"):
        SpikeStream(tmp_path / "p.dat", 8, 16)
    s = SpikeStream(tmp_path / "p.dat", 8, 16, allow_partial=True)
    assert len(s) == 4 and s.ignored_bytes == 3 and np.array_equal(s.read(0, 4), img)
    r = run_cli("info", tmp_path / "p.dat", "--sensor", "8x16")
    assert r.returncode != 0 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("info", tmp_path / "p.dat", "--sensor", "8x16", "--allow-partial", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["frames"] == 4 and "last 3 bytes" in r.stderr


def test_image_outside_stored_plane_is_refused(tmp_path):
    (tmp_path / "x.dat").write_bytes(bytes(40))
    with pytest.raises(R2SDepthError, match="does not fit the stored"):
        SpikeStream(tmp_path / "x.dat", 5, 12, stored_height=5, stored_width=16, col0=8)


@settings(max_examples=40, deadline=None)
@given(
    t=st.integers(1, 4),
    h=st.integers(1, 9),
    w=st.integers(1, 19),
    extra_r=st.integers(0, 3),
    extra_c=st.integers(0, 9),
    header=st.sampled_from([0, 3, 16]),
    order=st.sampled_from(["little", "big"]),
    flip=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_any_layout_round_trips_through_the_hand_packer(
    tmp_path_factory, t, h, w, extra_r, extra_c, header, order, flip, seed
):
    rng = np.random.default_rng(seed)
    img = (rng.random((t, h, w)) < 0.5).astype(np.uint8)
    r0, c0 = int(rng.integers(0, extra_r + 1)), int(rng.integers(0, extra_c + 1))
    stored = (h + extra_r, w + extra_c)
    path = tmp_path_factory.mktemp("prop") / "p.dat"
    path.write_bytes(
        _pack_by_hand(img, stored=stored, offset=(r0, c0), header=bytes(header), order=order, flip=flip)
    )
    s = SpikeStream(
        path,
        h,
        w,
        header_bytes=header,
        stored_height=stored[0],
        stored_width=stored[1],
        row0=r0,
        col0=c0,
        bitorder=order,
        flipud=flip,
    )
    assert np.array_equal(s.read(0, t), img)


def _picture(h, w, t, seed=0):
    """Spike planes of a smooth picture (what a camera sees), rate in [0.05, 0.6]."""
    yy, xx = np.mgrid[0:h, 0:w]
    lum = 0.5 + 0.25 * np.sin(xx / 9.0) * np.cos(yy / 7.0) + 0.2 * (xx / w)
    sim = SpikeSimulator(h, w, SimParams(planes_per_frame=t, gain=1.0), seed=seed)
    sim.start(lum.astype(np.float32))
    return sim.advance(lum.astype(np.float32)).astype(np.uint8)


def test_probe_ranks_the_true_layout_first_and_cli_warns_on_the_wrong_way_round(tmp_path):
    img = _picture(48, 80, 64)
    (tmp_path / "u.dat").write_bytes(_pack_by_hand(img))
    rows = probe_layouts(tmp_path / "u.dat", [(48, 80)])
    best = rows[0]
    assert (best["height"], best["width"], best["bitorder"], best["header_bytes"]) == (48, 80, "little", 0)
    assert best["plausibility"] > 0.7 > max(r["plausibility"] for r in rows[1:])
    r = run_cli("info", tmp_path / "u.dat", "--probe", "--sensor", "48x80")
    assert (
        r.returncode == 0 and "--sensor 48x80 --header-bytes 0 --bitorder little" in r.stdout.splitlines()[1]
    )
    r = run_cli("info", tmp_path / "u.dat", "--sensor", "80x48")
    assert r.returncode == 0 and "does not look like a picture" in r.stderr and "--probe" in r.stderr
    r = run_cli("info", tmp_path / "u.dat", "--sensor", "48x80")
    assert "does not look like a picture" not in r.stderr


# -- fit-sim ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "truth",
    [
        dict(gain=1.0, dark_current=0.0, fpn_sigma=0.0),
        dict(gain=1.6, dark_current=0.1, fpn_sigma=0.05),
        dict(gain=0.8, dark_current=0.02, fpn_sigma=0.15),
    ],
)
def test_fit_sim_recovers_known_camera_parameters(tmp_path, truth):
    yy, xx = np.mgrid[0:120, 0:200]
    lum = (
        (0.45 + 0.3 * np.sin(xx / 13.0) * np.cos(yy / 11.0) + 0.2 * (yy / 120)).clip(0, 1).astype(np.float32)
    )
    p = SimParams(planes_per_frame=400, camera_rate_hz=20000.0, **truth)
    sim = SpikeSimulator(120, 200, p, seed=3)
    sim.start(lum)
    write_dat(tmp_path / "k.dat", sim.advance(lum), rate_hz=20000.0, sidecar=False)
    res = fit_sim(SpikeStream(tmp_path / "k.dat", 120, 200), reference=[lum])
    got = res["sim"]
    assert got["gain"] == pytest.approx(truth["gain"], rel=0.05)
    assert got["dark_current"] == pytest.approx(truth["dark_current"], abs=0.03)
    assert got["fpn_sigma"] == pytest.approx(truth["fpn_sigma"], abs=0.02)
    assert got["camera_rate_hz"] == 20000.0
    SimParams(**got)


def test_fit_sim_cli_writes_a_file_simulate_accepts(tmp_path):
    img = _picture(40, 64, 300)
    write_dat(tmp_path / "r.dat", img, rate_hz=40000.0, sidecar=False)
    r = run_cli(
        "fit-sim",
        tmp_path / "r.dat",
        "--sensor",
        "40x64",
        "--rate-hz",
        "40000",
        "--out",
        tmp_path / "cam.json",
    )
    assert r.returncode == 0, r.stderr
    cam = json.loads((tmp_path / "cam.json").read_text())
    assert cam["sim"]["camera_rate_hz"] == 40000.0 and "gain" not in cam["sim"]
    frames = tmp_path / "frames"
    frames.mkdir()
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((8, 16, 3), 60 * i + 40, np.uint8)).save(frames / f"{i}.png")
    r = run_cli(
        "simulate",
        frames,
        "--out",
        tmp_path / "s.dat",
        "--sim-params",
        tmp_path / "cam.json",
        "--planes-per-frame",
        "32",
        "--gain",
        "1.25",
    )
    assert r.returncode == 0, r.stderr
    sim = json.loads((tmp_path / "s.json").read_text())["simulator"]
    assert sim["camera_rate_hz"] == 40000.0 and sim["gain"] == 1.25 and sim["planes_per_frame"] == 32
    assert sim["fpn_sigma"] == cam["sim"]["fpn_sigma"]
    (tmp_path / "bad.json").write_text(json.dumps({"sim": {"gian": 2}}))
    r = run_cli("simulate", frames, "--out", tmp_path / "t.dat", "--sim-params", tmp_path / "bad.json")
    assert r.returncode != 0 and "did you mean 'gain'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "t.dat").exists()


def test_fit_sim_on_the_real_recording(shared_data, tmp_path):
    res = fit_sim(SpikeStream(shared_data / "spike_real" / "car_250x400.dat", 250, 400))
    assert res["sim"]["camera_rate_hz"] == 20000.0
    assert 0.0 <= res["sim"]["fpn_sigma"] < 0.1
    assert res["stats"]["mean_rate"] == pytest.approx(0.3662, abs=1e-3)  # r2sdepth info's figure
    assert res["stats"]["tfi_corr"] > 0.95


# -- infer on a real recording: refusals and warnings ----------------------------------------------


def test_infer_refuses_windows_the_network_cannot_take_and_warns_on_rate(shared_data, tmp_path):
    car = shared_data / "spike_real" / "car_250x400.dat"
    r = run_cli(
        "infer",
        "--checkpoint",
        "demo",
        "--input",
        car,
        "--sensor",
        "250x400",
        "--out",
        tmp_path / "o",
        "--window",
        "200",
    )
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "multiples of 32" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    r = run_cli(
        "infer",
        "--checkpoint",
        "demo",
        "--input",
        car,
        "--sensor",
        "250x400",
        "--out",
        tmp_path / "o",
        "--window",
        "96",
        "--net-size",
        "64x224",
    )
    assert r.returncode == 0, r.stderr
    assert "window 96 differs from the 64 planes" in r.stderr
    meta = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert meta["input_rate_hz"] == 20000.0 and meta["trained_windows"]["rate_hz"] == 640.0
    assert "640 planes/s" in r.stderr and "20000 planes/s" in r.stderr  # the demo model is per-frame


def test_infer_folder_of_recordings(tmp_path):
    img = _picture(32, 64, 128)
    (tmp_path / "in").mkdir()
    for n in ("a", "b"):
        write_dat(tmp_path / "in" / f"{n}.dat", img, rate_hz=640.0)
    r = run_cli(
        "infer",
        "--checkpoint",
        "demo",
        "--input",
        tmp_path / "in",
        "--out",
        tmp_path / "o",
        "--net-size",
        "64x224",
    )
    assert r.returncode == 0, r.stderr
    for n in ("a", "b"):
        assert json.loads((tmp_path / "o" / n / "summary.json").read_text())["outputs"] == 2
    assert "planes/s" not in r.stderr  # 640 planes/s: the demo model's own rate, no warning
    r = run_cli(
        "infer",
        "--checkpoint",
        "demo",
        "--input",
        tmp_path / "in",
        "--out",
        tmp_path / "o2",
        "--gif",
        tmp_path / "x.gif",
    )
    assert r.returncode != 0 and "one recording at a time" in r.stderr


def test_init_from_a_shipped_slim_model_copies_every_network_weight():
    """Fine-tuning a shipped model (e.g. on camera-rate windows) starts from all its weights: the
    slim file's names lack the Lightning module's ``net.`` prefix."""
    import torch

    from r2sdepth.checkpoint import checkpoint_path, load_file
    from r2sdepth.train.module import DepthModule

    path = checkpoint_path("demo")
    ck = load_file(path)
    m = DepthModule(
        model={k: v for k, v in ck["r2sdepth"]["model"].items() if k != "fusion"},
        pose={"width": 16},
        data={"window": 64},
    )
    names = m.init_from(str(path))
    assert len(names) == len(ck["state_dict"])
    for k, v in ck["state_dict"].items():
        assert torch.equal(m.state_dict()["net." + k], v)


def test_api_knows_the_trained_rate_and_warns_on_another():
    import warnings

    import r2sdepth
    from r2sdepth.errors import R2SDepthWarning

    m = r2sdepth.load_model("demo")
    win = _picture(32, 64, m.window)
    assert m.window_mode in ("per-frame", "camera-rate") and m.rate_hz > 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m.predict(win, rate_hz=m.rate_hz, net_size=m.trained_size)  # its own rate: silent
    with pytest.warns(R2SDepthWarning, match="planes/s"):
        m.predict(win, rate_hz=m.rate_hz * 4, net_size=m.trained_size)
