"""The shape of the code: the layer contract's cost, and what still crosses a package by hand.

    .venv/bin/python -m bench.bench_layers [--repeats 5]

Figures, all read from the tree as it is (no database):
- the import-linter run that `make lint` and `make test` do: median wall time over the repeats;
- imports between the project's packages: module-level, and function-local (each function-local
  one is listed; those that dodge a cycle are what the acyclic contract forbids);
- `dict[str, Any]` annotations left in the application code (untyped JSON at a boundary).
Exits 1 when the contract is broken.
"""

from __future__ import annotations

import argparse
import ast
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = [
    "marlin", "web", "operations", "api", "audit", "reviews", "tasks", "rubrics", "accounts",
    "idempotency", "core",
]  # fmt: skip
UNTYPED = re.compile(r"dict\[str, Any\]")


def modules() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if "migrations" not in path.parts
    ]


def imports_between_packages(paths: list[Path]) -> tuple[int, list[str]]:
    """(module-level imports of another package, function-local ones as `path:line imported`)."""
    top, local = 0, []
    for path in paths:
        package = path.relative_to(ROOT).parts[0]
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                target = name.split(".")[0]
                if target in PACKAGES and target != package:
                    if node.col_offset == 0:
                        top += 1
                    else:
                        local.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    return top, local


def lint_imports(repeats: int) -> tuple[bool, list[float]]:
    times, kept = [], True
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(
            [str(ROOT / ".venv" / "bin" / "lint-imports"), "--no-cache"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        times.append(time.perf_counter() - started)
        kept = kept and done.returncode == 0
    return kept, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    paths = modules()
    kept, times = lint_imports(options.repeats)
    top, local = imports_between_packages(paths)
    untyped = sum(len(UNTYPED.findall(path.read_text())) for path in paths)
    print("| figure | value |")
    print("|---|---|")
    print(f"| modules read | {len(paths)} |")
    print(f"| layer contract | {'kept' if kept else 'BROKEN'} |")
    print(
        f"| lint-imports, median of {options.repeats} | {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}) |"
    )
    print(f"| module-level imports between packages | {top} |")
    print(f"| function-local imports between packages | {len(local)} |")
    print(f"| `dict[str, Any]` annotations | {untyped} |")
    for line in local:
        print(f"\n- function-local: `{line}`", end="")
    print()
    return 0 if kept else 1


if __name__ == "__main__":
    sys.exit(main())
