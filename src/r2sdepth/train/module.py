"""LightningModule of stage 1: self-supervised training by view synthesis.

Modes (``model.modality``): ``rgb`` and ``spike`` train one depth head; ``fusion`` trains the
fusion (teacher) head and, when ``loss.student_weight > 0``, the spike (student) head with its
own photometric loss. The pose network always sees RGB pairs; the photometric loss is always on
the RGB frames (the spike window is aligned with frame t).

Stage 2 (distillation into the spike-only student) is :mod:`r2sdepth.train.distill`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from r2sdepth.checkpoint import load_file, state_dict_of
from r2sdepth.config import section
from r2sdepth.errors import R2SDepthError
from r2sdepth.evaluate import METRICS, EvalProtocol, evaluate_depths
from r2sdepth.geometry import disp_to_depth, pose_vec_to_matrix, rescale_translation
from r2sdepth.losses import (
    resize_bilinear,
    self_supervised_loss,
    si_log_loss,
    velocity_loss,
)
from r2sdepth.models.pose import PoseNet
from r2sdepth.models.r2sdepth import R2SDepthNet
from r2sdepth.viz import colorize


class DepthModule(L.LightningModule):
    """Stage 1 (see module docstring). Hyper-parameters are saved in every checkpoint, together
    with ``r2sdepth`` metadata (modality, sizes, config), so the checkpoint loads on its own."""

    #: loss terms logged as ``train/<name>`` when the step computes them
    LOG_TERMS: tuple[str, ...] = ("photo_student", "depth_sup", "velocity", "trust")

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
        self.pose_net = PoseNet(**section("pose", pose))
        self.loss_cfg = section("loss", loss)
        self.optim_cfg = section("optim", optim)
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
        ctx = self.data_cfg["context"] if "context" in self.data_cfg else section("data")["context"]
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
                axis = str(self.loss_cfg.get("velocity_axis") or "norm")
                res["velocity"] = velocity_loss(poses, batch["travel"], axis, batch.get("travel_forward"))
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
        """Mean over output scales of the scale-invariant log loss (``lam`` = ``loss.depth_lambda``)
        between the predicted depth, upsampled bilinearly to the ground truth's size, and ``gt``
        (``[B, 1, Hg, Wg]`` metres, 0 = invalid) on its valid pixels below ``max_depth``."""
        cfg = self.net.cfg
        valid = ((gt > 0) & (gt < cfg["max_depth"])).to(gt.dtype)
        lam = float(self.loss_cfg.get("depth_lambda", 0.85))
        losses = []
        for disp in disps.values():
            depth = disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])[1]
            depth = resize_bilinear(depth, gt.shape[-2:])
            losses.append(si_log_loss(depth, gt.clamp_min(cfg["min_depth"]), valid, lam=lam))
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
        for k in self.LOG_TERMS:
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

        tb = next((lg.experiment for lg in self.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None:
            return

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
        return self.adam(list(self.parameters()))

    def adam(self, params: list[torch.nn.Parameter]) -> dict[str, Any]:
        """Adam over ``params`` with the ``optim`` section's step schedule (Lightning's optimiser dict)."""
        c = self.optim_cfg
        opt = torch.optim.Adam(
            params, lr=c["lr"], weight_decay=c["weight_decay"], fused=bool(c["fused"]) or None
        )
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

    preds = [depth[i, 0].detach().float().cpu().numpy() for i in range(depth.shape[0])]
    gts = [gt[i][0].detach().float().cpu().numpy() for i in range(depth.shape[0])]
    if not all(np.isfinite(p).all() for p in preds):
        return {k: float("nan") for k in METRICS}, len(preds)
    try:
        with warnings.catch_warnings():  # images without ground truth just do not count here
            warnings.simplefilter("ignore", RuntimeWarning)
            res = evaluate_depths(preds, gts, EvalProtocol(crop=crop, max_depth=max_depth, scaling="median"))
    except R2SDepthError:  # no image of this batch has valid ground truth inside the crop
        return {}, 0
    return {k: res[k] for k in METRICS}, int(res["n"])
