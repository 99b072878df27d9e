"""Training configs: one schema with every key, its type, default and meaning (OmegaConf).

A run's config is ``defaults <- YAML file <- --section.key value overrides``, merged and checked
by OmegaConf structured configs: an unknown key is an error naming the closest valid key
(``data.batchsize`` -> ``data.batch_size``), a value of the wrong type is an error naming the key,
and choices are checked before any data is read. ``trainer`` keys are Lightning ``Trainer``
arguments and are checked against its signature. Every default lives here; the ``DEFAULT_*``
dicts the other modules use are read from this schema.

Shipped configs (``train_rgb``, ``train_spike``, ``train_fusion``, ``distill`` and their
``*_synth`` versions sized for a CPU) are installed with the package: ``--config train_rgb_synth``
works from any directory. Split paths that are relative are looked up under ``data.root`` first
(so ``--data.root DIR`` alone finds ``DIR/splits/...``), then in the working directory.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

from r2sdepth.errors import R2SDepthError
from r2sdepth.spike.simulate import SimParams


def _f(default: Any, help: str, choices: Sequence[Any] | None = None) -> Any:
    meta = {"help": help, **({"choices": tuple(choices)} if choices else {})}
    if isinstance(default, type) and dataclasses.is_dataclass(default):
        return field(default_factory=default, metadata=meta)
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: copy.deepcopy(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class SpikeReprConfig:
    chunks: int = _f(4, "K chunks of T / K planes fed in turn to a ConvGRU")
    bins: int = _f(8, "sub-window firing rates summarising each chunk")
    hidden: int = _f(1, "ConvGRU hidden channels (output: K x hidden channels)")
    include_rate: bool = _f(True, "also pass the window's firing-rate map as a channel")


@dataclass
class FusionConfig:
    mode: str = _f(
        "anneal",
        "anneal: w_rgb = clamp(1 - (epoch + offset) / horizon, floor, 1); gate: learned",
        ("anneal", "gate"),
    )
    horizon: float = _f(10.0, "epochs over which w_rgb falls from 1 to 0 (anneal)")
    offset: float = _f(0.0, "epoch offset of the anneal (1.0: the paper's 1 - 0.1 (e + 1))")
    floor: float = _f(0.0, "lowest w_rgb")


@dataclass
class ModelConfig:
    modality: str = _f(
        "fusion", "rgb, spike (spike-only) or fusion (RGB + spike, teacher)", ("rgb", "spike", "fusion")
    )
    num_layers: int = _f(18, "ResNet depth of the encoders", (18, 34, 50))
    width: int = _f(64, "encoder base width (64 = the paper's ResNet-18)")
    pretrained: bool = _f(False, "ImageNet weights for the RGB encoder (downloads once)")
    decoder_width: int = _f(16, "decoder base width (16 = Monodepth2's)")
    spike_encoder: str = _f(
        "resnet", "resnet, or spiking (LIF neurons, surrogate gradient)", ("resnet", "spiking")
    )
    spike_repr: SpikeReprConfig = _f(SpikeReprConfig, "spike representation")
    fusion: FusionConfig = _f(FusionConfig, "how RGB features are mixed into the spike features")
    student_decoder: bool = _f(True, "fusion: a second (student) decoder on the spike features")
    min_depth: float = _f(0.1, "depth of disparity 1 (metres up to scale)")
    max_depth: float = _f(100.0, "depth of disparity 0 (metres up to scale)")
    init_depth: float | None = _f(
        None,
        "metres: the disparity heads start predicting this depth (a metric "
        "start for data.stereo / loss.velocity_weight training); null: sigmoid 0.5",
    )


@dataclass
class PoseConfig:
    num_layers: int = _f(18, "ResNet depth of the pose network", (18, 34, 50))
    width: int = _f(64, "pose encoder base width")
    pretrained: bool = _f(False, "ImageNet weights for the pose encoder (downloads once)")
    scale: float = _f(
        0.01, "raw pose outputs x scale (Monodepth2: 0.01 with ImageNet weights; 0.1 from scratch)"
    )
    zero_init: bool = _f(
        False,
        "zero the pose head's last layer: training starts from no motion instead of a random constant one",
    )


@dataclass
class LossConfig:
    smooth_weight: float = _f(1e-3, "edge-aware disparity smoothness weight")
    automask: bool = _f(True, "Monodepth2's auto-mask of pixels an unwarped source explains better")
    student_weight: float = _f(1.0, "fusion: weight of the student (spike) head's photometric loss")
    photo_weight: float = _f(
        1.0,
        "weight of the view-synthesis (photometric) loss; 0 with depth_weight > 0: "
        "depth-supervised only (no pose network used)",
    )
    depth_weight: float = _f(
        0.0,
        "weight of a scale-invariant log loss on the training split's ground-truth "
        "depth (data.gt_source), e.g. a synthetic scene's exact depth; 0: no depth "
        "labels (R2SDepth's self-supervised stage 1)",
    )
    depth_lambda: float = _f(
        0.85,
        "lambda of that scale-invariant log loss: 0.85 (Eigen et al.) keeps a small penalty on a "
        "global scale; 1: none (relative depth, the scale left free)",
    )
    velocity_weight: float = _f(
        0.0,
        "weight of the velocity term |‖t_pose‖ - distance travelled| (PackNet-SfM) "
        "on the pose net's translations, distances from the drive's poses.txt or oxts: "
        "makes the depth metric; 0: off",
    )
    known_speed: bool = _f(
        False,
        "scale each pose-net translation to the distance the camera really moved (poses.txt "
        "or oxts) before warping: metric depth from known speed; the pose net learns "
        "only the direction (training batches; validation uses its raw translations)",
    )
    velocity_axis: str = _f(
        "norm",
        "what the velocity term compares with the distance travelled: norm (PackNet-SfM: the "
        "translation's length) or forward (its signed component along the optical axis against the "
        "signed distance travelled along the camera's heading: a forward-looking camera on a vehicle, "
        "whose signed oxts forward speed is known) or both (the sum: the sideways motion held too)",
        ("norm", "forward", "both"),
    )
    velocity_warmup: int = _f(
        0,
        "optimiser steps before the velocity term and known_speed start (the pose net "
        "first learns the direction of motion from the photometric loss)",
    )


@dataclass
class OptimConfig:
    lr: float = _f(1e-4, "Adam learning rate")
    step_size: int = _f(15, "epochs between learning-rate drops")
    gamma: float = _f(0.1, "learning-rate factor at each drop")
    weight_decay: float = _f(0.0, "Adam weight decay")
    fused: bool = _f(
        False, "Adam's fused kernel (one pass over all weights; measured in benchmarks/step_ratio.py)"
    )


@dataclass
class DataConfig:
    root: str | None = _f(None, "data root (KITTI raw layout or `r2sdepth synth` output)")
    train_split: str | None = _f(None, "split file (<drive> <frame> <l|r>); relative: under root first")
    val_split: str | None = _f(
        None, "validation split (diagnostic metrics; never selects the no-label model)"
    )
    height: int = _f(192, "network input height (multiple of 32)")
    width: int = _f(640, "network input width (multiple of 32)")
    context: list[int] = _f([-1, 1], "source frames relative to the target")
    stereo: bool = _f(
        False,
        "also the other camera of the calibrated pair at time t as a source view with its "
        "known pose (Monodepth2's S / MS modes; metric depth); needs image_03 / image_02",
    )
    window: int = _f(
        128,
        "spike planes per window (T); their duration is T / sim.rate (sim.camera_rate_hz: a real "
        "camera's rate; 0: P planes per RGB frame interval)",
    )
    align: str = _f(
        "end", "window ends at the frame (causal) or is centred on it (built streams only)", ("end", "center")
    )
    spike_root: str | None = _f(None, "built Spike-KITTI root (null: simulate windows on the fly)")
    frame_cache: str | None = _f(
        None,
        "RGB frames stored at (height, width) by `r2sdepth cache-frames` (no PNG decode or resize per "
        "read; the same pixels); null: read the images",
    )
    sim: SimParams = _f(
        SimParams, "on-the-fly simulator (must match the built streams when spike_root is set)"
    )
    batch_size: int = _f(4, "training batch per process")
    val_batch_size: int = _f(4, "validation batch per process")
    num_workers: int = _f(2, "data loader worker processes")
    augment: bool = _f(True, "horizontal flips and colour jitter (p = 0.5, Monodepth2's)")
    transport: str = _f(
        "device",
        "device: spike windows travel bit-packed (8x fewer bytes) and the colour jitter as its "
        "draws, unpacked / applied on the training device; plain: finished tensors from the loader",
        ("device", "plain"),
    )
    seed: int | None = _f(None, "data order / augmentation / simulation seed (null: the run's seed)")
    gt_source: str = _f(
        "auto",
        "ground truth of validation (and of training, loss.depth_weight > 0)",
        ("auto", "velodyne", "annotated", "exact"),
    )


@dataclass
class CheckpointConfig:
    every_n_steps: int | None = _f(100, "write last.ckpt every N optimiser steps (null: off)")
    every_n_minutes: float | None = _f(None, "... and/or every N minutes (null: off)")


@dataclass
class DistillConfig:
    photo_weight: float = _f(1.0, "student's own photometric loss")
    feat_weight: float = _f(0.1, "feature imitation (connector -> teacher features)")
    at_weight: float = _f(0.1, "attention-map transfer")
    depth_weight: float = _f(0.5, "scale-invariant pseudo-label loss on the teacher's depth")
    adaptive: bool = _f(True, "adaptive pixel weights (teacher's reprojection error vs the student's)")
    pixel: str = _f("hard", "pixel weights: hard mask, soft weights, or none", ("hard", "soft", "none"))
    feature_target: str = _f(
        "fused", "teacher features to imitate (fused needs a fusion teacher)", ("fused", "rgb")
    )
    si_lambda: float = _f(0.85, "lambda of the scale-invariant log loss")
    pose_trainable: bool = _f(False, "train the pose network in stage 2 (default: the teacher's, frozen)")
    pose_warmup: int = _f(
        0,
        "optimiser steps at the start in which only the (trainable) pose network learns: a fresh "
        "pose net's first poses would otherwise pull the student's depth",
    )
    init_from_teacher: bool = _f(True, "start the student from the teacher's spike branch and decoder")
    ema_momentum: float = _f(0.98, "momentum of the running error statistics of the adaptive weights")
    teacher_input: str = _f(
        "unit",
        "an external teacher's (ONNX, TorchScript, hub) input: RGB in [0, 1], ImageNet-normalised, "
        "or half (mean 0.5, std 0.5, i.e. [-1, 1]: MiDaS v3 DPT models)",
        ("unit", "imagenet", "half"),
    )
    teacher_output: str = _f(
        "disparity",
        "an external teacher's output: relative disparity (scale-and-shift-invariant loss) or "
        "metric depth in metres (scale-invariant log loss)",
        ("disparity", "depth"),
    )
    teacher_size: list[int] | None = _f(
        None, "[height, width] the external teacher runs at (null: the training size)"
    )


DEFAULT_TRAINER_ARGS: dict[str, Any] = {
    "max_epochs": 20,
    "accelerator": "auto",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "precision": None,
    "log_every_n_steps": 10,
}


@dataclass
class SpeedConfig:
    compile_ssim: bool = _f(
        False,
        "torch.compile the photometric loss's SSIM (same numbers; 0.82x -> 0.75x of Monodepth2's rgb step at "
        "192x640 on 2 CPU threads, about 25 s to compile: benchmarks/step_ratio.py); needs a C++ compiler on "
        "CPU or triton on a GPU, else eager with a warning",
    )
    channels_last: bool = _f(
        False, "networks in channels-last memory format (within noise on CPU: step_ratio.py)"
    )


@dataclass
class TrainConfig:
    seed: int = _f(0, "global seed (weights, data order, augmentation)")
    model: ModelConfig = _f(ModelConfig, "depth network")
    pose: PoseConfig = _f(PoseConfig, "pose network")
    loss: LossConfig = _f(LossConfig, "stage-1 loss")
    optim: OptimConfig = _f(OptimConfig, "optimiser and step schedule")
    data: DataConfig = _f(DataConfig, "data")
    trainer: dict[str, Any] = _f(
        dict(DEFAULT_TRAINER_ARGS),
        "Lightning Trainer arguments (precision null: bf16-mixed on a GPU that supports it, else 16-mixed; "
        "32 on CPU)",
    )
    checkpoint: CheckpointConfig = _f(CheckpointConfig, "last.ckpt frequency")
    speed: SpeedConfig = _f(SpeedConfig, "speed options that leave the maths unchanged")
    init_from: str | None = _f(None, "copy matching weights from this checkpoint before training")


@dataclass
class DistillRunConfig(TrainConfig):
    distill: DistillConfig = _f(DistillConfig, "stage-2 terms")
    teacher: str | None = _f(
        None,
        "stage-1 checkpoint, or an external depth network: .onnx, TorchScript, hub:OWNER/REPO:ENTRY "
        "(set by `r2sdepth distill --teacher`)",
    )


def defaults(section: str | None = None, *, stage2: bool = False) -> Any:
    """Plain-dict defaults of the whole config or one section (e.g. ``defaults("model")``)."""
    d = dataclasses.asdict((DistillRunConfig if stage2 else TrainConfig)())
    return d if section is None else d[section]


def merge(base: dict[str, Any], over: dict[str, Any] | None) -> dict[str, Any]:
    """Recursive dict merge (``over`` wins)."""
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def section(name: str, values: dict[str, Any] | None = None, *, stage2: bool = False) -> dict[str, Any]:
    """One config section as a component receives it: the schema's defaults overlaid (recursively)
    with ``values``. A run hands every component its resolved section (a no-op here); a partial one
    comes from an older checkpoint's hyper-parameters or from code that builds a component directly.
    The only place a component's defaults come from."""
    return merge(defaults(name, stage2=stage2), values)


# -- reading and checking -------------------------------------------------------------------------


def shipped_configs() -> dict[str, Path]:
    """Name -> path of the configs installed with the package."""
    root = resources.files("r2sdepth") / "configs"
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".yaml")}


def config_path(name_or_path: str | os.PathLike) -> Path:
    """A YAML file, or the name of a shipped config (``train_rgb_synth``)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    shipped = shipped_configs()
    key = p.stem if p.suffix in (".yaml", ".yml") and not p.exists() else str(name_or_path)
    if key in shipped:
        return shipped[key]
    close = difflib.get_close_matches(key, list(shipped), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise R2SDepthError(
        f"{name_or_path}: config file not found and not a shipped config{hint}; "
        f"shipped: {', '.join(sorted(shipped))}"
    )


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A config file as a dict (UTF-8 YAML mapping), with one-line errors."""
    path = Path(path)
    try:
        cfg = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        raise R2SDepthError(f"{path}: not a YAML text file (invalid UTF-8 at byte {e.start})") from e
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "syntax error"
        raise R2SDepthError(f"{path}: invalid YAML ({first})") from e
    if not isinstance(cfg, dict):
        raise R2SDepthError(
            f"{path}: a config must be a YAML mapping of sections, got a {type(cfg).__name__}"
        )
    return cfg


def parse_overrides(overrides: Sequence[str]) -> list[tuple[str, Any]]:
    """``["--trainer.max_steps", "20", "--data.root=DIR"]`` -> ``[("trainer.max_steps", 20), ...]``
    (values parsed as YAML)."""
    items, out, i = list(overrides), [], 0
    while i < len(items):
        tok = items[i]
        if not tok.startswith("--"):
            raise R2SDepthError(f"unexpected argument {tok!r}: overrides look like --section.key value")
        key = tok[2:]
        if "=" in key:
            key, val = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(items):
                raise R2SDepthError(f"override {tok} needs a value")
            val = items[i + 1]
            i += 2
        try:
            out.append((key, yaml.safe_load(val)))
        except yaml.YAMLError:
            out.append((key, val))
    return out


def apply_overrides(cfg: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted ``--a.b value`` overrides in a (partial) config dict, in place."""
    for key, val in parse_overrides(overrides):
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise R2SDepthError(f"override {key}: {p} is not a section")
        node[parts[-1]] = val
    return cfg


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a config file (or shipped config name) and apply overrides; not yet checked (see
    :func:`resolve`)."""
    return apply_overrides(read_yaml(config_path(path)), overrides)


def _schema_keys(schema: Any, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(schema):
        keys.append(prefix + f.name)
        has_factory = f.default_factory is not dataclasses.MISSING
        t = f.default_factory() if has_factory else None  # type: ignore[misc]
        if dataclasses.is_dataclass(t):
            keys += _schema_keys(type(t), prefix + f.name + ".")
    return keys


def _check_trainer_keys(trainer: dict[str, Any]) -> None:

    import lightning as L  # noqa: PLC0415  heavy (imports torch): the config is checked by light commands too

    valid = [k for k in inspect.signature(L.Trainer.__init__).parameters if k != "self"]
    reserved = {"callbacks", "logger", "plugins", "default_root_dir", "use_distributed_sampler"}
    for k in trainer:
        if k in reserved:
            raise R2SDepthError(f"trainer.{k} is set by r2sdepth itself and cannot be configured")
        if k not in valid:
            close = difflib.get_close_matches(k, valid, n=1)
            raise R2SDepthError(
                f"unknown config key trainer.{k}"
                + (f" (did you mean trainer.{close[0]}?)" if close else "")
                + "; trainer keys are lightning.Trainer arguments"
            )


def check_run_rules(cfg: dict[str, Any], *, stage2: bool) -> None:
    """The cross-key rules of a resolved run config (stage 1, or ``stage2``: distillation), checked
    before any data is touched: what each loss term needs from the data and the other terms."""
    if stage2:
        if cfg["loss"]["depth_weight"] > 0:
            raise R2SDepthError(
                "loss.depth_weight is a stage-1 (train) option; distill has distill.depth_weight"
            )
    elif cfg["loss"]["photo_weight"] <= 0 and cfg["loss"]["depth_weight"] <= 0:
        raise R2SDepthError("loss.photo_weight 0 needs loss.depth_weight > 0 (nothing to learn from)")
    if stage2 and cfg["loss"]["velocity_weight"] > 0:
        raise R2SDepthError("loss.velocity_weight is a stage-1 (train) option")
    if (
        cfg["loss"]["velocity_weight"] < 0
        or cfg["loss"]["velocity_weight"] > 0
        and not cfg["data"]["context"]
    ):
        raise R2SDepthError("loss.velocity_weight must be >= 0 and needs context frames (data.context)")
    m = cfg["model"]
    h, w = cfg["data"].get("height"), cfg["data"].get("width")
    if h is not None and w is not None and (h % 32 or w % 32 or min(h, w) < 64):
        raise R2SDepthError(
            f"data.height x data.width {h}x{w} must be multiples of 32 and at least 64 (the encoder "
            "halves the input 5 times; its deepest features need 2 pixels each way)"
        )
    rep, window = m.get("spike_repr"), cfg["data"].get("window")
    if m.get("modality") in ("spike", "fusion") and rep and window and window % (rep["chunks"] * rep["bins"]):
        raise R2SDepthError(
            f"data.window {window} must be a multiple of model.spike_repr.chunks x bins = "
            f"{rep['chunks']} x {rep['bins']} (the spike representation splits the window into them)"
        )
    if m.get("init_depth") is not None and not m["min_depth"] < m["init_depth"] < m["max_depth"]:
        raise R2SDepthError(
            f"model.init_depth {m['init_depth']} must lie between model.min_depth {m['min_depth']} "
            f"and model.max_depth {m['max_depth']}"
        )
    if cfg["loss"]["photo_weight"] > 0 and not cfg["data"]["context"] and not cfg["data"]["stereo"]:
        raise R2SDepthError("loss.photo_weight > 0 needs source views: data.context frames or data.stereo")
    if cfg["loss"]["known_speed"] and (
        stage2 or not cfg["data"]["context"] or cfg["loss"]["photo_weight"] <= 0
    ):
        raise R2SDepthError(
            "loss.known_speed scales the pose net's translations of stage 1: it needs data.context "
            "frames and loss.photo_weight > 0"
        )
    if not 0.0 <= cfg["loss"]["depth_lambda"] <= 1.0:
        raise R2SDepthError(
            f"loss.depth_lambda {cfg['loss']['depth_lambda']} must lie in [0, 1] (1: scale-invariant)"
        )
    if cfg["loss"]["velocity_warmup"] < 0:
        raise R2SDepthError("loss.velocity_warmup must be >= 0 (optimiser steps)")
    if cfg["loss"]["velocity_weight"] > 0 and cfg["loss"]["photo_weight"] <= 0:
        raise R2SDepthError(
            "loss.velocity_weight supervises the pose net, which only loss.photo_weight > 0 trains"
        )
    if cfg["data"]["stereo"] and cfg["loss"]["photo_weight"] <= 0:
        raise R2SDepthError(
            "data.stereo adds a source view to the photometric loss: it needs loss.photo_weight > 0"
        )


def check_distill_config(dcfg: dict[str, Any], teacher_modality: str) -> dict[str, Any]:
    """Refuse stage-2 settings the teacher cannot serve (before any data is touched)."""
    if dcfg["pixel"] not in ("hard", "soft", "none"):
        raise R2SDepthError(f"distill.pixel must be hard, soft or none, got {dcfg['pixel']!r}")
    if teacher_modality == "spike" and (dcfg["feat_weight"] > 0 or dcfg["at_weight"] > 0):
        raise R2SDepthError(
            "a spike-only teacher (self-distillation) serves distill.depth_weight and the "
            "photometric loss only: set distill.feat_weight 0 and distill.at_weight 0"
        )
    if dcfg["pose_warmup"] < 0 or dcfg["pose_warmup"] > 0 and not dcfg["pose_trainable"]:
        raise R2SDepthError("distill.pose_warmup must be >= 0 and needs distill.pose_trainable true")
    if teacher_modality == "external":
        if dcfg["feat_weight"] > 0 or dcfg["at_weight"] > 0:
            raise R2SDepthError(
                "an external teacher serves distill.depth_weight and the photometric loss only: "
                "set distill.feat_weight 0 and distill.at_weight 0"
            )
        if not dcfg["pose_trainable"]:
            raise R2SDepthError(
                "an external teacher has no pose network: set --distill.pose_trainable true "
                "(the student's own pose net is trained)"
            )
        return dcfg
    target = dcfg["feature_target"]
    if teacher_modality == "spike":
        return dcfg
    if target not in ("fused", "rgb") or (target == "fused" and teacher_modality != "fusion"):
        raise R2SDepthError(
            f"distill.feature_target {target!r} is not available from a {teacher_modality} "
            "teacher (fused features need a fusion teacher; use rgb)"
        )
    return dcfg


def resolve(cfg: dict[str, Any], *, stage2: bool = False) -> dict[str, Any]:
    """Defaults <- ``cfg``, checked against the schema; returns a plain dict.

    Raises :class:`R2SDepthError` naming the key for unknown keys (with the closest valid one),
    values of the wrong type and values outside a key's choices."""

    schema_cls = DistillRunConfig if stage2 else TrainConfig
    schema = OmegaConf.structured(schema_cls)
    trainer_user = dict(cfg.get("trainer") or {}) if isinstance(cfg.get("trainer") or {}, dict) else None
    if trainer_user is None:
        raise R2SDepthError("config section trainer must be a mapping")
    _check_trainer_keys(trainer_user)
    try:
        merged = OmegaConf.merge(schema, {k: v for k, v in cfg.items() if k != "trainer"})
    except ConfigKeyError as e:
        key = e.full_key or str(e.key)
        parent = key.rsplit(".", 1)[0] + "." if "." in key else ""
        valid = [k for k in _schema_keys(schema_cls) if k.startswith(parent) and "." not in k[len(parent) :]]
        if not stage2 and key.split(".")[0] in ("distill", "teacher"):
            raise R2SDepthError(
                f"config key {key} belongs to `r2sdepth distill` (stage 2), not train"
            ) from None
        close = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
        raise R2SDepthError(
            f"unknown config key {key}"
            + (f" (did you mean {close[0]}?)" if close else "")
            + "; `r2sdepth train --help` lists every key"
        ) from None
    except OmegaConfBaseException as e:
        msg = str(e).splitlines()[0]
        raise R2SDepthError(f"config key {e.full_key}: {msg}") from None
    out: dict[str, Any] = OmegaConf.to_container(merged)  # type: ignore[assignment]
    out["trainer"] = {**DEFAULT_TRAINER_ARGS, **trainer_user}
    _check_choices(schema_cls, out)
    return out


def _check_choices(schema: Any, values: dict[str, Any], prefix: str = "") -> None:
    for f in dataclasses.fields(schema):
        v = values.get(f.name)
        choices = f.metadata.get("choices")
        if choices and v not in choices:
            raise R2SDepthError(
                f"config key {prefix}{f.name}: {v!r} is not one of {', '.join(map(str, choices))}"
            )
        has_factory = f.default_factory is not dataclasses.MISSING
        t = f.default_factory() if has_factory else None  # type: ignore[misc]
        if dataclasses.is_dataclass(t) and isinstance(v, dict):
            _check_choices(type(t), v, prefix + f.name + ".")


def resolve_split(path: str | None, root: str | None) -> str | None:
    """A split path as given if it exists, else relative to ``root`` (``splits/train_files.txt``
    under the data root), else as given (the data set reports it missing)."""
    if not path:
        return path
    p = Path(path)
    if root and not p.is_absolute():
        under = Path(root) / p
        if under.is_file():
            return str(under)
    return str(p)


def config_help(*, stage2: bool = False) -> str:
    """Every key with its default and meaning (for ``--help``)."""
    lines: list[str] = []

    def walk(schema: Any, prefix: str, inst: Any) -> None:
        for f in dataclasses.fields(schema):
            v = getattr(inst, f.name)
            if dataclasses.is_dataclass(v):
                lines.append(f"  {prefix}{f.name}.*  ({f.metadata.get('help', '')})")
                walk(type(v), prefix + f.name + ".", v)
                continue
            ch = f.metadata.get("choices")
            extra = f" [{'|'.join(map(str, ch))}]" if ch else ""
            lines.append(
                f"  --{prefix}{f.name} "
                f"{yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"
                f"{extra}: {f.metadata.get('help', '')}"
            )

    cls = DistillRunConfig if stage2 else TrainConfig
    walk(cls, "", cls())
    return "\n".join(lines)


def differing_keys(a: dict[str, Any], b: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two resolved configs."""
    out = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += differing_keys(va, vb, prefix + k + ".")
        elif va != vb:
            out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
    return out
