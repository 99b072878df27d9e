"""LightningDataModule over :class:`~r2sdepth.data.spike_kitti.SpikeKittiDataset` splits."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from r2sdepth.data.spike_kitti import SpikeKittiDataset, collate

DEFAULT_DATA: dict[str, Any] = {
    "root": None,
    "train_split": None,
    "val_split": None,
    "height": 192,
    "width": 640,
    "context": [-1, 1],
    "window": 128,
    "align": "end",
    "spike_root": None,
    "sim": {"planes_per_frame": 128},
    "batch_size": 4,
    "val_batch_size": 4,
    "num_workers": 2,
    "augment": True,
    "seed": 0,
}


class SpikeKittiDataModule(L.LightningDataModule):
    """Train/val loaders from split files; validation carries ground-truth depth."""

    def __init__(self, cfg: dict[str, Any], modality: str = "fusion") -> None:
        super().__init__()
        self.cfg = {**DEFAULT_DATA, **cfg}
        self.modality = modality

    def _ds(self, split: str, train: bool) -> SpikeKittiDataset:
        c = self.cfg
        return SpikeKittiDataset(
            c["root"], split, height=c["height"], width=c["width"], context=tuple(c["context"]),
            window=c["window"], align=c["align"], spike_root=c["spike_root"], sim=c["sim"],
            seed=c["seed"], augment=train and c["augment"], with_gt=not train,
            need_spikes=self.modality in ("spike", "fusion"),
        )

    def setup(self, stage: str | None = None) -> None:
        self.train_ds = self._ds(self.cfg["train_split"], True)
        self.val_ds = self._ds(self.cfg["val_split"], False) if self.cfg.get("val_split") else None

    def _loader(self, ds, bs: int, shuffle: bool) -> DataLoader:
        nw = int(self.cfg["num_workers"])
        return DataLoader(ds, batch_size=bs, shuffle=shuffle, num_workers=nw, collate_fn=collate,
                          drop_last=shuffle and len(ds) >= bs, persistent_workers=False,
                          pin_memory=False)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_ds, int(self.cfg["batch_size"]), True)

    def val_dataloader(self):
        if self.val_ds is None:
            return []
        return self._loader(self.val_ds, int(self.cfg["val_batch_size"]), False)
