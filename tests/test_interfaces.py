"""The command-line surface: checked and discoverable configs, shipped configs by name, resume
refusal on a changed config, one geometry vocabulary, the Python API."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def r2(*args, cwd=None, timeout=300):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "r2sdepth.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


@pytest.mark.parametrize(
    "override, names",
    [
        (["--data.batchsize", "2"], ["data.batchsize", "data.batch_size"]),
        (["--init-from", "x.ckpt"], ["init-from", "init_from"]),
        (["--trainer.max_step", "20"], ["trainer.max_step", "trainer.max_steps"]),
        (["--data.sim.treshold", "3"], ["data.sim.treshold", "data.sim.threshold"]),
        (["--data.batch_size", "abc"], ["data.batch_size", "abc"]),
        (["--model.modality", "depth"], ["model.modality", "rgb, spike, fusion"]),
        (["--pose.scale", "[1, 2]"], ["pose.scale"]),
    ],
)
def test_bad_config_keys_and_values_fail_fast_naming_the_key(tmp_path, override, names, capsys, monkeypatch):
    """Misspelt keys name the closest valid key; wrong types and choices name the key; nothing is
    written and no training starts (exit 2, one line, no traceback). The CLI's entry function in
    this process (one case also as a subprocess: the installed console script)."""
    from r2sdepth.cli import main

    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    args = ["train", "--config", "train_rgb_synth", "--out", str(run), *override]
    if override[0] == "--trainer.max_step":
        r = r2(*args, cwd=tmp_path, timeout=120)
        rc, err = r.returncode, r.stderr
    else:
        rc, err = main(args), capsys.readouterr().err
    assert rc == 2, err[-2000:]
    line = err.strip()
    assert "\n" not in line and "Traceback" not in line, line
    for n in names:
        assert n in line, line
    assert not run.exists()


def test_stage2_keys_refused_by_train(tmp_path):
    r = r2(
        "train", "--config", "train_rgb_synth", "--print-config", "--distill.adaptive", "false", cwd=tmp_path
    )
    assert r.returncode == 2 and "r2sdepth distill" in r.stderr


def test_help_lists_every_key_of_every_shipped_config():
    """Independent reference: the keys written in the shipped YAML files (and their sections)."""
    helps = {s: r2(s, "--help").stdout for s in ("train", "distill")}

    def keys(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and k != "trainer":
                yield from keys(v, prefix + k + ".")
            elif k != "trainer" and prefix != "trainer.":
                yield prefix + k

    cfg_dir = ROOT / "src" / "r2sdepth" / "configs"
    files = sorted(cfg_dir.glob("*.yaml"))
    assert len(files) == 12
    for f in files:
        text = helps["distill" if f.name.startswith(("distill", "adapt")) else "train"]  # adapt: stage 2
        for k in keys(yaml.safe_load(f.read_text())):
            assert f"--{k} " in text, (f.name, k)
    assert (
        "--data.batch_size 4:" in helps["train"]
        and "--distill.pixel hard [hard|soft|none]" in helps["distill"]
    )
    assert "--distill." not in helps["train"]


def test_shipped_config_by_name_from_any_directory_and_splits_under_root(tmp_path, synth):
    """``--config NAME`` works outside the repository; ``--data.root DIR`` alone finds DIR/splits."""
    r = r2(
        "train",
        "--config",
        "train_rgb_synth",
        "--print-config",
        "--data.root",
        synth,
        "--optim.lr",
        "1e-3",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["data"]["train_split"] == str(synth / "splits" / "train_files.txt")
    assert cfg["data"]["val_split"] == str(synth / "splits" / "val_files.txt")
    assert cfg["optim"]["lr"] == pytest.approx(1e-3) and isinstance(cfg["optim"]["lr"], float)
    assert cfg["data"]["batch_size"] == 8 and cfg["model"]["width"] == 16  # the file's values
    assert cfg["model"]["min_depth"] == 0.1  # a default the file does not set
    r = r2("train", "--config", "train_rgb_synt", "--print-config", cwd=tmp_path)
    assert r.returncode == 2 and "did you mean train_rgb_synth" in r.stderr


def _tiny(run, synth, *extra):
    return (
        "train",
        "--config",
        "train_rgb_synth",
        "--out",
        run,
        "--data.root",
        synth,
        "--model.width",
        "8",
        "--model.decoder_width",
        "8",
        "--pose.width",
        "8",
        "--data.height",
        "64",
        "--data.width",
        "96",
        "--data.batch_size",
        "2",
        "--data.num_workers",
        "0",
        "--data.val_split",
        "null",
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
        "--trainer.accelerator",
        "cpu",
        *extra,
    )


def test_resume_with_a_changed_config_is_refused_unless_asked(tmp_path, synth):
    run = tmp_path / "run"
    r = r2(*_tiny(run, synth, "--trainer.max_steps", "2"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    saved = (run / "config.yaml").read_bytes()
    ckpt = (run / "checkpoints" / "last.ckpt").read_bytes()
    r = r2(*_tiny(run, synth, "--trainer.max_steps", "2", "--optim.lr", "0.5"), timeout=600)
    assert r.returncode == 2, r.stderr[-3000:]
    assert "optim.lr: 0.0002 -> 0.5" in r.stderr and "--allow-config-change" in r.stderr
    assert (run / "config.yaml").read_bytes() == saved and (
        run / "checkpoints" / "last.ckpt"
    ).read_bytes() == ckpt
    r = r2(*_tiny(run, synth, "--trainer.max_steps", "3", "--allow-config-change"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained to step 3" in r.stdout
    assert yaml.safe_load((run / "config.yaml").read_text())["trainer"]["max_steps"] == 3
    # a run begun before the schema had a key (here speed.* and optim.fused) resumes: an absent key
    # counts as its default; a key present with another value is still a change
    old = yaml.safe_load((run / "config.yaml").read_text())
    del old["speed"], old["optim"]["fused"]
    (run / "config.yaml").write_text(yaml.safe_dump(old))
    r = r2(*_tiny(run, synth, "--trainer.max_steps", "3"), timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    r = r2(*_tiny(run, synth, "--trainer.max_steps", "3", "--optim.fused", "true"), timeout=600)
    assert r.returncode == 2 and "optim.fused: False -> True" in r.stderr, r.stderr[-3000:]


def test_python_api_equals_the_cli_and_checks_its_input(tmp_path, shared_data):
    """``r2sdepth.predict("demo", window)`` gives the bytes ``r2sdepth infer --checkpoint demo``
    writes for the same window; ``import r2sdepth`` alone does not import torch."""
    import numpy as np

    r = subprocess.run(
        [sys.executable, "-c", "import sys, r2sdepth; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
    )
    assert r.stdout.strip() == "False", r.stderr
    import r2sdepth
    from r2sdepth.errors import R2SDepthError
    from r2sdepth.spike import SpikeStream

    dat = shared_data / "spike_real" / "car_250x400.dat"
    r = r2(
        "infer",
        "--checkpoint",
        "demo",
        "--input",
        dat,
        "--sensor",
        "250x400",
        "--out",
        tmp_path / "o",
        "--window",
        "64",
        "--stride-planes",
        "64",
    )
    assert r.returncode == 0, r.stderr
    with SpikeStream(dat, 250, 400) as st:
        wins = np.stack([st.read(64, 128), st.read(128, 192)])
    model = r2sdepth.load_model("demo")
    assert model.modality == "spike" and model.window == 64 and model.trained_size == (64, 224)
    one = r2sdepth.predict("demo", wins[0])
    both = model.predict(wins)
    assert one.shape == (250, 400) and both.shape == (2, 250, 400) and one.dtype == np.float32
    # equal up to float rounding (the CLI runs 3 windows per batch, here 1 and 2)
    np.testing.assert_allclose(one, np.load(tmp_path / "o" / "depth" / "000128.npy"), rtol=1e-5)
    np.testing.assert_allclose(both[1], np.load(tmp_path / "o" / "depth" / "000192.npy"), rtol=1e-5)
    assert np.abs(both[0] / both[1] - 1).max() > 1e-3  # a window one stride off would not pass
    for bad in (wins[0, 0], wins[0] * 2, np.full((4, 8, 8), np.nan)):
        with pytest.raises(R2SDepthError):
            model.predict(bad)
    with pytest.raises(R2SDepthError, match="multiples of 32"):
        model.predict(wins[0], net_size=(50, 64))


def test_module_dependencies_have_no_cycles():
    """Every r2sdepth import (function-level ones too): no cycles, nothing imports the CLI, data/
    does not import viz, spike/ does not import torch-level modules (only spike/, errors, atomic and
    the torch-free frame reader and seed helper), and those helpers import nothing torch-level."""
    import ast

    src = ROOT / "src" / "r2sdepth"
    graph: dict[str, set[str]] = {}
    for f in src.rglob("*.py"):
        mod = "r2sdepth." + ".".join(f.relative_to(src).with_suffix("").parts)
        mod = mod.removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            deps |= {n for n in names if n.startswith("r2sdepth")}
        graph[mod] = deps
    mods = set(graph)
    edges = {
        m: {d for d in deps if d in mods and d != m and not m.startswith(d + ".")}
        for m, deps in graph.items()
    }
    edges = {m: {d for d in ds if d != "r2sdepth"} for m, ds in edges.items()}  # the lazy package API
    for m, ds in edges.items():
        assert "r2sdepth.cli" not in ds, m
        if m.startswith("r2sdepth.data"):
            assert "r2sdepth.viz" not in ds and "r2sdepth.infer" not in ds, (m, ds)
        if m.startswith("r2sdepth.spike"):
            light = (
                "r2sdepth.spike",
                "r2sdepth.errors",
                "r2sdepth.atomic",
                "r2sdepth.frames",
                "r2sdepth.seeds",
            )
            assert all(d.startswith(light) for d in ds), (
                m,
                ds,
            )
    for m in ("r2sdepth.frames", "r2sdepth.seeds"):
        assert edges[m] <= {"r2sdepth.errors"}, (m, edges[m])
    state: dict[str, int] = {}

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(edges[m]):
            assert state.get(d) != 1, "import cycle: " + " -> ".join(path + [m, d])
            if d not in state:
                visit(d, path + [m])
        state[m] = 2

    for m in sorted(edges):
        if m not in state:
            visit(m, [])


def test_kitti_folders_of_jpeg_frames_are_read(tmp_path, synth):
    """Monodepth2's KITTI copies hold JPEG frames: training data, Spike-KITTI and eval read them."""
    import shutil

    import numpy as np
    from PIL import Image

    from r2sdepth.data import kitti
    from r2sdepth.data.dataset import SampleOptions, SplitDataset
    from r2sdepth.data.drives import DriveOptions

    root = tmp_path / "jpg"
    shutil.copytree(synth, root)
    drive = kitti.read_split(root / "splits" / "test_files.txt")[0].drive
    for png in (root / drive / "image_02" / "data").glob("*.png"):
        Image.open(png).convert("RGB").save(png.with_suffix(".jpg"), quality=95)
        png.unlink()
    assert kitti.list_frame_ids(root, drive) == list(range(5))
    assert kitti.image_path(root, drive, 3).suffix == ".jpg"
    ds = SplitDataset(
        DriveOptions(root, height=64, width=96, window=16),
        root / "splits" / "test_files.txt",
        SampleOptions(context=(), with_gt=True, need_spikes=True),
    )
    s = ds[0]
    ref = np.asarray(Image.open(kitti.image_path(root, drive, ds.samples[0].frame)), dtype=np.float32) / 255
    assert np.abs(s["color"][0].numpy().transpose(1, 2, 0) - ref).max() < 1e-6
    r = r2(
        "build-spike-kitti",
        "--kitti-root",
        root,
        "--out",
        tmp_path / "spk",
        "--cameras",
        "02",
        "--size",
        "64x96",
        "--planes-per-frame",
        "16",
        "--sequences",
        root / "splits" / "test_files.txt",
    )
    assert r.returncode == 0, r.stderr
    assert "built 1 stream" in r.stdout
