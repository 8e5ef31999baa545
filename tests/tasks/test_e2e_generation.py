"""Authoring end to end: the API, the broker, real worker (and beat) processes, the fake models."""

import hashlib
import threading

import pytest
from django.db.models import Count

from audit.models import AuditEvent
from tasks.models import Candidate, CandidateState, Task, TaskState
from tests.accounts.factories import UserFactory
from tests.fakes.model_server import default_answer
from tests.harness.processes import wait_for
from tests.harness.suite import on_test_database
from tests.harness.workers import Beat, Worker
from tests.tasks.factories import GOOD_PROMPT, GOOD_RATIONALE, RepositoryFactory

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST_RETRIES = {"GENERATION_BACKOFF_BASE": "0.05", "GENERATION_BACKOFF_MAX": "0.2"}


def create_task_through_the_api(api, author, campaign, *, follow_up=True, number=0):
    client = api.as_user(author)
    response = client.post(
        "/api/v1/tasks/",
        {
            "campaign": campaign.pk,
            "repository": RepositoryFactory().pk,
            "base_commit": "3f2a9c1d4e5b6a7980c1d2e3f4a5b6c7d8e9f0a1",
            "kind": "security_fix",
            "scenario": {
                "title": "Block injection in pip install",
                "description": "Requirements reach a shell.",
            },
            "prompt": f"{GOOD_PROMPT} (case {number})",
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    task_id = response.json()["id"]
    if follow_up:
        turn = client.post(
            f"/api/v1/tasks/{task_id}/turns/", {"prompt": "Now add a regression test for it."}
        )
        assert turn.status_code == 201 and turn.json()["index"] == 2
    return task_id


def settled(task_ids):
    def check():
        states = set(Task.objects.filter(pk__in=task_ids).values_list("state", flat=True))
        return states if TaskState.GENERATING not in states else None

    return check


def assert_stored_exactly_once(task_ids, *, per_task):
    candidates = Candidate.objects.filter(turn__task__in=task_ids)
    assert candidates.count() == per_task * len(task_ids)
    assert set(candidates.values_list("state", flat=True)) == {CandidateState.SUCCEEDED}
    stores = (
        AuditEvent.objects.filter(object_type="tasks.candidate", action="candidate.generated")
        .filter(object_id__in=[str(pk) for pk in candidates.values_list("pk", flat=True)])
        .values("object_id")
        .annotate(n=Count("id"))
    )
    assert sorted(row["n"] for row in stores) == [1] * candidates.count()
    for candidate in candidates:
        assert candidate.content_hash == hashlib.sha256(candidate.output.encode()).hexdigest()


@pytest.fixture
def author():
    return UserFactory(roles=["author"])


def test_an_author_creates_generates_reads_blind_and_submits(api, author, live_campaign):
    worker = Worker(env=on_test_database(FAST_RETRIES)).start()
    try:
        task_id = create_task_through_the_api(api, author, live_campaign)
        client = api.as_user(author)
        response = client.post(f"/api/v1/tasks/{task_id}/generate/")
        assert response.status_code == 202
        assert response.json()["state"] == "generating"
        wait_for(settled([task_id]), timeout=60, message="generation")
    finally:
        worker.stop()
    task = client.get(f"/api/v1/tasks/{task_id}/").json()
    assert task["state"] == "draft" and "submit" in task["transitions"]
    candidates = client.get(f"/api/v1/tasks/{task_id}/candidates/").json()
    assert sorted((c["turn"], c["slot"]) for c in candidates) == [
        (1, "A"),
        (1, "B"),
        (2, "A"),
        (2, "B"),
    ]
    assert all(c["state"] == "succeeded" and c["diff"].startswith("--- a/") for c in candidates)
    assert not any("model_version" in c or "request" in c for c in candidates)
    submitted = client.post(
        f"/api/v1/tasks/{task_id}/submit/", {"preference": 2, "rationale": GOOD_RATIONALE}
    )
    assert submitted.status_code == 200, submitted.json()
    assert submitted.json()["state"] == "in_review"
    assert_stored_exactly_once([task_id], per_task=4)


def test_with_30_percent_provider_failures_every_candidate_is_stored_once(
    api, author, live_campaign, fake_models
):
    fake_models.script(
        failure_rate=0.3, failure_statuses=(429, 500, 503), max_consecutive_failures=2, seed=11
    )
    worker = Worker(concurrency=4, env=on_test_database(FAST_RETRIES)).start()
    try:
        task_ids = [
            create_task_through_the_api(api, author, live_campaign, number=i) for i in range(5)
        ]
        client = api.as_user(author)
        for task_id in task_ids:
            assert client.post(f"/api/v1/tasks/{task_id}/generate/").status_code == 202
        states = wait_for(settled(task_ids), timeout=120, message="generation under failures")
    finally:
        worker.stop()
    assert states == {TaskState.DRAFT}
    failed = [r for r in fake_models.requests if r["status"] != 200]
    assert len(failed) >= 0.15 * len(fake_models.requests)  # the failures really happened
    assert_stored_exactly_once(task_ids, per_task=4)


def test_a_worker_killed_mid_generation_loses_nothing_and_stores_nothing_twice(
    api, author, live_campaign, fake_models, tmp_path, request
):
    # The first two calls answer; later ones are held until the worker is dead, so some are in
    # flight when it dies however slow the machine is.
    answered, held = iter(range(2)), threading.Event()

    def answer_the_first_two(body):
        if next(answered, None) is None:
            held.wait(timeout=120)
        return default_answer(body)

    fake_models.answer_with(answer_the_first_two)
    request.addfinalizer(held.set)  # before the fake server stops, should the test fail first
    env = {
        **FAST_RETRIES,
        "GENERATION_STUCK_AFTER_SECONDS": "5",
        "GENERATION_SWEEP_EVERY_SECONDS": "1",
    }
    task_ids = [
        create_task_through_the_api(api, author, live_campaign, follow_up=False, number=i)
        for i in range(4)
    ]
    first = Worker(concurrency=2, env=on_test_database(env)).start()
    client = api.as_user(author)
    for task_id in task_ids:
        client.post(f"/api/v1/tasks/{task_id}/generate/")
    candidates = Candidate.objects.filter(turn__task__in=task_ids)
    wait_for(
        lambda: (
            candidates.filter(state=CandidateState.SUCCEEDED).exists()
            and candidates.filter(state=CandidateState.RUNNING).exists()
        ),
        timeout=60,
        interval=0.05,
        message="some answered and some in flight",
    )
    first.kill()
    in_flight = candidates.filter(state=CandidateState.RUNNING).count()
    assert in_flight > 0
    assert candidates.exclude(state=CandidateState.SUCCEEDED).exists()
    held.set()

    second = Worker(concurrency=2, env=on_test_database(env)).start()
    beat = Beat(tmp_path, on_test_database(env)).start()
    try:
        states = wait_for(settled(task_ids), timeout=90, message="recovery after the kill")
    finally:
        beat.stop()
        second.stop()
    assert states == {TaskState.DRAFT}
    assert_stored_exactly_once(task_ids, per_task=2)
    released = AuditEvent.objects.filter(object_type="tasks.candidate", action="candidate.released")
    assert released.filter(reason="no answer before the deadline").count() >= in_flight
