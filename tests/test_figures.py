"""Figures a paper can use: the depth colour bar at the sizes the shipped models produce (64 rows
for 64x224, 250 for the PKU camera's 250x400) has 4-6 ticks whose labels never overprint each
other or the units, and nothing is clipped. Checked on the rendered pixels, not on the layout
code's own numbers: separate labels are separate runs of inked rows."""

import numpy as np
import pytest

from r2sdepth.viz import depth_colorbar, depth_picture


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True rows ``(first, last)``."""
    out, start = [], None
    for i, v in enumerate(mask):
        if v and start is None:
            start = i
        if not v and start is not None:
            out.append((start, i - 1))
            start = None
    if start is not None:
        out.append((start, len(mask) - 1))
    return out


@pytest.mark.parametrize("height", [64, 250])
@pytest.mark.parametrize(
    "near, far, units",
    [
        (0.1, 0.4, "model units"),
        (0.123, 0.377, "model units"),
        (2.0, 60.0, "m"),
        (1.0, 80.0, "m"),
        (3.3, 17.2, "m"),
    ],
)
def test_colour_bar_labels_never_overprint_at_the_shipped_sizes(height, near, far, units):
    img = depth_colorbar(height, near, far, units)
    assert img.shape[0] == height
    ink = img.min(axis=2) < 160
    bar_w = max(6, 64 // 5)
    gradient_rows = np.flatnonzero(img[:, 0].astype(int).sum(axis=1) < 3 * 250)
    r0 = gradient_rows[0]  # the units line sits above the gradient
    assert ink[: r0 - 1].any(), "the units are written"
    ticks = _runs(ink[r0:, bar_w + 2])  # under the units, the tick marks alone cross this column
    labels = _runs(ink[r0:, bar_w + 5 :].any(axis=1))
    assert 4 <= len(ticks) <= 6, ticks
    assert len(labels) == len(ticks), (labels, ticks)  # merged runs = overprinted labels
    for (a, b), (t, _) in zip(labels, ticks):  # each label beside its tick
        assert a - 12 <= t <= b + 12
    assert not ink[:, -1].any(), "a label runs off the right edge"


def test_depth_picture_keeps_the_map_and_adds_the_bar():
    d = np.tile(np.linspace(1.0, 20.0, 224, dtype=np.float32), (64, 1))
    pic = depth_picture(d, 1.0, 20.0, "m")
    assert pic.shape[0] == 64 and pic.shape[1] >= 224 + 64
    assert (pic[:, 0].mean(axis=1) > pic[:, 223].mean(axis=1) + 100).all()  # near is bright
