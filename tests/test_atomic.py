"""Atomic writes (`r2sdepth.atomic`), checked by what an interrupted write leaves on disk: a real
SIGKILL in the middle of a write, and an exception inside the writer."""

import os
import signal
import subprocess
import sys
import time

import pytest

from r2sdepth.atomic import atomic_path, is_temporary, remove_stale_temporaries, write_bytes_atomic

WRITER = """
import sys, time
from pathlib import Path
from r2sdepth.atomic import atomic_path
dest, ready = Path(sys.argv[1]), Path(sys.argv[2])
with atomic_path(dest) as tmp, open(tmp, "wb") as f:
    f.write(b"N" * 1_000_000)
    f.flush()
    ready.write_text("1")
    while True:  # the rest of a long write: killed here
        f.write(b"N" * 1000)
        f.flush()
        time.sleep(0.01)
"""


@pytest.mark.parametrize("existing", [True, False])
def test_a_write_killed_midway_leaves_the_old_file_or_nothing_under_the_final_name(tmp_path, existing):
    dest, ready = tmp_path / "depth.npy", tmp_path / "ready"
    if existing:
        dest.write_bytes(b"OLD")
    p = subprocess.Popen([sys.executable, "-c", WRITER, str(dest), str(ready)])
    t0 = time.time()
    while not ready.exists():
        assert time.time() - t0 < 60 and p.poll() is None, "the writer did not start"
        time.sleep(0.02)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    assert (dest.read_bytes() == b"OLD") if existing else not dest.exists()
    left = [f for f in tmp_path.iterdir() if f not in (dest, ready)]
    assert len(left) == 1 and is_temporary(left[0]) and left[0].stat().st_size >= 1_000_000
    assert remove_stale_temporaries(tmp_path) == 1
    assert sorted(tmp_path.iterdir()) == sorted([ready] + ([dest] if existing else []))


def test_an_exception_inside_the_writer_keeps_the_old_file_and_no_temporary(tmp_path):
    dest = tmp_path / "out.json"
    write_bytes_atomic(dest, b"old")
    with pytest.raises(RuntimeError), atomic_path(dest) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert dest.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [dest]
    write_bytes_atomic(dest, b"new")  # and a complete write replaces it
    assert dest.read_bytes() == b"new" and sorted(tmp_path.iterdir()) == [dest]
