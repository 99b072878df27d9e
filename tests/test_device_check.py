"""``benchmarks/device_check.py`` runs end to end on CPU at tiny sizes (what a GPU run will do,
known to work before a GPU exists): every section produces its rows, none of them an error."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "device_check.py"
TINY = ["--device", "cpu", "--size", "64x96", "--batch", "2", "--window", "32", "--width", "8"]
TINY += ["--decoder-width", "4", "--steps", "1", "--reps", "2", "--workers", "0", "1"]


def _load():
    spec = importlib.util.spec_from_file_location("r2sdepth_device_check", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_device_check_runs_on_cpu_at_tiny_sizes(tmp_path, capsys):
    res = _load().main([*TINY, "--no-speed-options", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    saved = json.loads((tmp_path / "device_check.json").read_text())
    assert saved["info"]["device"] == "cpu" and saved["info"]["size"] == "64x96"
    train = res["train"]
    assert [(r["mode"], r["precision"]) for r in train] == [
        (m, p) for m in ("rgb", "spike", "fusion") for p in ("32", "bf16-mixed")
    ]
    for r in train:
        assert "error" not in r, r
        assert r["s_per_step"] > 0 and math.isclose(r["samples_per_s"], 2 / r["s_per_step"])
        assert math.isfinite(r["loss"])
    for r in res["parity"]:
        # CPU against CPU: identical float32 maths, and bf16 autocast within its tolerance
        assert "error" not in r, r
        assert r["loss_rel_diff"] == 0 and r["grad_rel_diff"] == 0 and r["bf16_finite"], r
    eager = [r for r in res["inference"] if r["path"].startswith("eager")]
    assert len(eager) == 6 and all("error" not in r and r["windows_per_s"] > 0 for r in eager), eager
    onnx = [r for r in res["inference"] if r["path"] == "ONNX Runtime CUDA"]
    assert len(onnx) == 2 and all("error" in r for r in onnx)  # no CUDA here: a row that says so
    assert [r["workers"] for r in res["loading"]] == [0, 1]
    assert all(r["samples_per_s"] > 0 for r in res["loading"]), res["loading"]
    assert "| fusion | bf16-mixed |" in out and "tolerances" in out


def test_device_check_command_line(tmp_path):
    """The script's own command line (a fresh process, as on the GPU machine)."""
    r = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--no-speed-options", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "device_check.json").is_file() and "total" in r.stdout


@pytest.mark.slow
def test_device_check_speed_option_rows_on_cpu(tmp_path):
    """The ``bf16-mixed + speed options`` rows (compiled SSIM, fused Adam): compiling takes a while,
    so this runs under ``-m slow``."""
    res = _load().main([*TINY, "--workers", "0", "--out", str(tmp_path)])
    fast = [r for r in res["train"] if r["precision"] == "bf16-mixed + speed options"]
    assert [r["mode"] for r in fast] == ["rgb", "spike", "fusion"]
    assert all("error" not in r and math.isfinite(r["loss"]) for r in fast), fast
