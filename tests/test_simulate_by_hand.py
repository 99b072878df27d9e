"""The simulator's pieces against values worked out by hand: luminance (ITU-R BT.601 weights, the
sRGB curve), where each plane takes its light between two frames, the camera parameters' checks
with their exact messages, and what a stream's sidecar records (mutants mutmut found surviving in
``spike/simulate.py``: ``docs/results/mutation/``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.simulate import SimParams, _flow_interpolator, _stream_meta, luminance, plane_fraction


def test_luminance_bt601_by_hand_for_every_input_kind():
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.2, 0.4, 0.6]]], np.float32)
    want = [0.299, 0.587, 0.114, 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6]
    got = luminance(rgb)
    assert got.dtype == np.float32 and got.shape == (1, 4)
    np.testing.assert_allclose(got[0], want, rtol=1e-6)
    np.testing.assert_allclose(luminance((rgb * 255).round().astype(np.uint8))[0], want, atol=1 / 255)
    u16 = np.array([[[65535, 0, 0], [0, 0, 65535]]], np.uint16)  # 65535 is 1, not 65535 / 65536
    assert luminance(u16)[0].tolist() == pytest.approx([0.299, 0.114], rel=1e-6)
    mid = luminance(np.array([[1000, 32768]], np.uint16))  # gray 16-bit, mid-range values
    assert mid.dtype == np.float32 and mid[0].tolist() == pytest.approx(
        [1000 / 65535, 32768 / 65535], rel=1e-6
    )
    g8 = luminance(np.array([[0, 51, 255]], np.uint8))
    assert g8.dtype == np.float32 and g8[0].tolist() == pytest.approx([0.0, 0.2, 1.0], rel=1e-6)
    assert luminance(np.array([[[0, 255, 0]]], np.uint8))[0, 0] == pytest.approx(0.587, rel=1e-6)
    rgba = np.concatenate([rgb, np.full((1, 4, 1), 0.9, np.float32)], 2)  # alpha is dropped
    np.testing.assert_allclose(luminance(rgba)[0], want, rtol=1e-6)
    one = np.array([[[0.25], [0.75]]], np.float32)  # [H, W, 1]: the channel itself
    assert luminance(one).tolist() == [[0.25, 0.75]]
    gray = np.array([[-0.5, 0.3, 1.7]], np.float64)  # clipped to [0, 1]
    assert luminance(gray)[0].tolist() == pytest.approx([0.0, 0.3, 1.0])
    assert luminance(gray).dtype == np.float32


def test_luminance_linearizes_with_the_srgb_curve_by_hand():
    x = np.array([[0.0, 0.02, 0.04045, 0.5, 1.0]], np.float32)
    want = [0.0, 0.02 / 12.92, 0.04045 / 12.92, ((0.5 + 0.055) / 1.055) ** 2.4, 1.0]
    np.testing.assert_allclose(luminance(x, linearize=True)[0], want, rtol=1e-5)
    assert luminance(x)[0].tolist() == pytest.approx(x[0].tolist())  # off by default
    assert ((0.5 + 0.055) / 1.055) ** 2.4 == pytest.approx(0.21404, abs=1e-5)  # the published value


def test_luminance_refuses_what_is_not_a_frame():
    with pytest.raises(R2SDepthError, match="^frame contains NaN or inf$"):
        luminance(np.array([[0.1, np.nan]]))
    with pytest.raises(R2SDepthError, match=r"^frame must be \[H, W\] or \[H, W, 3\], got shape \[4\]$"):
        luminance(np.zeros(4))
    with pytest.raises(
        R2SDepthError, match=r"^frame must be \[H, W\] or \[H, W, 3\], got shape \[1, 4, 2\]$"
    ):
        luminance(np.zeros((1, 4, 2)))


@pytest.mark.parametrize(
    "k, planes, span, want",
    [
        (0, 4, 1.0, 0.125),
        (3, 4, 1.0, 0.875),
        (0, 64, 0.32, 1 - 0.32 + 0.32 * 0.5 / 64),  # 64 planes at 20 kHz after 10 Hz frames: the last 3.2 ms
        (63, 64, 0.32, 1 - 0.32 + 0.32 * 63.5 / 64),
        (1, 2, 0.5, 0.875),
    ],
)
def test_plane_fraction_by_hand(k, planes, span, want):
    assert plane_fraction(k, planes, span) == pytest.approx(want, rel=1e-12)
    if span == 1.0:
        assert plane_fraction(k, planes) == pytest.approx(want)  # the default span is the whole interval


@pytest.mark.parametrize(
    "kw, msg",
    [
        ({"threshold": float("nan")}, "threshold must be a finite number, got nan"),
        ({"gain": "1"}, "gain must be a finite number, got '1'"),
        ({"fpn_sigma": True}, "fpn_sigma must be a finite number, got True"),
        ({"dark_current": float("inf")}, "dark_current must be a finite number, got inf"),
        ({"shot_photons": None}, "shot_photons must be a finite number, got None"),
        ({"video_fps": float("-inf")}, "video_fps must be a finite number, got -inf"),
        ({"camera_rate_hz": float("nan")}, "camera_rate_hz must be a finite number, got nan"),
        ({"planes_per_frame": 64.0}, "planes_per_frame must be an integer, got 64.0"),
        ({"planes_per_frame": True}, "planes_per_frame must be an integer, got True"),
        ({"planes_per_frame": 0}, "planes_per_frame must be >= 1"),
        ({"threshold": 0.0}, "threshold must be > 0"),
        ({"gain": -1.0}, "gain must be > 0"),
        ({"gain": 0.0}, "gain must be > 0"),
        ({"interp": "cubic"}, "interp must be hold, linear or flow, got 'cubic'"),
        ({"reset": "half"}, "reset must be subtract or zero, got 'half'"),
        ({"fpn_sigma": -0.1}, "noise parameters must be >= 0"),
        ({"dark_current": -0.1}, "noise parameters must be >= 0"),
        ({"shot_photons": -1.0}, "noise parameters must be >= 0"),
        ({"video_fps": 0.0}, "video_fps must be > 0"),
        ({"pre_roll_frames": 0}, "pre_roll_frames must be an integer >= 1"),
        ({"pre_roll_frames": 1.5}, "pre_roll_frames must be an integer >= 1"),
        (
            {"camera_rate_hz": -1.0},
            "camera_rate_hz must be >= 0 (0: planes spread over the frame interval), got -1.0",
        ),
        (
            {"planes_per_frame": 64, "camera_rate_hz": 500.0, "video_fps": 10.0},
            "64 planes at camera_rate_hz=500 last 128 ms, longer than the 100 ms between RGB frames: "
            "use fewer planes per frame or camera_rate_hz 0",
        ),
    ],
)
def test_camera_parameters_are_checked_with_exact_messages(kw, msg):
    with pytest.raises(R2SDepthError) as e:
        SimParams(**kw)
    assert str(e.value) == msg


def test_camera_parameter_boundaries_that_are_accepted():
    p = SimParams(
        planes_per_frame=1, threshold=1e-9, gain=1e-9, fpn_sigma=0.0, pre_roll_frames=1, video_fps=0.5
    )
    assert p.rate_hz == 0.5 and p.span == 1.0 and p.window_mode == "per-frame"
    q = SimParams(planes_per_frame=64, camera_rate_hz=640.0, video_fps=10.0)  # exactly the interval
    assert q.span == pytest.approx(1.0) and q.rate_hz == 640.0 and q.window_mode == "camera-rate"
    r = SimParams(planes_per_frame=64, camera_rate_hz=20000.0, video_fps=10.0)
    assert r.span == pytest.approx(0.032) and math.isclose(r.rate_hz, 20000.0)


def test_stream_sidecar_records_how_it_was_made():
    p = SimParams(planes_per_frame=64, camera_rate_hz=20000.0, video_fps=10.0, pre_roll_frames=2)
    m = _stream_meta(p, 7, "drive_a", "frames/")
    assert m == {
        "simulator": {"model": "integrate-and-fire", **p.to_dict()},
        "planes_per_frame": 64,
        "video_fps": 10.0,
        "seed": 7,
        "sequence": "drive_a",
        "source": "frames/",
        "window_definition": "r2sdepth-rate-windows/1",
        "window_mode": "camera-rate",
        "pre_roll_planes": 128,
    }
    per_frame = _stream_meta(SimParams(planes_per_frame=8), 0, "s", "v.mp4")
    assert per_frame["window_definition"] == "r2sdepth-chunks/1" and per_frame["window_mode"] == "per-frame"
    assert per_frame["pre_roll_planes"] == 8 * SimParams().pre_roll_frames


def test_camera_model_files_by_hand(tmp_path):
    """``r2sdepth fit-sim`` output (JSON, a ``sim`` section) and a plain YAML mapping both load;
    the suffix decides the parser whatever its case; every refusal names the file and the reason."""
    import json  # noqa: PLC0415

    from r2sdepth.spike.simulate import load_sim_params  # noqa: PLC0415

    j = tmp_path / "fit.JSON"
    j.write_text(json.dumps({"sim": {"threshold": 3.0, "gain": 0.5}, "fit": {"error": 0.1}}))
    assert load_sim_params(j) == {"threshold": 3.0, "gain": 0.5}
    y = tmp_path / "cam.yaml"
    y.write_text("threshold: 1.5\nplanes_per_frame: 32\n")
    assert load_sim_params(y) == {"threshold": 1.5, "planes_per_frame": 32}
    y.write_text("threshhold: 1.5\n")
    with pytest.raises(R2SDepthError) as e:
        load_sim_params(y)
    assert str(e.value) == f"{y}: unknown camera-model key 'threshhold' (did you mean 'threshold'?)"
    y.write_text("zzz: 1\n")
    with pytest.raises(R2SDepthError) as e:
        load_sim_params(y)
    assert str(e.value) == f"{y}: unknown camera-model key 'zzz'"
    y.write_text("threshold: 0\n")
    with pytest.raises(R2SDepthError, match="^threshold must be > 0$"):
        load_sim_params(y)
    for text in ("- 1\n- 2\n", "sim: [1, 2]\n"):
        y.write_text(text)
        with pytest.raises(R2SDepthError) as e:
            load_sim_params(y)
        assert str(e.value) == f"{y}: a camera-model file must be a mapping (with a 'sim' section)"
    j.write_text("{not json")
    with pytest.raises(R2SDepthError, match=rf"^{j}: unreadable camera-model file \(JSONDecodeError: "):
        load_sim_params(j)
    missing = tmp_path / "none.yaml"
    with pytest.raises(
        R2SDepthError, match=rf"^{missing}: unreadable camera-model file \(FileNotFoundError: "
    ):
        load_sim_params(missing)
    y.write_bytes(b"threshold: \xff\n")
    with pytest.raises(R2SDepthError, match=r"unreadable camera-model file \(UnicodeDecodeError: "):
        load_sim_params(y)


def _reference_planes(v0, theta, l0, l1, p: SimParams) -> np.ndarray:
    """A plain per-pixel loop in float64, written from the model's definition: plane k takes the
    light of ``plane_fraction(k, P, span)`` between the frames (``hold``: the new frame's), the
    potential gains ``gain * L + dark_current`` and fires when it reaches the pixel's threshold;
    ``subtract`` removes the threshold, ``zero`` empties it."""
    P = p.planes_per_frame
    out = np.zeros((P, *l0.shape), bool)
    flow = _flow_interpolator(l0, l1) if p.interp == "flow" else None
    for i in range(l0.shape[0]):
        for j in range(l0.shape[1]):
            v = float(v0[i, j])
            for k in range(P):
                if p.interp == "hold":
                    lum = float(l1[i, j])
                elif (
                    p.interp == "flow"
                ):  # the interpolation itself is checked above; here what is done with it
                    lum = float(flow(plane_fraction(k, P, p.span))[i, j])
                else:
                    a = 1 - p.span + p.span * (k + 0.5) / P
                    lum = float(l0[i, j]) + a * (float(l1[i, j]) - float(l0[i, j]))
                v += p.gain * lum + p.dark_current
                if v >= theta[i, j]:
                    out[k, i, j] = True
                    v = v - theta[i, j] if p.reset == "subtract" else 0.0
    return out


@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("interp", ["linear", "hold", "flow"])
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("camera_rate_hz", [0.0, 160.0])  # 8 planes over the whole 100 ms, or its last half
def test_integrate_and_fire_against_a_plain_loop(backend, interp, reset, camera_rate_hz):
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    p = SimParams(
        planes_per_frame=8,
        threshold=1.3,
        gain=0.9,
        dark_current=0.05,
        interp=interp,
        reset=reset,
        video_fps=10.0,
        camera_rate_hz=camera_rate_hz,
    )
    rng = np.random.default_rng(5)
    frames = rng.random((3, 5, 6)).astype(np.float32)
    sim = SpikeSimulator(5, 6, p, seed=2, backend=backend)
    sim.start(frames[0])
    for t in (1, 2):
        v0, theta = sim.v.copy(), sim.theta.copy()
        got = np.asarray(sim.advance(frames[t]))
        want = _reference_planes(v0, theta, frames[t - 1], frames[t], p)
        assert got.shape == want.shape and np.array_equal(got, want), (t, int((got != want).sum()))
        assert 0 < want.sum() < want.size  # some planes fire, not all


def test_flow_interpolation_moves_the_picture_along_its_motion():
    """A smooth pattern moving 4 px right, 3 px down and brightening by 0.1 between the frames: the
    flow interpolation at fraction a is the pattern moved (4a, 3a) px and brightened by 0.1 a (from
    its formula), within 0.02 inside the border, where a linear blend of the two frames is off by
    far more."""
    from r2sdepth.spike.simulate import _flow_interpolator  # noqa: PLC0415

    def pattern(a: float) -> np.ndarray:  # moved 4a px right and 3a px down
        y, x = np.mgrid[0:48, 0:64].astype(np.float32)
        return (
            0.5 + 0.3 * np.sin(2 * np.pi * (x - 4 * a) / 24) * np.cos(2 * np.pi * (y - 3 * a) / 32)
        ).astype(np.float32)

    l0, l1 = pattern(0.0), pattern(1.0) + 0.1
    at = _flow_interpolator(l0, l1)
    inner = (slice(8, -8), slice(8, -8))
    for a in (0.25, 0.5, 0.75):
        want = pattern(a) + 0.1 * a
        err = np.abs(at(a) - want)[inner].mean()
        blend = np.abs((1 - a) * l0 + a * l1 - want)[inner].mean()
        assert err < 0.02 and blend > 3 * err, (a, err, blend)
    assert np.abs(at(0.0) - l0)[inner].mean() < 0.01 and np.abs(at(1.0) - l1)[inner].mean() < 0.01


def test_simulated_stream_file_and_sidecar_by_hand(tmp_path):
    """``simulate_to_file``: the stream holds the pre-roll and one chunk per frame, each equal to
    ``simulate_chunk`` of the same frame id (sRGB linearised when asked); its sidecar records the
    frame count, the plane index per frame id, the SHA-256 of the packed planes (hashlib over the
    file's bytes) and their size; every refusal names the input and writes nothing."""
    import hashlib  # noqa: PLC0415

    from r2sdepth.spike import SpikeStream  # noqa: PLC0415
    from r2sdepth.spike.simulate import simulate_chunk, simulate_to_file  # noqa: PLC0415

    rng = np.random.default_rng(3)
    frames = [(rng.random((4, 8, 3)) * 255).astype(np.uint8) for _ in range(3)]
    p = SimParams(planes_per_frame=8, pre_roll_frames=2, linearize=True)
    out = tmp_path / "s.dat"
    meta = simulate_to_file(frames, out, p, seed=4, sequence="q", source="src", frame_ids=[10, 11, 12])
    data = out.read_bytes()
    assert meta["rgb_frames"] == 3 and meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["bytes"] == len(data) == (2 + 2) * 8 * 4  # pre-roll 2 chunks + 2 frames, 8 planes of 4 bytes
    assert meta["frame_plane_index"] == {"10": 16, "11": 24, "12": 32}
    assert meta["sequence"] == "q" and meta["source"] == "src" and meta["seed"] == 4
    s = SpikeStream(out)
    lum = [luminance(f, linearize=True) for f in frames]
    want = simulate_chunk(lum[1], lum[2], p, seed=4, sequence="q", frame=12)
    assert np.array_equal(s.window_for_frame(12, 8), want)
    pre = simulate_chunk(lum[0], lum[0], p, seed=4, sequence="q", frame=9)  # the first frame held
    assert np.array_equal(s[0:8], pre)
    flat = tmp_path / "flat.dat"
    meta = simulate_to_file(frames[:2], flat, SimParams(planes_per_frame=8, pre_roll_frames=1))
    assert meta["frame_plane_index"] == [8, 16] and meta["rgb_frames"] == 2
    bad = tmp_path / "bad.dat"
    cases = [
        ([], {}, "src: no frames"),
        (frames[:1], {}, "src: at least two frames are needed, got 1"),
        ([frames[0], frames[1][:3]], {}, "src: frame 1 is 8x3, the first is 8x4"),
        (frames, {"frame_ids": [1, 2]}, f"{bad}: 2 frame ids for 3 frames"),
        (frames, {"frame_ids": [1, 3, 4]}, f"{bad}: frame ids must be consecutive"),
    ]
    for fr, kw, msg in cases:
        with pytest.raises(R2SDepthError) as e:
            simulate_to_file(fr, bad, p, source="src", **kw)
        assert str(e.value).startswith(msg), str(e.value)
        assert not bad.exists() and not bad.with_suffix(".json").exists()
    with pytest.raises(R2SDepthError) as e:
        simulate_to_file([], bad, p)
    assert str(e.value) == f"{bad}: no frames"


def test_fixed_pattern_noise_and_first_potentials_by_hand():
    """Thresholds ``theta (1 + sigma N)`` floored at 5% of theta, N from the sensor's own seed (the
    same for every chunk) or, without one, from the chunk's seed before the first potentials, which
    are uniform in [0, threshold) of each pixel."""
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    p = SimParams(threshold=2.0, fpn_sigma=0.5, planes_per_frame=4)
    sim = SpikeSimulator(6, 7, p, seed=5, fpn_seed=9)
    n = np.random.default_rng(9).standard_normal((6, 7), np.float32)
    want = np.maximum(np.float32(2.0) * (1 + np.float32(0.5) * n), np.float32(0.1))
    np.testing.assert_allclose(sim.theta, want, rtol=1e-6)
    assert (sim.theta == np.float32(0.1)).any() or n.min() > -1.9  # the floor where 1 + sigma N < 0.05
    rng = np.random.default_rng(5)
    np.testing.assert_allclose(sim.v, rng.random((6, 7), np.float32) * sim.theta, rtol=1e-6)
    own = SpikeSimulator(6, 7, p, seed=5)  # no sensor seed: the chunk's generator draws N first
    rng = np.random.default_rng(5)
    n = rng.standard_normal((6, 7), np.float32)
    th = np.maximum(np.float32(2.0) * (1 + np.float32(0.5) * n), np.float32(0.1))
    np.testing.assert_allclose(own.theta, th, rtol=1e-6)
    np.testing.assert_allclose(own.v, rng.random((6, 7), np.float32) * th, rtol=1e-6)
    flat = SpikeSimulator(6, 7, SimParams(threshold=2.0), seed=5)  # no noise: no draw for it
    assert (flat.theta == 2.0).all() and flat.theta.dtype == np.float32
    np.testing.assert_allclose(flat.v, np.random.default_rng(5).random((6, 7), np.float32) * 2.0, rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_a_pixel_fires_when_its_potential_reaches_the_threshold_exactly(backend):
    """From an empty potential, luminance 0.5 at gain 1 reaches the threshold 1.0 exactly every
    second plane: it fires at planes 1, 3, 5, 7 (``>=``, not ``>``)."""
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    p = SimParams(planes_per_frame=8, threshold=1.0, gain=1.0, interp="hold")
    sim = SpikeSimulator(1, 2, p, backend=backend)
    sim.v[:] = 0.0
    sim.start(np.full((1, 2), 0.5, np.float32))
    got = np.asarray(sim.advance(np.full((1, 2), 0.5, np.float32)))
    assert got[:, 0, 0].tolist() == [False, True] * 4


def test_plane_luminance_by_hand():
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    l0, l1 = np.zeros((1, 1), np.float32), np.ones((1, 1), np.float32)
    lin = SpikeSimulator(
        1, 1, SimParams(planes_per_frame=4, interp="linear", camera_rate_hz=80.0, video_fps=10.0)
    )
    got = [float(x[0, 0]) for x in lin.plane_luminance(l0, l1)]  # span 0.5: the last half of the interval
    assert got == pytest.approx([0.5625, 0.6875, 0.8125, 0.9375])
    hold = SpikeSimulator(1, 1, SimParams(planes_per_frame=3, interp="hold"))
    assert [float(x[0, 0]) for x in hold.plane_luminance(l0, l1)] == [1.0, 1.0, 1.0]
    flow = SpikeSimulator(1, 1, SimParams(planes_per_frame=2, interp="flow"))
    a, b = (
        float(x[0, 0])
        for x in flow.plane_luminance(np.zeros((1, 1), np.float32), np.ones((1, 1), np.float32))
    )
    assert (a, b) == pytest.approx((0.25, 0.75))  # no texture, no motion: the linear blend


def test_simulator_refusals_with_exact_messages():
    from r2sdepth.spike.simulate import SpikeSimulator, simulate_chunk  # noqa: PLC0415

    with pytest.raises(R2SDepthError) as e:
        SpikeSimulator(2, 3, backend="jax")
    assert str(e.value) == "backend must be numpy or torch, got 'jax'"
    sim = SpikeSimulator(2, 3)
    for call in (lambda: sim.advance(np.zeros((2, 3))), lambda: sim.advance_packed(np.zeros((2, 3)))):
        with pytest.raises(R2SDepthError) as e:
            call()
        assert str(e.value) == "SpikeSimulator.start(frame0) must be called before advance()"
    with pytest.raises(R2SDepthError) as e:
        sim.start(np.zeros((3, 2)))
    assert str(e.value) == "frame of shape [3, 2] does not match the simulator's 2x3"
    with pytest.raises(R2SDepthError) as e:
        sim.start(np.array([[0.0, np.inf, 0.0], [0.0] * 3]))
    assert str(e.value) == "frame contains NaN or inf"
    with pytest.raises(R2SDepthError) as e:
        simulate_chunk(np.zeros((2, 3, 3)), np.zeros((2, 3, 3)))
    assert str(e.value) == "luminance must be [H, W], got shape [2, 3, 3]"


def test_chunk_seeds_follow_the_documented_rule():
    """A chunk is the simulator seeded by ``stable_seed(seed, sequence, frame)`` with the sensor's
    pattern seeded by ``stable_seed(seed, sequence, "fpn")`` (the same for every frame of a
    sequence); other seeds, sequences or frames give other chunks."""
    from r2sdepth.seeds import stable_seed  # noqa: PLC0415
    from r2sdepth.spike.simulate import SpikeSimulator, simulate_chunk  # noqa: PLC0415

    p = SimParams(planes_per_frame=16, fpn_sigma=0.2, threshold=1.0)
    rng = np.random.default_rng(0)
    l0, l1 = rng.random((5, 6)).astype(np.float32), rng.random((5, 6)).astype(np.float32)
    got = simulate_chunk(l0, l1, p, seed=3, sequence="a", frame=7)
    sim = SpikeSimulator(5, 6, p, seed=stable_seed(3, "a", 7), fpn_seed=stable_seed(3, "a", "fpn"))
    sim.start(l0)
    assert np.array_equal(got, sim.advance(l1))
    for kw in (
        {"seed": 4, "sequence": "a", "frame": 7},
        {"seed": 3, "sequence": "b", "frame": 7},
        {"seed": 3, "sequence": "a", "frame": 8},
    ):
        assert not np.array_equal(got, simulate_chunk(l0, l1, p, **kw)), kw
    assert np.array_equal(got, simulate_chunk(l0, l1, p, seed=3, sequence="a", frame=7, backend="torch"))
    assert got.dtype == np.uint8  # 0/1 planes, float64 frames give the same chunk
    assert np.array_equal(simulate_chunk(l0.astype(np.float64), l1, p, seed=3, sequence="a", frame=7), got)


def test_fused_kernel_rules_by_hand(monkeypatch):
    from r2sdepth.spike.simulate import _packed_kernel, fused_kernel_applies  # noqa: PLC0415

    have = _packed_kernel() is not None
    assert fused_kernel_applies(SimParams()) is have  # numpy backend by default
    assert fused_kernel_applies(SimParams(interp="hold"), "numpy") is have
    assert not fused_kernel_applies(SimParams(), "torch")
    assert not fused_kernel_applies(SimParams(interp="flow"))
    assert not fused_kernel_applies(SimParams(shot_photons=100.0))
    assert fused_kernel_applies(SimParams(fpn_sigma=0.1, dark_current=0.01)) is have
    monkeypatch.setenv("R2SDEPTH_NO_NUMBA", "1")
    assert not fused_kernel_applies(SimParams())
    monkeypatch.setenv("R2SDEPTH_NO_NUMBA", "0")
    assert fused_kernel_applies(SimParams()) is have


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_shot_noise_is_drawn_and_keeps_the_mean_rate(backend):
    """Photon shot noise (``shot_photons`` 0.5: few photons, strong noise) changes the spikes of the
    same seed, and the mean firing rate stays ``gain * L / threshold`` (the noise has zero mean)."""
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    lum = np.full((40, 50), 0.4, np.float32)
    out = {}
    for shot in (0.0, 0.5):
        p = SimParams(planes_per_frame=64, threshold=1.0, gain=1.0, interp="hold", shot_photons=shot)
        sim = SpikeSimulator(40, 50, p, seed=3, backend=backend)
        sim.start(lum)
        out[shot] = np.asarray(sim.advance(lum))
    assert not np.array_equal(out[0.0], out[0.5])
    assert out[0.5].mean() == pytest.approx(0.4, rel=0.05) and out[0.0].mean() == pytest.approx(0.4, rel=0.02)


def test_frame_window_by_hand_and_its_refusals():
    """The window of frame f is the last T planes of the chunks ending at f (each as
    ``simulate_chunk`` makes it), the pre-roll holding the first frame; windows that need planes
    before the pre-roll or, at a camera's rate, more than one chunk are refused with the fix."""
    from r2sdepth.spike.simulate import frame_window, simulate_chunk  # noqa: PLC0415

    rng = np.random.default_rng(1)
    frames = [rng.random((3, 4)).astype(np.float32) for _ in range(4)]
    p = SimParams(planes_per_frame=8, pre_roll_frames=2)
    got = frame_window(lambda j: frames[j], 2, 12, p, seed=5, sequence="s")
    c1 = simulate_chunk(frames[0], frames[1], p, seed=5, sequence="s", frame=1)
    c2 = simulate_chunk(frames[1], frames[2], p, seed=5, sequence="s", frame=2)
    assert got.dtype == np.uint8 and np.array_equal(got, np.concatenate([c1, c2])[-12:])
    pre = frame_window(lambda j: frames[j], 0, 16, p, seed=5, sequence="s")  # frame 0 and one pre-roll chunk
    c0 = simulate_chunk(frames[0], frames[0], p, seed=5, sequence="s", frame=0)
    cm1 = simulate_chunk(frames[0], frames[0], p, seed=5, sequence="s", frame=-1)
    assert np.array_equal(pre, np.concatenate([cm1, c0]))
    later = frame_window(lambda j: frames[j - 10], 11, 8, p, seed=5, sequence="s", first_frame=10)
    assert np.array_equal(later, simulate_chunk(frames[0], frames[1], p, seed=5, sequence="s", frame=11))
    with pytest.raises(R2SDepthError) as e:
        frame_window(lambda j: frames[j], 0, 17, p)
    assert str(e.value) == (
        "the 17-plane window of frame 0 starts before the stream's pre-roll (2 x 8 planes before frame 0); "
        "raise sim.pre_roll_frames to 3 or shorten the window"
    )
    rate = SimParams(planes_per_frame=8, camera_rate_hz=160.0, video_fps=10.0)
    assert frame_window(lambda j: frames[j], 1, 8, rate).shape == (8, 3, 4)  # exactly one chunk
    with pytest.raises(R2SDepthError) as e:
        frame_window(lambda j: frames[j], 1, 9, rate)
    assert str(e.value) == (
        "a 9-plane window at camera_rate_hz=160: camera-rate chunks hold 8 planes (sim.planes_per_frame); "
        "raise it to 9 or shorten the window"
    )


def test_defaults_are_seed_0_sequence_empty_frame_0():
    """Called without them, the chunk, the window and the file take seed 0, sequence "" and frame
    ids from 0; the simulator seed 0."""
    from r2sdepth.spike.simulate import SpikeSimulator, frame_window, simulate_chunk  # noqa: PLC0415

    rng = np.random.default_rng(2)
    l0, l1 = rng.random((4, 9)).astype(np.float32), rng.random((4, 9)).astype(np.float32)
    p = SimParams(planes_per_frame=8)
    want = simulate_chunk(l0, l1, p, seed=0, sequence="", frame=0)
    assert np.array_equal(simulate_chunk(l0, l1, p), want)
    assert np.array_equal(frame_window(lambda j: [l0, l1][j], 1, 8, p), simulate_chunk(l0, l1, p, frame=1))
    a, b = SpikeSimulator(4, 9, p), SpikeSimulator(4, 9, p, seed=0)
    assert np.array_equal(a.v, b.v)


def test_simulated_file_defaults_and_size_by_hand(tmp_path):
    from r2sdepth.spike import SpikeStream  # noqa: PLC0415
    from r2sdepth.spike.simulate import simulate_chunk, simulate_to_file  # noqa: PLC0415

    rng = np.random.default_rng(6)
    frames = [rng.random((4, 9)).astype(np.float32) for _ in range(2)]  # 36 pixels: 5 bytes a plane
    p = SimParams(planes_per_frame=8, pre_roll_frames=1)
    meta = simulate_to_file(frames, tmp_path / "d.dat", p)
    assert meta["bytes"] == 2 * 8 * 5 and meta["frame_plane_index"] == [8, 16]
    s = SpikeStream(tmp_path / "d.dat")
    assert np.array_equal(
        s.window_for_frame(1, 8), simulate_chunk(frames[0], frames[1], p, seed=0, sequence="", frame=1)
    )


def test_plane_luminance_linear_is_the_blend_of_textured_frames():
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    rng = np.random.default_rng(8)
    l0, l1 = rng.random((12, 16)).astype(np.float32), rng.random((12, 16)).astype(np.float32)
    sim = SpikeSimulator(12, 16, SimParams(planes_per_frame=4, interp="linear"))
    for k, x in enumerate(sim.plane_luminance(l0, l1)):
        a = (k + 0.5) / 4
        np.testing.assert_allclose(x, l0 + np.float32(a) * (l1 - l0), rtol=1e-6)


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_flow_interpolation_reaches_the_spikes(backend):
    """On a moving pattern, ``interp="flow"`` integrates the flow-interpolated light (the plain
    loop over it gives the same spikes, within rounding) and so differs from the linear blend."""
    from r2sdepth.spike.simulate import SpikeSimulator  # noqa: PLC0415

    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    l0 = (0.5 + 0.3 * np.sin(2 * np.pi * x / 24) * np.cos(2 * np.pi * y / 32)).astype(np.float32)
    l1 = (0.5 + 0.3 * np.sin(2 * np.pi * (x - 4) / 24) * np.cos(2 * np.pi * y / 32)).astype(np.float32)
    out = {}
    for interp in ("flow", "linear"):
        p = SimParams(planes_per_frame=16, threshold=0.6, interp=interp)
        sim = SpikeSimulator(48, 64, p, seed=1, backend=backend)
        v0, theta = sim.v.copy(), sim.theta.copy()
        sim.start(l0)
        out[interp] = np.asarray(sim.advance(l1))
        if interp == "flow":
            ref = _reference_planes(v0, theta, l0, l1, p)
            assert (out[interp] != ref).mean() < 1e-3
    assert (out["flow"] != out["linear"]).mean() > 0.01
