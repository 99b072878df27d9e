"""An external depth network (ONNX / TorchScript) as the frozen stage-2 teacher: the exported file
gives the model's own output; the scale-and-shift alignment and loss against numpy and by hand;
``distill --config distill_external`` and ``adapt --teacher`` through the CLI (a real
Trainer.fit); bad teacher files and settings are one-line errors; a changed file is not resumed."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from r2sdepth.checkpoint import load_file  # noqa: E402
from r2sdepth.errors import R2SDepthError  # noqa: E402
from r2sdepth.losses import affine_normalise, ssi_disparity_loss  # noqa: E402
from r2sdepth.models.external import ExternalTeacher, external_format, teacher_spec  # noqa: E402
from test_adapt import TINY_RUN  # noqa: E402
from test_infer import TINY, r2_in_process, tiny_ckpt  # noqa: E402

TINY_DATA = [
    "--data.height", "64", "--data.width", "96", "--data.window", "32",
    "--data.sim.planes_per_frame", "32", "--data.batch_size", "2", "--data.num_workers", "0",
    "--model.width", "8", "--model.decoder_width", "4", "--model.spike_repr.chunks", "2",
    "--model.spike_repr.bins", "4", "--pose.width", "8", "--distill.teacher_input", "unit",
    "--trainer.accelerator", "cpu",
]  # fmt: skip


class _Script(torch.nn.Module):
    """A TorchScript teacher whose output is a chosen function of its input."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "red":  # [B, H, W]: the first channel as given
            return x[:, 0]
        if self.kind == "nan":
            return x[:, :1] * float("nan")
        if self.kind == "two":  # two maps per image
            return x[:, :2]
        return -x[:, :1] - 1.0  # "negative": depth <= 0


def _script(path: Path, kind: str) -> Path:
    torch.jit.save(torch.jit.script(_Script(kind)), str(path))
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny RGB model and its ``export --graph rgb`` ONNX and TorchScript files."""
    d = tmp_path_factory.mktemp("teacher")
    ck = tiny_ckpt(d / "rgb.ckpt", "rgb", h=64, w=96)
    out = {"ckpt": ck}
    for fmt, name in (("onnx", "t.onnx"), ("torchscript", "t.pt")):
        r = r2_in_process("export", "--checkpoint", ck, "--format", fmt, "--out", d / name, "--graph", "rgb")
        assert r.returncode == 0, r.stderr[-2000:]
        out[fmt] = d / name
    return out


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_an_exported_rgb_model_teaches_its_own_disparity(exported, fmt):
    pytest.importorskip("onnxruntime") if fmt == "onnx" else None
    from r2sdepth.train.load import load_checkpoint

    m, _ = load_checkpoint(exported["ckpt"])
    torch.manual_seed(1)
    x = torch.rand(3, 3, 64, 96)  # batch 3: the ONNX graph's batch axis is dynamic
    with torch.no_grad():
        ref = m.net(rgb=x)["disp"][0]
    assert external_format(exported[fmt]) == fmt
    t = ExternalTeacher(teacher_spec(exported[fmt]))
    y = t(x)
    assert y.shape == (3, 1, 64, 96)
    assert float((y - ref).abs().max()) < 1e-5
    assert list(t.parameters()) == [] and not t.train().training  # frozen, always eval
    assert external_format(exported["ckpt"]) is None  # an r2sdepth checkpoint is not external


def test_input_normalisation_size_and_output_forms_by_hand(tmp_path):
    x = torch.rand(2, 3, 8, 12)
    red = _script(tmp_path / "red.pt", "red")
    y = ExternalTeacher(teacher_spec(red, input="unit"))(x)
    assert torch.allclose(y, x[:, :1])
    y = ExternalTeacher(teacher_spec(red, input="imagenet"))(x)
    assert torch.allclose(y, (x[:, :1] - 0.485) / 0.229, atol=1e-6)
    y = ExternalTeacher(teacher_spec(red, input="half"))(x)
    assert torch.allclose(y, (x[:, :1] - 0.5) / 0.5, atol=1e-6)
    # run at 4x6, the map resized back to 8x12: a constant image stays that constant
    c = torch.full((1, 3, 8, 12), 0.25)
    y = ExternalTeacher(teacher_spec(red, size=[4, 6]))(c)
    assert y.shape == (1, 1, 8, 12) and torch.allclose(y, torch.full_like(y, 0.25))


def test_affine_normalise_by_hand_with_weights():
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 5, 7))
    w = (rng.random(x.shape) > 0.3).astype(np.float64)
    n, shift, scale = affine_normalise(torch.from_numpy(x), torch.from_numpy(w))
    for i in range(2):
        v = x[i][w[i] > 0]  # only the weighted pixels count
        m = v.mean()
        mad = np.abs(v - m).mean()
        assert shift[i].item() == pytest.approx(m, rel=1e-12) and scale[i].item() == pytest.approx(
            mad, rel=1e-12
        )
        assert np.allclose(n[i].numpy(), (x[i] - m) / mad)
    n, _, scale = affine_normalise(torch.full((1, 1, 3, 3), 2.0))
    assert torch.equal(n, torch.zeros_like(n)) and scale.item() == pytest.approx(1e-8)  # a constant map: 0


def test_ssi_loss_ignores_the_teachers_units_but_not_its_sign():
    torch.manual_seed(0)
    student = torch.rand(2, 1, 6, 8)
    teacher = torch.rand(2, 1, 6, 8)
    a = ssi_disparity_loss(student, teacher)
    b = ssi_disparity_loss(student, 7.0 * teacher + 3.0)
    assert a.item() == pytest.approx(b.item(), rel=1e-5) and a.item() > 0.1
    assert ssi_disparity_loss(2.0 * teacher - 1.0, teacher).item() == pytest.approx(0.0, abs=1e-5)
    # upside down is wrong (a least-squares scale would align it perfectly): |n - (-n)| = 2 |n|, mean 2
    assert ssi_disparity_loss(-2.0 * teacher + 1.0, teacher).item() == pytest.approx(2.0, rel=1e-5)
    const = torch.full_like(student, 0.3)
    assert ssi_disparity_loss(const, teacher).item() == pytest.approx(1.0, rel=1e-5)
    # by hand for one image: each map minus its mean over its mean absolute deviation
    s, t = student[0].numpy(), teacher[0].numpy()
    ns = (s - s.mean()) / np.abs(s - s.mean()).mean()
    nt = (t - t.mean()) / np.abs(t - t.mean()).mean()
    assert ssi_disparity_loss(student[:1], teacher[:1]).item() == pytest.approx(
        np.abs(ns - nt).mean(), rel=1e-5
    )
    # weights: pixels with weight 0 do not count, an image with all weights 0 is left out
    w = torch.zeros_like(student)
    w[0, :, :3] = 1.0
    ref = ssi_disparity_loss(student[:1, :, :3], teacher[:1, :, :3])
    assert ssi_disparity_loss(student, teacher, w).item() == pytest.approx(ref.item(), rel=1e-5)


@pytest.mark.parametrize("output", ["disparity", "depth"])
def test_teacher_map_aligned_to_the_students_units(tmp_path, output):
    """A teacher that is an affine map of the student's disparity (or a multiple of its depth)
    aligns to exactly the student's sigmoid output."""
    from r2sdepth.geometry import disp_to_depth
    from r2sdepth.train.distill import DistillModule

    spec = teacher_spec(_script(tmp_path / "red.pt", "red"), output=output)
    dm = DistillModule(
        {"model": {"modality": "spike", **TINY}, "external": spec},
        distill={"feat_weight": 0.0, "at_weight": 0.0, "pose_trainable": True},
    )
    torch.manual_seed(0)
    sig = torch.rand(2, 1, 6, 8) * 0.8 + 0.1
    cfg = dm.net.cfg
    disp, depth = disp_to_depth(sig, cfg["min_depth"], cfg["max_depth"])
    assert torch.allclose(disp, 1 / cfg["max_depth"] + (1 / cfg["min_depth"] - 1 / cfg["max_depth"]) * sig)
    tmap = 40.0 * disp + 2.0 if output == "disparity" else 3.5 * depth
    assert torch.allclose(dm.aligned_teacher_disp(tmap, sig), sig, atol=1e-4)
    assert dm.teacher_pose is None and not any(k.startswith("teacher") for k in dm.state_dict())


def test_bad_teacher_files_are_one_line_errors(tmp_path):
    x = torch.rand(2, 3, 8, 12)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx graph")
    for spec, msg in [
        (teacher_spec(_script(tmp_path / "n.pt", "nan")), "NaN"),
        (teacher_spec(_script(tmp_path / "two.pt", "two")), "one map per image"),
        (teacher_spec(_script(tmp_path / "neg.pt", "negative"), output="depth"), "depth <= 0"),
    ]:
        with pytest.raises(R2SDepthError, match=msg):
            ExternalTeacher(spec)(x)
    if importlib.util.find_spec("onnxruntime") is not None:
        with pytest.raises(R2SDepthError, match="not a loadable ONNX model") as e:
            ExternalTeacher(teacher_spec(bad))(x)
        assert "\n" not in str(e.value)
    with pytest.raises(R2SDepthError, match="teacher file not found"):
        teacher_spec(tmp_path / "missing.onnx")
    with pytest.raises(R2SDepthError, match="hub:OWNER/REPO:ENTRY"):
        teacher_spec("hub:nothing")
    with pytest.raises(R2SDepthError, match="teacher_input"):
        teacher_spec(bad, input="bgr")
    spec = teacher_spec(_script(tmp_path / "red.pt", "red"))
    _script(tmp_path / "red.pt", "nan")  # the file changed after the run was set up
    with pytest.raises(R2SDepthError, match="differs from the one this run started with"):
        ExternalTeacher(spec)(x)


def test_distill_from_an_onnx_teacher_through_the_cli(exported, synth, tmp_path):
    pytest.importorskip("onnxruntime")
    run, teacher = tmp_path / "run", tmp_path / "t.onnx"
    teacher.write_bytes(exported["onnx"].read_bytes())
    base = [
        "distill", "--config", "distill_external", "--teacher", teacher, "--out", run,
        "--data.root", synth, "--data.train_split", "splits/train_files.txt", "--data.val_split", "null",
        *TINY_DATA, "--distill.pose_warmup", "1",
    ]  # fmt: skip
    r = r2_in_process(*base, "--trainer.max_steps", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    ck = load_file(run / "checkpoints/last.ckpt")
    meta = ck["r2sdepth"]
    assert ck["global_step"] == 3
    assert meta["teacher_external"]["sha256"] == teacher_spec(exported["onnx"])["sha256"]
    assert meta["teacher_external"]["format"] == "onnx"
    assert not any(k.startswith("teacher") for k in ck["state_dict"])  # its weights are not stored
    # the teacher file changed under the same name: resuming is refused in one line
    teacher.write_bytes(exported["onnx"].read_bytes() + b"\0")
    r = r2_in_process(*base, "--trainer.max_steps", "3")
    assert r.returncode != 0 and "another teacher file" in r.stderr, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1
    # settings an external teacher cannot serve
    for extra, msg in [
        (["--distill.feat_weight", "1"], "distill.feat_weight 0"),
        (["--distill.pose_trainable", "false", "--distill.pose_warmup", "0"], "pose_trainable true"),
        (["--model.modality", "rgb"], "spike-only student"),
    ]:
        r = r2_in_process(*base, "--no-resume", "--out", tmp_path / "x", *extra)
        assert r.returncode != 0 and msg in r.stderr, r.stderr[-2000:]
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_adapt_with_an_external_teacher_through_the_cli(exported, tmp_path):
    from r2sdepth.data.synthetic import SceneSpec, synthesize

    synthesize(tmp_path / "synth", SceneSpec(frames=6, height=64, width=96, seed=2), sequences=1)
    images = tmp_path / "synth/2000_01_01/2000_01_01_drive_0000_sync/image_02/data"
    student = tiny_ckpt(tmp_path / "student.ckpt", "spike", h=64, w=96, window=32)
    run = tmp_path / "run"
    r = r2_in_process(
        "adapt", "--checkpoint", student, "--teacher", exported["torchscript"], "--input", images,
        "--out", run, "--fov", "70", "--trainer.max_steps", "2", "--distill.pose_warmup", "1", *TINY_RUN,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    adapted = load_file(run / "adapted_spike.ckpt")
    on = adapted["r2sdepth"]["adapted_on"]
    assert on["teacher"] == str(exported["torchscript"]) and on["steps"] == 2
    assert "external teacher" in on["recipe"] and adapted["r2sdepth"]["modality"] == "spike"
    # step 2 trained the depth network (warm-up 1): it moved from the student's start
    start = torch.load(student, map_location="cpu", weights_only=False)["state_dict"]
    assert any(not torch.equal(adapted["state_dict"][k], v) for k, v in start.items() if k.endswith("weight"))
