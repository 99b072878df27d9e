import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from r2sdepth.data.spike_kitti import StreamSpec, build_spike_kitti
from r2sdepth.errors import R2SDepthError
from r2sdepth.spike import SpikeStream
from r2sdepth.spike.simulate import SimParams

CALIB = """calib_time: 09-Jan-2012 13:57:47
S_rect_02: 1.242000e+03 3.750000e+02
R_rect_00: 1 0 0 0 1 0 0 0 1
P_rect_02: 7.2e+02 0 6.0e+02 4.4e+01 0 7.2e+02 1.7e+02 0 0 0 1 0
S_rect_03: 1.242000e+03 3.750000e+02
P_rect_03: 7.2e+02 0 6.0e+02 -3.3e+02 0 7.2e+02 1.7e+02 0 0 0 1 0
"""


def make_tree(root: Path, drives=3, frames=4, h=24, w=40, cams=("02",)):
    rng = np.random.default_rng(0)
    for d in range(drives):
        date = "2011_09_26"
        (root / date).mkdir(parents=True, exist_ok=True)
        (root / date / "calib_cam_to_cam.txt").write_text(CALIB)
        for c in cams:
            img_dir = root / date / f"{date}_drive_{d:04d}_sync" / f"image_{c}" / "data"
            img_dir.mkdir(parents=True)
            for f in range(frames):
                Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
                    img_dir / f"{f:010d}.png"
                )
    return root


def tree_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


PARAMS = SimParams(planes_per_frame=8)


def test_layout_manifest_and_resume(tmp_path):
    root = make_tree(tmp_path / "kitti", cams=("02", "03"))
    out = tmp_path / "out"
    res = build_spike_kitti(root, out, StreamSpec(16, 32, PARAMS))
    assert res["built"] == 6
    s = out / "2011_09_26" / "2011_09_26_drive_0001_sync" / "spike_03" / "stream.dat"
    st = SpikeStream(s)
    assert (len(st), st.height, st.width) == (4 * 8, 16, 32)  # pre-roll + 3 inter-frame chunks
    assert st.meta["frame_plane_index"] == {"0": 8, "1": 16, "2": 24, "3": 32}
    m = json.loads((out / "manifest.json").read_text())
    assert m["streams"] == 6 and m["sequences"] == 3 and m["rgb_frames"] == 24
    assert all(len(e["sha256"]) == 64 for e in m["entries"])
    full = tree_bytes(out)
    # a rerun skips everything and changes nothing
    assert build_spike_kitti(root, out, StreamSpec(16, 32, PARAMS), verify=True)["built"] == 0
    assert tree_bytes(out) == full
    # simulated crash: one stream truncated with its sidecar lost, another with a stale .part
    s.write_bytes(s.read_bytes()[:100])
    (s.with_suffix(".json")).unlink()
    (s.parent / ".stream.dat.xyz.part").write_bytes(b"junk")
    res = build_spike_kitti(root, out, StreamSpec(16, 32, PARAMS))
    assert res["built"] == 1
    assert tree_bytes(out) == full  # stale partial files of the rebuilt stream are gone
    # other parameters -> rebuilt
    assert build_spike_kitti(root, out, StreamSpec(16, 32, SimParams(planes_per_frame=4)))["built"] == 6


def test_shards_union_equals_full(tmp_path):
    root = make_tree(tmp_path / "kitti", drives=5)
    full_out, shard_out = tmp_path / "full", tmp_path / "sharded"
    build_spike_kitti(root, full_out, StreamSpec(16, 32, PARAMS), workers=2)
    built = [
        build_spike_kitti(root, shard_out, StreamSpec(16, 32, PARAMS), shard=f"{i}/3")["built"]
        for i in range(3)
    ]
    assert built == [2, 2, 1]
    assert tree_bytes(shard_out) == tree_bytes(full_out)


def test_kill_9_then_resume_is_byte_identical(tmp_path):
    root = make_tree(tmp_path / "kitti", drives=6, frames=6, h=96, w=320)
    ref = tmp_path / "ref"
    build_spike_kitti(root, ref, StreamSpec(96, 320, SimParams(planes_per_frame=64)))
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "r2sdepth.cli",
        "build-spike-kitti",
        "--kitti-root",
        str(root),
        "--out",
        str(out),
        "--size",
        "96x320",
        "--planes-per-frame",
        "64",
        "--cameras",
        "02",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob("*/*/spike_02/stream.json")):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL  # it was still running: the kill landed mid-build
    finished = list(out.glob("*/*/spike_02/stream.json"))
    assert 1 <= len(finished) < 6 and not (out / "manifest.json").exists()
    subprocess.run(cmd, check=True, capture_output=True)
    assert tree_bytes(out) == tree_bytes(ref)


def test_bad_inputs(tmp_path):
    with pytest.raises(R2SDepthError, match="not found"):
        build_spike_kitti(tmp_path / "nope", tmp_path / "o")
    (tmp_path / "empty").mkdir()
    with pytest.raises(R2SDepthError, match="no drives"):
        build_spike_kitti(tmp_path / "empty", tmp_path / "o")
    root = make_tree(tmp_path / "kitti", drives=1)
    lst = tmp_path / "seqs.txt"
    lst.write_text("2011_09_26/2011_09_26_drive_0009_sync 3 l\n")
    with pytest.raises(R2SDepthError, match="not found"):
        build_spike_kitti(root, tmp_path / "o", sequences=lst)
    with pytest.raises(R2SDepthError, match="--shard"):
        build_spike_kitti(root, tmp_path / "o", shard="3/3")
    bad = root / "2011_09_26" / "2011_09_26_drive_0000_sync" / "image_02" / "data" / "0000000002.png"
    bad.write_bytes(b"garbage")
    with pytest.raises(R2SDepthError, match="unreadable image"):
        build_spike_kitti(root, tmp_path / "o2", StreamSpec(16, 32, PARAMS))
    assert not list((tmp_path / "o2").rglob("stream.*"))
