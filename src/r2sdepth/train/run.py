"""``r2sdepth train``: YAML config + dotted overrides -> Lightning Trainer run in ``RUN_DIR``.

``RUN_DIR/config.yaml`` (resolved config), TensorBoard and CSV logs under ``RUN_DIR/logs``, and
``RUN_DIR/checkpoints/``:

* ``last.ckpt``: always the newest state: written every ``checkpoint.every_n_steps`` optimiser
  steps (and/or every ``checkpoint.every_n_minutes``), after every validation, and at the end of
  the run, atomically (temporary file in the same folder, fsync, rename) with a tensor checksum;
* ``best-step=N.ckpt``: lowest ``val/abs_rel`` when a validation split is given. It is chosen
  with ground-truth depth, so it is a diagnostic: a "no depth labels" result uses ``last.ckpt``.
  A NaN validation metric never becomes the best (it is reported with a warning).

A rerun with the same ``RUN_DIR`` resumes from ``last.ckpt`` and continues the same run: model,
optimiser, scheduler, loop counters, the global RNG and the position in the epoch's data order
(the order and augmentation are functions of ``(seed, epoch, index)``) are restored.
"""

from __future__ import annotations

import csv
import logging
import os
import warnings
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from r2sdepth.atomic import atomic_path, write_bytes_atomic
from r2sdepth.checkpoint import checkpoint_path, lightning_checkpoint_io, load_file
from r2sdepth.config import (
    apply_overrides,
    check_distill_config,
    check_run_rules,
    defaults,
    differing_keys,
    load_config,
    merge,
    read_yaml,
    resolve,
    resolve_split,
    section,
)
from r2sdepth.errors import R2SDepthError
from r2sdepth.losses import compiled_ssim
from r2sdepth.models.external import external_format, teacher_spec
from r2sdepth.train.datamodule import SplitDataModule
from r2sdepth.train.distill import DistillModule
from r2sdepth.train.load import teacher_from_checkpoint
from r2sdepth.train.module import DepthModule

__all__ = [
    "adapt_config",
    "apply_overrides",
    "load_config",
    "run_training",
]  # config reading lives in r2sdepth.config


class LightningNoise(logging.Filter):
    """Drops Lightning's adverts (``💡 Tip: ... try installing ...``) and its hardware roll-call
    (``GPU available: False``) from its rank-zero logger; its real warnings and notices stay."""

    DROP = ("💡 Tip", "GPU available:", "TPU available:", "HPU available:")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(self.DROP)


def quiet_lightning() -> None:
    """Install :class:`LightningNoise` on Lightning's rank-zero logger, once."""
    log = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, LightningNoise) for f in log.filters):
        log.addFilter(LightningNoise())


def adapt_config(
    teacher: str | os.PathLike,
    data_root: str | os.PathLike,
    train_split: str | os.PathLike,
    *,
    spike_root: str | os.PathLike | None = None,
    steps: int = 600,
    lr: float = 1e-4,
    batch_size: int = 4,
    seed: int = 0,
    overrides: list[str] | None = None,
) -> dict[str, Any]:
    """The config that adapts a stage-1 fusion checkpoint to new, unlabelled footage by view
    synthesis (self-supervised fine-tuning; no depth labels, no validation split: the last step
    is the result). The model, pose net and data settings (size, window, camera model) are the
    checkpoint's; the weights start from it (``init_from``); the fusion's RGB weight is held at
    the value the checkpoint ended with (the anneal schedule would otherwise restart at 1).
    The spike-only (student) head of the result is the adapted spike-only model."""
    ck = load_file(teacher)
    meta, hp = ck.get("r2sdepth") or {}, ck.get("hyper_parameters") or {}
    if meta.get("modality") != "fusion" or not hp.get("model") or "teacher" in hp:
        raise R2SDepthError(
            f"{teacher}: adaptation starts from a stage-1 fusion training checkpoint "
            f"(got {meta.get('modality')!r}{', stage 2' if 'teacher' in hp else ''})"
        )
    w_end = float(ck["state_dict"]["net.w_rgb"])
    data = {k: v for k, v in (hp.get("data") or {}).items() if k in defaults("data")}
    cfg = {
        "seed": seed,
        "model": dict(hp["model"]),
        "pose": hp.get("pose") or {},
        "loss": hp.get("loss") or {},
        "optim": {**(hp.get("optim") or {}), "lr": lr},
        "data": {
            **data,
            "root": str(data_root),
            "train_split": str(train_split),
            "val_split": None,
            "spike_root": str(spike_root) if spike_root else None,
            "batch_size": batch_size,
            "augment": False,
            "seed": None,
        },
        "trainer": {
            "max_steps": steps,
            "max_epochs": 100000,
            "enable_progress_bar": False,
            "log_every_n_steps": 5,
        },
        "init_from": str(teacher),
    }
    cfg["model"]["fusion"] = {**cfg["model"]["fusion"], "floor": w_end, "offset": 1e6}  # w_rgb held at w_end
    return apply_overrides(cfg, overrides or [])


def resolved_config(
    cfg: dict[str, Any], teacher: str | os.PathLike | None = None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The full, checked config of a run (and with ``teacher``, the teacher's state dicts): stage 2
    takes ``model``/``pose`` from the teacher and defaults its ``data`` section to the teacher's.
    Relative split paths are resolved under ``data.root`` when they exist there."""
    t_state = None
    external = external_format(teacher) if teacher is not None else None
    if external:
        cfg = external_student(cfg)
    elif teacher is not None:
        pose_trainable = section("distill", cfg.get("distill"), stage2=True)["pose_trainable"]
        t_hp, t_state, t_meta = teacher_from_checkpoint(teacher, self_distill=bool(pose_trainable))
        t_data = {k: v for k, v in (t_meta.get("data") or {}).items() if k in defaults("data")}
        # a teacher without a pose net (slim, self-distillation): the run's pose section builds the fresh one
        pose = t_hp["pose"] if t_state["teacher_pose"] is not None else merge(t_hp["pose"], cfg.get("pose"))
        cfg = {**cfg, "model": t_hp["model"], "pose": pose, "data": merge(t_data, cfg.get("data"))}
    cfg = resolve(cfg, stage2=teacher is not None)  # unknown keys, types and choices: errors now
    if external:
        check_distill_config(cfg["distill"], "external")
        dc = cfg["distill"]
        spec = teacher_spec(teacher, dc["teacher_input"], dc["teacher_output"], dc["teacher_size"])
        t_state = {"external": spec}
        cfg["teacher"] = spec["path"]
    elif teacher is not None:
        check_distill_config(cfg["distill"], cfg["model"]["modality"])
        cfg["teacher"] = str(teacher)
    check_run_rules(cfg, stage2=teacher is not None)
    d = cfg["data"]
    if d["seed"] is None:
        d["seed"] = int(cfg["seed"])
    for k in ("train_split", "val_split"):
        d[k] = resolve_split(d[k], d["root"])
    for k in ("root", "train_split"):
        if not d.get(k):
            raise R2SDepthError(f"config needs data.{k} (e.g. --data.{k} PATH)")
    return cfg, t_state


def external_student(cfg: dict[str, Any]) -> dict[str, Any]:
    """Stage 2 with an external teacher: the student is a spike-only network. With ``init_from``
    a spike-only checkpoint (any stage, slim too), the student is that network (its ``model``
    section, as stage 2 takes the teacher's), its pose net (a slim one has none: the run's ``pose``
    section) and its data settings as the defaults of the run's ``data``; otherwise the run's
    ``model`` section, modality spike."""
    model = dict(cfg.get("model") or {})
    if model.get("modality", "spike") != "spike":
        raise R2SDepthError(
            f"an external teacher distils into a spike-only student: model.modality must be spike, "
            f"got {model['modality']!r}"
        )
    init = cfg.get("init_from")
    if not init:
        return {**cfg, "model": {**model, "modality": "spike"}}
    i_hp, _, i_meta = teacher_from_checkpoint(checkpoint_path(init), self_distill=True)
    if i_hp["model"].get("modality") != "spike":
        raise R2SDepthError(
            f"{init}: with an external teacher, init_from must be a spike-only model "
            f"(got {i_hp['model'].get('modality')!r})"
        )
    i_data = {k: v for k, v in (i_meta.get("data") or {}).items() if k in defaults("data")}
    return {
        **cfg,
        "model": i_hp["model"],
        "pose": i_hp["pose"] or cfg.get("pose") or {},
        "data": merge(i_data, cfg.get("data")),
    }


def default_precision(accelerator: str) -> str:
    """``trainer.precision: null``: ``bf16-mixed`` on a GPU that supports bfloat16 (no gradient
    scaler, float32's range), ``16-mixed`` on an older GPU, ``32-true`` on CPU."""
    if not (torch.cuda.is_available() and accelerator in ("auto", "gpu", "cuda")):
        return "32-true"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def _check_resume(out: Path, cfg: dict[str, Any], resume: bool, allow_config_change: bool) -> None:
    """Refuse to resume a run whose ``config.yaml`` differs (unless ``allow_config_change``)."""
    last, saved = out / "checkpoints" / "last.ckpt", out / "config.yaml"
    if resume and last.is_file() and saved.is_file() and not allow_config_change:
        # a key added to the schema since the run began counts as its default (which keeps the old behaviour)
        diff = differing_keys(merge(defaults(stage2="distill" in cfg), read_yaml(saved)), cfg)
        if diff:
            raise R2SDepthError(
                f"{out} was trained with another config ({'; '.join(diff)}): resume with "
                "--allow-config-change, or start afresh with --no-resume"
            )


def _data_module(cfg: dict[str, Any], stage2: bool) -> SplitDataModule:
    """The run's data, with the batch contents its losses need."""
    lc = cfg["loss"]
    dm = SplitDataModule(
        cfg["data"],
        "fusion" if stage2 else cfg["model"]["modality"],
        train_gt=not stage2 and lc["depth_weight"] > 0,
        train_travel=not stage2 and (lc["velocity_weight"] > 0 or lc["known_speed"]),
        train_context=stage2 or lc["photo_weight"] > 0,
    )
    dm.setup("fit")
    return dm


def _build_module(
    cfg: dict[str, Any], t_state: dict[str, Any] | None, last: Path | None, allow_config_change: bool
) -> DepthModule:
    """Stage 1's :class:`DepthModule`, or with a teacher (``t_state``, :func:`resolved_config`)
    stage 2's :class:`DistillModule`: its teacher loaded and frozen, the student started from it.
    ``last``: the checkpoint a resume continues (an external teacher's file must not have changed)."""
    sections = (cfg["loss"], cfg["optim"], cfg["data"], None, cfg["distill"]) if t_state else ()
    if t_state and "external" in t_state:
        if last is not None:
            was = ((load_file(last).get("r2sdepth") or {}).get("teacher_external") or {}).get("sha256")
            if was != t_state["external"]["sha256"] and not allow_config_change:
                raise R2SDepthError(
                    f"{last.parent.parent} was distilled from another teacher file (SHA-256 differs): "
                    "resume with --allow-config-change, or start afresh with --no-resume"
                )
        return DistillModule(
            {"model": cfg["model"], "pose": cfg["pose"], "external": t_state["external"]}, *sections
        )
    if t_state:
        module = DistillModule({"model": cfg["model"], "pose": cfg["pose"]}, *sections)
        module.teacher.load_state_dict(t_state["teacher"])
        if t_state["teacher_pose"] is not None:  # (a slim teacher has none: a fresh one, trained)
            module.teacher_pose.load_state_dict(t_state["teacher_pose"])
        module.init_from_teacher()
        return module
    return DepthModule(cfg["model"], cfg["pose"], cfg["loss"], cfg["optim"], cfg["data"])


def _trainer(out: Path, cfg: dict[str, Any], callbacks: list, resume_step: int) -> L.Trainer:
    """The Lightning Trainer of a run: the config's trainer section (precision by the device when
    unset), r2sdepth's checkpoint I/O and loggers."""
    tcfg = dict(cfg["trainer"])
    if tcfg.get("precision") is None:
        tcfg["precision"] = default_precision(str(tcfg.get("accelerator", "auto")))
    tcfg.setdefault("enable_progress_bar", True)
    return L.Trainer(
        default_root_dir=str(out),
        use_distributed_sampler=False,  # the datamodule shards (and seeds) its own sampler
        callbacks=callbacks,
        plugins=[lightning_checkpoint_io()],
        logger=loggers(out, resume_step),
        **tcfg,
    )


def _fit(trainer: L.Trainer, module: DepthModule, dm: SplitDataModule, ckpt_path: str | None) -> None:
    with warnings.catch_warnings():  # filters for this fit only, not for the caller's process
        # a deprecation that Lightning's own code triggers in torch: nothing a user can act on
        warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
        if isinstance(module, DistillModule):  # stage 2: the frozen teacher is in eval mode on purpose
            warnings.filterwarnings(
                "ignore", message=r"Found \d+ module\(s\) in eval mode at the start of training"
            )
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)


def _save_last(
    trainer: L.Trainer, final: FinalStepCheckpoint, last: Path, resume_step: int, resumed: bool
) -> None:
    """``last.ckpt`` is the state after the last step trained."""
    if final.saved_at == trainer.global_step:
        if trainer.is_global_zero:  # rank 0 alone wrote it (trainer.save_checkpoint)
            os.replace(final.path, last)
        trainer.strategy.barrier("r2sdepth-final-checkpoint")
    elif trainer.global_step > resume_step or not resumed:  # e.g. a run that ends by max_epochs
        trainer.save_checkpoint(str(last), weights_only=False)  # the full final state (optimiser too)
    # else: a rerun that trained nothing keeps its last.ckpt (a save now would mark the epoch finished)


def run_training(
    cfg: dict[str, Any],
    out: str | os.PathLike,
    *,
    resume: bool = True,
    teacher: str | os.PathLike | None = None,
    callbacks: list | None = None,
    allow_config_change: bool = False,
) -> dict[str, Any]:
    """Train stage 1 with ``cfg`` into ``out`` (or, with ``teacher``, a stage-1 checkpoint,
    stage 2: distil it into a spike-only student; the data section defaults to the teacher's);
    ``callbacks``: extra Lightning callbacks (e.g. a step timer). The config is checked against
    :mod:`r2sdepth.config` before any work; resuming a run whose ``config.yaml`` differs is refused
    unless ``allow_config_change``. Returns paths and final metrics."""

    quiet_lightning()
    out = Path(out)
    cfg, t_state = resolved_config(cfg, teacher)
    last = out / "checkpoints" / "last.ckpt"
    _check_resume(out, cfg, resume, allow_config_change)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False).encode())
    L.seed_everything(int(cfg["seed"]), workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")

    dm = _data_module(cfg, stage2=teacher is not None)
    resuming = resume and last.is_file()
    module = _build_module(cfg, t_state, last if resuming else None, allow_config_change)
    init = cfg.get("init_from")
    if init and not resuming:
        names = module.init_from(init)
        print(f"init_from {init}: {len(names)} tensors copied")
    final = FinalStepCheckpoint(out / "checkpoints" / ".final-step.ckpt")
    has_val = bool(cfg["data"].get("val_split"))
    callbacks = [
        final,
        *checkpoint_callbacks(out / "checkpoints", cfg["checkpoint"], has_val),
        *(callbacks or []),
    ]
    ckpt_path = str(last) if resuming else None
    resume_step = int(load_file(last).get("global_step", 0)) if resuming else 0
    trainer = _trainer(out, cfg, callbacks, resume_step)
    speed = cfg.get("speed") or {}
    if speed.get("channels_last"):
        module = module.to(memory_format=torch.channels_last)
    with compiled_ssim(bool(speed.get("compile_ssim")), trainer.strategy.root_device):
        _fit(trainer, module, dm, ckpt_path)
    _save_last(trainer, final, last, resume_step, resumed=ckpt_path is not None)
    best = next((c.best_model_path for c in callbacks if getattr(c, "monitor", None)), None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return {
        "last": str(last),
        "best": best or None,
        "resumed_from": ckpt_path,
        "metrics": metrics,
        "global_step": trainer.global_step,
    }


class FinalStepCheckpoint(Callback):
    """Saves the state from inside the last training step (``trainer.max_steps``) to ``path``,
    where Lightning's state is mid-epoch as in any step checkpoint; :func:`run_training` moves it
    to ``last.ckpt`` after ``fit``, so that a later run with a larger ``max_steps`` continues this
    one exactly. What Lightning saves once the step limit has ended ``fit`` (the epoch-end
    ``last.ckpt``, or a save after ``fit``) marks the epoch as finished: resuming from it would
    start a new epoch (another data order and augmentation)."""

    def __init__(self, path: Path) -> None:
        self.path, self.saved_at = Path(path), None

    def on_train_batch_end(  # type: ignore[override]
        self, trainer, pl_module, outputs, batch, batch_idx
    ) -> None:
        if trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps:
            trainer.save_checkpoint(str(self.path), weights_only=False)
            self.saved_at = trainer.global_step


class NanSafeCheckpoint(ModelCheckpoint):
    """Lightning's best-checkpoint callback, except that a NaN or infinite monitored value is never a
    candidate (a diverged validation would otherwise count as the best)."""

    def _save_topk_checkpoint(self, trainer, monitor_candidates):  # type: ignore[override]
        cur = monitor_candidates.get(self.monitor) if self.monitor else None
        if cur is not None and not torch.isfinite(torch.as_tensor(cur)).all():
            warnings.warn(
                f"{self.monitor} is {float(cur)} at step {trainer.global_step}: "
                "not a candidate for the best checkpoint",
                RuntimeWarning,
                stacklevel=1,
            )
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)


def checkpoint_callbacks(dirpath: Path, ccfg: dict[str, Any], has_val: bool) -> list:
    """``last.ckpt`` every N steps / minutes and after each validation; ``best-step=N.ckpt`` by
    ``val/abs_rel`` (NaN never wins) when there is a validation split."""

    steps = ccfg.get("every_n_steps")
    minutes = ccfg.get("every_n_minutes")
    for k, v in (("every_n_steps", steps), ("every_n_minutes", minutes)):
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0):
            raise R2SDepthError(f"checkpoint.{k} must be a positive number or null, got {v!r}")
    cbs: list = []
    # every one of these writes the same last.ckpt (the newest wins): without the version counter
    # Lightning would call a second writer's file last-v1.ckpt (another full copy of the run)
    last = {"dirpath": dirpath, "save_last": True, "save_top_k": 0, "enable_version_counter": False}
    if steps:
        cbs.append(ModelCheckpoint(**last, every_n_train_steps=int(steps)))
    if minutes:
        cbs.append(ModelCheckpoint(**last, train_time_interval=timedelta(minutes=float(minutes))))
    # after every validation (and at epoch ends without one)
    cbs.append(ModelCheckpoint(**last))
    if has_val:
        cbs.append(
            NanSafeCheckpoint(
                dirpath=dirpath,
                filename="best-{step}",
                monitor="val/abs_rel",
                mode="min",
                save_top_k=1,
                save_last=False,
            )
        )
    return cbs


class KeepingWriter(ExperimentWriter):
    """Lightning's CSV writer, except that a resumed run keeps the rows logged before its
    checkpoint's step ``resume_step`` (Lightning deletes ``metrics.csv`` when its folder is not
    empty) and drops those logged after it by the interrupted process."""

    def __init__(self, log_dir: str, resume_step: int = 0) -> None:
        self.resume_step = resume_step
        super().__init__(log_dir=log_dir)

    def _check_log_dir_exists(self) -> None:
        p = Path(self.metrics_file_path)
        if not p.is_file():
            return
        with open(p, newline="") as f:
            rows = list(csv.DictReader(f))
            keys = list(rows[0].keys()) if rows else []
        keep = [
            r for r in rows if r.get("step") not in (None, "") and int(float(r["step"])) < self.resume_step
        ]
        if not keep:
            p.unlink()
            return
        with atomic_path(p) as tmp, open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(keep)
        self.metrics_keys = sorted(keys)


class KeepingCSVLogger(CSVLogger):
    """Lightning's CSV logger writing through :class:`KeepingWriter`."""

    def __init__(self, *args: Any, resume_step: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resume_step = resume_step

    @property
    @rank_zero_experiment
    def experiment(self):  # type: ignore[override]
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = KeepingWriter(log_dir=self.log_dir, resume_step=self.resume_step)
        return self._experiment


def loggers(out: Path, resume_step: int = 0) -> list:
    """TensorBoard and CSV logs under ``out/logs`` that keep the history of a resumed run: events
    and rows logged after the checkpoint (by the interrupted process) are dropped, the earlier
    ones kept (Lightning's CSV writer deletes ``metrics.csv`` when its folder is not empty)."""

    tb_kw = {"purge_step": resume_step} if resume_step else {}
    return [
        TensorBoardLogger(str(out), name="logs", version="", **tb_kw),
        KeepingCSVLogger(str(out), name="logs", version="", resume_step=resume_step),
    ]
