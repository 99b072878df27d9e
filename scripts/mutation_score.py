"""Mutation score per module with a real tool (mutmut), the fast tests that guard each module.

    python scripts/mutation_score.py --module spike/reconstruct geometry [--out docs/results/mutation]
    python scripts/mutation_score.py --all        # every module of CORE (hours on 2 cores)

For each module: a copy of the repository (the checkout is never touched; ``--work`` keeps it),
``[tool.mutmut]`` of ``pyproject.toml`` narrowed to that one file, ``mutmut run`` (mutmut runs
the tests once to learn which test reaches which function, then only those tests per mutant),
and the statuses read back from ``mutmut results --all true``. Writes ``OUT/MODULE.json``
(counts per status, every surviving mutant with its diff) and prints a Markdown row:
killed / total, where *total* counts every mutant, including those no selected test reaches
(``no tests``), so a module cannot score well by being untested. ``../shared/data`` is used when
present (``R2SDEPTH_SHARED_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: core modules (under src/r2sdepth, without .py) -> the fast tests that guard them
CORE: dict[str, list[str]] = {
    "spike/reconstruct": [
        "tests/test_reconstruct.py",
        "tests/test_properties.py",
        "tests/test_references.py",
        "tests/test_spike_io.py",
    ],
    "geometry": [
        "tests/test_geometry.py",
        "tests/test_properties.py",
        "tests/test_references.py",
        "tests/test_metric.py::test_rescale_translation_by_hand",
    ],
    "losses": [
        "tests/test_losses_by_hand.py",
        "tests/test_models_losses.py",
        "tests/test_references.py",
        "tests/test_distill.py",
        "tests/test_metric.py::test_velocity_loss_by_hand",
    ],
    "evaluate": [  # in-process tests: the CLI's eval runs in a subprocess, which the tool cannot see
        *(
            f"tests/test_kitti_eval.py::{t}"
            for t in (
                "test_metrics_hand_computed",
                "test_perfect_and_scaled_predictions",
                "test_eval_bad_input",
                "test_crops",
                "test_npz_roundtrip_object_array",
                "test_velodyne_projection_real_kitti",
                "test_missing_calibration",
                "test_synthetic_layout_and_exact_depth",
                "test_intrinsics_scaling",
                "test_trivial_baselines",
                "test_flat_road_prior_by_hand",
            )
        ),
        "tests/test_references.py",
        "tests/test_eval_job_by_hand.py",
        "tests/test_metric.py::test_camera_height_run_uses_one_factor_for_every_image",
        "tests/test_metric.py::test_camera_height_on_rendered_scenes_with_exact_depth",
    ],
    "data/kitti": ["tests/test_kitti_eval.py", "tests/test_references.py", "tests/test_kitti_layout.py"],
    "data/transport": ["tests/test_transport.py"],
    "spike/io": ["tests/test_spike_io.py", "tests/test_spike_io_by_hand.py", "tests/test_real_camera.py"],
    "spike/simulate": [
        "tests/test_simulate.py",
        "tests/test_simulate_by_hand.py",
        "tests/test_properties.py",
    ],
    "checkpoint": [  # the fast tests of the checkpoint files (the SIGKILL resume test is timing-dependent)
        "tests/test_checkpoint_by_hand.py",
        "tests/test_reliability.py::test_hostile_checkpoints_are_refused_through_the_cli",
        "tests/test_reliability.py::test_corrupt_and_malformed_checkpoints_give_one_line",
        "tests/test_reliability.py::test_atomic_save_on_a_full_disk_keeps_the_old_file",
        "tests/test_real_camera.py::test_infer_refuses_windows_the_network_cannot_take_and_warns_on_rate",
        "tests/test_real_camera.py::test_init_from_a_shipped_slim_model_copies_every_network_weight",
        "tests/test_real_camera.py::test_api_knows_the_trained_rate_and_warns_on_another",
        "tests/test_metric.py::test_models_listing_through_the_cli",
    ],
}

STATUSES = ("killed", "survived", "no tests", "timeout", "suspicious", "skipped", "segfault", "not checked")


def _copy(work: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == ROOT
        drop = {".git", ".venv", "__pycache__", ".pytest_cache", "mutants"}
        return {n for n in names if n in drop or (top and n in ("runs", "data", "r2sdepth-demo"))}

    shutil.copytree(ROOT, work, ignore=ignore)


def _configure(work: Path, module: str, tests: list[str]) -> None:
    """``[tool.mutmut]`` of the copy's pyproject.toml, narrowed to ``module``."""
    py = work / "pyproject.toml"
    text = re.sub(r"\n\[tool\.mutmut\]\n(?:(?!\n\[).)*", "\n", py.read_text(), flags=re.S)
    text += (
        "\n[tool.mutmut]\n"
        f'source_paths = ["src/r2sdepth/{module}.py"]\n'
        'pytest_add_cli_args = ["-n", "0"]\n'  # mutmut drives pytest itself: no xdist workers
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        'also_copy = ["src/r2sdepth", "scripts", "benchmarks", "tests"]\n'
    )
    py.write_text(text)


def score(module: str, tests: list[str], work: Path, env: dict[str, str]) -> dict:
    if work.exists():
        shutil.rmtree(work)
    _copy(work)
    _configure(work, module, tests)
    t0 = time.time()
    run = subprocess.run(["mutmut", "run"], cwd=work, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{module}: mutmut run failed:\n{(run.stdout + run.stderr)[-3000:]}")
    res = subprocess.run(
        ["mutmut", "results", "--all", "true"], cwd=work, env=env, capture_output=True, text=True, check=True
    )
    status: dict[str, str] = {}
    for line in res.stdout.splitlines():
        m = re.match(r"\s*(\S+__mutmut_\d+): (.+)$", line)
        if m:
            status[m.group(1)] = m.group(2).strip()
    counts = {s: sum(v == s for v in status.values()) for s in STATUSES}
    survivors = []
    for name, s in sorted(status.items()):
        if s in ("survived", "no tests"):
            show = subprocess.run(["mutmut", "show", name], cwd=work, env=env, capture_output=True, text=True)
            diff = [ln for ln in show.stdout.splitlines() if re.match(r"^[-+][^-+]", ln)]
            survivors.append({"name": name, "status": s, "diff": diff})
    total = len(status)
    return {
        "module": module,
        "tests": tests,
        "tool": f"mutmut {_version()}",
        "date": date.today().isoformat(),
        "seconds": round(time.time() - t0, 1),
        "total": total,
        "counts": counts,
        "score": counts["killed"] / total if total else None,
        "survivors": survivors,
    }


def _version() -> str:
    r = subprocess.run(["mutmut", "--version"], capture_output=True, text=True)
    return r.stdout.strip().split()[-1] if r.returncode == 0 else "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--module", nargs="*", default=[], help=f"modules of {', '.join(CORE)}")
    ap.add_argument("--all", action="store_true", help="every core module")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "mutation")
    ap.add_argument("--work", type=Path, help="folder for the copies (default: a temporary one)")
    a = ap.parse_args()
    mods = list(CORE) if a.all else a.module
    unknown = [m for m in mods if m not in CORE]
    if not mods or unknown:
        ap.error(f"give --module from: {', '.join(CORE)} (unknown: {', '.join(unknown) or 'none given'})")
    if shutil.which("mutmut") is None:
        ap.error("mutmut is not installed: pip install 'r2sdepth[dev]'")
    shared = Path(os.environ.get("R2SDEPTH_SHARED_DATA", ROOT.parent / "shared" / "data"))
    # mutmut forks one process per mutant from a process that ran the tests: an OpenMP thread pool
    # started before the fork deadlocks the child (every torch mutant would time out), so one thread
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env = {**os.environ, **threads, "R2SDEPTH_SHARED_DATA": str(shared)}
    base = a.work or Path(tempfile.mkdtemp(prefix="r2sdepth-mutmut-"))
    a.out.mkdir(parents=True, exist_ok=True)
    print("| module | killed / total | score | survived | no tests | timeout | minutes |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for m in mods:
        r = score(m, CORE[m], base / m.replace("/", "_"), env)
        (a.out / f"{m.replace('/', '_')}.json").write_text(json.dumps(r, indent=1) + "\n")
        c = r["counts"]
        print(
            f"| {m} | {c['killed']} / {r['total']} | {100 * (r['score'] or 0):.0f}% | {c['survived']} | "
            f"{c['no tests']} | {c['timeout']} | {r['seconds'] / 60:.1f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
