"""Redis stopped while authors generate and submit and a reviewer closes a round.

Real processes: gunicorn, a Celery worker and beat on a Redis of this test's own, which the test
stops and starts again; PostgreSQL is the suite's test database, the models the fake server.
"""

import threading
import time

import httpx2
import pytest
from rest_framework.authtoken.models import Token

from reviews import services as review_services
from reviews.models import Assignment
from tasks import services as task_services
from tasks.models import Candidate, CandidateState, Task, TaskState
from tests.accounts.factories import UserFactory
from tests.fakes.model_server import default_answer
from tests.harness.processes import wait_for
from tests.harness.servers import RedisServer
from tests.harness.suite import live_server, on_test_database
from tests.harness.workers import Beat, Worker
from tests.reviews.helpers import review_body
from tests.tasks.factories import GOOD_RATIONALE, make_task
from tests.tasks.test_e2e_generation import FAST_RETRIES, assert_stored_exactly_once, settled
from tests.tasks.test_services_tasks import generate_inline

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

# A request that queues work may wait this long for a broker that is down (settings: one retry).
PUBLISH_BOUND_SECONDS = 8


def client_for(server, user):
    token, _ = Token.objects.get_or_create(user=user)
    return httpx2.Client(
        base_url=server.url, headers={"Authorization": f"Token {token.key}"}, timeout=30
    )


@pytest.fixture
def outage_stack(tmp_path):
    redis_server = RedisServer(tmp_path).start()
    env = {
        **FAST_RETRIES,
        "REDIS_URL": redis_server.url,
        "GENERATION_SWEEP_EVERY_SECONDS": "1",
        # Far beyond the test: only work never sent may be re-sent, not work merely slow.
        "GENERATION_STUCK_AFTER_SECONDS": "600",
    }
    started = []
    try:
        for process in (
            Worker(concurrency=4, env=on_test_database(env)),
            Beat(tmp_path, on_test_database(env)),
            live_server(env, log=tmp_path / "gunicorn.log"),
        ):
            started.append(process.start())
        yield redis_server, started[-1], started[0]
    finally:
        for process in reversed(started):
            if isinstance(process, Worker):
                process.kill()  # the test is over: nothing is in flight, no need to drain
            else:
                process.stop()
        redis_server.stop()


def a_round_missing_its_last_review(campaign):
    """A task in review whose first two reviews are in; the third closes the round."""
    task = make_task(campaign=campaign)
    task_services.task_generate(task=task, actor=task.author)
    generate_inline(task)
    review_services.task_submit(
        task=task, actor=task.author, preference=-1, rationale=GOOD_RATIONALE
    )
    for _ in range(2):
        reviewer = UserFactory(roles=["reviewer"])
        assignment = review_services.assignment_claim_next(reviewer=reviewer)
        review_services.review_submit(
            assignment=assignment, actor=reviewer, **review_body(task, preference=-2)
        )
    return task


def test_without_redis_the_api_answers_and_every_generation_runs_once_it_is_back(
    outage_stack, live_campaign
):
    redis_server, server, _ = outage_stack
    author = UserFactory(roles=["author"])
    to_generate = [make_task(campaign=live_campaign, author=author) for _ in range(3)]
    task_services.turn_add(
        task=to_generate[0], actor=author, prompt="Now add a regression test for it."
    )
    to_submit = make_task(campaign=live_campaign, author=author)
    task_services.task_generate(task=to_submit, actor=author)
    generate_inline(to_submit)
    in_review = a_round_missing_its_last_review(live_campaign)

    redis_server.stop()
    with (
        client_for(server, author) as as_author,
        client_for(server, UserFactory(roles=["reviewer"])) as as_reviewer,
    ):
        ready = httpx2.get(f"{server.url}/readyz")
        assert ready.status_code == 503
        assert "broker" in ready.json()["error"]["details"]["failing"]
        assert as_author.get("/api/v1/me/").status_code == 200
        for task in to_generate:
            started = time.monotonic()
            response = as_author.post(f"/api/v1/tasks/{task.pk}/generate/")
            assert response.status_code == 202, response.text
            assert response.json()["state"] == "generating"
            assert time.monotonic() - started < PUBLISH_BOUND_SECONDS
        submitted = as_author.post(
            f"/api/v1/tasks/{to_submit.pk}/submit/",
            json={"preference": 1, "rationale": GOOD_RATIONALE},
        )
        assert submitted.status_code == 200, submitted.text
        assert submitted.json()["state"] == "in_review"
        claimed = as_reviewer.post("/api/v1/assignments/next/", json={"campaign": live_campaign.pk})
        assert claimed.status_code == 201, claimed.text
        assert claimed.json()["task"]["id"] == in_review.pk
        reviewed = as_reviewer.post(
            f"/api/v1/assignments/{claimed.json()['id']}/review/",
            json=review_body(in_review, preference=-2),
        )
        assert reviewed.status_code == 201, reviewed.text
    assert Task.objects.get(pk=in_review.pk).state == TaskState.COMPLETED
    assert Assignment.objects.filter(task=in_review, state="submitted").count() == 3
    # Nothing was sent: the first turn of each slot waits for the sweep, the follow-up for its turn.
    waiting = Candidate.objects.filter(turn__task__in=to_generate)
    assert set(waiting.values_list("state", flat=True)) == {CandidateState.PENDING}
    assert not waiting.filter(turn__index=1, dispatched_at__isnull=False).exists()

    redis_server.start()

    ids = [task.pk for task in to_generate]
    states = wait_for(settled(ids), timeout=60, message="generation after the outage")
    assert states == {TaskState.DRAFT}
    assert_stored_exactly_once(ids[:1], per_task=4)
    assert_stored_exactly_once(ids[1:], per_task=2)
    # The follow-up was asked only after its slot's first answer, with that answer as context.
    for follow_up in Candidate.objects.filter(turn__task=to_generate[0], turn__index=2):
        first = Candidate.objects.get(turn__task=to_generate[0], turn__index=1, slot=follow_up.slot)
        assert follow_up.claimed_at > first.updated_at
        assert follow_up.request["messages"][1] == {"role": "assistant", "content": first.output}
    assert httpx2.get(f"{server.url}/readyz").status_code == 200


def test_a_worker_with_jobs_in_flight_when_redis_stops_keeps_working_once_it_is_back(
    outage_stack, live_campaign, fake_models, request
):
    redis_server, server, worker = outage_stack
    held = threading.Event()  # the provider answers only once Redis is gone
    request.addfinalizer(held.set)
    fake_models.answer_with(lambda body: held.wait(timeout=60) and default_answer(body))
    author = UserFactory(roles=["author"])
    before = make_task(campaign=live_campaign, author=author)
    with client_for(server, author) as as_author:
        assert as_author.post(f"/api/v1/tasks/{before.pk}/generate/").status_code == 202
        # Its two jobs run on a worker of four, which keeps polling the broker for more.
        running = Candidate.objects.filter(turn__task=before, state=CandidateState.RUNNING)
        wait_for(lambda: running.count() == 2, timeout=30, message="both jobs in flight")

        redis_server.stop()  # the worker holds their messages unacknowledged
        time.sleep(2)
        held.set()
        redis_server.start()

        after = make_task(campaign=live_campaign, author=author)
        assert as_author.post(f"/api/v1/tasks/{after.pk}/generate/").status_code == 202
        wait_for(settled([after.pk]), timeout=60, message="generation by the same worker")
    assert worker.process.poll() is None, "the worker died with the broker connection"
    assert_stored_exactly_once([after.pk], per_task=2)
