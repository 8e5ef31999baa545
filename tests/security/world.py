"""A small world for the security tests: one user per principal and an object of each kind.

Model versions carry a canary string in their slug, model id and base URL, so any response that
names a model can be caught by a plain substring search.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from reviews import services as review_services
from reviews.models import Arbitration, Assignment
from tasks.models import Campaign, ModelVersion, Repository, Task
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, task_in_review
from tests.tasks.factories import ModelVersionFactory, RepositoryFactory, make_campaign, make_task

CANARY = "CANARY-7f3a"
PASSWORD = "correct horse battery staple"  # UserFactory's

# Who calls: no one, a user without roles, each role; authors and reviewers twice, as the owner
# of the objects the paths name and as someone else holding the same role.
PRINCIPALS = (
    "anonymous",
    "no_role",
    "author",
    "author_other",
    "reviewer",
    "reviewer_other",
    "arbiter",
    "auditor",
    "lead",
)
ROLE_OF = {
    "no_role": None,
    "author": "author",
    "author_other": "author",
    "reviewer": "reviewer",
    "reviewer_other": "reviewer",
    "arbiter": "arbiter",
    "auditor": "auditor",
    "lead": "lead",
}
_unique = itertools.count(1)


def unique() -> int:
    return next(_unique)


def canary_model_versions(fake_models: Any) -> list[ModelVersion]:
    """Two working model versions whose slug, model id and base URL all carry the canary.

    The canary sits in the URL's user part, which the SDKs send as an auth header the fake
    server ignores, so generation still works.
    """
    host = urlsplit(fake_models.url).netloc
    return [
        ModelVersionFactory(
            slug=f"{CANARY}-openai",
            provider="openai",
            model=f"gpt-{CANARY}",
            base_url=f"http://{CANARY}@{host}/v1",
        ),
        ModelVersionFactory(
            slug=f"{CANARY}-anthropic",
            provider="anthropic",
            model=f"claude-{CANARY}",
            base_url=f"http://{CANARY}@{host}",
            parameters={"max_tokens": 2048, "system_prompt": "You write code."},
        ),
    ]


@dataclass
class World:
    users: dict[str, Any]
    campaign: Campaign
    repository: Repository
    draft: Task  # the author's, in draft, its first turn not generated yet
    other_draft: Task  # another author's draft
    arb_task: Task  # the author's, in arbitration; reviewed by reviewer, reviewer_other, one more
    review_task: Task  # another author's, in review; reviewer and reviewer_other hold a slot each
    assignment: Assignment  # the reviewer's active one, on review_task
    other_assignment: Assignment  # reviewer_other's active one, on review_task
    arbitration: Arbitration
    rubric_slug: str
    tokens: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, APIClient] = field(default_factory=dict)

    def client(self, principal: str) -> APIClient:
        # One client per principal: a new client loads the middleware again, and WhiteNoise then
        # scans every static file (~0.1 s a request).
        if principal not in self._clients:
            client = APIClient()
            if self.tokens.get(principal):
                client.credentials(HTTP_AUTHORIZATION=f"Token {self.tokens[principal]}")
            self._clients[principal] = client
        return self._clients[principal]


def build_world(fake_models: Any, monkeypatch: Any) -> World:
    monkeypatch.setenv("MARLIN_TEST_PROVIDER_KEY", "sk-test-secret-never-shown-0123456789")
    users: dict[str, Any] = {"anonymous": None}
    for principal in PRINCIPALS[1:]:
        role = ROLE_OF[principal]
        users[principal] = UserFactory(username=principal, roles=[role] if role else [])
    lead = users["lead"]
    campaign = make_campaign(
        model_versions=canary_model_versions(fake_models), lead=lead, name="Security"
    )

    arb_task = task_in_review(campaign, author=users["author"])
    extra = UserFactory(roles=["reviewer"])
    for person, preference in ((users["reviewer"], -2), (users["reviewer_other"], 2), (extra, -1)):
        claimed = review_services.assignment_claim_next(reviewer=person, campaign_id=campaign.pk)
        review_services.review_submit(
            assignment=claimed, actor=person, **review_body(arb_task, preference=preference)
        )
    arbitration = Arbitration.objects.get(task=arb_task)

    review_task = task_in_review(campaign, author=users["author_other"])
    assignment = review_services.assignment_claim_next(
        reviewer=users["reviewer"], campaign_id=campaign.pk
    )
    other_assignment = review_services.assignment_claim_next(
        reviewer=users["reviewer_other"], campaign_id=campaign.pk
    )
    assert assignment.task_id == other_assignment.task_id == review_task.pk

    world = World(
        users=users,
        campaign=campaign,
        repository=RepositoryFactory(),
        draft=make_task(campaign=campaign, author=users["author"]),
        other_draft=make_task(campaign=campaign, author=users["author_other"]),
        arb_task=arb_task,
        review_task=review_task,
        assignment=assignment,
        other_assignment=other_assignment,
        arbitration=arbitration,
        rubric_slug=campaign.rubric_version.rubric.slug,
    )
    for principal, user in users.items():
        if user is not None:
            world.tokens[principal] = Token.objects.get_or_create(user=user)[0].key
    return world
