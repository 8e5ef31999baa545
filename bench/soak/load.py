"""The soak's load: every role through the REST API, from one asyncio client on loopback.

Authors keep up to three tasks going each; reviewers claim, read and submit (some release or
walk away from a claim, some rounds split or send the task back); arbiters claim and resolve or
send back; auditors read histories and verify the chain. What each did is counted in `Load.done`,
every request's latency and status in `SoakStats`.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx2

from bench.common import call, percentile, review_from

OPEN_TASKS_PER_AUTHOR = 3
FOLLOW_UP_SHARE = 0.3
RELEASE_SHARE = 0.05
ABANDON_SHARE = 0.03
SEND_BACK_SHARE = 0.15
VERIFY_EVERY_SECONDS = 30
# How reviewers of a task's first round judge it, picked by task id: most agree; "split" ones
# disagree on preference and scores (arbitration); a majority may ask for changes or reject.
MOODS = ["agree"] * 6 + ["split"] * 2 + ["changes", "reject"]
RATIONALE = "Slot A blocks the injection and keeps every whitelisted pip option working."


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


async def run_load(url: str, load: Load, *also: Awaitable[None]) -> None:
    """Every role's clients until `load.stop`, and `also` (the fault injection) beside them."""
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
            *also,
        )
