"""r2sdepth: depth estimation from spike cameras.

Sub-packages: :mod:`r2sdepth.spike` (spike streams, numpy only), :mod:`r2sdepth.data`
(KITTI raw, synthetic scenes, Spike-KITTI), :mod:`r2sdepth.geometry`, :mod:`r2sdepth.evaluate`.
"""

__version__ = "0.1.0"
