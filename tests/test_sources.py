"""The recording-kind interfaces (`r2sdepth.data.sources` for `infer`, `r2sdepth.data.drives.DRIVE_KINDS`
for the training data set and the evaluation): a new kind is one class and one registry line, with no
change to `infer.py`, the data set or `evaluate.py`. Shown with a toy kind that a user with
spikes already in numpy would write: a `.npy` file of planes `[N, H, W]`."""

import json
import sys
from pathlib import Path

import numpy as np

from r2sdepth import evaluate
from r2sdepth.data import dataset, drives, kitti, sources
from r2sdepth.data.drives import SimulatedDrive
from r2sdepth.data.sources import InferSource, Item, SourceOptions
from r2sdepth.infer import run_infer
from r2sdepth.spike.io import encode_planes

sys.path.insert(0, str(Path(__file__).parent))
from test_infer import tiny_ckpt  # noqa: E402


class NpySpikes(InferSource):
    """Spike planes in a `.npy` (uint8 0/1, `[N, H, W]`), windows every `stride_planes`."""

    kind = "npy"
    modalities = ("spike",)

    @classmethod
    def accepts(cls, path: Path, follow: bool) -> bool:
        return path.suffix == ".npy"

    def __init__(self, path: Path, opts: SourceOptions) -> None:
        self.planes = np.load(path)
        self.window, self.step = opts.window, int(opts.stride_planes or opts.window)
        self.hw, self.rate_hz = self.planes.shape[1:], 20000.0
        self.starts = range(0, len(self.planes) - self.window + 1, self.step)
        self.count = len(self.starts)

    def items(self):
        for t0 in self.starts:
            yield Item(f"{t0 + self.window:06d}", spikes=self.planes[t0 : t0 + self.window])


def test_a_new_recording_kind_is_one_class_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "SOURCES", [NpySpikes, *sources.SOURCES])  # the registry line
    ckpt = tiny_ckpt(tmp_path / "s.ckpt", "spike", window=16)
    planes = (np.random.default_rng(3).random((48, 40, 60)) < 0.2).astype(np.uint8)
    np.save(tmp_path / "rec.npy", planes)
    (tmp_path / "rec.dat").write_bytes(encode_planes(planes).tobytes())
    a = run_infer(ckpt, tmp_path / "rec.npy", tmp_path / "a", window=16, stride_planes=16, progress=False)
    b = run_infer(
        ckpt,
        tmp_path / "rec.dat",
        tmp_path / "b",
        window=16,
        stride_planes=16,
        stream_kw={"height": 40, "width": 60},
        progress=False,
    )
    assert a["kind"] == "npy" and b["kind"] == "stream"
    assert a["names"] == b["names"] == ["000016", "000032", "000048"]
    for n in a["names"]:  # the same planes through either kind give the same depth
        np.testing.assert_array_equal(
            np.load(tmp_path / "a" / "depth" / f"{n}.npy"), np.load(tmp_path / "b" / "depth" / f"{n}.npy")
        )
    assert json.loads((tmp_path / "a" / "summary.json").read_text())["input_size"] == [40, 60]


class NpyWindowsDrive(SimulatedDrive):
    """A KITTI-layout drive whose spike windows a user computed already, one `.npy` per frame in
    `ROOT/drive/spike_windows/`, and whose depth (metres) is one `.npy` per frame in
    `ROOT/drive/depth_npy/` (everything else as a KITTI drive)."""

    @classmethod
    def accepts(cls, opts, drive) -> bool:
        return (opts.root / drive / "spike_windows").is_dir()

    def spikes(self, cam, frame, image):
        return np.load(self.opts.root / self.drive / "spike_windows" / f"{frame:010d}.npy")

    def gt(self, cam, frame):
        return np.load(self.opts.root / self.drive / "depth_npy" / f"{frame:010d}.npy")

    def native_intrinsics(self, cam, frame):  # a camera of its own: fx 40, fy 50, cx 14.5, cy 9.5 at 20 x 30
        return np.array([[40.0, 0, 14.5], [0, 50.0, 9.5], [0, 0, 1]]), (20, 30)


def test_a_new_drive_kind_for_the_training_data_set_is_one_class_and_one_registry_line(tmp_path, monkeypatch):
    from test_spike_kitti import make_tree

    root = make_tree(tmp_path / "kitti", drives=2, frames=4, h=64, w=96)
    drive = "2011_09_26/2011_09_26_drive_0000_sync"
    (root / drive / "spike_windows").mkdir()
    windows = (np.random.default_rng(5).random((4, 8, 64, 96)) < 0.3).astype(np.uint8)
    for f in range(4):
        np.save(root / drive / "spike_windows" / f"{f:010d}.npy", windows[f])
    (root / drive / "depth_npy").mkdir()
    depths = np.random.default_rng(6).uniform(2, 50, (4, 20, 30)).astype(np.float32)
    for f in range(4):
        np.save(root / drive / "depth_npy" / f"{f:010d}.npy", depths[f])
    monkeypatch.setattr(drives, "DRIVE_KINDS", [NpyWindowsDrive, *drives.DRIVE_KINDS])  # the registry line
    split = [kitti.Sample(drive, 2, "l"), kitti.Sample("2011_09_26/2011_09_26_drive_0001_sync", 2, "l")]
    ds = dataset.SplitDataset(drives.DriveOptions(root, height=64, width=96, window=8), split)
    np.testing.assert_array_equal(ds[0]["spikes"].numpy(), windows[2])
    assert type(ds._kind(split[1].drive)) is drives.SimulatedDrive  # the other drive: unchanged
    assert ds[1]["spikes"].shape == (8, 64, 96) and ds[0]["K"].shape == (3, 3)
    # the evaluation asks the same kinds: its ground truth comes from the toy kind's files
    (root / "toy_split.txt").write_text(f"{drive} 1 l\n{drive} 3 l\n")
    gts = evaluate.split_gt(root, root / "toy_split.txt")
    np.testing.assert_array_equal(gts[0], depths[1])
    np.testing.assert_array_equal(gts[1], depths[3])
    # ... and its intrinsics, scaled by hand to a 40 x 90 prediction (x3 columns, x2 rows, pixel centres
    # at integers: c' = (c + 0.5) * s - 0.5)
    for K in evaluate.split_intrinsics(root, root / "toy_split.txt", [(40, 90), (40, 90)]):
        np.testing.assert_allclose(K, [[120.0, 0, 44.5], [0, 100.0, 19.5], [0, 0, 1]])


def test_a_kind_missing_a_method_is_refused_when_it_is_made():
    """The interfaces are abstract: a kind that forgets `items` (or `spikes`) fails at once, not on
    the first sample."""
    import pytest

    class NoItems(InferSource):
        @classmethod
        def accepts(cls, path, follow):
            return True

    class NoSpikes(drives.DriveKind):
        @classmethod
        def accepts(cls, ds, drive):
            return True

    with pytest.raises(TypeError, match="items"):
        NoItems()
    with pytest.raises(TypeError, match="spikes"):
        NoSpikes(None, "d")
