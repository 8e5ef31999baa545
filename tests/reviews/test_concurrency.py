"""The queue and arbitration under real concurrency: many clients at once, each on its own connection."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviews.models import Arbitration, Assignment
from tasks.models import TaskState
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, score_sheet, task_in_review
from tests.reviews.test_api_reviews import review_round

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def client_for(user):
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_fifty_reviewers_claiming_at_once_fill_exactly_the_sixty_slots(live_campaign):
    tasks = [task_in_review(live_campaign) for _ in range(20)]
    people = reviewers(50)
    clients = [client_for(person) for person in people]
    start = threading.Barrier(len(people))

    def claim_until_empty(client):
        statuses = Counter()
        start.wait()
        try:
            while True:
                response = client.post("/api/v1/assignments/next/")
                statuses[response.status_code] += 1
                if response.status_code != 201:
                    return statuses
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(people)) as pool:
        outcomes = list(pool.map(claim_until_empty, clients))
    statuses = sum(outcomes, Counter())
    assert statuses == {201: 60, 204: 50}, statuses
    pairs = list(Assignment.objects.values_list("task_id", "reviewer_id"))
    assert len(pairs) == 60 and len(set(pairs)) == 60
    per_task = Counter(task_id for task_id, _ in pairs)
    assert per_task == {task.pk: 3 for task in tasks}
    authors = {task.pk: task.author_id for task in tasks}
    assert not [pair for pair in pairs if authors[pair[0]] == pair[1]]


def test_two_arbiters_resolving_at_once_one_wins_and_the_other_gets_409(api, live_campaign):
    task = task_in_review(live_campaign)
    review_round(api, task, reviewers(3), [review_body(task, preference=p) for p in (-2, 2, -1)])
    arbitration = Arbitration.objects.get(task=task)
    clients = [client_for(UserFactory(roles=["arbiter"])) for _ in range(2)]
    body = {
        "decision": "resolve",
        "preference": -1,
        "scores": score_sheet(task),
        "rationale": "A is right.",
    }
    start = threading.Barrier(2)

    def resolve(client):
        start.wait()
        try:
            return client.post(
                f"/api/v1/arbitrations/{arbitration.pk}/resolve/", body, format="json"
            ).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(resolve, clients))
    assert statuses == [200, 409]
    task.refresh_from_db()
    assert task.state == TaskState.COMPLETED
