"""Campaigns with completed tasks, judged through the public API."""

from reviews.models import Arbitration
from tasks.models import TaskSlot
from tests.accounts.factories import UserFactory
from tests.reviews.helpers import review_body, reviewers, score_sheet, task_in_review
from tests.reviews.test_api_reviews import review_round


def judged_task(api, campaign, preferences, *, turns=1, people=None, arbiter_preference=-1):
    """A task reviewed by three people with `preferences`; arbitrated when they disagree."""
    task = task_in_review(campaign, turns=turns)
    people = people or reviewers(3)
    slots = tuple(task.slots.order_by("label").values_list("label", flat=True))
    bodies = [review_body(task, preference=p, slots=slots) for p in preferences]
    task = review_round(api, task, people, bodies)
    if task.state == "in_arbitration":
        arbitration = Arbitration.objects.get(task=task)
        client = api.as_user(UserFactory(roles=["arbiter"]))
        resolved = client.post(
            f"/api/v1/arbitrations/{arbitration.pk}/resolve/",
            {
                "decision": "resolve",
                "preference": arbiter_preference,
                "scores": score_sheet(task, slots=slots),
                "rationale": "A is right.",
            },
            format="json",
        )
        assert resolved.status_code == 200, resolved.json()
        task.refresh_from_db()
    return task


def slot_models(task):
    return dict(TaskSlot.objects.filter(task=task).values_list("label", "model_version__slug"))
