"""The baseline a user with an ordinary depth network has: an RGB model on the TFP / TFI
reconstruction of the spike window (``--modality rgb-tfp`` / ``rgb-tfi`` in ``eval`` and
``infer``), against the reconstruction computed by hand."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from r2sdepth.geometry import disp_to_depth  # noqa: E402
from r2sdepth.infer import predict_batch, predict_split  # noqa: E402
from r2sdepth.spike import write_dat  # noqa: E402
from r2sdepth.spike.reconstruct import stretch, to_uint8  # noqa: E402
from r2sdepth.train.load import load_checkpoint  # noqa: E402
from test_infer import r2_in_process, tiny_ckpt  # noqa: E402


def test_stretch_per_image_by_hand():
    rng = np.random.default_rng(0)
    img = rng.random((2, 6, 8)).astype(np.float32) * np.array([0.2, 0.5], np.float32)[:, None, None]
    out = stretch(img)
    for i in range(2):
        hi = np.percentile(img[i], 99.5)
        assert np.allclose(out[i], np.clip(img[i] / hi, 0, 1))
    assert np.array_equal(stretch(np.zeros((3, 4))), np.zeros((3, 4)))  # nothing fired: stays 0
    one = img[0]
    assert np.array_equal(
        to_uint8(one), np.rint(np.clip(one / np.percentile(one, 99.5), 0, 1) * 255).astype(np.uint8)
    )


@pytest.mark.parametrize("method", ["tfp", "tfi"])
def test_rgb_network_on_the_reconstruction_by_hand(tmp_path, method):
    ck = tiny_ckpt(tmp_path / "rgb.ckpt", "rgb", h=64, w=96)
    module, _ = load_checkpoint(ck)
    rng = np.random.default_rng(1)
    spikes = (rng.random((2, 32, 64, 96)) < np.linspace(0.05, 0.6, 96)).astype(np.uint8)
    # by hand: TFP = firing rate; TFI = 1 / interval around the centre plane (16)
    grey = []
    for s in spikes:
        if method == "tfp":
            g = s.mean(0)
        else:
            g = np.zeros((64, 96), np.float32)
            for y, x in np.ndindex(64, 96):
                fired = np.flatnonzero(s[:, y, x])
                prev = fired[fired <= 16]
                nxt = fired[fired > 16]
                a = prev[-1] if len(prev) else -1
                b = nxt[0] if len(nxt) else 32
                g[y, x] = 1.0 / min(b - a, 32) if len(prev) and len(nxt) else 1.0 / 32
        grey.append(np.clip(g / np.percentile(g, 99.5), 0, 1))
    x = torch.from_numpy(np.stack(grey)).float()[:, None].expand(-1, 3, -1, -1)
    with torch.no_grad():
        ref = disp_to_depth(
            module.net(rgb=x)["disp"][0], module.net.cfg["min_depth"], module.net.cfg["max_depth"]
        )[1]
    got = predict_batch(module, {"spikes": torch.from_numpy(spikes)}, f"rgb-{method}")
    assert torch.allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_eval_and_infer_run_an_rgb_model_on_spikes(tmp_path, synth):
    ck = tiny_ckpt(tmp_path / "rgb.ckpt", "rgb", h=64, w=96)
    split = synth / "splits" / "test_files.txt"
    preds, name = predict_split(ck, synth, split, modality="rgb-tfp")
    assert name.endswith("(rgb-tfp)") and preds[0].shape == (64, 96) and np.isfinite(preds[0]).all()
    plain, _ = predict_split(ck, synth, split, modality="rgb")
    assert not np.allclose(preds[0], plain[0])  # a different input than the frame itself
    r = r2_in_process("eval", "--checkpoint", ck, "--modality", "rgb-tfp", "--data", synth, "--split", split)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "rgb-tfp" in r.stdout
    dat = tmp_path / "s.dat"
    write_dat(dat, (np.random.default_rng(0).random((64, 64, 96)) < 0.3).astype(np.uint8))
    out = tmp_path / "out"
    r = r2_in_process(
        "infer", "--checkpoint", ck, "--input", dat, "--sensor", "64x96", "--out", out,
        "--window", "32", "--stride-planes", "32", "--modality", "rgb-tfi",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    summ = json.loads((out / "summary.json").read_text())
    assert summ["modality"] == "rgb-tfi" and summ["outputs"] == 2
    r = r2_in_process(
        "infer", "--checkpoint", ck, "--input", dat, "--sensor", "64x96", "--out", tmp_path / "o2"
    )
    assert r.returncode != 0 and "rgb-tfp" in r.stderr and len(r.stderr.strip().splitlines()) == 1
