"""Where the spike-only network runs at inference (:mod:`r2sdepth.backends`): ONNX Runtime by default
on a CPU where it is installed, eager PyTorch otherwise; the same depths either way."""

from __future__ import annotations

import json
import subprocess
import warnings

import numpy as np
import pytest
import torch

import r2sdepth
from r2sdepth import backends
from r2sdepth.errors import R2SDepthError, R2SDepthWarning


def _windows(b: int = 2, t: int = 64, h: int = 64, w: int = 224) -> np.ndarray:
    return (np.random.default_rng(0).random((b, t, h, w)) < 0.2).astype(np.uint8)


def test_auto_is_onnxruntime_on_a_cpu_and_gives_eager_depths():
    pytest.importorskip("onnxruntime")
    fast, eager = r2sdepth.load_model("demo"), r2sdepth.load_model("demo", backend="torch")
    assert fast.runtime.backend == "onnxruntime" and eager.runtime.backend == "torch"
    assert "backend='onnxruntime'" in repr(fast)
    x = _windows()
    a, b = fast.predict(x), eager.predict(x)
    assert a.shape == b.shape == (2, 64, 224) and a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.array_equal(a, np.roll(b, 1, axis=0))  # the two windows differ: a real comparison
    # a second shape builds a second session; the first is reused
    np.testing.assert_allclose(fast.predict(x[0]), b[0], rtol=1e-5, atol=1e-6)
    assert len(fast.runtime._sessions) == 2


def test_backend_names_and_where_onnxruntime_cannot_run(monkeypatch):
    with pytest.raises(R2SDepthError, match="backend must be one of auto, torch, onnxruntime"):
        r2sdepth.load_model("demo", backend="tensorrt")
    with pytest.raises(R2SDepthError, match="runs on the CPU here, not on cuda"):
        backends.resolve_backend("onnxruntime", "cuda")
    assert backends.resolve_backend("auto", "cuda") == "torch"
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    assert backends.resolve_backend("auto", "cpu") == "torch"
    with pytest.raises(R2SDepthError, match=r"needs onnxruntime: pip install 'r2sdepth\[export\]'"):
        backends.resolve_backend("onnxruntime", "cpu")


def test_a_network_the_exporter_cannot_trace_runs_eagerly_with_one_warning(monkeypatch):
    pytest.importorskip("onnxruntime")

    def no_export(*a, **k):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(backends, "onnx_bytes", no_export)
    x = _windows(1)
    m = r2sdepth.load_model("demo")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got = m.predict(x)
    assert [str(i.message) for i in w if issubclass(i.category, R2SDepthWarning)] == [
        "ONNX Runtime cannot run this network (RuntimeError); running it in PyTorch"
    ]
    assert m.runtime.backend == "torch"
    np.testing.assert_array_equal(got, r2sdepth.load_model("demo", backend="torch").predict(x))
    strict = backends.SpikeRuntime(m.module.net, "onnxruntime", auto_fallback=False)
    with pytest.raises(R2SDepthError, match="ONNX Runtime cannot run this network: RuntimeError"):
        strict(torch.from_numpy(x))


def test_infer_backend_flag_through_the_cli(tmp_path, shared_data):
    pytest.importorskip("onnxruntime")
    dat = shared_data / "spike_real" / "car_250x400.dat"
    out = {}
    for name in ("auto", "torch"):
        r = subprocess.run(
            [
                "r2sdepth",
                "infer",
                "--checkpoint",
                "real",
                "--input",
                dat,
                "--sensor",
                "250x400",
                "--out",
                tmp_path / name,
                "--backend",
                name,
                "--stride-planes",
                "64",
            ],  # fmt: skip
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        out[name] = json.loads((tmp_path / name / "summary.json").read_text())
    assert out["auto"]["backend"] == "onnxruntime" and out["torch"]["backend"] == "torch"
    assert out["auto"]["names"] == out["torch"]["names"] and len(out["auto"]["names"]) >= 2
    for n in out["auto"]["names"]:
        a, b = (np.load(tmp_path / k / "depth" / f"{n}.npy") for k in ("auto", "torch"))
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)  # other convolution kernels: float32 rounding
    r = subprocess.run(
        [
            "r2sdepth",
            "infer",
            "--checkpoint",
            "demo",
            "--input",
            dat,
            "--sensor",
            "250x400",
            "--out",
            tmp_path / "bad",
            "--backend",
            "cuda",
        ],  # fmt: skip
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].endswith(
        "backend must be one of auto, torch, onnxruntime, got 'cuda'"
    )
    assert not (tmp_path / "bad").exists()
