"""Shared fixtures: paths to ``../shared/data`` (tests skip cleanly when it is absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (the default run, ``-n auto``), each worker process gets an equal share of
    the machine's cores for torch's intra-op threads and for the CLI processes its tests start
    (``OMP_NUM_THREADS``, read when torch is first imported, which happens after this hook); else
    two workers of two threads each would oversubscribe a two-core machine. An explicit
    ``OMP_NUM_THREADS`` is kept."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1 and not os.environ.get("OMP_NUM_THREADS"):
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared real data not found at {SHARED}")
    return SHARED


def _synth(tmp_path_factory, name: str, sequences: int, frames: int) -> Path:
    from r2sdepth.data.synthetic import SceneSpec, synthesize

    root = tmp_path_factory.mktemp(name)
    synthesize(root, SceneSpec(frames=frames, height=64, width=96, seed=0), sequences=sequences)
    return root


@pytest.fixture(scope="session")
def synth(tmp_path_factory) -> Path:
    """Synthetic scenes (KITTI layout, exact depth): 3 sequences x 5 frames at 64 x 96."""
    return _synth(tmp_path_factory, "synth", 3, 5)


@pytest.fixture(scope="session")
def synth_long(tmp_path_factory) -> Path:
    """4 sequences x 10 frames at 64 x 96 (16 training samples: 8 batches of 2 per epoch)."""
    return _synth(tmp_path_factory, "synth_long", 4, 10)
