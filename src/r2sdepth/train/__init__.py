"""Training: LightningModule (stage 1), data module, config handling and the ``train`` entry."""
