"""`r2sdepth adapt`: a slim spike-only model adapted to a folder of images through the CLI (a real
Trainer.fit), resumed by rerunning; the pose warm-up leaves the depth network untouched; bad input."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from r2sdepth.checkpoint import load_file  # noqa: E402
from r2sdepth.data.synthetic import SceneSpec, synthesize  # noqa: E402
from test_infer import r2, r2_in_process, tiny_ckpt  # noqa: E402

TINY_RUN = ["--pose.width", "8", "--data.batch_size", "2", "--checkpoint.every_n_steps", "1"]


@pytest.fixture(scope="module")
def footage(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapt")
    synthesize(root / "synth", SceneSpec(frames=6, height=64, width=96, seed=2), sequences=1)
    images = root / "synth/2000_01_01/2000_01_01_drive_0000_sync/image_02/data"
    return {"images": images, "ckpt": tiny_ckpt(root / "tiny.ckpt", "spike", h=64, w=96, window=32)}


def _net(state: dict) -> dict:
    return {
        k: v
        for k, v in state.items()
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
    }


def test_adapt_a_slim_model_to_an_image_folder_then_continue(footage, tmp_path):
    run = tmp_path / "run"
    args = [
        "adapt",
        "--checkpoint",
        footage["ckpt"],
        "--input",
        footage["images"],
        "--out",
        run,
        "--fov",
        "70",
    ]
    r = r2(*args, "--trainer.max_steps", "2", "--distill.pose_warmup", "2", *TINY_RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "adapted on 4 frames to step 2" in r.stdout
    # the frames were laid out once as a KITTI drive, with the calibration from --fov
    drive = run / "footage/footage/footage_drive_0000_sync/image_02/data"
    assert len(list(drive.glob("*.png"))) == 6
    calib = (run / "footage/footage/calib_cam_to_cam.txt").read_text()
    fx = 48.0 / np.tan(np.radians(35.0))  # (W / 2) / tan(fov / 2), by hand
    p = [float(v) for v in next(ln for ln in calib.splitlines() if ln.startswith("P_rect_02:")).split()[1:]]
    assert p[0] == pytest.approx(fx) and p[5] == pytest.approx(fx)
    # 2 steps, both pose warm-up: the depth network's weights are still the model's own
    teacher = torch.load(footage["ckpt"], map_location="cpu", weights_only=False)["state_dict"]
    adapted = load_file(run / "adapted_spike.ckpt")
    assert adapted["r2sdepth"]["adapted_on"]["steps"] == 2 and adapted["r2sdepth"]["modality"] == "spike"
    a, t = _net(adapted["state_dict"]), _net(teacher)
    assert a.keys() == t.keys() and all(torch.equal(a[k], t[k]) for k in a)
    full = torch.load(run / "checkpoints/last.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    assert any(k.startswith("pose_net.") for k in full)  # a pose net was made and trained
    import yaml

    # the slim model has no pose net: the run's pose section (--pose.width 8) built the fresh one
    assert yaml.safe_load((run / "config.yaml").read_text())["pose"]["width"] == 8
    # rerunning continues the run (a changed config must be asked for); now the depth network learns
    r = r2(
        *args, "--trainer.max_steps", "4", "--distill.pose_warmup", "2", *TINY_RUN, "--allow-config-change"
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "to step 4" in r.stdout
    a = _net(load_file(run / "adapted_spike.ckpt")["state_dict"])
    assert any(not torch.equal(a[k], t[k]) for k in a)
    import r2sdepth

    m = r2sdepth.load_model(run / "adapted_spike.ckpt")
    d = m.predict(np.zeros((1, 32, 64, 96), np.uint8))
    assert d.shape == (1, 64, 96) and np.isfinite(d).all()


def test_adapt_bad_input(footage, tmp_path):
    ck, images = footage["ckpt"], footage["images"]
    few = tmp_path / "few"
    few.mkdir()
    for i in range(2):
        Image.open(next(iter(sorted(images.glob("*.png"))))).save(few / f"{i}.png")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for i, size in enumerate([(96, 64), (96, 64), (80, 64)]):
        Image.new("RGB", size).save(mixed / f"{i}.png")
    kitti = images.parent.parent  # a KITTI raw drive folder (the synthetic one has a calibration)
    cases = [
        (["--input", images], "give --intrinsics fx,fy,cx,cy"),
        (["--input", few, "--fov", "60"], "at least 3 consecutive frames"),
        (["--input", mixed, "--fov", "60"], "size"),
        (["--input", kitti, "--fov", "60"], "has its own calibration"),
        (["--input", kitti, "--frames", "0-3", "--eval-frames", "3-5"], "overlap"),
        (["--input", kitti, "--frames", "0-1"], "at least 3 consecutive frames"),
        (["--input", tmp_path / "nothing"], "no such file or folder"),
        (["--input", images, "--fov", "60", "--distill.pose_warmup", "-1"], "pose_warmup must be >= 0"),
    ]
    (tmp_path / "b.txt").write_text("x")
    cases.append((["--input", tmp_path / "b.txt"], "a KITTI raw drive folder, a folder of images or a video"))
    for extra, msg in cases:
        out = tmp_path / "o"
        r = r2_in_process("adapt", "--checkpoint", ck, "--out", out, *extra)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, (
            extra,
            r.stderr,
        )
        assert not (out / "adapted_spike.ckpt").exists()
    # a failed import leaves no frames behind (here the third image has another size)
    out = tmp_path / "m"
    assert (
        r2_in_process("adapt", "--checkpoint", ck, "--out", out, "--input", mixed, "--fov", "60").returncode
        == 2
    )
    assert not (out / "footage").exists() and not (out / ".footage.partial").exists()


def test_a_slim_spike_model_teaches_only_with_a_trainable_pose_net(footage, tmp_path):
    from r2sdepth.errors import R2SDepthError
    from r2sdepth.train.load import teacher_from_checkpoint

    with pytest.raises(R2SDepthError, match="pose_trainable true"):
        teacher_from_checkpoint(footage["ckpt"])
    hp, state, meta = teacher_from_checkpoint(footage["ckpt"], self_distill=True)
    assert hp["model"]["modality"] == "spike" and state["teacher_pose"] is None and meta["slim"]
    r = r2_in_process(
        "adapt",
        "--checkpoint",
        footage["ckpt"],
        "--input",
        footage["images"],
        "--fov",
        "60",
        "--print-config",
    )
    assert r.returncode == 0, r.stderr
    assert "pose_trainable: true" in r.stdout and "pose_warmup: 100" in r.stdout
    assert json.loads(json.dumps(hp))  # plain data (goes into hyper_parameters)


def test_adapt_an_ensemble_member_by_member(footage, tmp_path):
    """An ensemble (the shipped `real` is one) is adapted member by member and put together again:
    each member's adapted network equals the one a plain `adapt` of that member gives."""
    ens = tmp_path / "ens.ckpt"
    second = tiny_ckpt(tmp_path / "tiny1.ckpt", "spike", h=64, w=96, window=32, seed=1)
    assert r2_in_process("ensemble", footage["ckpt"], second, "--out", ens).returncode == 0
    common = [
        "--input",
        footage["images"],
        "--fov",
        "70",
        "--trainer.max_steps",
        "3",
        "--distill.pose_warmup",
        "1",
    ]
    r = r2_in_process("adapt", "--checkpoint", ens, "--out", tmp_path / "run", *common, *TINY_RUN)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "adapted on 4 frames to step 3 / 3" in r.stdout
    out = load_file(tmp_path / "run" / "adapted_spike.ckpt")
    assert len(out["r2sdepth"]["ensemble"]) == 2 and out["r2sdepth"]["adapted_on"]["from"] == str(ens)
    alone = r2_in_process("adapt", "--checkpoint", second, "--out", tmp_path / "alone", *common, *TINY_RUN)
    assert alone.returncode == 0, alone.stderr[-3000:]
    ref = _net(load_file(tmp_path / "alone" / "adapted_spike.ckpt")["state_dict"])
    got = {
        k[len("members.1.") :]: v for k, v in _net(out["state_dict"]).items() if k.startswith("members.1.")
    }
    assert got.keys() == ref.keys() and all(torch.allclose(got[k], ref[k]) for k in ref)
    first = _net(load_file(footage["ckpt"])["state_dict"])
    assert any(not torch.equal(out["state_dict"][f"members.0.{k}"], first[k]) for k in first)  # it learnt
