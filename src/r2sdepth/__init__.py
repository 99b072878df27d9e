"""r2sdepth: depth estimation from spike cameras.

Python API (torch is imported on first use): :func:`predict`, :func:`load_model` and
:class:`DepthModel` (:mod:`r2sdepth.api`). Sub-packages: :mod:`r2sdepth.spike` (spike streams,
numpy only), :mod:`r2sdepth.data` (KITTI raw, synthetic scenes, Spike-KITTI),
:mod:`r2sdepth.geometry`, :mod:`r2sdepth.evaluate`, :mod:`r2sdepth.config`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["DepthModel", "load_model", "predict", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from r2sdepth.api import DepthModel, load_model, predict


def __getattr__(name: str) -> Any:
    if name in ("DepthModel", "load_model", "predict"):
        from r2sdepth import api  # noqa: PLC0415  lazy: `import r2sdepth` must not import torch

        return getattr(api, name)
    raise AttributeError(f"module 'r2sdepth' has no attribute {name!r}")
