"""`make bench`: runs the benchmarks and writes their figures into BENCHMARKS.md.

    .venv/bin/python -m bench.run_all [NAME ...]      (make bench BENCH="load audit")

Each benchmark runs as its own process (most start their own PostgreSQL and Redis); its output
goes to `bench/results/<name>.out` and a section (machine, command, date, exit status, duration,
and the figures: the markdown the benchmark wrote under `bench/results/`, or the end of its
output) to `bench/results/<name>.section.md`. Then the block between the markers at the end of
BENCHMARKS.md is rewritten from every section present, so a partial run keeps the others' latest
figures. The hand-written analysis above the block is left alone. A failing benchmark (or one
that misses its goal and says so with its exit status) does not stop the others; the exit status
is 1 if any failed.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from tests.harness.servers import Services, local_folder

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BENCHMARKS = ROOT / "BENCHMARKS.md"
PYTHON = str(ROOT / ".venv" / "bin" / "python")
BEGIN = "<!-- make bench: begin (written by bench/run_all.py; edits inside are overwritten) -->"
END = "<!-- make bench: end -->"
OUTPUT_TAIL_LINES = 60


@dataclass(frozen=True)
class Bench:
    command: list[str]
    # Markdown the benchmark writes itself; otherwise the end of its output is shown.
    writes: str | None = None
    # A fresh, migrated PostgreSQL passed as DATABASE_URL (for benchmarks that take one).
    needs_database: bool = False
    env: dict[str, str] = field(default_factory=dict)


def module(name: str, *args: str) -> list[str]:
    return [PYTHON, "-m", f"bench.{name}", *args]


BENCHES: dict[str, Bench] = {
    "import": Bench(
        module("bench_import"),
        needs_database=True,
        env={"DJANGO_SETTINGS_MODULE": "marlin.settings", "DEBUG": "true"},
    ),
    "layers": Bench(module("bench_layers")),
    "leaderboard": Bench(module("bench_leaderboard")),
    "audit": Bench(module("bench_audit")),
    "audit_cost": Bench(module("bench_audit_cost", "--reviews-per-mode", "90")),
    "generation": Bench(
        module("bench_generation", "--candidates", "1000", "--concurrency", "4", "8"),
        writes="generation.md",
    ),
    "evidence": Bench(module("bench_evidence")),
    "results": Bench(module("bench_results")),
    "pages": Bench(module("bench_pages")),
    "schemathesis": Bench(
        ["scripts/test.sh", "-q", "-s", "bench/bench_schemathesis.py"], writes="schemathesis.md"
    ),
    "load": Bench(module("bench_load"), writes="load.md"),
    "soak": Bench(module("bench_soak"), writes="soak.md"),
}


def log(message: str) -> None:
    print(f"run_all: {message}", file=sys.stderr, flush=True)


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    memory = next(
        int(line.split()[1]) // (1024 * 1024)
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    release = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    ).get("PRETTY_NAME", platform.system())
    pg = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    versions = [f"Python {platform.python_version()}"]
    if pg:
        versions.append(
            subprocess.run([pg[-1], "--version"], capture_output=True, text=True).stdout.strip()
        )
    if shutil.which("redis-server"):
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout
        versions.append(" ".join(out.split()[:3]))
    return (
        f"{os.cpu_count()} CPUs ({cpu.strip(chr(34))}), {memory} GiB, {release.strip(chr(34))}, "
        + ", ".join(versions)
    )


def database_env(services: Services) -> dict[str, str]:
    values = services.start().env
    env = {**os.environ, "DATABASE_URL": values["DATABASE_URL"], "REDIS_URL": values["REDIS_URL"]}
    env.update(DJANGO_SETTINGS_MODULE="marlin.settings", DEBUG="true")
    subprocess.run([PYTHON, "manage.py", "migrate", "--verbosity=0"], cwd=ROOT, env=env, check=True)
    return values


def run(name: str, bench: Bench) -> int:
    out_path = RESULTS / f"{name}.out"
    env = {**os.environ, **bench.env}
    services = None
    started_at = datetime.now().astimezone()
    started = time.monotonic()
    try:
        if bench.needs_database:
            services = Services(local_folder(f"bench-{name}."))
            values = database_env(services)
            env.update(DATABASE_URL=values["DATABASE_URL"], REDIS_URL=values["REDIS_URL"])
        log(f"{name}: {' '.join(bench.command)}")
        with out_path.open("w") as out:
            status = subprocess.run(bench.command, cwd=ROOT, env=env, stdout=out).returncode
    finally:
        if services is not None:
            services.remove()
    minutes = (time.monotonic() - started) / 60
    command = " ".join(bench.command).replace(PYTHON, ".venv/bin/python")
    lines = [
        f"### {name}",
        "",
        f"`{command}` on {started_at.isoformat(timespec='minutes')}: exit status {status}, "
        f"{minutes:.1f} min.",
        "",
    ]
    written = RESULTS / bench.writes if bench.writes else None
    if (
        written is not None
        and written.exists()
        and written.stat().st_mtime >= started_at.timestamp()
    ):
        lines.append(written.read_text().strip())
    else:
        tail = out_path.read_text().splitlines()[-OUTPUT_TAIL_LINES:]
        lines += ["Its output (the end of it):", "", "```", *tail, "```"]
    (RESULTS / f"{name}.section.md").write_text("\n".join(lines) + "\n")
    return status


def rewrite_benchmarks_md() -> None:
    sections = [
        (RESULTS / f"{name}.section.md").read_text().strip()
        for name in BENCHES
        if (RESULTS / f"{name}.section.md").exists()
    ]
    block = "\n\n".join(
        [
            BEGIN,
            "## Latest `make bench` figures",
            f"Machine: {machine()}. Shared and noisy: other work may run at the same time; "
            "compare ratios within a run rather than absolute figures across runs.",
            *sections,
            END,
        ]
    )
    text = BENCHMARKS.read_text()
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    BENCHMARKS.write_text(text)


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        log(f"unknown benchmark(s) {unknown}; known: {' '.join(BENCHES)}")
        return 2
    RESULTS.mkdir(exist_ok=True)
    failed = [name for name in names if run(name, BENCHES[name]) != 0]
    rewrite_benchmarks_md()
    if failed:
        log(f"exit status not 0: {' '.join(failed)} (see bench/results/<name>.out)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
