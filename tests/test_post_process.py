"""Flip post-processing (`eval --post-process`): the blend by hand, the one spike-only path with it,
and the flag through the CLI."""

import json
import sys
from pathlib import Path

import numpy as np
import torch

from r2sdepth.checkpoint import checkpoint_path
from r2sdepth.models.r2sdepth import disp_to_depth, flip_blend, spike_depth, student_forward
from r2sdepth.train.load import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from test_infer import r2_in_process  # noqa: E402


def test_flip_blend_by_hand():
    """41 columns (x = i / 40): the left mask 1 - clip(20 (x - 0.05), 0, 1) is 1 up to column 2, 0.5 at
    column 3 and 0 from column 4; the right mask is its mirror image. With constant maps A and B:
    column 0 is B, column 3 is 0.5 B + 0.5 (A + B) / 2, the middle (A + B) / 2, column 37 mirrors
    column 3 with A, column 40 is A."""
    a, b = 2.0, 6.0
    out = flip_blend(torch.full((1, 1, 2, 41), a), torch.full((1, 1, 2, 41), b))[0, 0, 0].numpy()
    expect = np.full(41, (a + b) / 2)
    expect[:3] = b
    expect[3] = 0.5 * b + 0.25 * (a + b)
    expect[-3:] = a
    expect[-4] = 0.5 * a + 0.25 * (a + b)
    np.testing.assert_allclose(out, expect, rtol=1e-6)


def test_spike_depth_post_processed_is_the_blend_of_the_window_and_its_mirror_image():
    module, _ = load_checkpoint(checkpoint_path("demo"), "cpu")
    net = module.net.eval()
    spikes = (torch.rand(2, 64, 64, 96, generator=torch.Generator().manual_seed(0)) < 0.2).float()
    with torch.no_grad():
        d = student_forward(net, spikes)[0].numpy()
        dm = student_forward(net, spikes.flip(-1))[0].numpy()[..., ::-1]
        pp = spike_depth(net, spikes, post_process=True)
        plain = spike_depth(net, spikes)
    w = d.shape[-1]
    x = np.linspace(0, 1, w)
    left = 1 - np.clip(20 * (x - 0.05), 0, 1)
    right = left[::-1]
    blend = right * d + left * dm + (1 - left - right) * (d + dm) / 2
    ref = disp_to_depth(torch.from_numpy(blend.copy()), net.cfg["min_depth"], net.cfg["max_depth"])[1]
    np.testing.assert_allclose(pp.numpy(), ref.numpy(), rtol=1e-4)
    assert float((pp - plain).abs().max()) > 1e-4  # the mirror image changes something


def test_eval_post_process_through_the_cli(shared_data, tmp_path):
    split = tmp_path / "split.txt"
    split.write_text("".join(f"2011_09_26/2011_09_26_drive_0009_sync {i} l\n" for i in (0, 25)))
    kitti = shared_data / "kitti_raw"
    r = r2_in_process(
        "eval",
        "--checkpoint",
        "demo",
        "--data",
        kitti,
        "--split",
        split,
        "--post-process",
        "--out",
        tmp_path / "pp.json",
    )
    assert r.returncode == 0, r.stderr
    res = json.loads((tmp_path / "pp.json").read_text())  # one row: the row itself
    assert "(spike, pp) |" in r.stdout and 0 < res["abs_rel"] < 1 and res["n"] == 2
    r = r2_in_process(
        "eval", "--pred", tmp_path / "x.npz", "--data", kitti, "--split", split, "--post-process"
    )
    assert r.returncode == 2 and "--post-process runs a --checkpoint" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = r2_in_process(
        "eval",
        "--checkpoint",
        "demo",
        "--modality",
        "rgb-tfi",
        "--data",
        kitti,
        "--split",
        split,
        "--post-process",
    )
    assert r.returncode == 2 and "spike-only prediction, not --modality rgb-tfi" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
