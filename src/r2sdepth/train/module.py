"""LightningModules: stage 1 (self-supervised training by view synthesis) and stage 2 (distillation).

Modes (``model.modality``): ``rgb`` and ``spike`` train one depth head; ``fusion`` trains the
fusion (teacher) head and, when ``loss.student_weight > 0``, the spike (student) head with its
own photometric loss. The pose network always sees RGB pairs; the photometric loss is always on
the RGB frames (the spike window is aligned with frame t).

Stage 2 (:class:`DistillModule`, ``r2sdepth distill``). Teacher: a stage-1 checkpoint (``fusion``,
or ``rgb``), frozen: no gradients, batch norm in eval mode. Student: an ``R2SDepthNet`` of
modality ``spike`` with the teacher's sizes, initialised from the teacher's spike branch
(representation + encoder) and spike decoder when the teacher has them. The student's forward
takes a spike window only. A stage-1 ``spike`` teacher is
self-distillation (e.g. adapting to new footage while anchored to the model it starts from): the
student starts as a copy of it, and only ``L_photo`` and ``L_depth`` apply.

Loss (each term has a weight in ``distill``; a weight of 0 switches it off)::

    L = w_photo * L_photo(student)
        + sum_k w_k * b_k * L_k,   k in {feat, at, depth}

* ``L_photo``: the stage-1 self-supervised loss of the student's depth on the RGB frames, with
  the pose from the frozen teacher pose net (``pose_trainable: true`` trains a copy instead);
* ``L_feat``: per encoder stage, a connector (1x1 conv + BN + ReLU, 3x3 conv) maps the student's
  features to the teacher's fused (``feature_target: fused``) or RGB features; per-pixel
  normalised L2 (:func:`r2sdepth.losses.feature_distill_loss`), pixel-weighted;
* ``L_at``: attention transfer between the student's and the teacher's features
  (:func:`r2sdepth.losses.attention_transfer_loss`);
* ``L_depth``: scale-invariant log loss between student and teacher depth at every output
  scale, pixel-weighted (:func:`r2sdepth.losses.si_log_loss`).

Adaptive weighting (``adaptive: true``), the exact rule:

1. pixel weights ``m = adaptive_pixel_weights(e_student, e_teacher, teacher_automask, pixel)``
   where ``e`` are the full-resolution minimum reprojection errors of each network's finest
   depth (``pixel: hard`` -> 1 where ``e_teacher < e_student``; ``soft`` -> ``e_s / (e_s + e_t)``);
   they weight ``L_feat`` (area-pooled to each stage) and ``L_depth``;
2. balance ``b_k = EMA(L_photo) / EMA(L_k)`` (detached magnitudes, momentum 0.98, kept in the
   checkpoint), so that ``w_k`` is the weight of term ``k`` relative to the photometric term
   however the raw magnitudes drift over training.

With ``adaptive: false``: ``m = 1`` everywhere and ``b_k = 1`` (raw weights).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning as L
import torch
import torch.nn as nn

from r2sdepth.config import defaults
from r2sdepth.errors import R2SDepthError
from r2sdepth.evaluate import METRICS
from r2sdepth.geometry import disp_to_depth, pose_vec_to_matrix, rescale_translation
from r2sdepth.losses import (
    adaptive_pixel_weights,
    attention_transfer_loss,
    feature_distill_loss,
    self_supervised_loss,
    si_log_loss,
    velocity_loss,
)
from r2sdepth.models.pose import PoseNet
from r2sdepth.models.r2sdepth import R2SDepthNet

DEFAULT_LOSS: dict[str, Any] = defaults("loss")
DEFAULT_OPTIM: dict[str, Any] = defaults("optim")
DEFAULT_POSE: dict[str, Any] = defaults("pose")


class DepthModule(L.LightningModule):
    """Stage 1 (see module docstring). Hyper-parameters are saved in every checkpoint, together
    with ``r2sdepth`` metadata (modality, sizes, config), so the checkpoint loads on its own."""

    def __init__(
        self,
        model: dict[str, Any] | None = None,
        pose: dict[str, Any] | None = None,
        loss: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        steps_per_epoch: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = R2SDepthNet(model)
        self.pose_net = PoseNet(**{**DEFAULT_POSE, **(pose or {})})
        self.loss_cfg = {**DEFAULT_LOSS, **(loss or {})}
        self.optim_cfg = {**DEFAULT_OPTIM, **(optim or {})}
        self.data_cfg = dict(data or {})
        self.skipped_steps = 0
        self.resume_point: dict[str, int] | None = None

    @property
    def modality(self) -> str:
        return self.net.modality

    # -- helpers --------------------------------------------------------------------------------
    def optimizer_steps_per_epoch(self) -> int | None:
        """Optimiser steps in one epoch *of this rank*: the trainer's batches per epoch (already
        divided by the number of DDP processes and cut by ``limit_train_batches``) over
        ``accumulate_grad_batches`` (Lightning steps on the last batch of an epoch too, hence the
        ceiling). Without a trainer: the ``steps_per_epoch`` hyper-parameter, if any."""
        t = self._trainer
        if t is not None:
            nb = t.num_training_batches
            if isinstance(nb, (int, float)) and math.isfinite(nb) and nb > 0:
                return max(1, math.ceil(nb / max(1, int(t.accumulate_grad_batches))))
        spe = self.hparams.get("steps_per_epoch")
        return int(spe) if spe else None

    def _epoch_progress(self) -> float:
        """Fractional epochs done: optimiser steps taken / optimiser steps per epoch."""
        spe = self.optimizer_steps_per_epoch()
        if spe:
            return self.global_step / spe
        return float(self.current_epoch)

    def poses(self, batch: dict[str, Any], pose_net: PoseNet | None = None) -> list[torch.Tensor]:
        """Target->source transforms for each context frame (Monodepth2's pair ordering), from
        ``pose_net`` (default: this module's)."""
        net = pose_net or self.pose_net
        color = batch["color_aug"]
        ctx = self.data_cfg.get("context", [-1, 1])
        out = []
        for j, o in enumerate(ctx, start=1):
            if o < 0:
                aa, t = net(color[:, j], color[:, 0])
                out.append(pose_vec_to_matrix(aa, t, invert=True))
            else:
                aa, t = net(color[:, 0], color[:, j])
                out.append(pose_vec_to_matrix(aa, t))
        return out

    @staticmethod
    def with_stereo(
        batch: dict[str, Any], sources: list[torch.Tensor], poses: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Source views and target->source poses, plus the other camera of the stereo pair at
        time t with its calibrated pose when the batch carries one (``data.stereo``)."""
        if "color_stereo" not in batch:
            return sources, poses
        return [*sources, batch["color_stereo"]], [*poses, batch["T_stereo"].float()]

    def forward_depth(self, batch: dict[str, Any]) -> dict[str, Any]:
        rgb = batch["color_aug"][:, 0] if self.modality in ("rgb", "fusion") else None
        spikes = batch.get("spikes") if self.modality in ("spike", "fusion") else None
        return self.net(rgb=rgb, spikes=spikes)

    def compute_loss(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        """``photo_weight`` x the view-synthesis loss (+ the student head's) + ``depth_weight`` x
        the scale-invariant log loss on ``batch["depth_gt"]`` (training batches only)."""
        out = self.forward_depth(batch)
        color = batch["color"]
        cfg = self.net.cfg
        wp, wd = float(self.loss_cfg["photo_weight"]), float(self.loss_cfg["depth_weight"])
        res: dict[str, Any] = {"out": out, "loss": color.new_zeros(())}
        if wp > 0 or not train:
            poses = self.poses(batch)
            warm = self.global_step >= int(self.loss_cfg.get("velocity_warmup") or 0)
            if self.loss_cfg.get("known_speed") and train and warm:
                if "travel" not in batch:
                    raise R2SDepthError("loss.known_speed needs distances travelled in the training batches")
                poses = [rescale_translation(T, batch["travel"][:, j]) for j, T in enumerate(poses)]
            sources, all_poses = self.with_stereo(
                batch, [color[:, j] for j in range(1, color.shape[1])], poses
            )
            kw = dict(
                smooth_weight=self.loss_cfg["smooth_weight"],
                min_depth=cfg["min_depth"],
                max_depth=cfg["max_depth"],
                automask=self.loss_cfg["automask"],
            )
            main = self_supervised_loss(out["disp"], color[:, 0], sources, all_poses, batch["K"], **kw)
            wp = wp if wp > 0 else 1.0  # (validation of a depth-supervised run: the plain photometric loss)
            res.update(loss=wp * main["loss"], photo=main["photo"], poses=poses, main=main)
            if "disp_student" in out and self.loss_cfg["student_weight"] > 0:
                st = self_supervised_loss(
                    out["disp_student"], color[:, 0], sources, all_poses, batch["K"], **kw
                )
                res["loss"] = res["loss"] + wp * self.loss_cfg["student_weight"] * st["loss"]
                res["photo_student"] = st["photo"]
            wv = float(self.loss_cfg["velocity_weight"])
            if wv > 0 and train and warm:
                if "travel" not in batch:
                    raise R2SDepthError(
                        "loss.velocity_weight > 0 needs distances travelled in the training batches"
                    )
                res["velocity"] = velocity_loss(poses, batch["travel"])
                res["loss"] = res["loss"] + wv * res["velocity"]
        if wd > 0 and train:
            if "depth_gt" not in batch:
                raise R2SDepthError("loss.depth_weight > 0 needs ground-truth depth in the training batches")
            sup = 0.0
            heads = [h for h in ("disp", "disp_student") if h in out]
            for head in heads:
                sup = sup + self.depth_supervision(out[head], batch["depth_gt"])
            res["depth_sup"] = sup / len(heads)
            res["loss"] = res["loss"] + wd * res["depth_sup"]
        return res

    def depth_supervision(self, disps: dict[int, torch.Tensor], gt: torch.Tensor) -> torch.Tensor:
        """Mean over output scales of the scale-invariant log loss (``lam`` 0.85) between the
        predicted depth, upsampled bilinearly to the ground truth's size, and ``gt``
        (``[B, 1, Hg, Wg]`` metres, 0 = invalid) on its valid pixels below ``max_depth``."""
        cfg = self.net.cfg
        valid = ((gt > 0) & (gt < cfg["max_depth"])).to(gt.dtype)
        losses = []
        for disp in disps.values():
            depth = disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])[1]
            depth = torch.nn.functional.interpolate(
                depth, size=gt.shape[-2:], mode="bilinear", align_corners=False
            )
            losses.append(si_log_loss(depth, gt.clamp_min(cfg["min_depth"]), valid))
        return torch.stack(losses).mean()

    # -- Lightning hooks ------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.modality == "fusion":
            self.net.set_epoch(self._epoch_progress())

    def on_train_epoch_end(self) -> None:
        if self.modality == "fusion":
            # the weight the next step will use, i.e. the schedule's value at this epoch's end
            w = self.net.set_epoch(self._epoch_progress())
            self.log("schedule/w_rgb_epoch_end", w, on_step=False, on_epoch=True, sync_dist=False)
            self.log(
                "schedule/steps_per_epoch",
                float(self.optimizer_steps_per_epoch() or 0),
                on_step=False,
                on_epoch=True,
                sync_dist=False,
            )

    def _skip(self, why: str) -> None:
        self.skipped_steps += 1
        warnings.warn(
            f"{why} at step {self.global_step}: step skipped ({self.skipped_steps} so far); "
            "weights unchanged",
            RuntimeWarning,
            stacklevel=1,
        )

    def training_step(self, batch: dict[str, Any], batch_idx: int):
        for k in ("color", "color_aug", "K"):
            if k in batch and not torch.isfinite(batch[k]).all():
                self._skip(f"non-finite values in the batch's {k!r}")
                return None  # Lightning skips backward and the optimizer step
        # batch-norm running statistics change in the forward pass: keep a copy to restore
        saved = [(b, b.detach().clone()) for b in self.buffers()]
        res = self.compute_loss(batch)
        loss = res["loss"]
        if not torch.isfinite(loss):
            with torch.no_grad():
                for b, old in saved:
                    b.copy_(old)
            self._skip("non-finite loss")
            return None
        bs = batch["color"].shape[0]
        self.log("train/loss", loss, prog_bar=True, batch_size=bs)
        if "photo" in res:
            self.log("train/photo", res["photo"], batch_size=bs)
        for k in (
            "photo_student",
            "depth_sup",
            "velocity",
            "trust",
            "distill_feat",
            "distill_at",
            "distill_depth",
        ):
            if k in res:
                self.log(f"train/{k}", res[k], batch_size=bs)
        if self.modality == "fusion":
            self.log("train/w_rgb", self.net.w_rgb, batch_size=bs)
        if not res.get("poses"):  # depth-supervised, or stereo only: no pose net in use
            return loss
        # pose diagnostics: a pose net that collapsed to a constant motion shows t_std ~ 0
        t = torch.stack([p[:, :3, 3] for p in res["poses"]], 1).detach()  # [B, S, 3] metres (up to scale)
        for i, ax in enumerate("xyz"):
            self.log(f"pose/t{ax}_abs", t[..., i].abs().mean(), batch_size=bs)
        self.log("pose/t_std", t.std(0).mean() if bs > 1 else torch.zeros(()), batch_size=bs)
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        # a finite loss can still give non-finite gradients (overflow): drop them
        bad = any(p.grad is not None and not torch.isfinite(p.grad).all() for p in self.parameters())
        if bad:
            warnings.warn(
                f"non-finite gradients at step {self.global_step}: zeroed", RuntimeWarning, stacklevel=1
            )
            for p in self.parameters():
                if p.grad is not None:
                    p.grad.zero_()

    def init_from(self, path: str) -> list[str]:
        """Warm start from a stage-1 checkpoint or a slim one (a shipped model, ``--init_from demo``
        paths): copy every weight whose name and shape match (e.g. the RGB encoder, decoder and
        pose net of an ``rgb`` run into a ``fusion`` model).
        Returns the names copied; raises if nothing matched."""
        from r2sdepth.checkpoint import load_file, state_dict_of

        ck = load_file(path)
        src = state_dict_of(ck, path)
        if (ck.get("r2sdepth") or {}).get(
            "slim"
        ):  # slim files (shipped models) hold the network's weights alone
            src = {"net." + k: v for k, v in src.items()}
        own = self.state_dict()
        take = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
        if not take:
            raise R2SDepthError(f"{path}: no weights match this model (init_from)")
        self.load_state_dict(take, strict=False)
        return sorted(take)

    def predict_depth(self, batch: dict[str, Any], head: str = "disp") -> torch.Tensor:
        """Depth (metres, ``[B, 1, H, W]``) of the main head (or ``disp_student``)."""
        out = self.forward_depth(batch)
        cfg = self.net.cfg
        return disp_to_depth(out[head][0], cfg["min_depth"], cfg["max_depth"])[1]

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        bs = batch["color"].shape[0]
        res = None
        if "color" in batch and batch["color"].shape[1] > 1:
            res = self.compute_loss(batch, train=False)
            self.log("val/loss", res["loss"], batch_size=bs, sync_dist=True)
        if batch_idx == 0:
            self._log_images(batch, res)
        if "depth_gt" not in batch:
            return
        heads = ["disp"] + (
            ["disp_student"] if self.modality == "fusion" and hasattr(self.net, "student_decoder") else []
        )
        for head in heads:
            depth = self.predict_depth(batch, head)
            mets, n = batch_metrics(depth, batch["depth_gt"])
            tag = "val" if head == "disp" else "val_student"
            for k, v in mets.items():
                self.log(
                    f"{tag}/{k}", v, batch_size=n, sync_dist=True, prog_bar=(k == "abs_rel" and tag == "val")
                )

    def _log_images(self, batch: dict[str, Any], res: dict[str, Any] | None) -> None:
        """TensorBoard images of the first validation sample, as Monodepth2 logs them: input
        (RGB and/or the spike window's firing rate), colour disparity (magma, per-image range)
        and the auto-mask (white: pixels the photometric loss keeps)."""
        from lightning.pytorch.loggers import TensorBoardLogger

        tb = next((lg.experiment for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None:
            return
        from r2sdepth.viz import colorize

        step = self.global_step
        tb.add_image("val/input_rgb", batch["color"][0, 0].float().clamp(0, 1).cpu(), step)
        if batch.get("spikes") is not None:
            rate = batch["spikes"][0].float().mean(0)
            tb.add_image("val/input_spike_rate", (rate / rate.max().clamp_min(1e-6))[None].cpu(), step)
        disp = (
            (res["out"] if res is not None else self.forward_depth(batch))["disp"][0][0, 0]
            .detach()
            .float()
            .cpu()
            .numpy()
        )
        tb.add_image("val/disp", colorize(disp, "magma"), step, dataformats="HWC")
        if res is not None:
            mask = res["main"]["maps"][0].get("mask")
            if mask is not None:
                tb.add_image(
                    "val/automask", mask[0].detach().float().reshape(1, *mask.shape[-2:]).cpu(), step
                )

    def configure_optimizers(self):
        c = self.optim_cfg
        opt = torch.optim.Adam(self.parameters(), lr=c["lr"], weight_decay=c["weight_decay"])
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=c["step_size"], gamma=c["gamma"])
        return {"optimizer": opt, "lr_scheduler": sched}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["r2sdepth"] = {
            "modality": self.modality,
            "height": self.data_cfg.get("height"),
            "width": self.data_cfg.get("width"),
            "window": self.data_cfg.get("window"),
            "model": self.net.cfg,
            "data": self.data_cfg,
            "w_rgb": float(self.net.w_rgb),
            "stage": 1,
            # depths in metres without a scale: a stereo baseline or the camera's speed fixed it
            "metric": bool(
                self.data_cfg.get("stereo")
                or float(self.loss_cfg.get("velocity_weight") or 0) > 0
                or self.loss_cfg.get("known_speed")
            ),
        }
        t = self._trainer
        if t is not None:
            done = int(t.fit_loop.epoch_loop.batch_progress.current.processed)
            checkpoint["r2sdepth_resume"] = {"epoch": int(t.current_epoch), "batches_done": done}
        checkpoint["r2sdepth_rng"] = {
            "torch": torch.get_rng_state(),
            "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # where the data of the interrupted epoch stopped (used by the datamodule's sampler) and
        # the global RNG (the auto-mask's tie-breaking noise), applied when training starts
        self.resume_point = checkpoint.get("r2sdepth_resume")
        self._rng_to_restore = checkpoint.get("r2sdepth_rng")

    def on_train_start(self) -> None:
        rng = getattr(self, "_rng_to_restore", None)
        if rng:
            torch.set_rng_state(rng["torch"])
            if torch.cuda.is_available() and rng.get("cuda"):
                torch.cuda.set_rng_state_all(rng["cuda"])
        self._rng_to_restore = None


def batch_metrics(
    depth: torch.Tensor, gt: Any, crop: str = "garg", max_depth: float = 80.0
) -> tuple[dict[str, float], int]:
    """Eigen-protocol metrics of a batch of predictions ``[B, 1, H, W]`` against ground truths
    (``[B, 1, Hg, Wg]`` or a list), computed by :func:`r2sdepth.evaluate.evaluate_depths`, the
    function ``r2sdepth eval`` uses (median scaling, Garg crop, 80 m). Returns the metrics
    averaged over the images with valid ground truth, and their number (the weight of this
    batch in the epoch mean, so that the epoch value is the per-image mean ``eval`` reports).
    Non-finite predictions give NaN metrics (never a "best" checkpoint)."""
    import numpy as np

    from r2sdepth.evaluate import evaluate_depths

    preds = [depth[i, 0].detach().float().cpu().numpy() for i in range(depth.shape[0])]
    gts = [gt[i][0].detach().float().cpu().numpy() for i in range(depth.shape[0])]
    if not all(np.isfinite(p).all() for p in preds):
        return {k: float("nan") for k in METRICS}, len(preds)
    try:
        with warnings.catch_warnings():  # images without ground truth just do not count here
            warnings.simplefilter("ignore", RuntimeWarning)
            res = evaluate_depths(preds, gts, crop=crop, max_depth=max_depth, median_scaling=True)
    except R2SDepthError:  # no image of this batch has valid ground truth inside the crop
        return {}, 0
    return {k: res[k] for k in METRICS}, int(res["n"])


# -- stage 2 ------------------------------------------------------------------------------------------

DEFAULT_DISTILL: dict[str, Any] = defaults("distill", stage2=True)
TERMS = ("feat", "at", "depth")


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
    target = dcfg["feature_target"]
    if teacher_modality == "spike":
        return dcfg
    if target not in ("fused", "rgb") or (target == "fused" and teacher_modality != "fusion"):
        raise R2SDepthError(
            f"distill.feature_target {target!r} is not available from a {teacher_modality} "
            "teacher (fused features need a fusion teacher; use rgb)"
        )
    return dcfg


class Connector(nn.Module):
    """Student features -> teacher feature space: 1x1 conv + BN + ReLU, then a 3x3 conv."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DistillModule(DepthModule):
    """Stage 2 (see module docstring). ``teacher`` = ``{"model": cfg, "pose": cfg}`` of the
    stage-1 checkpoint; its weights live in this module's state dict (``teacher.*``,
    ``teacher_pose.*``), so a stage-2 checkpoint loads and resumes on its own."""

    def __init__(
        self,
        teacher: dict[str, Any],
        loss: dict[str, Any] | None = None,
        optim: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        steps_per_epoch: int | None = None,
        distill: dict[str, Any] | None = None,
    ) -> None:
        tmodel = dict(teacher["model"])
        if tmodel["modality"] not in ("fusion", "rgb", "spike"):
            raise R2SDepthError(
                f"the teacher must be a fusion, rgb or spike model, got {tmodel['modality']!r}"
            )
        student = {**tmodel, "modality": "spike"}
        super().__init__(student, teacher.get("pose"), loss, optim, data, steps_per_epoch)
        self.hparams.clear()  # DepthModule saved its own arguments; keep exactly this class's
        self.save_hyperparameters()
        self.dcfg = check_distill_config({**DEFAULT_DISTILL, **(distill or {})}, tmodel["modality"])
        self.teacher = R2SDepthNet(tmodel)
        self.teacher_pose = PoseNet(**{**DEFAULT_POSE, **(teacher.get("pose") or {})})
        for p in list(self.teacher.parameters()) + list(self.teacher_pose.parameters()):
            p.requires_grad_(False)
        if not self.dcfg["pose_trainable"]:
            for p in self.pose_net.parameters():
                p.requires_grad_(False)
        ch_s = self.net.spike.num_ch_enc
        ch_t = self.teacher.decoder.num_ch_enc
        # only when used: DDP rejects parameters that never receive gradients
        self.connectors = (
            nn.ModuleList(Connector(a, b) for a, b in zip(ch_s, ch_t))
            if self.dcfg["feat_weight"] > 0
            else nn.ModuleList()
        )
        for k in TERMS:
            self.register_buffer(f"ema_{k}", torch.tensor(-1.0))
        self.register_buffer("ema_photo", torch.tensor(-1.0))

    # -- set-up -----------------------------------------------------------------------------------
    def init_from_teacher(self) -> None:
        """Copy the teacher's pose net (always) and spike branch + spike decoder (if it has them)."""
        self.pose_net.load_state_dict(self.teacher_pose.state_dict())
        if not self.dcfg["init_from_teacher"] or self.teacher.modality == "rgb":
            return
        if self.teacher.modality == "spike":  # the same network: the student starts as the teacher
            self.net.load_state_dict(self.teacher.state_dict())
            return
        self.net.spike.load_state_dict(self.teacher.spike.state_dict())
        if hasattr(self.teacher, "student_decoder"):
            self.net.decoder.load_state_dict(self.teacher.student_decoder.state_dict())

    def frozen_modules(self) -> list[nn.Module]:
        """The modules that stage 2 never trains: teacher, teacher pose net, and the student's
        pose net unless ``pose_trainable``."""
        mods: list[nn.Module] = [self.teacher, self.teacher_pose]
        if not self.dcfg["pose_trainable"]:
            mods.append(self.pose_net)
        return mods

    def _freeze_modes(self) -> None:
        # Lightning neither calls LightningModule.train() when fit starts nor keeps our modes
        # across validation (it restores every submodule's recorded mode), so this runs where
        # nothing can undo it: right before the frozen networks are used, every step.
        for m in self.frozen_modules():
            m.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_modes()
        return self

    def on_train_start(self) -> None:
        super().on_train_start()
        self._freeze_modes()

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_start(batch, batch_idx)
        self._freeze_modes()

    def on_validation_model_train(self) -> None:
        super().on_validation_model_train()
        self._freeze_modes()

    # -- loss -------------------------------------------------------------------------------------
    def _ema(self, buf: torch.Tensor, value: torch.Tensor) -> None:
        if self.training and self.dcfg["adaptive"] and torch.isfinite(value):
            mom = float(self.dcfg["ema_momentum"])
            v = value.detach().float()
            buf.copy_(torch.where(buf < 0, v, mom * buf + (1 - mom) * v))

    def _balance(self, name: str, value: torch.Tensor) -> torch.Tensor:
        """``b_k = EMA(L_photo) / EMA(L_k)`` (1 when ``adaptive`` is off)."""
        if not self.dcfg["adaptive"]:
            return value.new_tensor(1.0)
        self._ema(getattr(self, f"ema_{name}"), value)
        ema_t, ema_p = getattr(self, f"ema_{name}"), self.ema_photo
        if ema_t <= 0 or ema_p <= 0:
            return value.new_tensor(1.0)
        return (ema_p / ema_t.clamp_min(1e-8)).to(value.dtype)

    def compute_loss(self, batch: dict[str, Any], train: bool = True) -> dict[str, Any]:
        c = self.dcfg
        cfg = self.net.cfg
        color = batch["color"]
        kw = dict(
            smooth_weight=self.loss_cfg["smooth_weight"],
            min_depth=cfg["min_depth"],
            max_depth=cfg["max_depth"],
            automask=self.loss_cfg["automask"],
        )
        self._freeze_modes()
        out = self.net(spikes=batch["spikes"])  # the student: spikes only
        if c["pose_trainable"]:
            poses = self.poses(batch)
        else:
            with torch.no_grad():
                poses = self.poses(batch)
        sources, poses = self.with_stereo(batch, [color[:, j] for j in range(1, color.shape[1])], poses)
        with torch.no_grad():
            tm = self.teacher.modality
            tout = self.teacher(
                rgb=batch["color_aug"][:, 0] if tm != "spike" else None,
                spikes=batch["spikes"] if tm != "rgb" else None,
            )
            tposes = (
                poses
                if not c["pose_trainable"]
                else self.with_stereo(batch, [], self.poses(batch, self.teacher_pose))[1]
            )
            tmaps = self_supervised_loss(
                {0: tout["disp"][0]}, color[:, 0], sources, tposes, batch["K"], **kw
            )["maps"][0]
        st = self_supervised_loss(out["disp"], color[:, 0], sources, poses, batch["K"], **kw)
        pix = adaptive_pixel_weights(
            st["maps"][0]["reproj"],
            tmaps["reproj"],
            tmaps["mask"] if self.loss_cfg["automask"] else None,
            c["pixel"] if c["adaptive"] else "none",
        )
        loss = c["photo_weight"] * st["loss"] if c["photo_weight"] > 0 else st["loss"].new_zeros(())
        res: dict[str, Any] = {
            "photo": st["photo"],
            "out": out,
            "poses": poses,
            "main": st,
            "trust": pix.mean(),
        }
        tfeat = tout.get("feat_fused" if c["feature_target"] == "fused" else "feat_rgb")
        terms: dict[str, torch.Tensor] = {}
        if c["feat_weight"] > 0:
            terms["feat"] = feature_distill_loss(
                [m(f) for m, f in zip(self.connectors, out["feat_spike"])], tfeat, pix
            )
        if c["at_weight"] > 0:
            terms["at"] = attention_transfer_loss(out["feat_spike"], tfeat)
        if c["depth_weight"] > 0:
            dl = 0.0
            for s, disp in out["disp"].items():
                sd = disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])[1]
                td = disp_to_depth(tout["disp"][s], cfg["min_depth"], cfg["max_depth"])[1]
                dl = dl + si_log_loss(sd, td, pix if c["adaptive"] else None, c["si_lambda"])
            terms["depth"] = dl / len(out["disp"])
        self._ema(self.ema_photo, st["photo"])
        for k, v in terms.items():
            loss = loss + c[f"{k}_weight"] * self._balance(k, v) * v
            res[f"distill_{k}"] = v
        res["loss"] = loss
        return res

    # -- optimisation and checkpoints -------------------------------------------------------------
    def on_before_optimizer_step(self, optimizer) -> None:
        super().on_before_optimizer_step(optimizer)
        if self.global_step < int(self.dcfg["pose_warmup"]):  # only the pose net steps (Adam skips None)
            pose = {id(p) for p in self.pose_net.parameters()}
            for p in self.parameters():
                if id(p) not in pose:
                    p.grad = None

    def configure_optimizers(self):
        c = self.optim_cfg
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=c["lr"], weight_decay=c["weight_decay"])
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=c["step_size"], gamma=c["gamma"])
        return {"optimizer": opt, "lr_scheduler": sched}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["r2sdepth"].update(
            {"stage": 2, "teacher_modality": self.teacher.modality, "distill": dict(self.dcfg)}
        )
