"""`r2sdepth ensemble`: several spike-only networks as one checkpoint, the geometric mean of their depths;
checked against each member run on its own and against the formula by hand."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from r2sdepth.api import load_model
from r2sdepth.geometry import disp_to_depth
from r2sdepth.models.r2sdepth import geometric_mean_disparity
from test_infer import r2_in_process, tiny_ckpt  # noqa: E402


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    d = tmp_path_factory.mktemp("ens")
    return [tiny_ckpt(d / f"m{s}.ckpt", "spike", seed=s) for s in (0, 1, 2)]


def test_geometric_mean_disparity_by_hand():
    # disp_to_depth: 1/depth = 1/max + (1/min - 1/max) * disp; min 0.1 m, max 100 m
    disps = [torch.tensor([[[[0.2]]]]), torch.tensor([[[[0.6]]]])]
    depths = [1.0 / (0.01 + (10.0 - 0.01) * d) for d in (0.2, 0.6)]  # 0.4975 m, 0.1665 m
    got = disp_to_depth(geometric_mean_disparity(disps, 0.1, 100.0), 0.1, 100.0)[1].item()
    assert got == pytest.approx(math.sqrt(depths[0] * depths[1]), rel=1e-6)
    one = geometric_mean_disparity([disps[0]] * 3, 0.1, 100.0)  # identical members: the member itself
    assert one.item() == pytest.approx(0.2, rel=1e-6)


def test_ensemble_depth_is_the_geometric_mean_of_its_members(tmp_path, members):
    r = r2_in_process("ensemble", *members, "--out", tmp_path / "e.ckpt")
    assert r.returncode == 0, r.stderr
    assert "ensemble of 3 spike-only networks" in r.stdout
    x = (np.random.default_rng(0).random((2, 32, 64, 96)) < 0.2).astype(np.float32)
    each = [load_model(m, backend="torch").predict(x) for m in members]
    assert not np.allclose(each[0], each[1], rtol=1e-3)  # the members differ: the test can tell them apart
    ens = load_model(tmp_path / "e.ckpt", backend="torch").predict(x)
    ref = np.exp(np.mean(np.log(np.stack(each)), axis=0))  # geometric mean, computed here from the members
    np.testing.assert_allclose(ens, ref, rtol=2e-5)
    # the same member twice is that member
    assert r2_in_process("ensemble", members[0], members[0], "--out", tmp_path / "same.ckpt").returncode == 0
    np.testing.assert_allclose(
        load_model(tmp_path / "same.ckpt", backend="torch").predict(x), each[0], rtol=2e-5
    )


def test_ensemble_exports_and_evaluates_like_a_model(tmp_path, members, synth):
    assert r2_in_process("ensemble", *members[:2], "--out", tmp_path / "e.ckpt").returncode == 0
    r = r2_in_process(
        "export", "--checkpoint", tmp_path / "e.ckpt", "--format", "torchscript", "--out", tmp_path / "e.pt"
    )
    assert r.returncode == 0, r.stderr
    x = (torch.rand(1, 32, 64, 96, generator=torch.Generator().manual_seed(1)) < 0.2).float()
    ts = torch.jit.load(str(tmp_path / "e.pt"))
    ref = load_model(tmp_path / "e.ckpt", backend="torch").predict(x.numpy()[0])
    np.testing.assert_allclose(ts(x)[0, 0].detach().numpy(), ref, rtol=1e-4)
    r = r2_in_process(
        "eval", "--checkpoint", tmp_path / "e.ckpt", "--data", synth, "--split", synth / "splits" / "test_files.txt",
        "--out", tmp_path / "ev.json",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "ev.json").is_file()


def test_ensemble_refuses_what_it_cannot_combine(tmp_path, members):
    def err(*args):
        r = r2_in_process(*args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
        return r.stderr

    assert "at least 2" in err("ensemble", members[0], "--out", tmp_path / "a.ckpt")
    rgb = tiny_ckpt(tmp_path / "rgb.ckpt", "rgb")
    assert "no spike-only network" in err("ensemble", members[0], rgb, "--out", tmp_path / "b.ckpt")
    wide = tiny_ckpt(tmp_path / "wide.ckpt", "spike", w=128)
    assert "width" in err("ensemble", members[0], wide, "--out", tmp_path / "c.ckpt")
    long = tiny_ckpt(tmp_path / "long.ckpt", "spike", window=64)
    assert "windows" in err("ensemble", members[0], long, "--out", tmp_path / "d.ckpt")
    assert not any((tmp_path / f"{c}.ckpt").exists() for c in "abcd")
    assert r2_in_process("ensemble", *members[:2], "--out", tmp_path / "e.ckpt").returncode == 0
    assert "already an ensemble" in err(
        "ensemble", tmp_path / "e.ckpt", members[0], "--out", tmp_path / "f.ckpt"
    )
    assert "cannot teach or be adapted" in err(
        "distill", "--config", "adapt", "--teacher", tmp_path / "e.ckpt", "--out", tmp_path / "run"
    )
