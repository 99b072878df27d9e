"""Rebuild a trained model from a checkpoint file (above :mod:`r2sdepth.train.module`, below
``infer``/``export``/``api``/``train.run``): stage-1, stage-2 and slim checkpoints."""

from __future__ import annotations

import copy
import os
from typing import Any

import torch

from r2sdepth.checkpoint import checkpoint_path, load_file, state_dict_of
from r2sdepth.errors import R2SDepthError
from r2sdepth.models.r2sdepth import SpikeEnsemble
from r2sdepth.train.distill import DistillModule
from r2sdepth.train.module import DepthModule


def load_checkpoint(path: str | os.PathLike, device: str = "cpu"):
    """Load a stage-1/stage-2 (or slim) checkpoint, or a shipped one by name (``demo``): returns
    ``(module, meta)`` in eval mode."""
    path = checkpoint_path(path)
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise R2SDepthError(f"device {device!r} requested but CUDA is not available here (use --device cpu)")
    ck = load_file(path)
    meta = ck.get("r2sdepth")
    if not isinstance(meta, dict) or not meta:
        raise R2SDepthError(f"{path}: not an r2sdepth checkpoint (no 'r2sdepth' metadata)")
    if meta.get("modality") not in ("rgb", "spike", "fusion"):
        raise R2SDepthError(f"{path}: unknown modality {meta.get('modality')!r} in the checkpoint")
    state = state_dict_of(ck, path)
    try:
        if meta.get("slim"):  # network weights only (r2sdepth.export.slim_checkpoint)
            module = DepthModule(meta["model"], data=meta.get("data"))
            if meta.get("ensemble"):  # r2sdepth.export.ensemble_checkpoint: several spike networks as one
                module.net = SpikeEnsemble(meta["model"], len(meta["ensemble"]))
            module.net.load_state_dict(state)
        else:
            Module = DistillModule if meta.get("stage", 1) == 2 else DepthModule
            hp = ck.get("hyper_parameters")
            if not isinstance(hp, dict):
                raise R2SDepthError(f"{path}: no hyper_parameters: cannot rebuild the model")
            module = Module(**hp)
            module.load_state_dict(state)
    except R2SDepthError:
        raise
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else e.__class__.__name__
        raise R2SDepthError(f"{path}: weights do not fit the recorded model ({first[:300]})") from e
    module.eval().to(device)
    return module, meta


def teacher_from_checkpoint(
    path, self_distill: bool = False
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """``(teacher hparams for DistillModule, teacher state dict, teacher's r2sdepth meta)``.

    ``self_distill`` (``distill.pose_trainable``: the student's pose net is trained): any
    spike-only network can teach, a stage-2 student or a slim checkpoint too (``demo``,
    ``real``); the student starts as a copy of it. A slim checkpoint has no pose net, so the
    trained one starts fresh (``teacher_pose`` is None)."""
    module, meta = load_checkpoint(path)
    if meta.get("ensemble"):
        raise R2SDepthError(
            f"{path}: an ensemble of {len(meta['ensemble'])} networks cannot teach or be adapted; "
            "give one of its members (`r2sdepth models` / the checkpoint's 'ensemble' entry lists them)"
        )
    net_modality = module.net.cfg.get("modality", meta["modality"])
    if self_distill and net_modality == "spike":
        hp_all = dict(module.hparams)
        pose = hp_all.get("pose") or (hp_all.get("teacher") or {}).get("pose") or {}
        hp = {"model": copy.deepcopy(module.net.cfg), "pose": dict(pose)}
        state = {
            "teacher": module.net.state_dict(),
            "teacher_pose": None if meta.get("slim") else module.pose_net.state_dict(),
        }
        return hp, state, meta
    if meta.get("stage", 1) != 1 or meta["modality"] not in ("fusion", "rgb", "spike"):
        raise R2SDepthError(
            f"{path}: the teacher must be a stage-1 fusion, rgb or spike checkpoint "
            f"(got stage {meta.get('stage', 1)} {meta['modality']}; a spike-only model of any stage "
            "can teach itself with --distill.pose_trainable true, as `r2sdepth adapt` does)"
        )
    if meta.get("slim"):  # its pose net would be an untrained one
        raise R2SDepthError(
            f"{path}: a slim checkpoint has no pose network; give the training run's "
            "checkpoint as the teacher (or, for a spike-only model, --distill.pose_trainable true)"
        )
    hp = {"model": copy.deepcopy(module.net.cfg), "pose": dict(module.hparams.get("pose") or {})}
    state = {"teacher": module.net.state_dict(), "teacher_pose": module.pose_net.state_dict()}
    return hp, state, meta
