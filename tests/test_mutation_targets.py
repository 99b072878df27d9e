"""`scripts/mutation_check.py` plants each mistake by replacing one exact piece of source text; a
refactor or a reformat that changes that text silently turns the mutation into "not applicable".
Every mutation's text must be in its file exactly once and every guarding test must exist."""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from mutation_check import MUTATIONS  # noqa: E402


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test_")}


def test_every_planted_mistake_still_applies_and_names_existing_tests():
    problems = []
    for name, (path, old, new, tests) in MUTATIONS.items():
        text = (ROOT / path).read_text()
        if text.count(old) != 1:
            problems.append(f"{name}: text found {text.count(old)} times in {path}")
        if old == new:
            problems.append(f"{name}: the replacement changes nothing")
        for t in tests:
            file, _, func = t.partition("::")
            func = func.split("[")[0]
            if not (ROOT / file).is_file() or (func and func not in _test_names(ROOT / file)):
                problems.append(f"{name}: no test {t}")
    assert not problems, problems
