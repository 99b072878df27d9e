"""``r2sdepth train``: YAML config + dotted overrides -> Lightning Trainer run in ``RUN_DIR``.

``RUN_DIR/config.yaml`` (resolved config), ``RUN_DIR/checkpoints/last.ckpt`` and the best by
``val/abs_rel``, TensorBoard and CSV logs under ``RUN_DIR/logs``. A rerun with the same
``RUN_DIR`` resumes from ``last.ckpt``.
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


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Read a YAML config and apply ``--a.b value`` overrides (values parsed as YAML)."""
    path = Path(path)
    if not path.is_file():
        raise R2SDepthError(f"{path}: config file not found")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise R2SDepthError(f"{path}: invalid YAML ({e})") from e
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
                 teacher: str | os.PathLike | None = None) -> dict[str, Any]:
    """Train stage 1 with ``cfg`` into ``out`` (or, with ``teacher``, a stage-1 checkpoint,
    stage 2: distil it into a spike-only student; the data section defaults to the teacher's);
    returns paths and final metrics."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    from r2sdepth.atomic import write_bytes_atomic
    from r2sdepth.models.r2sdepth import DEFAULT_MODEL, merge
    from r2sdepth.train.datamodule import DEFAULT_DATA, SpikeKittiDataModule
    from r2sdepth.train.module import DEFAULT_LOSS, DEFAULT_OPTIM, DepthModule

    out = Path(out)
    seed = int(cfg.get("seed", 0))
    if teacher is not None:
        from r2sdepth.train.module import DEFAULT_DISTILL, teacher_from_checkpoint

        t_hp, t_state, t_meta = teacher_from_checkpoint(teacher)
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
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", filename="best-{step}", save_last=True,
                           monitor="val/abs_rel" if has_val else None, mode="min", save_top_k=1 if has_val else 0)
    tcfg = dict(cfg["trainer"])
    if tcfg.get("precision") is None:
        tcfg["precision"] = "16-mixed" if torch.cuda.is_available() and tcfg.get("accelerator") in ("auto", "gpu", "cuda") else "32-true"
    tcfg.setdefault("enable_progress_bar", True)
    trainer = L.Trainer(
        default_root_dir=str(out),
        use_distributed_sampler=False,  # the datamodule shards (and seeds) its own sampler
        callbacks=[ckpt],
        logger=[TensorBoardLogger(str(out), name="logs", version=""), CSVLogger(str(out), name="logs", version="")],
        **tcfg,
    )
    ckpt_path = str(last) if resume and last.is_file() else None
    trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
    return {"last": str(last), "best": ckpt.best_model_path or None, "resumed_from": ckpt_path,
            "metrics": metrics, "global_step": trainer.global_step}
