"""The audit trail's cost on a review submit: median latency with the row triggers and without.

    .venv/bin/python -m bench.bench_audit_cost [--reviews-per-mode 90]

Starts its own PostgreSQL and Redis (`scripts/services.sh start .local/bench-audit-cost.XXXX`),
migrates, and stops them at the end. Tasks are generated through the real providers against the
fake model server on loopback, then submitted for review. Each measured request is a full
`POST /api/v1/assignments/{id}/review/` through Django's handler (middleware, DRF, validation,
locks, the review, three transitions, round close on every third review). The two modes
alternate in small batches so that machine noise falls on both: "audited" with every
`marlin_audit` trigger enabled, "unaudited" with them disabled (`ALTER TABLE … DISABLE
TRIGGER`), which is what the application would cost without the trail. Goal: under 20 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from bench.bench_audit import setup_django
from tests.harness.servers import local_services

BATCH = 6  # reviews per batch; a multiple of 3 closes whole rounds in each mode


def set_audit_triggers(enabled: bool) -> None:
    from django.db import connection

    from audit.db import audited_models

    verb = "ENABLE" if enabled else "DISABLE"
    with connection.cursor() as cursor:
        for model in audited_models():
            cursor.execute(f'ALTER TABLE "{model._meta.db_table}" {verb} TRIGGER marlin_audit')


def run(reviews_per_mode: int) -> dict[str, object]:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from reviews.services import assignment_claim_next
    from tests.fakes.model_server import FakeModelServer
    from tests.reviews.helpers import review_body, reviewers, task_in_review
    from tests.tasks.factories import ModelVersionFactory, make_campaign

    tasks_needed = 2 * reviews_per_mode // 3
    with FakeModelServer() as server:
        os.environ["MARLIN_TEST_PROVIDER_KEY"] = "sk-bench-not-secret-0000000000"
        versions = [
            ModelVersionFactory(
                provider="openai", model="bench-a", base_url=server.openai_base_url
            ),
            ModelVersionFactory(
                provider="openai", model="bench-b", base_url=server.openai_base_url
            ),
        ]
        campaign = make_campaign(model_versions=versions)
        tasks = [task_in_review(campaign) for _ in range(tasks_needed)]
    people = reviewers(3)
    clients = []
    for person in people:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=person).key}")
        clients.append(client)
    timings: dict[str, list[float]] = {"audited": [], "unaudited": []}
    queue = iter(tasks)
    mode_cycle = ["audited", "unaudited"]
    done = 0
    while done < 2 * reviews_per_mode:
        mode = mode_cycle[(done // BATCH) % 2]
        set_audit_triggers(mode == "audited")
        for _ in range(BATCH // 3):
            task = next(queue)
            for person, client in zip(people, clients, strict=True):
                assignment = assignment_claim_next(reviewer=person, campaign_id=campaign.pk)
                assert assignment is not None and assignment.task_id == task.pk
                body = review_body(task, preference=-1)
                started = time.perf_counter()
                response = client.post(
                    f"/api/v1/assignments/{assignment.pk}/review/", body, format="json"
                )
                timings[mode].append((time.perf_counter() - started) * 1000)
                assert response.status_code == 201, response.content
                done += 1
    set_audit_triggers(True)
    audited, unaudited = (statistics.median(timings[m]) for m in ("audited", "unaudited"))
    return {
        "reviews_per_mode": reviews_per_mode,
        "median_ms": {"audited": round(audited, 2), "unaudited": round(unaudited, 2)},
        "p95_ms": {
            m: round(statistics.quantiles(timings[m], n=20)[18], 2)
            for m in ("audited", "unaudited")
        },
        "overhead": round(audited / unaudited - 1, 3),
        "goal": {"overhead_below": 0.2, "met": audited / unaudited - 1 < 0.2},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reviews-per-mode", type=int, default=90)
    args = parser.parse_args()
    with local_services("bench-audit-cost.") as services:
        setup_django(services.env)
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        print(json.dumps(run(args.reviews_per_mode), indent=2))


if __name__ == "__main__":
    main()
