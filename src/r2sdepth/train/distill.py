"""Stage 2: adaptive cross-modality self-distillation from a frozen teacher into the spike-only student.

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

from typing import Any

import torch
import torch.nn as nn

from r2sdepth.config import check_distill_config, section
from r2sdepth.errors import R2SDepthError
from r2sdepth.geometry import disp_to_depth
from r2sdepth.losses import (
    adaptive_pixel_weights,
    affine_normalise,
    attention_transfer_loss,
    feature_distill_loss,
    resize_bilinear,
    self_supervised_loss,
    si_log_loss,
    ssi_disparity_loss,
)
from r2sdepth.models.external import ExternalTeacher
from r2sdepth.models.pose import PoseNet
from r2sdepth.models.r2sdepth import R2SDepthNet
from r2sdepth.train.module import DepthModule

TERMS = ("feat", "at", "depth")


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
    ``teacher_pose.*``), so a stage-2 checkpoint loads and resumes on its own.

    With ``teacher["external"]`` (a :func:`r2sdepth.models.external.teacher_spec`), the teacher is
    a depth network of the user's choice (:class:`~r2sdepth.models.external.ExternalTeacher`, RGB
    in) and ``model`` is the student's config; there is no teacher pose net (the student's is
    trained). Its term ``L_depth`` is :func:`~r2sdepth.losses.ssi_disparity_loss` for relative
    disparity and :func:`~r2sdepth.losses.si_log_loss` for metric depth, at every output scale.
    For the reprojection error that sets the adaptive pixel weights, the teacher's map is first
    aligned to the student's (mean and mean absolute deviation in disparity, or the median depth
    ratio), because the pose net's translations are in the student's units."""

    LOG_TERMS = (*DepthModule.LOG_TERMS, "distill_feat", "distill_at", "distill_depth")

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
        external = teacher.get("external")
        if external:
            tmodel["modality"] = "spike"
        elif tmodel["modality"] not in ("fusion", "rgb", "spike"):
            raise R2SDepthError(
                f"the teacher must be a fusion, rgb or spike model, got {tmodel['modality']!r}"
            )
        student = {**tmodel, "modality": "spike"}
        super().__init__(student, teacher.get("pose"), loss, optim, data, steps_per_epoch)
        self.hparams.clear()  # DepthModule saved its own arguments; keep exactly this class's
        self.save_hyperparameters()
        self.dcfg = check_distill_config(
            section("distill", distill, stage2=True), "external" if external else tmodel["modality"]
        )
        self.teacher: nn.Module = ExternalTeacher(external) if external else R2SDepthNet(tmodel)
        self.teacher_pose = None if external else PoseNet(**section("pose", teacher.get("pose")))
        for p in list(self.teacher.parameters()) + list((self.teacher_pose or nn.Module()).parameters()):
            p.requires_grad_(False)
        if not self.dcfg["pose_trainable"]:
            for p in self.pose_net.parameters():
                p.requires_grad_(False)
        # only when used: DDP rejects parameters that never receive gradients
        self.connectors = (
            nn.ModuleList(
                Connector(a, b) for a, b in zip(self.net.spike.num_ch_enc, self.teacher.decoder.num_ch_enc)
            )
            if self.dcfg["feat_weight"] > 0
            else nn.ModuleList()
        )
        for k in TERMS:
            self.register_buffer(f"ema_{k}", torch.tensor(-1.0))
        self.register_buffer("ema_photo", torch.tensor(-1.0))

    # -- set-up -----------------------------------------------------------------------------------
    def init_from_teacher(self) -> None:
        """Copy the teacher's pose net (always) and spike branch + spike decoder (if it has them);
        nothing for an external teacher (the student starts from ``init_from`` or afresh)."""
        if self.teacher_pose is None:
            return
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
        mods: list[nn.Module] = [
            self.teacher,
            *([self.teacher_pose] if self.teacher_pose is not None else []),
        ]
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

    def aligned_teacher_disp(self, tmap: torch.Tensor, student_disp: torch.Tensor) -> torch.Tensor:
        """An external teacher's map ``[B, 1, H, W]`` as a sigmoid disparity in the student's units
        (what :func:`~r2sdepth.losses.self_supervised_loss` takes): relative disparity given the
        student's disparity ``1 / depth``'s per-image mean and mean absolute deviation
        (:func:`~r2sdepth.losses.affine_normalise`: a positive scale, never a flip), metric
        depth by the per-image ratio of median depths; clamped to the model's depth range."""
        cfg = self.net.cfg
        min_disp, max_disp = 1.0 / cfg["max_depth"], 1.0 / cfg["min_depth"]
        sdisp, sdepth = disp_to_depth(student_disp.detach(), cfg["min_depth"], cfg["max_depth"])
        tmap = resize_bilinear(tmap, sdisp.shape[-2:])
        if self.teacher.spec["output"] == "disparity":
            nt, _, _ = affine_normalise(tmap)
            _, shift, scale = affine_normalise(sdisp)
            aligned = scale.view(-1, 1, 1, 1) * nt + shift.view(-1, 1, 1, 1)
        else:
            ratio = sdepth.flatten(1).median(1).values / tmap.flatten(1).median(1).values.clamp_min(1e-8)
            aligned = 1.0 / (tmap * ratio.view(-1, 1, 1, 1)).clamp_min(1e-8)
        return (aligned.clamp(min_disp, max_disp) - min_disp) / (max_disp - min_disp)

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
            if self.teacher_pose is None:  # an external teacher: RGB in, one map out
                tmap = self.teacher(batch["color_aug"][:, 0])
                tout: dict[str, Any] = {}
                tdisp0, tposes = self.aligned_teacher_disp(tmap, out["disp"][0]), poses
            else:
                tm = self.teacher.modality
                tout = self.teacher(
                    rgb=batch["color_aug"][:, 0] if tm != "spike" else None,
                    spikes=batch["spikes"] if tm != "rgb" else None,
                )
                tdisp0 = tout["disp"][0]
                tposes = (
                    poses
                    if not c["pose_trainable"]
                    else self.with_stereo(batch, [], self.poses(batch, self.teacher_pose))[1]
                )
            tmaps = self_supervised_loss({0: tdisp0}, color[:, 0], sources, tposes, batch["K"], **kw)["maps"][
                0
            ]
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
            w = pix if c["adaptive"] else None
            for s, disp in out["disp"].items():
                sdisp, sd = disp_to_depth(disp, cfg["min_depth"], cfg["max_depth"])
                if self.teacher_pose is None and self.teacher.spec["output"] == "disparity":
                    dl = dl + ssi_disparity_loss(sdisp, tmap, w)
                elif self.teacher_pose is None:
                    dl = dl + si_log_loss(sd, tmap, w, c["si_lambda"])
                else:
                    td = disp_to_depth(tout["disp"][s], cfg["min_depth"], cfg["max_depth"])[1]
                    dl = dl + si_log_loss(sd, td, w, c["si_lambda"])
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
        return self.adam([p for p in self.parameters() if p.requires_grad])  # the frozen teacher stays out

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["r2sdepth"].update(
            {"stage": 2, "teacher_modality": self.teacher.modality, "distill": dict(self.dcfg)}
        )
        if self.teacher_pose is None:  # an external teacher: how it was set up, not its weights
            checkpoint["r2sdepth"]["teacher_external"] = dict(self.teacher.spec)
