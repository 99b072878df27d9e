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

import os
from pathlib import Path
from typing import Any, Sequence

import yaml

from r2sdepth.errors import R2SDepthError

DEFAULT_TRAINER: dict[str, Any] = {
    "max_epochs": 20,
    "accelerator": "auto",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "precision": None,
    "log_every_n_steps": 10,
}
DEFAULT_CHECKPOINT: dict[str, Any] = {"every_n_steps": 100, "every_n_minutes": None}


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a YAML config and apply ``--a.b value`` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        raise R2SDepthError(f"{path}: not a YAML text file (invalid UTF-8 at byte {e.start})") from e
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "syntax error"
        raise R2SDepthError(f"{path}: invalid YAML ({first})") from e
    if not isinstance(cfg, dict):
        raise R2SDepthError(f"{path}: a config must be a YAML mapping of sections, got a {type(cfg).__name__}")
    apply_overrides(cfg, overrides)
    return cfg


def apply_overrides(cfg: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``["--trainer.max_steps", "20", "--data.root=DIR"]`` -> nested assignments."""
    items = list(overrides)
    i = 0
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
        node = cfg
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise R2SDepthError(f"override {key}: {p} is not a section")
        node[parts[-1]] = yaml.safe_load(val)
    return cfg


def run_training(cfg: dict[str, Any], out: str | os.PathLike, *, resume: bool = True,
                 teacher: str | os.PathLike | None = None, callbacks: list | None = None) -> dict[str, Any]:
    """Train stage 1 with ``cfg`` into ``out`` (or, with ``teacher``, a stage-1 checkpoint,
    stage 2: distil it into a spike-only student; the data section defaults to the teacher's);
    ``callbacks``: extra Lightning callbacks (e.g. a step timer); returns paths and final metrics."""
    import lightning as L
    import torch

    from r2sdepth.atomic import write_bytes_atomic
    from r2sdepth.models.r2sdepth import DEFAULT_MODEL, merge
    from r2sdepth.train.datamodule import DEFAULT_DATA, SpikeKittiDataModule
    from r2sdepth.train.module import DEFAULT_LOSS, DEFAULT_OPTIM, DepthModule

    out = Path(out)
    seed = int(cfg.get("seed", 0))
    if teacher is not None:
        from r2sdepth.train.module import DEFAULT_DISTILL, check_distill_config, teacher_from_checkpoint

        t_hp, t_state, t_meta = teacher_from_checkpoint(teacher)
        check_distill_config({**DEFAULT_DISTILL, **(cfg.get("distill") or {})}, t_hp["model"]["modality"])
        cfg = {**cfg, "model": t_hp["model"], "pose": t_hp["pose"],
               "data": merge(t_meta.get("data", {}), cfg.get("data")),
               "distill": {**DEFAULT_DISTILL, **(cfg.get("distill") or {})}, "teacher": str(teacher)}
    cfg = {
        "seed": seed,
        "model": merge(DEFAULT_MODEL, cfg.get("model")),
        "pose": {"num_layers": 18, "width": 64, **(cfg.get("pose") or {})},
        "loss": {**DEFAULT_LOSS, **(cfg.get("loss") or {})},
        "optim": {**DEFAULT_OPTIM, **(cfg.get("optim") or {})},
        "data": merge(DEFAULT_DATA, cfg.get("data")),
        "trainer": {**DEFAULT_TRAINER, **(cfg.get("trainer") or {})},
        "checkpoint": {**DEFAULT_CHECKPOINT, **(cfg.get("checkpoint") or {})},
        "init_from": cfg.get("init_from"),
        **({"distill": cfg["distill"], "teacher": cfg["teacher"]} if teacher is not None else {}),
    }
    cfg["data"]["seed"] = cfg["data"].get("seed", seed)
    for k in ("root", "train_split"):
        if not cfg["data"].get(k):
            raise R2SDepthError(f"config needs data.{k} (e.g. --data.{k} PATH)")
    out.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / "config.yaml", yaml.safe_dump(cfg, sort_keys=False).encode())
    L.seed_everything(seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")

    dm = SpikeKittiDataModule(cfg["data"], "fusion" if teacher is not None else cfg["model"]["modality"])
    dm.setup("fit")
    last = out / "checkpoints" / "last.ckpt"
    if teacher is not None:
        from r2sdepth.train.module import DistillModule

        module = DistillModule({"model": cfg["model"], "pose": cfg["pose"]}, cfg["loss"], cfg["optim"],
                               cfg["data"], None, cfg["distill"])
        module.teacher.load_state_dict(t_state["teacher"])
        module.teacher_pose.load_state_dict(t_state["teacher_pose"])
        module.init_from_teacher()
    else:
        module = DepthModule(cfg["model"], cfg["pose"], cfg["loss"], cfg["optim"], cfg["data"])
    init = cfg.get("init_from")
    if init and not (resume and last.is_file()):
        names = module.init_from(init)
        print(f"init_from {init}: {len(names)} tensors copied")
    has_val = bool(cfg["data"].get("val_split"))
    from r2sdepth.checkpoint import lightning_checkpoint_io

    callbacks = checkpoint_callbacks(out / "checkpoints", cfg["checkpoint"], has_val) + list(callbacks or [])
    ckpt_path = str(last) if resume and last.is_file() else None
    resume_step = 0
    if ckpt_path:
        from r2sdepth.checkpoint import load_file

        resume_step = int(load_file(ckpt_path).get("global_step", 0))
    tcfg = dict(cfg["trainer"])
    if tcfg.get("precision") is None:
        tcfg["precision"] = "16-mixed" if torch.cuda.is_available() and tcfg.get("accelerator") in ("auto", "gpu", "cuda") else "32-true"
    tcfg.setdefault("enable_progress_bar", True)
    trainer = L.Trainer(
        default_root_dir=str(out),
        use_distributed_sampler=False,  # the datamodule shards (and seeds) its own sampler
        callbacks=callbacks,
        plugins=[lightning_checkpoint_io()],
        logger=loggers(out, resume_step),
        **tcfg,
    )
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    trainer.save_checkpoint(str(last))  # the final state, whatever the save interval
    best = next((c.best_model_path for c in callbacks if getattr(c, "monitor", None)), None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return {"last": str(last), "best": best or None, "resumed_from": ckpt_path,
            "metrics": metrics, "global_step": trainer.global_step}


def checkpoint_callbacks(dirpath: Path, ccfg: dict[str, Any], has_val: bool) -> list:
    """``last.ckpt`` every N steps / minutes and after each validation; ``best-step=N.ckpt`` by
    ``val/abs_rel`` (NaN never wins) when there is a validation split."""
    import warnings
    from datetime import timedelta

    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint

    class NanSafeCheckpoint(ModelCheckpoint):
        def _save_topk_checkpoint(self, trainer, monitor_candidates):  # type: ignore[override]
            cur = monitor_candidates.get(self.monitor) if self.monitor else None
            if cur is not None and not torch.isfinite(torch.as_tensor(cur)).all():
                warnings.warn(f"{self.monitor} is {float(cur)} at step {trainer.global_step}: "
                              "not a candidate for the best checkpoint", RuntimeWarning)
                return
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    steps = ccfg.get("every_n_steps")
    minutes = ccfg.get("every_n_minutes")
    for k, v in (("every_n_steps", steps), ("every_n_minutes", minutes)):
        if v is not None and not (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0):
            raise R2SDepthError(f"checkpoint.{k} must be a positive number or null, got {v!r}")
    cbs: list = []
    if steps:
        cbs.append(ModelCheckpoint(dirpath=dirpath, save_last=True, save_top_k=0, every_n_train_steps=int(steps)))
    if minutes:
        cbs.append(ModelCheckpoint(dirpath=dirpath, save_last=True, save_top_k=0,
                                   train_time_interval=timedelta(minutes=float(minutes))))
    # after every validation (and at epoch ends without one)
    cbs.append(ModelCheckpoint(dirpath=dirpath, save_last=True, save_top_k=0))
    if has_val:
        cbs.append(NanSafeCheckpoint(dirpath=dirpath, filename="best-{step}", monitor="val/abs_rel",
                                     mode="min", save_top_k=1, save_last=False))
    return cbs


def loggers(out: Path, resume_step: int = 0) -> list:
    """TensorBoard and CSV logs under ``out/logs`` that keep the history of a resumed run: events
    and rows logged after the checkpoint (by the interrupted process) are dropped, the earlier
    ones kept (Lightning's CSV writer deletes ``metrics.csv`` when its folder is not empty)."""
    import csv

    from lightning.fabric.loggers.logger import rank_zero_experiment
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    class KeepingWriter(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:
            p = Path(self.metrics_file_path)
            if not p.is_file():
                return
            with open(p, newline="") as f:
                rows = list(csv.DictReader(f))
                keys = list(rows[0].keys()) if rows else []
            keep = [r for r in rows if r.get("step") not in (None, "") and int(float(r["step"])) < resume_step]
            if not keep:
                p.unlink()
                return
            from r2sdepth.atomic import atomic_path

            with atomic_path(p) as tmp, open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=keys)
                w.writeheader()
                w.writerows(keep)
            self.metrics_keys = sorted(keys)

    class KeepingCSVLogger(CSVLogger):
        @property
        @rank_zero_experiment
        def experiment(self):  # type: ignore[override]
            if self._experiment is None:
                self._fs.makedirs(self.root_dir, exist_ok=True)
                self._experiment = KeepingWriter(log_dir=self.log_dir)
            return self._experiment

    tb_kw = {"purge_step": resume_step} if resume_step else {}
    return [TensorBoardLogger(str(out), name="logs", version="", **tb_kw),
            KeepingCSVLogger(str(out), name="logs", version="")]
