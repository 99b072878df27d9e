"""A deterministic slice of ``benchmarks/fuzz.py``: no traceback, hang or silent wrong result."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_fuzz_slice():
    spec = importlib.util.spec_from_file_location("r2sdepth_fuzz", ROOT / "benchmarks" / "fuzz.py")
    fuzz = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fuzz)
    res = fuzz.run(reader=400, cli=6, seed=1)
    bad = {part: {k: v for k, v in c.items() if k not in ("ok", "clean error")} for part, c in res.items()}
    assert not any(bad.values()), bad
    assert sum(res["reader"].values()) == 400 and res["reader"]["clean error"] > 100
