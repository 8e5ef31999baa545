"""The soak's report: what each role did, the faults, the endpoints' figures, the verdict."""

from __future__ import annotations

import subprocess
from collections import Counter
from typing import Any

from bench.common import ROOT
from bench.soak.faults import SOAK_SETTINGS


def tree_state() -> str:
    """The commit measured, and whether the working tree differed from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.splitlines()
    return f"{head.stdout.strip()}" + (
        f" with uncommitted changes in {len(changed)} files" if changed else ""
    )


def markdown(report: dict[str, Any]) -> str:
    load = report["load"]
    lines = [
        f"Soak: {report['seconds']:.0f} s of mixed load with faults, then invariants over the "
        f"whole database ({report['finished_at']}; wall time {report['wall_minutes']} min).",
        "",
        f"`{report['command']}` on commit {report['tree']}.",
        "",
        f"Machine: {report['machine']}. gunicorn {report['web_workers']} sync workers, one Celery "
        "prefork worker (4 processes), Celery beat, PostgreSQL (fsync on), Redis, the fake "
        f"provider ({report['latency_s']} s per answer, {report['failure_rate']:.0%} answered "
        "429 or 500). Settings: "
        + ", ".join(f"{k}={v}" for k, v in SOAK_SETTINGS.items() if k.startswith("GENERATION")),
        "",
        "| role | clients | what they did |",
        "|---|---|---|",
    ]
    for role, actions in load["by_role"].items():
        done = ", ".join(f"{n} {what}" for what, n in actions.items()) or "-"
        lines.append(f"| {role} | {load['clients'].get(role, '-')} | {done} |")
    lines += [
        "",
        "Faults:",
        "",
        "| at s | clock | fault | took s | detail |",
        "|---|---|---|---|---|",
    ]
    for f in report["faults"]:
        lines.append(
            f"| {f['at_s']} | {f['clock']} | {f['fault']} | {f['took_s']} | {f['detail']} |"
        )
    exits = report["workers_exited_by_themselves"]
    lines += [
        "",
        f"Workers started: {report['workers_started']}; exited without a kill: {len(exits)}"
        + (f" (statuses {exits})" if exits else "")
        + ".",
    ]
    provider = report["provider"]
    lines += [
        "",
        f"Provider: {provider.get('requests')} calls, {provider.get('successful_answers')} "
        f"answered, failures {provider.get('failures')}.",
        "",
        "| endpoint | requests | p50 ms | p99 ms | statuses |",
        "|---|---|---|---|---|",
    ]
    for name, e in report["endpoints"].items():
        statuses = ", ".join(f"{s}: {n}" for s, n in e["statuses"].items())
        lines.append(f"| {name} | {e['count']} | {e['p50_ms']} | {e['p99_ms']} | {statuses} |")
    errors = report["errors_by_status"]
    lines += [
        "",
        "Answers other than 2xx, by status: "
        + (", ".join(f"{s}: {n}" for s, n in errors.items()) or "none")
        + ". 409 is the contract's answer to a race (two arbiters on one arbitration, a claim "
        "that expired); 503 the documented answer while a dependency is down; anything else "
        f"(other 5xx, transport errors) is unexpected: {report['unexpected_errors']}.",
        "",
        "Drain: {seconds} s; still generating {still_generating}, claims past their lease "
        "{claims_past_lease}, sweep run directly: {swept_directly}.".format(**report["drain"]),
        "",
        "Recoveries recorded in the audit trail: "
        + ", ".join(f"{k}: {n}" for k, n in report["database"]["recoveries"].items())
        + ".",
        "",
        "Database after the run: "
        + "; ".join(f"{k}: {v}" for k, v in report["database"].items() if k != "recoveries")
        + ".",
        "",
        "| invariant | checked | violations | detail |",
        "|---|---|---|---|",
    ]
    for c in report["invariants"]:
        detail = "; ".join([*(f"{k}: {n}" for k, n in c["counts"].items()), *c["samples"]])
        notes = ", ".join(f"{k}: {v}" for k, v in c["notes"].items())
        lines.append(
            f"| {c['name']} | {c['checked']} | {c['violations']} | {detail or 'none'} ({notes}) |"
        )
    lines += ["", f"**Verdict: {report['verdict']}**", ""]
    return "\n".join(lines)


def summarise_errors(endpoints: dict[str, dict[str, Any]]) -> tuple[dict[str, int], int]:
    errors: Counter[str] = Counter()
    for e in endpoints.values():
        for status, n in e["statuses"].items():
            if not status.startswith("2"):
                errors[status] += n
    unexpected = sum(
        n for s, n in errors.items() if not s.isdigit() or (s.startswith("5") and s != "503")
    )
    return dict(sorted(errors.items())), unexpected


ROLE_OF = {
    "tasks": "authors",
    "assignments": "reviewers",
    "reviews": "reviewers",
    "claims": "reviewers",
    "arbitrations": "arbiters",
    "audit": "auditors",
}


def by_role(done: Counter[str]) -> dict[str, dict[str, int]]:
    roles: dict[str, dict[str, int]] = {
        r: {} for r in ("authors", "reviewers", "arbiters", "auditors")
    }
    for what, n in sorted(done.items()):
        roles.setdefault(ROLE_OF.get(what.split()[0].split(".")[0], "other"), {})[what] = n
    return roles
