"""Soak: mixed load on the production shape with faults injected, then invariants over the database.

    .venv/bin/python -m bench.bench_soak [--seconds 600] [--fault-every 90] [--redis-down 10]
        [--authors 6] [--reviewers 12] [--arbiters 2] [--auditors 2] [--pause 0.3]
        [--failure-rate 0.2] [--drain-timeout 300] [--quiet-wait 60] [--keep]
        [--no-results-file]

Started here and stopped at the end, even on failure or SIGTERM: a private PostgreSQL (fsync on)
and Redis (`scripts/services.sh`, under `.local/`), gunicorn (sync workers, DEBUG=false), a
Celery prefork worker, Celery beat (the stuck-candidate sweep, the assignment expiry, the audit
sealer) and the fake model provider answering 20% of calls with 429 or 500.

Load, for `--seconds`, from one asyncio client on loopback, every role through the REST API:
  authors    keep up to three tasks going each: create (a third with a follow-up turn), ask for
             generation, poll, read the blinded candidates and submit once answered, retry a
             failed generation, revise what reviewers or an arbiter sent back (sometimes with
             one more turn to generate);
  reviewers  claim next -> read -> submit (bench_load's payload, every turn), with an
             Idempotency-Key retried once on a transport error; a few release their claim or
             walk away from it (the campaign's lease is one minute, so the expiry job reopens
             it); the reviews of some tasks split on preference and scores, or ask for
             changes, or reject, so rounds reach arbitration, revision and rejection;
  arbiters   list open arbitrations, claim one (409 when another arbiter was first), resolve
             it with scores or send it back;
  auditors   read task histories and the task's audit events, and verify the chain now and then.
Faults, every `--fault-every` seconds in turn from half that: the Celery worker SIGKILLed (its
whole process group, mid-job: it waits up to 60 s for a job to run) and a new one started;
Redis stopped, `--redis-down` seconds without it, started again on the same port (it keeps
nothing: every queued message is lost). A worker found dead before its kill, or at the end,
exited by itself: the run fails.

Then the load stops and the system drains (bounded by `--drain-timeout`): until no task is
generating and the expiry job has caught up with abandoned claims; the sweep is run directly once
if generation still hangs halfway. The invariants of operations/invariants.py are then checked over
the whole database. Prints JSON, writes `bench/results/soak.md`, exits 1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    ROOT,
    call,
    fake_stats,
    gunicorn,
    percentile,
    production_django,
    review_from,
    wait_for_quiet,
)
from tests.harness.servers import FakeModelServerProcess, Services, local_services
from tests.harness.workers import Beat, Worker

RESULTS = ROOT / "bench" / "results" / "soak.md"
OPEN_TASKS_PER_AUTHOR = 3
FOLLOW_UP_SHARE = 0.3
RELEASE_SHARE = 0.05
ABANDON_SHARE = 0.03
SEND_BACK_SHARE = 0.15
VERIFY_EVERY_SECONDS = 30
# How reviewers of a task's first round judge it, picked by task id: most agree; "split" ones
# disagree on preference and scores (arbitration); a majority may ask for changes or reject.
MOODS = ["agree"] * 6 + ["split"] * 2 + ["changes", "reject"]
# Settings of every process: fast retries and a short stuck deadline, so that work lost with a
# killed worker or a restarted Redis is found again within the run (not after the 5-min default).
SOAK_SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "GENERATION_MAX_ATTEMPTS": "3",
    "GENERATION_BACKOFF_BASE": "0.5",
    "GENERATION_BACKOFF_MAX": "5",
    "GENERATION_TIMEOUT_SECONDS": "10",
    "GENERATION_STUCK_AFTER_SECONDS": "30",
    "GENERATION_SWEEP_EVERY_SECONDS": "10",
    **{
        f"THROTTLE_{role}": "1000000/min"
        for role in ("USER", "AUTHOR", "REVIEWER", "ARBITER", "AUDITOR", "LEAD")
    },
}
# Late beyond this, work counts as stuck: the sweep's deadline and period, the expiry's period.
STUCK_GRACE = timedelta(seconds=120)
RATIONALE = "Slot A blocks the injection and keeps every whitelisted pip option working."


def log(message: str) -> None:
    print(f"bench_soak: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------- processes --


class Workers:
    """The Celery worker, which a fault may SIGKILL and replace. A worker found dead before its
    kill (or at the end) exited by itself: the soak fails, as a fault the service did not survive."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.worker = Worker(concurrency=4, env=env, log=log_path, heartbeat=False)
        self.started = 0
        self.exited_by_themselves: list[int] = []  # their exit statuses
        self.start()

    def alive(self) -> bool:
        """Whether the current worker runs; notes it as exited by itself if not (call once per
        worker: before its kill, or at the end)."""
        status = self.worker.poll()
        if status is not None:
            self.exited_by_themselves.append(status)
        return status is None

    def start(self) -> None:
        self.worker.start()
        self.started += 1

    def stop(self) -> None:
        self.worker.stop()

    def kill_and_replace(self, *, wait_until: float) -> str:
        """SIGKILLs the worker's process group mid-job: waits for a job to run, up to 60 s and not
        past `wait_until` (monotonic). Generation comes in bursts (authors wait on their reviews)."""
        running = wait_for_candidates(
            state="running", timeout=max(0.0, min(60.0, wait_until - time.monotonic()))
        )
        killed = self.worker.pid
        if self.alive():
            what = f"killed pid {killed} and its pool with {running} jobs running"
        else:
            what = f"worker pid {killed} had exited by itself (status {self.worker.poll()})"
        self.worker.kill()  # the whole group: its pool may outlive it
        time.sleep(2)  # as long as a supervisor takes to notice
        self.start()
        return f"{what}; worker #{self.started} started"


def wait_for_candidates(*, timeout: float, **lookup: Any) -> int:
    """How many candidates match `lookup`, polled until some do or `timeout` passes."""
    from django.db import connections

    from tasks.models import Candidate

    deadline = time.monotonic() + timeout
    try:
        while (found := Candidate.objects.filter(**lookup).count()) == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        connections.close_all()  # this thread's only: faults run in a thread of their own
    return found


def restart_redis(services: Services, down_seconds: float) -> str:
    """Stops the bench's Redis, waits, and starts it again on the same port (services.sh)."""
    pid = services.stop_redis()
    time.sleep(down_seconds)
    services.start(quiet=True)
    # First turns asked for while the broker was down: left for the sweep to send.
    unsent = wait_for_candidates(
        state="pending", dispatched_at__isnull=True, turn__index=1, timeout=0
    )
    return (
        f"stopped pid {pid}, down {down_seconds:.0f} s, started on the same port; "
        f"{unsent} first-turn candidates left unsent for the sweep"
    )


# ------------------------------------------------------------------- the world --


def build_world(fake_url: str, options: argparse.Namespace) -> dict[str, Any]:
    from rest_framework.authtoken.models import Token

    from tests.accounts.factories import UserFactory
    from tests.tasks.factories import ModelVersionFactory, RepositoryFactory, make_campaign

    lead = UserFactory(roles=["lead"])
    campaign = make_campaign(
        lead=lead,
        name="Soak",
        model_versions=[
            ModelVersionFactory(
                provider="openai", model=f"soak-model-{n}", base_url=f"{fake_url}/v1"
            )
            for n in (1, 2)
        ],
        reviewers_per_task=3,
        review_timeout_minutes=1,
    )
    repositories = [RepositoryFactory().pk for _ in range(5)]

    def tokens(role: str, n: int) -> list[str]:
        return [Token.objects.create(user=UserFactory(roles=[role])).key for _ in range(n)]

    return {
        "campaign": campaign.pk,
        "repositories": repositories,
        "authors": tokens("author", options.authors),
        "reviewers": tokens("reviewer", options.reviewers),
        "arbiters": tokens("arbiter", options.arbiters),
        "auditors": tokens("auditor", options.auditors),
    }


# ------------------------------------------------------------------- the load --


class SoakStats:
    """Per endpoint: latencies and statuses (`bench_load.call` records into it)."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[str, Counter[str]] = defaultdict(Counter)
        self.samples: list[str] = []

    def record(self, name: str, started: float, status: int | str) -> bool:
        self.latencies[name].append((time.monotonic() - started) * 1000)
        self.statuses[name][str(status)] += 1
        ok = isinstance(status, int) and 200 <= status < 300
        if not ok and len(self.samples) < 20:
            self.samples.append(f"{datetime.now().strftime('%H:%M:%S')} {name}: {status}")
        return ok

    def endpoints(self) -> dict[str, dict[str, Any]]:
        return {
            name: {
                "count": len(values),
                "p50_ms": round(percentile(values, 0.50), 1),
                "p99_ms": round(percentile(values, 0.99), 1),
                "statuses": dict(sorted(self.statuses[name].items())),
            }
            for name, values in sorted(self.latencies.items())
        }


@dataclass
class Load:
    world: dict[str, Any]
    stats: SoakStats
    stop: float
    pause: float
    done: Counter[str] = field(default_factory=Counter)
    task_ids: list[int] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return time.monotonic() < self.stop

    async def think(self, factor: float = 1.0) -> None:
        await asyncio.sleep(self.pause * factor * random.uniform(0.5, 1.5))


@dataclass
class Person:
    """One simulated user: their token on the shared client, recording into the load's stats."""

    client: Any
    token: str
    load: Load

    async def request(self, name: str, method: str, path: str, *, headers=None, **kwargs):
        headers = {"Authorization": f"Token {self.token}", **(headers or {})}
        stats = self.load.stats
        return await call(self.client, stats, name, method, path, headers=headers, **kwargs)

    async def get(self, name: str, path: str, **kwargs):
        return await self.request(name, "GET", path, **kwargs)

    async def post(self, name: str, path: str, *, expect: int = 200, counts: str = "", **kwargs):
        """POST; `counts` names what the load counts done when the answer is `expect`."""
        response = await self.request(name, "POST", path, **kwargs)
        if counts and answered(response, expect):
            self.load.done[counts] += 1
        return response

    async def post_idempotent(self, name: str, path: str, body: dict, *, expect: int, counts: str):
        """A POST with an Idempotency-Key, sent again once with the same key if no answer came."""
        key = {"Idempotency-Key": uuid.uuid4().hex}
        for _ in range(2):
            response = await self.post(
                name, path, json=body, headers=key, expect=expect, counts=counts
            )
            if response is not None:
                return response
            self.load.done[f"{name} resent (same Idempotency-Key)"] += 1
        return None


def answered(response: Any, status: int) -> bool:
    return response is not None and response.status_code == status


def full_review(rubric: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    """bench_load's review of the first turn, for every turn of the task."""
    body = review_from({"rubric": rubric, "task": task})
    body["scores"] = [{**s, "turn": t["index"]} for t in task["turns"] for s in body["scores"]]
    return body


def review_in_mood(assignment: dict[str, Any]) -> dict[str, Any]:
    body = full_review(assignment["rubric"], assignment["task"])
    mood = MOODS[assignment["task"]["id"] % len(MOODS)] if assignment["round"] == 1 else "agree"
    roll = random.random()
    if mood == "split" and roll < 0.5:  # prefers B, and scores two points apart from the others
        body["preference"] = 2
        body["scores"] = [{**s, "score": 2 if s["slot"] == "A" else 5} for s in body["scores"]]
    elif mood == "changes" and roll < 0.8:
        body["verdict"] = "request_changes"
    elif mood == "reject" and roll < 0.8:
        body["verdict"] = "reject"
    return body


# Authors


async def author(me: Person) -> None:
    mine: list[int] = []
    n = 0
    while me.load.running:
        if len(mine) < OPEN_TASKS_PER_AUTHOR:
            n += 1
            task_id = await create_task(me, n)
            if task_id is not None:
                mine.append(task_id)
                me.load.task_ids.append(task_id)
        for task_id in list(mine):
            if not me.load.running:
                break
            if await advance(me, task_id):
                mine.remove(task_id)
            await me.load.think()
        await me.load.think()


async def create_task(me: Person, n: int) -> int | None:
    unique = f"{me.token[:8]}-{n}"
    body = {
        "campaign": me.load.world["campaign"],
        "repository": random.choice(me.load.world["repositories"]),
        "base_commit": "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
        "kind": "security_fix",
        "scenario": {
            "title": f"Block injection in pip install ({unique})",
            "description": "Requirements reach a shell.",
            "url": "",
        },
        "prompt": f"Fix the command injection in the pip install of dependencies ({unique}).",
    }
    created = await me.post(
        "tasks.create", "/api/v1/tasks/", json=body, expect=201, counts="tasks created"
    )
    if not answered(created, 201):
        return None
    task_id = created.json()["id"]
    if random.random() < FOLLOW_UP_SHARE:
        await add_turn(me, task_id)
    return task_id


async def add_turn(me: Person, task_id: int) -> None:
    prompt = {"prompt": "Now add a regression test for the quoting."}
    path = f"/api/v1/tasks/{task_id}/turns/"
    await me.post("tasks.turns", path, json=prompt, expect=201, counts="tasks follow-up turns")


async def task_post(me: Person, task_id: int, verb: str, *, expect: int = 200, **kwargs) -> None:
    path = f"/api/v1/tasks/{task_id}/{verb}/"
    await me.post(f"tasks.{verb}", path, expect=expect, counts=f"tasks {verb}", **kwargs)


async def advance(me: Person, task_id: int) -> bool:
    """One look at a task and the author's next move; True once the task is final."""
    response = await me.get("tasks.detail", f"/api/v1/tasks/{task_id}/")
    if not answered(response, 200):
        return False
    task = response.json()
    state, transitions = task["state"], task["transitions"]
    if state in ("completed", "rejected", "cancelled"):
        me.load.done[f"tasks ended {state}"] += 1
        return True
    if state == "generation_failed":
        await task_post(me, task_id, "retry", expect=202)
    elif state == "changes_requested":
        await task_post(me, task_id, "revise")
        if random.random() < FOLLOW_UP_SHARE:
            await add_turn(me, task_id)
    elif "generate" in transitions:
        await task_post(me, task_id, "generate", expect=202)
    elif "submit" in transitions:
        await me.get("tasks.candidates", f"/api/v1/tasks/{task_id}/candidates/")
        await task_post(me, task_id, "submit", json={"preference": -1, "rationale": RATIONALE})
    return False


# Reviewers


async def reviewer(me: Person) -> None:
    campaign = {"campaign": me.load.world["campaign"]}
    while me.load.running:
        claimed = await me.post("assignments.next", "/api/v1/assignments/next/", json=campaign)
        if not answered(claimed, 201):
            await me.load.think(4)
            continue
        path = f"/api/v1/assignments/{claimed.json()['id']}/"
        roll = random.random()
        if roll < ABANDON_SHARE:
            me.load.done["claims abandoned"] += 1
            continue
        if roll < ABANDON_SHARE + RELEASE_SHARE:
            await me.post("assignments.release", f"{path}release/", counts="claims released")
            continue
        await me.load.think()
        detail = await me.get("assignments.detail", path)
        if not answered(detail, 200):
            continue
        await me.load.think()
        await me.post_idempotent(
            "assignments.review", f"{path}review/", review_in_mood(detail.json()),
            expect=201, counts="reviews submitted",
        )  # fmt: skip
        await me.load.think()


# Arbiters


async def arbiter(me: Person) -> None:
    while me.load.running:
        listed = await me.get(
            "arbitrations.list", "/api/v1/arbitrations/", params={"state": "open"}
        )
        results = listed.json()["results"] if answered(listed, 200) else []
        if not results:
            await me.load.think(6)
            continue
        path = f"/api/v1/arbitrations/{random.choice(results)['id']}/"
        claimed = await me.post("arbitrations.claim", f"{path}claim/")
        if not answered(claimed, 200):
            continue  # another arbiter was first (409)
        detail = claimed.json()
        await me.load.think()
        if random.random() < SEND_BACK_SHARE:
            body = {"decision": "send_back", "rationale": "Both miss the --index-url case."}
        else:
            body = {
                "decision": "resolve",
                "preference": -1,
                "scores": full_review(detail["rubric"], detail["task_detail"])["scores"],
                "rationale": "A is right on every criterion; B misses an option.",
            }
        await me.post_idempotent(
            "arbitrations.resolve", f"{path}resolve/", body,
            expect=200, counts=f"arbitrations {body['decision']}",
        )  # fmt: skip
        await me.load.think()


# Auditors


async def auditor(me: Person) -> None:
    verified_at = time.monotonic() - random.uniform(0, VERIFY_EVERY_SECONDS)
    while me.load.running:
        if me.load.task_ids:
            task_id = random.choice(me.load.task_ids)
            await me.get("tasks.history", f"/api/v1/tasks/{task_id}/history/")
            task_events = {"object_type": "tasks.task", "object_id": task_id}
            await me.get("audit.events", "/api/v1/audit/events/", params=task_events)
            me.load.done["audit reads"] += 2
        if time.monotonic() - verified_at > VERIFY_EVERY_SECONDS:
            verified_at = time.monotonic()
            await me.get("audit.verify", "/api/v1/audit/verify/")
            me.load.done["audit chain verifications"] += 1
        await me.load.think(3)


# Faults


async def inject_faults(
    load: Load, started: float, every: float, actions: dict[str, Any], faults: list[dict]
) -> None:
    kinds = itertools.cycle(actions)
    due = started + every / 2
    while due < load.stop - 5:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        kind = next(kinds)
        at = time.monotonic()
        clock = datetime.now().astimezone().isoformat(timespec="seconds")
        log(f"fault at {at - started:.0f} s: {kind}")
        detail = await asyncio.to_thread(actions[kind])
        faults.append(
            {
                "at_s": round(at - started, 1),
                "clock": clock,
                "fault": kind,
                "took_s": round(time.monotonic() - at, 1),
                "detail": detail,
            }
        )
        due += every


async def run_load(url: str, load: Load, options, actions: dict[str, Any], faults: list) -> None:
    import httpx2

    started = time.monotonic()
    limits = httpx2.Limits(max_connections=200, max_keepalive_connections=200)
    async with httpx2.AsyncClient(base_url=url, limits=limits, timeout=60) as client:
        people = {
            role: [Person(client, token, load) for token in load.world[f"{role}s"]]
            for role in ("author", "reviewer", "arbiter", "auditor")
        }
        await asyncio.gather(
            *(author(me) for me in people["author"]),
            *(reviewer(me) for me in people["reviewer"]),
            *(arbiter(me) for me in people["arbiter"]),
            *(auditor(me) for me in people["auditor"]),
            inject_faults(load, started, options.fault_every, actions, faults),
        )


# ------------------------------------------------------------------- drain --


def drain(timeout: float) -> dict[str, Any]:
    """Waits until no task is generating and no claim is past its lease (the beat's sweep and
    expiry at work); runs the sweep here once if generation still hangs halfway."""
    from django.utils import timezone

    from core import context
    from reviews.models import Assignment
    from tasks import generation
    from tasks.models import Task, TaskState

    started = time.monotonic()
    swept = None
    while True:
        generating = Task.objects.filter(state=TaskState.GENERATING).count()
        overdue = Assignment.objects.filter(state="active", due_at__lt=timezone.now()).count()
        waited = time.monotonic() - started
        if (not generating and not overdue) or waited > timeout:
            break
        if generating and swept is None and waited > timeout / 2:
            with context.operation(origin="command:bench_soak", actor_label="system"):
                swept = generation.sweep_stuck_candidates()
            log(f"drain: swept directly, {swept} re-queued")
        time.sleep(2)
    return {
        "seconds": round(time.monotonic() - started, 1),
        "still_generating": generating,
        "claims_past_lease": overdue,
        "swept_directly": swept,
    }


RECOVERY_ACTIONS = [
    "candidate.released",
    "candidate.failed",
    "candidate.reset",
    "assignment.expired",
    "assignment.released",
]


def database_counts() -> dict[str, Any]:
    from django.db.models import Count

    from audit.models import AuditEvent
    from reviews.models import Arbitration, Review
    from tasks.models import Candidate, Task

    def by_state(model) -> dict[str, int]:
        rows = model.objects.values_list("state").annotate(n=Count("id")).order_by("state")
        return dict(rows)

    # What the faults and failures cost, as the trail tells it: a release without a reason is a
    # provider error retried; "no answer before the deadline" is a job lost and swept.
    recoveries = (
        AuditEvent.objects.filter(action__in=RECOVERY_ACTIONS)
        .values_list("action", "reason")
        .annotate(n=Count("id"))
        .order_by("action", "reason")
    )
    return {
        "recoveries": {
            f"{action} ({reason})" if reason else action: n for action, reason, n in recoveries
        },
        "tasks": by_state(Task),
        "candidates": by_state(Candidate),
        "reviews": Review.objects.count(),
        "arbitrations": by_state(Arbitration),
        "audit_events": AuditEvent.objects.count(),
    }


# ------------------------------------------------------------------- report --


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--fault-every", type=float, default=90)
    parser.add_argument("--redis-down", type=float, default=10)
    parser.add_argument("--authors", type=int, default=6)
    parser.add_argument("--reviewers", type=int, default=12)
    parser.add_argument("--arbiters", type=int, default=2)
    parser.add_argument("--auditors", type=int, default=2)
    parser.add_argument("--pause", type=float, default=0.3, help="think time between requests")
    parser.add_argument("--latency", type=float, default=0.2, help="fake provider, seconds")
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--web-workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--drain-timeout", type=float, default=300)
    parser.add_argument(
        "--quiet-wait", type=float, default=60, help="first wait up to this long for idle CPUs"
    )
    parser.add_argument("--keep", action="store_true", help="keep the services' folder and logs")
    parser.add_argument("--no-results-file", action="store_true")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = " ".join([".venv/bin/python -m bench.bench_soak", *(argv or sys.argv[1:])])
    began = time.monotonic()
    tree = tree_state()  # what the processes started below run

    with local_services("bench-soak.", keep=options.keep) as services:
        folder = services.folder
        env = production_django(services.env, **SOAK_SETTINGS)
        from core import context
        from operations import invariants

        with contextlib.ExitStack() as stack:
            fake = stack.enter_context(
                FakeModelServerProcess(options.latency, failure_rate=options.failure_rate, env=env)
            )
            with context.operation(
                origin="command:bench_soak", actor_label=f"os:{getpass.getuser()}"
            ):
                world = build_world(fake.url, options)
            workers = Workers(env, folder / "worker.log")
            stack.callback(workers.stop)
            beat = Beat(folder, env, log=folder / "beat.log").start()
            stack.callback(beat.stop)
            url = stack.enter_context(
                gunicorn(env, options.web_workers, folder / "gunicorn.log")
            ).url
            wait_for_quiet(options.quiet_wait)
            load = Load(world, SoakStats(), time.monotonic() + options.seconds, options.pause)
            actions = {
                "worker SIGKILL": lambda: workers.kill_and_replace(wait_until=load.stop - 5),
                "Redis restart": lambda: restart_redis(services, options.redis_down),
            }
            faults: list[dict[str, Any]] = []
            log(f"load for {options.seconds:.0f} s")
            asyncio.run(run_load(url, load, options, actions, faults))
            log(f"load over: {dict(load.done)}; draining")
            drained = drain(options.drain_timeout)
            workers.alive()  # the last one, too, must have lived to the end
            log(f"drained: {drained}; checking the invariants")
            with context.operation(origin="command:bench_soak", actor_label="system"):
                checks = [c.as_dict() for c in invariants.check_all(grace=STUCK_GRACE)]
            provider = fake_stats(fake.url)
            counts = database_counts()

    from bench.run_all import machine

    endpoints = load.stats.endpoints()
    errors, unexpected = summarise_errors(endpoints)
    failed = [c["name"] for c in checks if not c["ok"]]
    if workers.exited_by_themselves:
        failed.append(f"{len(workers.exited_by_themselves)} worker(s) exited by themselves")
    report = {
        "benchmark": "soak",
        "command": command,
        "tree": tree,
        "machine": machine(),
        "finished_at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "wall_minutes": round((time.monotonic() - began) / 60, 1),
        "seconds": options.seconds,
        "web_workers": options.web_workers,
        "latency_s": options.latency,
        "failure_rate": options.failure_rate,
        "load": {
            "clients": {
                "authors": options.authors,
                "reviewers": options.reviewers,
                "arbiters": options.arbiters,
                "auditors": options.auditors,
            },
            "by_role": by_role(load.done),
        },
        "faults": faults,
        "workers_started": workers.started,
        "workers_exited_by_themselves": workers.exited_by_themselves,
        "provider": provider,
        "endpoints": endpoints,
        "errors_by_status": errors,
        "unexpected_errors": unexpected,
        "error_samples": load.stats.samples,
        "drain": drained,
        "database": counts,
        "invariants": checks,
        "verdict": (
            "PASS: every invariant holds (0 lost or duplicated records, nothing stuck)"
            if not failed
            else f"FAIL: {', '.join(failed)}"
        ),
    }
    print(json.dumps(report, indent=2, default=str))
    if not options.no_results_file:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(markdown(report))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
