"""Structure figures of the library (``src/r2sdepth``), measured the same way every time.

    python scripts/code_counts.py [--root src/r2sdepth] [--max-lines 60] [--max-params 8] [--width 110]

Prints JSON: functions (and methods) longer than ``--max-lines`` lines (``def`` to last line, as
the AST gives them), functions with more than ``--max-params`` parameters (``self``/``cls``
excluded, ``*args``/``**kw`` counted), imports inside functions (split into standard library and
other), source lines longer than ``--width`` characters, and the longest functions by name.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path


def counts(root: Path, max_lines: int, max_params: int, width: int) -> dict:
    """The figures for every ``*.py`` under ``root``."""
    long_fns, many_params, local_imports, std_local, wide = [], [], 0, 0, 0
    seen: set[tuple[Path, int]] = set()
    for path in sorted(root.rglob("*.py")):
        text = path.read_text()
        wide += sum(len(line) > width for line in text.splitlines())
        tree = ast.parse(text)
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            name = f"{path.relative_to(root)}:{fn.name}"
            n = fn.end_lineno - fn.lineno + 1
            if n > max_lines:
                long_fns.append((name, n))
            args = fn.args
            params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
            params = [p for p in params if p not in ("self", "cls")]
            k = len(params) + (args.vararg is not None) + (args.kwarg is not None)
            if k > max_params:
                many_params.append((name, k))
            for node in ast.walk(fn):  # an inner def's imports are seen from the outer one too: once each
                if isinstance(node, ast.Import | ast.ImportFrom) and (path, node.lineno) not in seen:
                    seen.add((path, node.lineno))
                    local_imports += 1
                    mod = (node.names[0].name if isinstance(node, ast.Import) else node.module or "").split(
                        "."
                    )[0]
                    std_local += mod in sys.stdlib_module_names
    return {
        "functions_over_lines": len(long_fns),
        "max_lines": max_lines,
        "functions_over_params": len(many_params),
        "max_params": max_params,
        "imports_inside_functions": local_imports,
        "of_which_stdlib": std_local,
        "lines_over_width": wide,
        "width": width,
        "longest": sorted(long_fns, key=lambda x: -x[1])[:10],
        "most_params": sorted(many_params, key=lambda x: -x[1])[:10],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1] / "src" / "r2sdepth"))
    ap.add_argument("--max-lines", type=int, default=60)
    ap.add_argument("--max-params", type=int, default=8)
    ap.add_argument("--width", type=int, default=110)
    a = ap.parse_args()
    print(json.dumps(counts(Path(a.root), a.max_lines, a.max_params, a.width), indent=1))


if __name__ == "__main__":
    main()
