"""The recording-kind interface of `r2sdepth infer` (`r2sdepth.data.sources`): a new kind is one
class and one registry line, with no change to `infer.py`. Shown with a toy kind that a user with
spikes already in numpy would write: a `.npy` file of planes `[N, H, W]`."""

import json
import sys
from pathlib import Path

import numpy as np

from r2sdepth.data import sources
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
