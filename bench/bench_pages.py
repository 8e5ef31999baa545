"""Server time of every page of the web workspace, with the demo data. Goal: each under 300 ms.

    .venv/bin/python -m bench.bench_pages [--repeats 15]

Starts its own PostgreSQL and Redis (`scripts/services.sh start .local/bench-audit.XXXX`, as the
other benchmarks), migrates, loads the demo data (`seed_demo`: a user per role, the rubric, four
repositories, two model versions on the replay provider, the campaign, the two example tasks),
generates the two tasks' answers from the replay recordings in this process, then plays them
through the pipeline: both submitted; the first reviewed into consensus, the second into a
disagreement resolved by the arbiter with a rubric revision. Each page is timed when its
object exists (the review page while its assignment is active, the arbitration before it is
decided). A page's time is the full request through Django's handler in this process
(middleware, session, view, queries, template), measured with a test client: the median of
`--repeats` requests after one warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.bench_audit import setup_django
from tests.harness.servers import local_services

GOAL_MS = 300.0


class Timer:
    def __init__(self, repeats: int) -> None:
        from django.test import Client

        self.repeats = repeats
        self.clients: dict[str, Any] = {}
        self.figures: list[tuple[str, str, float, float]] = []
        self._client_class = Client

    def client(self, username: str) -> Any:
        from accounts.models import User

        if username not in self.clients:
            client = self._client_class()
            if username != "anonymous":
                client.force_login(User.objects.get(username=username))
            self.clients[username] = client
        return self.clients[username]

    def page(
        self, name: str, username: str, path: str, *, method: str = "get", **extra: Any
    ) -> None:
        client = self.client(username)
        call: Callable[..., Any] = getattr(client, method)
        response = call(path, **extra)  # warm-up
        assert response.status_code == 200, (name, path, response.status_code)
        took = []
        for _ in range(self.repeats):
            began = time.perf_counter()
            response = call(path, **extra)
            took.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (name, path, response.status_code)
        self.figures.append((name, username, statistics.median(took), max(took)))


def generate_inline(task: Any) -> None:
    from tasks import generation
    from tasks.models import TaskState

    for _ in range(20):
        task.refresh_from_db()
        if task.state != TaskState.GENERATING:
            return
        for candidate_id in generation.next_candidates(task):
            generation.run_candidate(candidate_id)
    raise RuntimeError("generation did not settle")


def scores(task: Any, a: int, b: int) -> list[dict[str, Any]]:
    criteria = task.campaign.rubric_version.criterion_keys()
    return [
        {"turn": 1, "slot": slot, "criterion": key, "score": a if slot == "A" else b}
        for slot in ("A", "B")
        for key in criteria
    ]


def review(task: Any, username: str, *, preference: int, a: int, b: int) -> Any:
    from accounts.models import User
    from reviews import services

    reviewer = User.objects.get(username=username)
    assignment = services.assignment_claim_next(reviewer=reviewer, campaign_id=task.campaign_id)
    assert assignment.task_id == task.pk
    return assignment, lambda: services.review_submit(
        assignment=assignment,
        actor=reviewer,
        scores=scores(task, a, b),
        preference=preference,
        rationale="Candidate A closes the hole and keeps the options working.",
        verdict="approve",
        time_spent_seconds=1500,
    )


def run(repeats: int) -> Timer:
    from django.core.management import call_command

    from accounts.models import User
    from core import context
    from operations.demo import seed_demo
    from reviews import services as review_services
    from reviews.models import Arbitration
    from tasks.models import Campaign, Task

    call_command("migrate", verbosity=0)
    with context.operation(origin="command:bench", actor_label="bench"):
        seed_demo()
        ada = User.objects.get(username="ada")
        tasks = list(Task.objects.order_by("id"))
        for task in tasks:
            generate_inline(task)
        first, second = tasks
        t = Timer(repeats)
        campaign = Campaign.objects.get()
        # Author pages, before anything is submitted.
        t.page("login", "anonymous", "/app/login/")
        t.page("home (author)", "ada", "/app/")
        t.page("task list", "ada", "/app/tasks/")
        t.page("new task", "ada", "/app/tasks/new/")
        t.page("repository search", "ada", "/app/repositories/search/?q=py")
        t.page("task (draft, 2 candidates)", "ada", f"/app/tasks/{first.pk}/")
        for task in tasks:
            review_services.task_submit(
                task=task, actor=ada, preference=-1, rationale="A blocks the injection; B does not."
            )
        # First task: three reviews that agree.
        for name in ("grace", "linus", "barbara"):
            _, submit = review(first, name, preference=-2, a=4, b=3)
            submit()
        # Second task: two reviews, then the reviewer page while the third is active.
        for name, preference in (("grace", -2), ("linus", 2)):
            _, submit = review(second, name, preference=preference, a=4, b=2)
            submit()
        assignment, submit = review(second, "barbara", preference=-1, a=4, b=3)
        t.page("home (reviewer)", "barbara", "/app/")
        t.page("review queue", "barbara", "/app/reviews/")
        t.page("review page", "barbara", f"/app/reviews/{assignment.pk}/")
        submit()
        arbitration = Arbitration.objects.get(task=second)
        t.page("home (arbiter)", "edsger", "/app/")
        t.page("arbitration list", "edsger", "/app/arbitrations/")
        t.page("arbitration page", "edsger", f"/app/arbitrations/{arbitration.pk}/")
        criteria = campaign.rubric_version.criteria
        preview = {f"guidance-{c['key']}": c["guidance"] for c in criteria}
        preview["guidance-security"] = criteria[1]["guidance"] + " Name the attack blocked."
        t.page(
            "revision preview",
            "edsger",
            f"/app/arbitrations/{arbitration.pk}/revision-preview/",
            method="post",
            data=preview,
        )
        edsger = User.objects.get(username="edsger")
        review_services.arbitration_resolve(
            arbitration=arbitration,
            actor=edsger,
            preference=-1,
            scores=scores(second, 4, 3),
            rationale="A is right on the injection; the spread was about wording.",
            rubric_revision={
                "rationale": "Say what a security fix must name.",
                "criteria": [{**c, "guidance": preview[f"guidance-{c['key']}"]} for c in criteria],
            },
        )
        t.page("task (completed, with feedback)", "ada", f"/app/tasks/{second.pk}/")
        t.page("audit timeline", "margaret", "/app/audit/")
        t.page(
            "audit timeline (one task)",
            "margaret",
            f"/app/audit/?object_type=tasks.task&object_id={second.pk}",
        )
        t.page("task history (auditor)", "margaret", f"/app/audit/tasks/{second.pk}/")
        t.page("chain verification", "margaret", "/app/audit/verify/")
        t.page("rubric revision log", "margaret", "/app/rubrics/")
        t.page("campaign list", "lead", "/app/campaigns/")
        t.page("campaign (leaderboard, agreement)", "lead", f"/app/campaigns/{campaign.pk}/")
        t.page("payouts (lead)", "lead", "/app/payouts/")
        t.page("payouts (reviewer)", "grace", "/app/payouts/")
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with local_services("bench-pages.") as services:
        setup_django(services.env)
        timer = run(args.repeats)
    print("| page | as | median ms | max ms |\n|---|---|---|---|")
    for name, user, median, worst in timer.figures:
        print(f"| {name} | {user} | {median:.1f} | {worst:.1f} |")
    name, user, median, _ = max(timer.figures, key=lambda row: row[2])
    verdict = "met" if median < GOAL_MS else "NOT met"
    print(f"\nslowest: {name} ({user}) {median:.1f} ms median; goal {GOAL_MS:.0f} ms {verdict}")


if __name__ == "__main__":
    main()
