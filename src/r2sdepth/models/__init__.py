"""Networks: spike representation, encoders (ResNet, spiking LIF), depth decoder, pose net, R2SDepth."""

from r2sdepth.models.r2sdepth import R2SDepthNet, build_model

__all__ = ["R2SDepthNet", "build_model"]
