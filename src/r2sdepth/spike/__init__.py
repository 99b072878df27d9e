"""Spike streams: ``.dat`` I/O, the spike-camera simulator, TFP/TFI reconstructions.

Numpy only: importing this package does not import torch.
"""

from r2sdepth.spike.io import (
    DEFAULT_RATE_HZ,
    SpikeStream,
    SpikeWriter,
    decode_planes,
    encode_planes,
    frame_nbytes,
    read_dat,
    read_sidecar,
    sidecar_path,
    write_dat,
)
from r2sdepth.spike.reconstruct import tfi, tfp, to_uint8

__all__ = [
    "DEFAULT_RATE_HZ",
    "SpikeStream",
    "SpikeWriter",
    "decode_planes",
    "encode_planes",
    "frame_nbytes",
    "read_dat",
    "read_sidecar",
    "sidecar_path",
    "tfi",
    "tfp",
    "to_uint8",
    "write_dat",
]
