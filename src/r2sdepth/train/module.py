"""LightningModule for stage 1: self-supervised training by view synthesis.

Modes (``model.modality``): ``rgb`` and ``spike`` train one depth head; ``fusion`` trains the
fusion (teacher) head and, when ``loss.student_weight > 0``, the spike (student) head with its
own photometric loss. The pose network always sees RGB pairs; the photometric loss is always on
the RGB frames (the spike window is aligned with frame t).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import lightning as L
import torch

from r2sdepth.evaluate import METRICS, compute_metrics, crop_mask
from r2sdepth.geometry import disp_to_depth, pose_vec_to_matrix
from r2sdepth.losses import self_supervised_loss
from r2sdepth.models.pose import PoseNet
from r2sdepth.models.r2sdepth import R2SDepthNet

DEFAULT_LOSS: dict[str, Any] = {"smooth_weight": 1e-3, "automask": True, "student_weight": 1.0}
DEFAULT_OPTIM: dict[str, Any] = {"lr": 1e-4, "step_size": 15, "gamma": 0.1, "weight_decay": 0.0}


class DepthModule(L.LightningModule):
    """Stage 1 (see module docstring). Hyper-parameters are saved in every checkpoint, together
    with ``r2sdepth`` metadata (modality, sizes, config), so the checkpoint loads on its own."""

    def __init__(self, model: dict[str, Any] | None = None, pose: dict[str, Any] | None = None,
                 loss: dict[str, Any] | None = None, optim: dict[str, Any] | None = None,
                 data: dict[str, Any] | None = None, steps_per_epoch: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = R2SDepthNet(model)
        self.pose_net = PoseNet(**{"num_layers": 18, "width": 64, **(pose or {})})
        self.loss_cfg = {**DEFAULT_LOSS, **(loss or {})}
        self.optim_cfg = {**DEFAULT_OPTIM, **(optim or {})}
        self.data_cfg = dict(data or {})
        self.skipped_steps = 0

    @property
    def modality(self) -> str:
        return self.net.modality

    # -- helpers --------------------------------------------------------------------------------
    def _epoch_progress(self) -> float:
        spe = self.hparams.get("steps_per_epoch") or (self.trainer.num_training_batches
                                                      if self._trainer is not None else 0)
        if spe and math.isfinite(spe) and spe > 0:
            return self.global_step / spe
        return float(self.current_epoch)

    def poses(self, batch: dict[str, Any]) -> list[torch.Tensor]:
        """Target->source transforms for each context frame (Monodepth2's pair ordering)."""
        color = batch["color_aug"]
        ctx = self.data_cfg.get("context", [-1, 1])
        out = []
        for j, o in enumerate(ctx, start=1):
            if o < 0:
                aa, t = self.pose_net(color[:, j], color[:, 0])
                out.append(pose_vec_to_matrix(aa, t, invert=True))
            else:
                aa, t = self.pose_net(color[:, 0], color[:, j])
                out.append(pose_vec_to_matrix(aa, t))
        return out

    def forward_depth(self, batch: dict[str, Any]) -> dict[str, Any]:
        rgb = batch["color_aug"][:, 0] if self.modality in ("rgb", "fusion") else None
        spikes = batch.get("spikes") if self.modality in ("spike", "fusion") else None
        return self.net(rgb=rgb, spikes=spikes)

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Any]:
        out = self.forward_depth(batch)
        poses = self.poses(batch)
        color = batch["color"]
        sources = [color[:, j] for j in range(1, color.shape[1])]
        cfg = self.net.cfg
        kw = dict(smooth_weight=self.loss_cfg["smooth_weight"], min_depth=cfg["min_depth"],
                  max_depth=cfg["max_depth"], automask=self.loss_cfg["automask"])
        main = self_supervised_loss(out["disp"], color[:, 0], sources, poses, batch["K"], **kw)
        res = {"loss": main["loss"], "photo": main["photo"], "out": out, "poses": poses, "main": main}
        if "disp_student" in out and self.loss_cfg["student_weight"] > 0:
            st = self_supervised_loss(out["disp_student"], color[:, 0], sources, poses, batch["K"], **kw)
            res["loss"] = res["loss"] + self.loss_cfg["student_weight"] * st["loss"]
            res["photo_student"] = st["photo"]
        return res

    # -- Lightning hooks ------------------------------------------------------------------------
    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.modality == "fusion":
            self.net.set_epoch(self._epoch_progress())

    def _skip(self, why: str) -> None:
        self.skipped_steps += 1
        warnings.warn(f"{why} at step {self.global_step}: step skipped ({self.skipped_steps} so far); "
                      "weights unchanged", RuntimeWarning)

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
        self.log("train/photo", res["photo"], batch_size=bs)
        for k in ("photo_student", "trust", "distill_feat", "distill_at", "distill_depth"):
            if k in res:
                self.log(f"train/{k}", res[k], batch_size=bs)
        if self.modality == "fusion":
            self.log("train/w_rgb", self.net.w_rgb, batch_size=bs)
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
            warnings.warn(f"non-finite gradients at step {self.global_step}: zeroed", RuntimeWarning)
            for p in self.parameters():
                if p.grad is not None:
                    p.grad.zero_()

    def init_from(self, path: str) -> list[str]:
        """Warm start from a stage-1 checkpoint: copy every weight whose name and shape match
        (e.g. the RGB encoder, decoder and pose net of an ``rgb`` run into a ``fusion`` model).
        Returns the names copied; raises if nothing matched."""
        from r2sdepth.errors import R2SDepthError

        ck = torch.load(path, map_location="cpu", weights_only=False)
        src = ck.get("state_dict", {}) if isinstance(ck, dict) else {}
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
        if "color" in batch and batch["color"].shape[1] > 1:
            res = self.compute_loss(batch)
            self.log("val/loss", res["loss"], batch_size=bs, sync_dist=True)
        if "depth_gt" not in batch:
            return
        heads = ["disp"] + (["disp_student"] if self.modality == "fusion" and hasattr(self.net, "student_decoder") else [])
        for head in heads:
            depth = self.predict_depth(batch, head)
            mets = batch_metrics(depth, batch["depth_gt"])
            tag = "val" if head == "disp" else "val_student"
            for k, v in mets.items():
                self.log(f"{tag}/{k}", v, batch_size=bs, sync_dist=True, prog_bar=(k == "abs_rel" and tag == "val"))
        if batch_idx == 0 and self.logger is not None and hasattr(self.logger, "experiment") \
                and hasattr(self.logger.experiment, "add_image"):
            d = self.predict_depth(batch)[0, 0]
            img = (1.0 / d) / (1.0 / d).max()
            self.logger.experiment.add_image("val/inv_depth", img[None], self.global_step)

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
        }

    def on_train_epoch_start(self) -> None:
        from r2sdepth.data.spike_kitti import set_epoch

        set_epoch(self.current_epoch)


def batch_metrics(depth: torch.Tensor, gt: Any, crop: str = "garg", max_depth: float = 80.0) -> dict[str, float]:
    """Eigen-protocol metrics (median scaling) averaged over a batch of predictions."""
    import numpy as np

    from r2sdepth.evaluate import resize_to

    per = []
    for i in range(depth.shape[0]):
        g = gt[i][0].detach().cpu().numpy()
        p = resize_to(depth[i, 0].detach().float().cpu().numpy(), g.shape)
        m = (g > 1e-3) & (g < max_depth) & crop_mask(g.shape, crop)
        if not m.any():
            continue
        pv = p[m] * np.median(g[m]) / np.median(p[m])
        per.append(compute_metrics(g[m], np.clip(pv, 1e-3, max_depth)))
    if not per:
        return {}
    return {k: float(np.mean([m[k] for m in per])) for k in METRICS}
