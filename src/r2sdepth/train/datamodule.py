"""LightningDataModule over :class:`~r2sdepth.data.dataset.SplitDataset` splits."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Sampler

from r2sdepth.config import TrainConfig, section
from r2sdepth.data.dataset import SampleOptions, SplitDataset, collate
from r2sdepth.data.drives import DriveOptions
from r2sdepth.data.transport import finish_batch
from r2sdepth.seeds import stable_seed
from r2sdepth.spike.simulate import SimParams


class SeededSampler(Sampler):
    """The training order of one process: a permutation of the data set drawn from
    ``(seed, epoch)`` alone, split across ``world`` processes (rank ``r`` takes every ``world``-th
    index, padded by wrapping so every rank sees the same number), yielding ``(epoch, index)``
    pairs so each sample's augmentation is drawn from ``(seed, epoch, index)`` wherever the
    sample is loaded (main process, forked or spawned workers) and after a resume.

    ``skip(epoch)`` (optional) returns how many of this epoch's indices were already consumed
    before a resume; they are not yielded again, but ``len`` stays the full epoch so that the
    trainer's steps per epoch (and the fusion schedule) do not change.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        *,
        shuffle: bool = True,
        rank: int = 0,
        world: int = 1,
        skip: Callable[[int], int] | None = None,
    ) -> None:
        self.n, self.seed, self.shuffle = int(n), int(seed), shuffle
        self.rank, self.world = int(rank), max(1, int(world))
        self.epoch = 0
        self.skip = skip

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before every epoch (and on resume with the restored epoch)."""
        self.epoch = int(epoch)

    def indices(self, epoch: int) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(stable_seed(self.seed, "order", epoch) % (2**63 - 1))
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        per = -(-self.n // self.world)
        order = (order * (self.world + 1))[: per * self.world] if self.n else order
        return order[self.rank :: self.world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        e = self.epoch
        idx = self.indices(e)
        k = int(self.skip(e)) if self.skip is not None else 0
        for i in idx[k:]:
            yield e, i

    def __len__(self) -> int:
        return -(-self.n // self.world)


class SplitDataModule(L.LightningDataModule):
    """Train/val loaders from split files; validation carries ground-truth depth.

    The training loader is deterministic from ``data.seed`` (order and augmentation, see
    :class:`SeededSampler`) and shards itself across DDP processes, so the Trainer runs with
    ``use_distributed_sampler=False``; every process evaluates the whole validation split
    (no padding duplicates), so validation metrics are exact per-image means.
    """

    def __init__(
        self,
        cfg: dict[str, Any],
        modality: str = "fusion",
        train_gt: bool = False,
        train_context: bool = True,
        train_travel: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = section("data", cfg)
        self.train_gt = train_gt  # training batches carry depth_gt (loss.depth_weight > 0)
        self.train_travel = (
            train_travel  # training batches carry distances travelled (loss.velocity_weight > 0)
        )
        self.train_context = train_context  # training batches carry the context frames (photometric loss)
        if self.cfg["seed"] is None:  # null: the run's seed (a run resolves it; built directly: the schema's)
            self.cfg["seed"] = TrainConfig.seed
        self.modality = modality

    def _ds(self, split: str, train: bool) -> SplitDataset:
        c = self.cfg
        drive = DriveOptions(
            root=c["root"],
            height=c["height"],
            width=c["width"],
            window=c["window"],
            align=c["align"],
            spike_root=c["spike_root"],
            frame_cache=Path(c["frame_cache"]) if c.get("frame_cache") else None,
            sim=SimParams(**c["sim"]),
            seed=c["seed"],
            gt_source=c["gt_source"],
        )
        sample = SampleOptions(
            context=tuple(c["context"]),
            augment=train and c["augment"],
            with_gt=(not train) or self.train_gt,
            need_spikes=self.modality in ("spike", "fusion"),
            need_rgb=self.train_context or not train,
            stereo=bool(c.get("stereo")) and (self.train_context or not train),
            travel=train and self.train_travel,
            transport=c["transport"],
        )
        return SplitDataset(drive, split, sample)

    def setup(self, stage: str | None = None) -> None:
        self.train_ds = self._ds(self.cfg["train_split"], True)
        self.val_ds = self._ds(self.cfg["val_split"], False) if self.cfg.get("val_split") else None

    def _resume_skip(self, epoch: int) -> int:
        """Samples of ``epoch`` this process consumed before the checkpoint it resumed from."""
        t = self.trainer
        mod = getattr(t, "lightning_module", None) if t is not None else None
        point = getattr(mod, "resume_point", None)
        if not point or int(point.get("epoch", -1)) != epoch:
            return 0  # (an epoch never repeats, so only the resumed epoch is partial)
        return int(point.get("batches_done", 0)) * int(self.cfg["batch_size"])

    def _loader(self, ds, bs: int, train: bool) -> DataLoader:
        nw = int(self.cfg["num_workers"])
        t = self.trainer
        rank, world = (t.global_rank, t.world_size) if (train and t is not None) else (0, 1)
        sampler = SeededSampler(
            len(ds),
            int(self.cfg["seed"]),
            shuffle=train,
            rank=rank,
            world=world,
            skip=self._resume_skip if train else None,
        )
        # its own generator: the loader's worker seeds do not draw from (and shift) the global RNG
        gen = torch.Generator().manual_seed(int(self.cfg["seed"]))
        on_gpu = t is not None and getattr(t.strategy.root_device, "type", "cpu") == "cuda"
        return DataLoader(
            ds,
            batch_size=bs,
            sampler=sampler,
            num_workers=nw,
            collate_fn=collate,
            drop_last=train and len(sampler) >= bs,
            # on a GPU: page-locked batches (asynchronous copies) and workers kept across epochs
            persistent_workers=on_gpu and nw > 0,
            pin_memory=on_gpu,
            generator=gen,
        )

    def on_after_batch_transfer(self, batch: dict[str, Any], dataloader_idx: int) -> dict[str, Any]:
        """Unpack the spikes and apply the colour jitter on the device (``data.transport``)."""
        return finish_batch(batch)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, int(self.cfg["batch_size"]), True)

    def val_dataloader(self):
        if self.val_ds is None:
            return []
        return self._loader(self.val_ds, int(self.cfg["val_batch_size"]), False)
